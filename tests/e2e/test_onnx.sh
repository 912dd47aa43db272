#!/usr/bin/env bash
# `caviar export` checked by real ONNX consumers: for MLPs (every loss), the CNN
# configs' architectures (jobs/configs/fmnist-cnn*.yaml) and a residual
# network, each trained briefly (agreement matters, not accuracy), the ONNX
# checker of python3-onnx passes and OpenCV DNN (python3-opencv) gives the
# same predicted class as `caviar predict` on every one of the 10,000
# Fashion-MNIST test rows, with probabilities within 1e-5.  Then the
# refusals: no half-written file, a clear message, non-zero exit.
source "$(dirname "$0")/lib.sh"
"$PY" -c 'import onnx, cv2' 2>/dev/null ||
    fail "python3-onnx and python3-opencv are needed (apt-get install python3-onnx python3-opencv)"
fm_data

# check MODEL.onnx PREDS.h5: checker + OpenCV against caviar's predictions
check() {
    timeout -k 10 "$STEP_TIMEOUT" "$PY" - "$1" "$DATA/fm-test.h5" "$2" <<'PY'
import sys
import cv2
import h5py
import numpy as np
import onnx

model = onnx.load(sys.argv[1])
onnx.checker.check_model(model, full_check=True)
graph = model.graph
assert [i.name for i in graph.input] == ["input"], graph.input
assert [o.name for o in graph.output] == ["probabilities"], graph.output
assert model.opset_import[0].version == 13, model.opset_import
dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[1:]]
with h5py.File(sys.argv[2]) as f:
    # caviar reads uint8 features times the file's `scale` (docs/dataset-format.md)
    x = f["X"][:].astype(np.float32) * np.float32(f.attrs.get("scale", 1.0))
with h5py.File(sys.argv[3]) as f:
    want = f["probabilities"][:]
    want_cls = f["predicted"][:]
net = cv2.dnn.readNetFromONNX(sys.argv[1])
got = []
for i in range(0, len(x), 500):
    net.setInput(x[i:i + 500].reshape([-1] + dims), "input")
    got.append(net.forward("probabilities").reshape(-1, want.shape[1]))
got = np.concatenate(got)
diff = float(np.abs(got - want).max())
same = int((got.argmax(1) == want_cls).sum())
print(f"{len(x)} rows: same class on {same}, max |p - caviar p| {diff:.3g}")
if len(x) != 10000 or same != len(x) or not diff <= 1e-5:
    sys.exit(1)
PY
}

# roundtrip NAME CONFIG [overrides...]: train briefly, export, predict, check
roundtrip() {
    local name=$1 cfg=$2
    shift 2
    run_np 1 train "$cfg" data.train="$DATA/fm.h5" data.dev="$DATA/fm.h5#dev" \
        data.augment.flip=false data.augment.shift=0 train.epochs=1 train.max_steps=40 \
        train.batch=64 checkpoint.every_epochs=0 checkpoint.every_steps=0 \
        run.dir="$TMP/$name" run.report=false "$@" >"$TMP/$name.log" 2>&1 ||
        { cat "$TMP/$name.log" >&2; fail "$name: training failed"; }
    "$CAVIAR" export "$TMP/$name/model.h5" -o "$TMP/$name.onnx" >/dev/null ||
        fail "$name: export failed"
    "$CAVIAR" predict "$TMP/$name/model.h5" "$DATA/fm-test.h5" -o "$TMP/$name-pred.h5" >/dev/null
    out=$(check "$TMP/$name.onnx" "$TMP/$name-pred.h5") || fail "$name: ONNX disagrees: $out"
    ok "$name: $out"
}

# Every activation and dense-side batch norm; dropout (identity at inference).
cat >"$TMP/mlp.yaml" <<YAML
data: {train: x}
model:
  input: [784]
  layers:
    - {type: dense, units: 64, activation: relu}
    - {type: dropout, keep: 0.8}
    - {type: dense, units: 32, activation: tanh}
    - {type: batchnorm, activation: leaky_relu, slope: 0.1}
    - {type: dense, units: 24, activation: sigmoid}
    - {type: dense, units: 10, activation: softmax}
train: {optimizer: adam, lr: 2.0e-3, seed: 3}
YAML
roundtrip mlp "$TMP/mlp.yaml"

# The other losses' outputs: binary cross-entropy on linear logits (the
# export appends the sigmoid predict applies), mse (no final activation).
cat >"$TMP/small.yaml" <<YAML
data: {train: x}
model:
  input: [784]
  layers:
    - {type: dense, units: 32, activation: relu}
    - {type: dense, units: 10, activation: linear}
  loss: binary_cross_entropy
train: {optimizer: adam, lr: 2.0e-3, seed: 3}
YAML
roundtrip bce "$TMP/small.yaml"
roundtrip mse "$TMP/small.yaml" model.loss=mse model.layers.1.activation=sigmoid

roundtrip fmnist-cnn "$ROOT/jobs/configs/fmnist-cnn.yaml"
roundtrip fmnist-cnn-bar "$ROOT/jobs/configs/fmnist-cnn-bar.yaml"
roundtrip fmnist-cnn-recipe "$ROOT/jobs/configs/fmnist-cnn-recipe.yaml" train.monitor=none \
    train.warmup.epochs=0

# Residual blocks with and without projection, stride and explicit padding,
# average and global pooling, a standalone activation and softmax over a
# whole (C, H, W) sample, flatten.
cat >"$TMP/res.yaml" <<YAML
data: {train: x}
model:
  input: [1, 28, 28]
  layers:
    - {type: conv2d, filters: 8, size: 3, stride: 2, pad: 1}
    - {type: batchnorm, activation: relu}
    - type: residual
      layers:
        - {type: conv2d, filters: 8, size: 3, pad: same, activation: relu}
        - {type: conv2d, filters: 8, size: 3, pad: same}
    - type: residual
      activation: leaky_relu
      layers:
        - {type: conv2d, filters: 12, size: 3, stride: 2, pad: same}
        - {type: batchnorm, activation: tanh}
        - {type: conv2d, filters: 12, size: 2, pad: same}
    - {type: avgpool, size: 2, stride: 1}
    - {type: activation, activation: sigmoid}
    - {type: conv2d, filters: 4, size: 1, pad: valid}
    - {type: activation, activation: softmax}
    - {type: maxpool, size: 3, stride: 2}
    - {type: global_avgpool}
    - {type: flatten}
    - {type: dense, units: 10}
  loss: softmax_cross_entropy
train: {optimizer: adam, lr: 3.0e-3, seed: 5}
YAML
roundtrip residual "$TMP/res.yaml"

# Refusals: one message naming the file, exit 1, nothing written.
expect_fail "not-there.h5" "$CAVIAR" export "$TMP/not-there.h5" -o "$TMP/x.onnx"
[ ! -e "$TMP/x.onnx" ] || fail "missing model: an output was written"
expect_fail "fm-test.h5" "$CAVIAR" export "$DATA/fm-test.h5" -o "$TMP/x.onnx"
[ ! -e "$TMP/x.onnx" ] || fail "a dataset as model: an output was written"
expect_fail "no-dir" "$CAVIAR" export "$TMP/mlp/model.h5" -o "$TMP/no-dir/x.onnx"
mkdir "$TMP/ro" && cp "$TMP/mlp.onnx" "$TMP/ro/keep.onnx"
expect_fail "usage" "$CAVIAR" export "$TMP/mlp/model.h5"
# -o naming the model itself (here through a link) must not replace it
cp "$TMP/mlp/model.h5" "$TMP/ro/model.h5" && ln -s model.h5 "$TMP/ro/link.h5"
expect_fail "is the model file" "$CAVIAR" export "$TMP/ro/model.h5" -o "$TMP/ro/link.h5"
cmp -s "$TMP/mlp/model.h5" "$TMP/ro/model.h5" || fail "export over the model changed it"
# an existing file is replaced whole or not at all: a failed export keeps it
expect_fail "not-there.h5" "$CAVIAR" export "$TMP/not-there.h5" -o "$TMP/ro/keep.onnx"
cmp -s "$TMP/mlp.onnx" "$TMP/ro/keep.onnx" || fail "a failed export changed the existing file"
[ -z "$(find "$TMP" -name '*.tmp.*')" ] || fail "a temporary file was left behind"
# under mpirun every rank exits non-zero, none hangs
rc=0
run_np 2 export "$TMP/not-there.h5" -o "$TMP/x.onnx" >"$TMP/np2.txt" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "export under mpirun -np 2: exit $rc"
[ "$(grep -c 'error' "$TMP/np2.txt")" -eq 1 ] || fail "export under mpirun: not one message"
ok "refusals: missing model, a dataset, no directory, usage, the model as output; nothing written or changed"
