#!/usr/bin/env bash
# `caviar export` of sequence models checked by a real ONNX consumer:
# onnxruntime (its npm package onnxruntime-node, run by the machine's
# Node.js; tests/run.sh installs it into build/onnxruntime, this test tries
# once more and skips, exit 77, only if that install fails).  For an LSTM
# on row-wise Fashion-MNIST (as jobs/configs/fmnist-lstm.yaml), a GRU, a
# stacked RNN, bidirectional layers (concat and sum, every step and last)
# and character models (embedding, per-step softmax, variable lengths) on
# the word list's dev split, each trained briefly: the ONNX checker of
# python3-onnx passes, and onnxruntime gives the same class on every row
# (every step) as `caviar predict`, with probabilities within 1e-5.
source "$(dirname "$0")/lib.sh"
"$PY" -c 'import onnx, h5py' 2>/dev/null || fail "python3-onnx and python3-h5py are needed"
ORT=${CV_ORT_DIR:-$(dirname "$CAVIAR")/onnxruntime}
if [ ! -d "$ORT/node_modules/onnxruntime-node" ]; then
    command -v node >/dev/null && command -v npm >/dev/null ||
        { echo "skipped: no Node.js/npm to run onnxruntime-node"; exit 77; }
    mkdir -p "$ORT" && timeout -k 10 300 npm install --prefix "$ORT" --ignore-scripts --no-audit \
        --no-fund onnxruntime-node@1.30.0 >"$TMP/npm.log" 2>&1 ||
        { echo "skipped: npm could not install onnxruntime-node into $ORT:"; tail -5 "$TMP/npm.log"; exit 77; }
fi
fm_data
WORDS=/usr/share/dict/words
[ -f $WORDS ] || fail "no $WORDS (apt-get install wamerican)"
timeout -k 10 "$STEP_TIMEOUT" "$CAVIAR" import text $WORDS --lines --shuffle --seed 1 \
    --dev 2000 -o "$TMP/words.h5" >/dev/null || fail "import text $WORDS"

# check MODEL.onnx DATA.h5 GROUP PREDS.h5: checker + onnxruntime against caviar
check() {
    timeout -k 10 "$STEP_TIMEOUT" "$PY" - "$@" "$TMP/run-ort" "$ORT" "$ROOT" <<'PY'
import json, os, subprocess, sys
import h5py
import numpy as np
import onnx

model_path, data, group, preds, work, ort, root = sys.argv[1:]
model = onnx.load(model_path)
onnx.checker.check_model(model, full_check=True)
graph = model.graph
assert [i.name for i in graph.input] == ["input", "lengths"], graph.input
assert [o.name for o in graph.output] == ["probabilities"], graph.output
assert model.opset_import[0].version == 13, model.opset_import
dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[1:]]
with h5py.File(data) as f:
    g = f[group] if group else f
    # caviar reads uint8 features times the file's `scale` (docs/dataset-format.md)
    x = g["X"][:].astype(np.float32) * np.float32(g.attrs.get("scale", 1.0))
    n = len(x)
    lengths = g["lengths"][:] if "lengths" in g else np.full(n, dims[0])
with h5py.File(preds) as f:
    want = f["probabilities"][:]
    want_cls = f["predicted"][:]
os.makedirs(work, exist_ok=True)
x.reshape([n] + dims).tofile(os.path.join(work, "x.bin"))
lengths.astype(np.int32).tofile(os.path.join(work, "lengths.bin"))
json.dump([n] + dims, open(os.path.join(work, "shape.json"), "w"))
env = dict(os.environ, NODE_PATH=os.path.join(ort, "node_modules"))
subprocess.run(["node", os.path.join(root, "tests/e2e/onnx_ort.js"), model_path, work],
               env=env, check=True)
got = np.fromfile(os.path.join(work, "out.bin"), dtype=np.float32)
odims = [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim[1:]]
got = got.reshape([n] + odims)
diff = float(np.abs(got.reshape(n, -1) - want).max())
if len(odims) == 2:  # per step: the class of every step
    w = want.reshape(got.shape)
    same, total = int((got.argmax(2) == w.argmax(2)).sum()), n * odims[0]
else:
    same, total = int((got.argmax(1) == want_cls).sum()), n
print(f"{n} rows: same class on {same} of {total}, max |p - caviar p| {diff:.3g}")
if same != total or not diff <= 1e-5:
    sys.exit(1)
PY
}

# roundtrip NAME CONFIG TRAIN.h5 TEST.h5 GROUP: train briefly on TRAIN,
# export, predict TEST (its GROUP), check
roundtrip() {
    local name=$1 cfg=$2 train=$3 data=$4 group=$5
    run_np 1 train "$cfg" data.train="$train" data.dev="$train#dev" train.epochs=1 \
        train.max_steps=30 train.batch=64 checkpoint.every_epochs=0 checkpoint.every_steps=0 \
        run.dir="$TMP/$name" run.report=false run.progress=0 >"$TMP/$name.log" 2>&1 ||
        { cat "$TMP/$name.log" >&2; fail "$name: training failed"; }
    timeout -k 10 "$STEP_TIMEOUT" "$CAVIAR" export "$TMP/$name/model.h5" -o "$TMP/$name.onnx" \
        >/dev/null || fail "$name: export failed"
    timeout -k 10 "$STEP_TIMEOUT" "$CAVIAR" predict "$TMP/$name/model.h5" "$data${group:+#$group}" \
        -o "$TMP/$name-pred.h5" >/dev/null || fail "$name: predict failed"
    out=$(check "$TMP/$name.onnx" "$data" "$group" "$TMP/$name-pred.h5") ||
        fail "$name: ONNX disagrees: $out"
    ok "$name: $out"
}

# model NAME INPUT LAYERS...: a config of these layers (YAML flow mappings)
model() {
    local name=$1 input=$2
    shift 2
    {
        printf 'data: {train: x%s}\nmodel:\n  input: %s\n  layers:\n' "$NORM" "$input"
        printf '    - %s\n' "$@"
        printf '  loss: softmax_cross_entropy\ntrain: {optimizer: adam, lr: 3.0e-3, seed: 5}\n'
    } >"$TMP/$name.yaml"
}

# Row-wise Fashion-MNIST, 28 steps of 28 pixels, on the 10,000 test rows.
NORM=", normalize: standard"
fm() {
    model "$@"
    roundtrip "$1" "$TMP/$1.yaml" "$DATA/fm.h5" "$DATA/fm-test.h5" ""
}
fm lstm "[28, 28]" "{type: lstm, units: 32, return_sequences: true}" "{type: dropout, keep: 0.8}" \
    "{type: flatten}" "{type: dense, units: 10, activation: softmax}"
fm gru "[28, 28]" "{type: gru, units: 24}" "{type: dense, units: 10, activation: softmax}"
fm rnn "[28, 28]" "{type: rnn, units: 24, return_sequences: true}" "{type: rnn, units: 16}" \
    "{type: dense, units: 10, activation: softmax}"
fm bidir "[28, 28]" \
    "{type: bidirectional, layer: {type: lstm, units: 16, return_sequences: true}}" \
    "{type: dense, units: 12, activation: tanh}" \
    "{type: bidirectional, merge_mode: sum, layer: {type: gru, units: 16}}" \
    "{type: dense, units: 10, activation: softmax}"

# Character models on the word list's dev split: per-step softmax, rows of
# every length (padded steps skipped by both).
NORM=""
V=$("$PY" -c 'import h5py, sys; f = h5py.File(sys.argv[1]); print(f.attrs["classes"], f["X"].shape[1])' \
    "$TMP/words.h5") || fail "words.h5: no classes attribute"
read -r VOCAB T <<<"$V"
words() {
    model "$@"
    roundtrip "$1" "$TMP/$1.yaml" "$TMP/words.h5" "$TMP/words.h5" dev
}
words charlm "[$T]" "{type: embedding, vocab: $VOCAB, dim: 16}" \
    "{type: lstm, units: 32, return_sequences: true}" \
    "{type: dense, units: $VOCAB, activation: softmax}"
words charbi "[$T]" "{type: embedding, vocab: $VOCAB, dim: 8, pad_id: 0}" \
    "{type: bidirectional, layer: {type: gru, units: 16, return_sequences: true}}" \
    "{type: rnn, units: 16, return_sequences: true}" \
    "{type: dense, units: $VOCAB, activation: softmax}"
