#!/usr/bin/env bash
# Bad input: each case exits non-zero on every rank within the timeout (no
# hang), prints one message naming the file/key/value, writes no model.
source "$(dirname "$0")/lib.sh"
fm_data
cfg=$(tiny_config)
T="train $cfg train.max_steps=5"

expect_fail "missing.h5: cannot open" run_np 2 $T data.train=$TMP/missing.h5
expect_fail "missing.yaml" run_np 2 train "$TMP/missing.yaml"
expect_fail "784 features per row, but model.input describes 100" run_np 2 $T model.input=[100]
expect_fail "train.batch = 1 is smaller than the number of ranks" run_np 2 $T train.batch=1
expect_fail "model.layers.1.keep = 1.5: expected a number in \\(0, 1\\]" run_np 2 $T model.layers.1.keep=1.5
expect_fail "train.lr = -0.1: expected a number > 0" run_np 2 $T train.lr=-0.1
expect_fail "type = dence: expected one of dense" run_np 2 $T model.layers.0.type=dence
expect_fail "activation = relux: expected one of" run_np 2 $T model.layers.0.activation=relux
expect_fail "unknown key .train.lrr." run_np 2 $T train.lrr=1
expect_fail "unknown key .comm.shared_batch." run_np 2 $T comm.shared_batch=true
expect_fail "comm.compression = bf16 needs comm.shard_optimizer = auto or false" \
    run_np 2 $T comm.compression=bf16 comm.shard_optimizer=true

"$PY" - "$TMP" <<'PY'
import h5py, numpy as np, sys
d = sys.argv[1]
x = np.random.RandomState(0).rand(64, 784).astype(np.float32)
y = (np.arange(64) % 10).astype(np.int32)
def make(name, x, y, with_x=True):
    with h5py.File(f"{d}/{name}.h5", "w") as f:
        if with_x:
            f["X"] = x
        f["y"] = y
        f.attrs["classes"] = 10
make("nox", x, y, with_x=False)
xn = x.copy(); xn[17, 300] = np.nan
make("nan", xn, y)
yb = y.copy(); yb[5] = 12
make("badlabel", x, yb)
PY
expect_fail "nox.h5: no dataset /X" run_np 2 $T data.train=$TMP/nox.h5 data.dev=""
expect_fail "nan.h5: /X\\[17, 300\\] is NaN" run_np 2 $T data.train=$TMP/nan.h5 data.dev=""
expect_fail "/y\\[5\\] = 12: class id outside \\[0, 10\\)" run_np 2 $T data.train=$TMP/badlabel.h5 data.dev=""
[ ! -e "$TMP/run/model.h5" ] || fail "a failed run left a model file"
ok "every bad input rejected on all ranks"
