#!/usr/bin/env bash
# Hostile input (issue 18): sizes that overflow int, numeric arguments out of
# range, and data that would give a silent wrong result.  Each case exits
# non-zero on every rank within the timeout with one message naming the
# key, file or value, leaves no output file (nor a temporary one), and
# trips no sanitizer (tests/run.sh runs this script in the ASan build).
# Small synthetic splits (16 features) keep it to a few seconds a case.
source "$(dirname "$0")/lib.sh"
STEP_TIMEOUT=60

"$PY" - "$TMP" <<'PY'
import h5py, numpy as np, sys
d = sys.argv[1]
r = np.random.RandomState(0)
def split(name, n, classes, cols=16, declared_cols=None, shape=None):
    with h5py.File(f"{d}/{name}.h5", "w") as f:
        if declared_cols:  # declared, chunked, never written: costs no disk
            f.create_dataset("X", shape=(n, declared_cols), dtype="f4", chunks=(1, 4096))
        else:
            f["X"] = r.rand(n, cols).astype(np.float32)
        f["y"] = (np.arange(n) % classes).astype(np.int32)
        f.attrs["classes"] = classes
        if shape is not None:
            f.attrs["shape"] = np.array(shape, dtype=np.int32)
split("c10", 256, 10)
split("c3", 64, 3)
split("empty", 0, 10)
split("one", 1, 10)
split("wide", 4, 10, declared_cols=2**32 + 16)
split("shape39", 64, 10, shape=list(range(1, 40)))
with open(f"{d}/wide.csv", "w") as f:  # 5,000 cells a row: rows were cut at 4,096
    for i in range(3):
        f.write(",".join([str(i % 2)] + [str(i + c) for c in range(1, 5000)]) + "\n")
with open(f"{d}/nul.csv", "wb") as f:
    f.write(b"1,0,2\n3,1,4\n5,0,7\x009\n")
PY
# tiny_config's MLP on the synthetic split: 16 features, 10 classes
cfg=$(tiny_config)
O="data.train=$TMP/c10.h5 data.dev= model.input=[16] run.dir=$TMP/run"

# hostile NAME PATTERN CMD...: CMD (started in the background; `settle`
# waits) exits non-zero but not by a timeout or signal, its output matches
# PATTERN, and it holds no sanitizer report.  MPI start-up dominates each
# case, so the cases of a group run at once.
pids=()
hostile() {
    local name=$1 pattern=$2 a
    shift 2
    # the cases of a group run at once: each its own run directory, which
    # a run locks (run_dir.h)
    local args=()
    for a in "$@"; do
        case $a in "run.dir=$R" | "run.dir=$TMP/run") a="$a-$name" ;; esac
        args+=("$a")
    done
    set -- "${args[@]}"
    (
        rc=0
        "$@" >"$TMP/$name.out" 2>&1 || rc=$?
        [ "$rc" -ne 0 ] || fail "$name: expected failure, got exit 0: $*"
        [ "$rc" -lt 124 ] || fail "$name: exit $rc (timeout or signal): $(cat "$TMP/$name.out")"
        grep -Eq -- "$pattern" "$TMP/$name.out" ||
            fail "$name: output does not match /$pattern/: $(cat "$TMP/$name.out")"
        ! grep -Eq "Sanitizer|runtime error:|on signal|Segmentation" "$TMP/$name.out" ||
            fail "$name: sanitizer report or crash: $(cat "$TMP/$name.out")"
    ) &
    pids+=($!)
}

settle() {
    local p bad=0
    for p in "${pids[@]}"; do
        wait "$p" || bad=1
    done
    pids=()
    [ "$bad" -eq 0 ] || fail "$1"
}

# nothing PATH...: none of the paths, nor a temporary file beside them, exists
nothing() {
    local f
    for f in "$@"; do
        [ ! -e "$f" ] || fail "a failed command left $f"
        ! ls "$f".tmp* >/dev/null 2>&1 || fail "a failed command left a temporary $f.tmp*"
    done
}

T="train $cfg $O"
R=$TMP/r

# ---- sizes computed from input ----
hostile input "model.input = \\[2048, 2048, 1024\\]: expected C x H x W of at most 2147483647" \
    run_np 2 $T "model.input=[2048,2048,1024]" run.dir=$R
hostile batch "model.input: \\(1, 32768, 32768\\) per sample x batch 64 is more than 2147483647" \
    run_np 2 $T "model.input=[1,32768,32768]" run.dir=$R
hostile units "layer 2 \\(dense\\) output: \\(2000000000, 1, 1\\) per sample x batch 128" \
    "$CAVIAR" $T model.layers.2.units=2000000000 run.dir=$R
hostile wide "wide.h5: /X is 4 x 4294967312: expected 1 to 2147483647 columns" \
    run_np 2 $T data.train=$TMP/wide.h5 run.dir=$R
hostile shape "shape39.h5: attribute 'shape': expected 3 integers" \
    "$CAVIAR" $T data.train=$TMP/shape39.h5 run.dir=$R
hostile intu "train.epochs = int_uniform\\(-1e30, 1e30\\): expected int_uniform bounds within" \
    "$CAVIAR" sweep "$cfg" $O "sweep.space={train.epochs: 'int_uniform(-1e30, 1e30)'}" run.dir=$R
settle "sizes past int"
nothing "$R"/model.h5 "$R"-*/model.h5 "$R"/sweep/results.jsonl "$R"-*/sweep/results.jsonl
ok "sizes past int refused"

# ---- numeric arguments ----
hostile members "--members 4294967297: expected an integer in \\[1, 64\\]" \
    run_np 2 ensemble train "$cfg" $O --members 4294967297 run.dir=$R
hostile members2 "--members 2x: expected an integer" \
    "$CAVIAR" ensemble train "$cfg" $O --members 2x run.dir=$R
hostile trial "--trial 99999999999: expected an integer in \\[0, 2147483646\\]" \
    "$CAVIAR" sweep "$cfg" $O --trial 99999999999
hostile eps "--eps nan: expected a number in \\(0, 1\\]" "$CAVIAR" gradcheck "$cfg" $O --eps nan
hostile seed "--seed -1: expected an integer in \\[0, 18446744073709551615\\]" \
    "$CAVIAR" import csv "$TMP/wide.csv" --label-column 0 --seed -1 -o "$TMP/s.h5"
hostile dev "--dev 1e3: expected an integer" \
    "$CAVIAR" import csv "$TMP/wide.csv" --label-column 0 --dev 1e3 -o "$TMP/s.h5"
settle "numeric arguments"
nothing "$R"/ensemble "$R"-*/ensemble "$TMP/s.h5"
ok "numeric arguments range-checked"

# ---- silent wrong results ----
run_np 2 $T >"$TMP/train.txt" 2>&1 || fail "training the reference model: $(cat "$TMP/train.txt")"
M=$TMP/run/model.h5
hostile eval "c3.h5: 3 classes, but the last layer has 10 outputs" run_np 2 eval "$M" "$TMP/c3.h5"
hostile predict "c3.h5: 3 classes, but the last layer has 10 outputs" \
    "$CAVIAR" predict "$M" "$TMP/c3.h5" -o "$TMP/p.csv"
hostile ensemble "c3.h5: 3 classes, but the last layer has 10 outputs" \
    "$CAVIAR" ensemble eval "$M" "$M" --data "$TMP/c3.h5"
hostile eval0 "empty.h5: no rows" "$CAVIAR" eval "$M" "$TMP/empty.h5"
hostile train0 "empty.h5: no rows" run_np 2 $T data.train=$TMP/empty.h5 run.dir=$R
hostile dev0 "empty.h5: no rows" "$CAVIAR" $T data.dev=$TMP/empty.h5 run.dir=$R
settle "wrong results"
"$PY" - "$M" "$TMP/m20.h5" <<'PY'
import h5py, numpy as np, shutil, sys
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:  # 20 dimensions: read into 8 slots, the stack overran
    del f["layers/00_dense/W"]
    f["layers/00_dense/W"] = np.zeros((1,) * 20, dtype=np.float32)
PY
hostile dims20 "m20.h5: /layers/00_dense/W has shape" "$CAVIAR" eval "$TMP/m20.h5" "$TMP/c10.h5"
hostile test "missing.h5: cannot open dataset" run_np 2 $T data.test=$TMP/missing.h5 run.dir=$R
hostile test3 "c3.h5: 3 classes" "$CAVIAR" $T data.test=$TMP/c3.h5 run.dir=$R
hostile nul "nul.csv:3:3: a NUL byte inside the field" \
    "$CAVIAR" import csv "$TMP/nul.csv" --label-column 1 -o "$TMP/nul.h5"
settle "data.test and CSV"
nothing "$TMP/p.csv" "$R"/model.h5 "$R"-*/model.h5 "$TMP/nul.h5"
# a row of 5,000 cells is imported whole
"$CAVIAR" import csv "$TMP/wide.csv" --label-column 0 -o "$TMP/wide-csv.h5" >"$TMP/out.txt" ||
    fail "wide CSV: $(cat "$TMP/out.txt")"
grep -q "imported 3 rows (+ 0 dev rows) x 4999 features" "$TMP/out.txt" ||
    fail "wide CSV: $(cat "$TMP/out.txt")"
# a stride near INT_MAX with same padding: one output position, no int overflow
# in the plan or in im2col (UBSan in the ASan build)
"$CAVIAR" $T "model.input=[1,4,4]" run.dir=$R \
    "model.layers=[{type: conv2d, filters: 2, size: 9, stride: 2147483647, pad: same},
                   {type: dense, units: 10, activation: softmax}]" >"$TMP/out.txt" 2>&1 ||
    fail "conv2d with stride 2147483647: $(cat "$TMP/out.txt")"
grep -q "^done: " "$TMP/out.txt" || fail "conv2d with stride 2147483647: $(cat "$TMP/out.txt")"
rm -rf "$R"
# fewer rows than ranks is not an error: the rank without rows joins every
# exchange with an empty batch (docs/dataset-format.md), and eval counts the
# one row once
run_np 2 $T data.train=$TMP/one.h5 train.batch=2 run.dir=$R >"$TMP/out.txt" 2>&1 ||
    fail "one row on two ranks: $(cat "$TMP/out.txt")"
run_np 2 eval "$R/model.h5" "$TMP/one.h5" --json >"$TMP/eval.json" 2>&1 ||
    fail "eval of one row on two ranks: $(cat "$TMP/eval.json")"
[ "$(json_get "$TMP/eval.json" count)" = 1 ] || fail "one row evaluated as $(cat "$TMP/eval.json")"
ok "no silent wrong results"
