#!/usr/bin/env bash
# `import csv`: class names as labels (numbered as Python numbers them:
# sorted, or in --class-names order), quoted fields, missing values refused
# by default or filled (mean / zero, checked against numpy), a 10,000-column
# row kept whole; a NUL byte, malformed quotes and a label column mixing
# numbers and names each fail naming file:line[:column], writing nothing.
source "$(dirname "$0")/lib.sh"
cd "$TMP"

"$PY" - <<'PY' || fail "writing the CSV files"
import numpy as np
rng = np.random.default_rng(1)
names = ["dog", "cat", "Ankle, boot", "zebra"]
with open("named.csv", "w") as f:
    f.write('f0,"species",f1,f2\n')
    for i in range(200):
        a = rng.normal(size=3)
        f.write(f'{a[0]:.6g},"{names[i % 4]}",{a[1]:.6g},{a[2]:.6g}\n')
with open("missing.csv", "w") as f:
    f.write("y,a,b,c\n")
    for i in range(50):
        cells = [f"{v:.6g}" for v in rng.normal(size=3)]
        if i % 7 == 3:
            cells[i % 3] = ["", "NA", "?", "NaN", "n/a"][i % 5]
        f.write(",".join([str(i % 3)] + cells) + "\n")
with open("wide.csv", "w") as f:  # 10,000 cells a row
    for i in range(3):
        f.write(",".join([str(i % 2)] + [str(i + c) for c in range(1, 10000)]) + "\n")
PY

"$CAVIAR" import csv named.csv --header --label-column species -o named.h5 >/dev/null ||
    fail "import named labels"
"$CAVIAR" import csv named.csv --header --label-column 1 --class-names "zebra,dog,cat,Ankle, boot" \
    -o order.h5 >out.txt 2>&1 && fail "a name list cut at the comma inside a name must not fit"
"$CAVIAR" import csv named.csv --header --label-column 1 --class-names "zebra,dog,cat,Ankle boot" \
    -o order.h5 >out.txt 2>&1 && fail "a label missing from --class-names must fail"
grep -q "named.csv:4:2: label 'Ankle, boot' is not one of the 4 class names" out.txt ||
    fail "unknown label: $(cat out.txt)"
sed 's/Ankle, boot/Ankle boot/' named.csv >named2.csv
"$CAVIAR" import csv named2.csv --header --label-column 1 \
    --class-names "zebra,dog,cat,Ankle boot" -o order.h5 >/dev/null || fail "--class-names order"
"$PY" - <<'PY' || fail "class names and ids"
import csv, h5py, numpy as np
rows = list(csv.reader(open("named.csv")))[1:]
labels = [r[1] for r in rows]
names = sorted(set(labels))
with h5py.File("named.h5") as f:
    got = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["class_names"]]
    assert got == names, (got, names)
    assert list(f["y"][:]) == [names.index(l) for l in labels]
    want = np.array([[float(r[0]), float(r[2]), float(r[3])] for r in rows], np.float32)
    assert np.array_equal(f["X"][:], want)
order = ["zebra", "dog", "cat", "Ankle boot"]
with h5py.File("order.h5") as f:
    assert list(f["y"][:]) == [order.index(l.replace(",", "")) for l in labels]
    assert f.attrs["classes"] == 4
PY
ok "class names as labels (quoted, with a comma): sorted ids, or --class-names order"

expect_fail "missing.csv:5:2: missing value \('NaN'\): --missing mean or zero fills it" \
    run_np 2 import csv missing.csv --header --label-column y -o keep.h5
[ ! -e keep.h5 ] || fail "a refused import wrote its output"
for policy in mean zero; do
    "$CAVIAR" import csv missing.csv --header --label-column y --missing $policy -o m-$policy.h5 \
        >out.txt || fail "--missing $policy"
    grep -q "filled 7 missing value" out.txt || fail "fill count: $(cat out.txt)"
done
"$PY" - <<'PY' || fail "filled values"
import h5py, numpy as np
raw = np.genfromtxt("missing.csv", delimiter=",", skip_header=1, missing_values=["", "NA", "?", "NaN", "n/a"])[:, 1:]
assert np.isnan(raw).sum() == 7
for policy in ("mean", "zero"):
    want = np.where(np.isnan(raw), np.nanmean(raw, 0) if policy == "mean" else 0, raw)
    got = h5py.File(f"m-{policy}.h5")["X"][:]
    assert np.allclose(got, want, rtol=1e-6, atol=1e-6), policy
PY
ok "missing values: refused naming file:line:column, or filled with the column mean (numpy's nanmean) or 0"

"$CAVIAR" import csv wide.csv --label-column 0 -o wide.h5 >/dev/null || fail "10,000 columns"
"$PY" - <<'PY' || fail "10,000-column rows cut"
import h5py
with h5py.File("wide.h5") as f:
    X = f["X"][:]
    assert X.shape == (3, 9999), X.shape
    assert X[2, 0] == 3 and X[2, -1] == 2 + 9999 and X[0, -1] == 9999
PY
ok "a row of 10,000 columns is kept whole"

printf '1,0,2\n3,1,4\n5,0,7\0009\n' >nul.csv
printf '1,0\n"2,5,1\n' >open.csv
printf '1,0\n2"x,1\n' >inner.csv
printf '1,0\n"2"x,1\n' >after.csv
printf 'a,y\n1,0\n2,1\n3,cat\n' >mixed.csv
printf 'a,y\n1,cat\n2,7\n' >mixed2.csv
printf 'a,y\n1,0\n2,\n' >nolabel.csv
printf 'a,y\n1,0\n2,1\n3,4,5\n' >ragged.csv
expect_fail "nul.csv:3:3: a NUL byte inside the field" "$CAVIAR" import csv nul.csv --label-column 1 -o keep.h5
expect_fail "open.csv:2:1: malformed quote: no closing quote on the line" \
    "$CAVIAR" import csv open.csv --label-column 1 -o keep.h5
expect_fail "inner.csv:2:1: malformed quote: a quote inside an unquoted field" \
    "$CAVIAR" import csv inner.csv --label-column 1 -o keep.h5
expect_fail "after.csv:2:1: malformed quote: text after the closing quote" \
    "$CAVIAR" import csv after.csv --label-column 1 -o keep.h5
expect_fail "mixed.csv:4:2: label 'cat' is not a number, but the label on line 2 was a number" \
    run_np 2 import csv mixed.csv --header --label-column y -o keep.h5
expect_fail "mixed2.csv:3:2: label '7' is a number, but the label on line 2 was a name" \
    "$CAVIAR" import csv mixed2.csv --header --label-column y -o keep.h5
expect_fail "nolabel.csv:3:2: the label is missing" \
    "$CAVIAR" import csv nolabel.csv --header --label-column y --missing mean -o keep.h5
expect_fail "ragged.csv:4: 3 columns, expected 2" \
    "$CAVIAR" import csv ragged.csv --header --label-column y -o keep.h5
expect_fail "named.csv:2:2: label 'dog' is not a number \(--regression\)" \
    "$CAVIAR" import csv named.csv --header --label-column 1 --regression -o keep.h5
rc=0
"$CAVIAR" import csv missing.csv --label-column 0 --missing some -o keep.h5 2>err.txt || rc=$?
[ $rc -eq 2 ] && grep -q -- "--missing some: expected refuse, mean or zero" err.txt ||
    fail "--missing some: rc $rc"
[ ! -e keep.h5 ] || fail "a failed import wrote its output"
ok "NUL byte, malformed quotes, mixed or missing labels, ragged rows: one message with file:line"
