#!/usr/bin/env bash
# The h5py snippet of docs/checkpoint-format.md loads a trained model's
# weights; a numpy forward pass with them agrees with `caviar predict`.
source "$(dirname "$0")/lib.sh"
fm_data
cfg=$(tiny_config)
run_np 2 train "$cfg" train.epochs=1 >/dev/null
run_np 1 predict "$TMP/run/model.h5" "$DATA/fm-test.h5" -o "$TMP/p.h5" >/dev/null
# the snippet, extracted from the doc so the doc stays true
sed -n '/^```python$/,/^```$/p' "$ROOT/docs/checkpoint-format.md" | sed '1d;$d' |
    sed "s#runs/quickstart/model.h5#$TMP/run/model.h5#" >"$TMP/snippet.py"
cat >>"$TMP/snippet.py" <<PY
import h5py, numpy as np
with h5py.File("$DATA/fm-test.h5", "r") as d:
    x = d["X"][:1000].astype(np.float32) * d.attrs["scale"]
logits = forward(x)
p = np.exp(logits - logits.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
with h5py.File("$TMP/p.h5", "r") as f:
    ref = f["probabilities"][:1000]
err = np.abs(p - ref).max()
print("max |p_numpy - p_caviar| =", err)
assert err < 1e-4, err
PY
"$PY" "$TMP/snippet.py" || fail "h5py snippet disagrees with caviar predict"
ok "h5py snippet reproduces caviar's predictions"
