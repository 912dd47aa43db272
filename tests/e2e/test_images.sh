#!/usr/bin/env bash
# `import images`: a Fashion-MNIST folder of PNGs (one subfolder per class,
# written here from the IDX data) imports to exactly the pixels and labels
# of the IDX import of the same rows, so training on either gives the same
# model and the same test accuracy; JPEG pixels match Pillow's decoder,
# --resize/--crop match OpenCV's bilinear resize; bad files, folders and
# options each fail with one message naming them and leave nothing behind.
source "$(dirname "$0")/lib.sh"
fm_data
cd "$TMP"

# 2,000 train and 500 test rows as PNG folders NN-name/ROW.png and as IDX
# files holding the same rows in the order the folder import reads them
# (class by class, rows in order within a class).
"$PY" - "$FM" <<'PY' || fail "writing the PNG folders"
import gzip, struct, sys, numpy as np
from PIL import Image
names = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
         "Ankle-boot"]
def idx(path, magic):
    b = gzip.open(path).read()
    assert struct.unpack(">I", b[:4])[0] == magic
    return b
for split, src, n in (("train", "train", 2000), ("test", "t10k", 500)):
    img = idx(f"{sys.argv[1]}/{src}-images-idx3-ubyte.gz", 0x803)
    lab = idx(f"{sys.argv[1]}/{src}-labels-idx1-ubyte.gz", 0x801)
    x = np.frombuffer(img, np.uint8, offset=16)[: n * 784].reshape(n, 28, 28)
    y = np.frombuffer(lab, np.uint8, offset=8)[:n]
    order = sorted(range(n), key=lambda i: (y[i], i))
    for i in order:
        d = f"{split}/{y[i]:02d}-{names[y[i]]}"
        import os; os.makedirs(d, exist_ok=True)
        Image.fromarray(x[i], "L").save(f"{d}/{i:05d}.png")
    with gzip.open(f"{split}-images.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + x[order].tobytes())
    with gzip.open(f"{split}-labels.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + y[order].tobytes())
PY

run_np 1 import images train --grayscale --shuffle --seed 5 --dev 300 -o img.h5 >out.txt ||
    fail "import images: $(cat out.txt)"
grep -q "imported 1700 rows (+ 300 dev rows) x 784 features, 10 classes" out.txt ||
    fail "import summary: $(cat out.txt)"
"$CAVIAR" import idx --images train-images.gz --labels train-labels.gz --shuffle --seed 5 \
    --dev 300 -o idx.h5 >/dev/null || fail "import idx"
"$CAVIAR" import images test --grayscale -o img-test.h5 >/dev/null || fail "import images test"
"$CAVIAR" import idx --images test-images.gz --labels test-labels.gz -o idx-test.h5 >/dev/null ||
    fail "import idx test"
"$PY" - <<'PY' || fail "the folder import differs from the IDX import of the same rows"
import h5py, numpy as np
for a, b in (("img.h5", "idx.h5"), ("img-test.h5", "idx-test.h5")):
    with h5py.File(a) as f, h5py.File(b) as g:
        for grp in (["/", "dev"] if "dev" in f else ["/"]):
            for k in ("X", "y"):
                assert np.array_equal(f[grp][k][:], g[grp][k][:]), (a, grp, k)
            assert list(f[grp].attrs["shape"]) == [1, 28, 28]
            assert f[grp].attrs["classes"] == 10
            assert abs(f[grp].attrs["scale"] - 1 / 255) < 1e-9
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["class_names"]]
        assert names[0] == "00-T-shirt" and names[9] == "09-Ankle-boot", names
PY
ok "a PNG folder imports to the IDX import's pixels, labels and row order (+ class names)"

# Training on either file is then the same computation: same test accuracy.
train_on() { # NAME TRAIN.h5 TEST.h5
    sed -e "s|$DATA/fm.h5#dev|$2#dev|; s|$DATA/fm.h5|$2|; s|$TMP/run|$TMP/run-$1|" \
        "$(tiny_config)" >"$1.yaml"
    run_np 1 train "$1.yaml" >/dev/null || fail "train on $2"
    run_np 1 eval --json "run-$1/model.h5" "$3" >"$1-eval.json" || fail "eval $1"
}
train_on img img.h5 img-test.h5
train_on idx idx.h5 idx-test.h5
acc_img=$(json_get img-eval.json accuracy)
acc_idx=$(json_get idx-eval.json accuracy)
[ "$acc_img" = "$acc_idx" ] || fail "accuracy from the PNG folder $acc_img, from IDX $acc_idx"
awk -v a="$acc_img" 'BEGIN { exit !(a > 0.6) }' || fail "accuracy $acc_img: the model did not learn"
ok "train + eval from the PNG folder: test accuracy $acc_img, identical to the IDX import's"

# Pixels against independent decoders: JPEG (RGB and gray) as Pillow reads
# it; --resize and --crop as OpenCV's bilinear resize (fixed point there:
# within 1 level).
mkdir -p small/a small/b
"$PY" - <<'PY' || fail "writing small images"
import numpy as np
from PIL import Image
rng = np.random.default_rng(0)
for c in "ab":
    for i in range(3):
        a = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
        a[:, :15] = a[:, :15] // 4 * 4  # some smooth parts survive JPEG
        Image.fromarray(a).save(f"small/{c}/{i}.png")
        Image.fromarray(a).save(f"small/{c}/{i}j.jpg", quality=90)
PY
for mode in "--rgb" "--grayscale" "--rgb --size 12x17 --resize" "--rgb --size 10x10 --crop" \
    "--grayscale --size 45x31"; do
    # shellcheck disable=SC2086
    "$CAVIAR" import images small $mode -o small.h5 >/dev/null || fail "import small $mode"
    "$PY" - "$mode" <<'PY' || fail "pixels of import images $mode"
import sys, glob, h5py, numpy as np, cv2
from PIL import Image
mode = sys.argv[1].split()
gray = "--grayscale" in mode
h, w = map(int, mode[mode.index("--size") + 1].split("x")) if "--size" in mode else (20, 30)
files = sorted(glob.glob("small/a/*")) + sorted(glob.glob("small/b/*"))
with h5py.File("small.h5") as f:
    X, y = f["X"][:], f["y"][:]
assert list(y) == [0] * 6 + [1] * 6, y
assert X.shape == (12, (1 if gray else 3) * h * w), X.shape
for row, path in zip(X, files):
    a = np.asarray(Image.open(path).convert("L" if gray else "RGB"))
    tol = 0
    if "--crop" in mode:  # 20 x 30 -> the centred 20 x 20
        a = a[:, 5:25]
    if (h, w) != a.shape[:2]:
        a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
        tol = max(tol, 1)
    want = a[None] if gray else a.transpose(2, 0, 1)
    got = row.reshape(want.shape).astype(int)
    d = np.abs(got - want.astype(int)).max()
    assert d <= tol, (path, d, tol)
PY
done
ok "JPEG and PNG pixels match Pillow, --resize/--crop match OpenCV (RGB and grayscale, CHW)"

# Bad input: one message naming the file or folder, nothing written (an
# earlier output survives), every rank exits alike.
cp -r small bad
echo "not an image" >bad/a/notes.txt
head -c 200 small/b/0.png >bad/b/cut.png
head -c 700 small/b/0j.jpg >bad/b/cutj.jpg
echo old >keep.h5
expect_fail "bad/a/notes.txt: not a PNG or JPEG image" run_np 2 import images bad -o keep.h5
[ "$(cat keep.h5)" = old ] || fail "a failed import replaced its output"
rm bad/a/notes.txt
expect_fail "bad/b/cut.png: bad PNG \(truncated or corrupt\)" \
    "$CAVIAR" import images bad --on-bad stop -o keep.h5 --class-names a,b,c
expect_fail "bad/b/cut.png: bad PNG \(truncated or corrupt\)" "$CAVIAR" import images bad -o keep.h5
rm bad/b/cut.png
expect_fail "bad/b/cutj.jpg: bad JPEG \(truncated or corrupt\)" "$CAVIAR" import images bad -o keep.h5
head -c 200 small/b/0.png >bad/b/cut.png
echo "not an image" >bad/a/notes.txt
"$CAVIAR" import images bad --on-bad skip -o skip.h5 >out.txt 2>err.txt || fail "--on-bad skip"
grep -q "skipped 3 unreadable file" out.txt || fail "skip count: $(cat out.txt)"
for f in bad/a/notes.txt bad/b/cut.png bad/b/cutj.jpg; do
    grep -q "skipped $f: " err.txt || fail "skipped $f not named: $(cat err.txt)"
done
"$PY" -c 'import h5py; assert h5py.File("skip.h5")["X"].shape[0] == 12' || fail "rows after skip"
ok "unreadable, truncated and non-image files: named; stop (default) writes nothing, skip counts"

mkdir -p flat empty/a odd/a odd/b
cp small/a/0.png small/a/1.png flat/
cp small/a/0.png odd/a/
"$PY" -c 'from PIL import Image; Image.new("L", (7, 9)).save("odd/b/z.png")'
expect_fail "flat: no class subfolders \(expected one folder per class" \
    run_np 2 import images flat -o keep.h5
expect_fail "empty: no image files in its class subfolders" "$CAVIAR" import images empty -o keep.h5
expect_fail "nowhere: cannot open folder: No such file" "$CAVIAR" import images nowhere -o keep.h5
expect_fail "odd/b/z.png: image is 9 x 7, the first was 20 x 30 \(give --size HxW" \
    "$CAVIAR" import images odd -o keep.h5
"$CAVIAR" import images odd --size 9x7 -o odd.h5 >/dev/null || fail "--size fits every image"
expect_fail "odd/a: the folder is not one of the 1 class names given" \
    "$CAVIAR" import images odd --class-names b -o keep.h5
[ "$(cat keep.h5)" = old ] || fail "a failed import replaced its output"
for bad in 0x5 5x abc 70000x2 3x-1; do
    rc=0
    "$CAVIAR" import images small --size "$bad" -o keep.h5 2>err.txt || rc=$?
    [ $rc -eq 2 ] && grep -q -- "--size $bad: expected HxW" err.txt || fail "--size $bad: rc $rc"
done
rc=0
"$CAVIAR" import images small --on-bad maybe -o keep.h5 2>err.txt || rc=$?
[ $rc -eq 2 ] && grep -q -- "--on-bad maybe: expected skip or stop" err.txt || fail "--on-bad"
ok "folders without classes or images, sizes that differ, bad options: one message each"

# predict on the folders themselves: the probabilities of the imported file
# exactly, the true label from the subfolder, the class name from the
# model's training data; a flat folder (no subfolders) has no labels.
mkdir -p flat-test
cp test/*/*.png flat-test/
run_np 2 predict run-img/model.h5 test -o pf.csv >out.txt || fail "predict on a folder: $(cat out.txt)"
grep -q "wrote 500 predictions (10 outputs, with true labels)" out.txt || fail "$(cat out.txt)"
run_np 1 predict run-img/model.h5 img-test.h5 -o ph.h5 >/dev/null || fail "predict on img-test.h5"
run_np 1 predict run-img/model.h5 flat-test -o pflat.h5 >/dev/null || fail "predict on a flat folder"
"$PY" - "$acc_img" <<'PY' || fail "predictions on the folder differ from those on its import"
import csv, os, sys, h5py, numpy as np
rows = list(csv.DictReader(open("pf.csv")))
p = np.array([[float(r[f"p{j}"]) for j in range(10)] for r in rows])
with h5py.File("ph.h5") as f, h5py.File("img-test.h5") as d, h5py.File("pflat.h5") as g:
    assert np.allclose(p, f["probabilities"][:], rtol=1e-6, atol=1e-7)
    y = d["y"][:]
    assert "label" in f and np.array_equal(f["label"][:], y)
    assert [int(r["label"]) for r in rows] == list(y)
    pred = [int(r["predicted"]) for r in rows]
    assert pred == list(f["predicted"][:])
    names = [n.decode() if isinstance(n, bytes) else n for n in d.attrs["class_names"]]
    assert [r["predicted_name"] for r in rows] == [names[i] for i in pred]
    acc = float(np.mean(np.array(pred) == y))
    assert abs(acc - float(sys.argv[1])) < 1e-9, (acc, sys.argv[1])
    # the folder's rows go class by class; flat-test's by file name (= IDX index)
    ids = [int(n[:-4]) for c in sorted(os.listdir("test")) for n in sorted(os.listdir("test/" + c))]
    flat = g["probabilities"][:]
    assert "label" not in g and flat.shape == (500, 10)
    assert np.allclose(flat[np.argsort(np.argsort(ids))], f["probabilities"][:], rtol=1e-5, atol=1e-7)
PY
ok "predict on the PNG folder: the imported file's probabilities, true labels, class names"
