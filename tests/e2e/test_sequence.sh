#!/usr/bin/env bash
# Sequence models end to end on small synthetic tasks (tokens with ragged
# lengths, per-row and per-step targets, float feature sequences): they
# train at 2 ranks, inspect shows the time axis, gradcheck passes for
# embedding, rnn, gru, lstm and bidirectional, a 2-rank LSTM run stopped
# mid-epoch resumes byte-identically, and bad sequence data or models stop
# every rank with one message naming the file, row or layer.
source "$(dirname "$0")/lib.sh"

"$PY" - "$TMP" <<'PY'
import h5py, numpy as np, sys
d = sys.argv[1]
rng = np.random.default_rng(1)
N, T, V = 1200, 12, 6
X = rng.integers(1, V, (N, T)).astype(np.int32)
L = rng.integers(3, T + 1, N).astype(np.int32)
for i in range(N):
    X[i, L[i]:] = 0                                       # pad_id 0 beyond each length
has5 = np.array([int((X[i, :L[i]] == 5).any()) for i in range(N)], np.int32)
prev = np.zeros((N, T), np.int32)
prev[:, 1:] = X[:, :-1]                                   # per step: the previous token
F = rng.normal(size=(N, T, 3)).astype(np.float32)
fsum = np.array([int(F[i, :L[i], 0].sum() > 0) for i in range(N)], np.int32)

def write(name, x, y, classes, lengths=L, **attrs):
    with h5py.File(f"{d}/{name}.h5", "w") as f:
        for g, rows in (("/", slice(0, 1000)), ("dev", slice(1000, N))):
            grp = f.require_group(g)
            grp["X"] = x[rows]
            grp["y"] = y[rows]
            if lengths is not None:
                grp["lengths"] = lengths[rows]
            grp.attrs["classes"] = classes
            for k, v in attrs.items():
                grp["X"].attrs[k] = v

write("row", X, has5, 2, vocab_size=V, pad_id=0)
write("step", X, prev, V, vocab_size=V, pad_id=0)
write("feat", F, fsum, 2)
bad = X.copy(); bad[7, 3] = 9
write("bad-id", bad, has5, 2, vocab_size=V)
for name, at, v in (("bad-len0", 4, 0), ("bad-lenT", 4, T + 1)):
    l = L.copy(); l[at] = v
    write(name, X, has5, 2, lengths=l, vocab_size=V)
write("bad-y", X, np.zeros((N, T + 1), np.int32), V, vocab_size=V)
PY

# cfg NAME DATA INPUT LAYERS...: $TMP/NAME.yaml on $TMP/DATA.h5 with the given layers
cfg() {
    local name=$1 data=$2 input=$3
    shift 3
    {
        echo "data: {train: $TMP/$data.h5, dev: \"$TMP/$data.h5#dev\", normalize: none}"
        echo "model:"
        echo "  input: $input"
        echo "  layers:"
        for l in "$@"; do echo "    - $l"; done
        echo "train: {optimizer: adam, lr: 1.0e-2, batch: 50, epochs: 6, seed: 2}"
        echo "checkpoint: {every_steps: 10, every_epochs: 1, keep: 2}"
        echo "run: {dir: $TMP/run-$name}"
    } >"$TMP/$name.yaml"
    echo "$TMP/$name.yaml"
}

emb="{type: embedding, vocab: 6, dim: 8, pad_id: 0}"
row=$(cfg row row "[12]" "$emb" "{type: lstm, units: 16}" "{type: dense, units: 2, activation: softmax}")
step=$(cfg step step "[12]" "$emb" "{type: gru, units: 16, return_sequences: true}" \
    "{type: dense, units: 6, activation: softmax}")
feat=$(cfg feat feat "[12, 3]" \
    "{type: bidirectional, merge_mode: concat, layer: {type: rnn, units: 8, return_sequences: true}}" \
    "{type: lstm, units: 8}" "{type: dense, units: 2, activation: softmax}")

# training at 2 ranks learns each task
for c in row step feat; do
    run_np 2 train "$TMP/$c.yaml" >"$TMP/$c.log" 2>&1 || { cat "$TMP/$c.log"; fail "$c: training failed"; }
    acc=$(dev_accuracy "$TMP/run-$c")
    "$PY" -c "import sys; sys.exit(float('$acc') < 0.9)" || fail "$c: dev accuracy $acc < 0.9"
    ok "$c: 2 ranks, dev accuracy $acc"
done
grep -q "dev loss" "$TMP/step.log" || fail "step: no per-step dev metrics"

# inspect shows the time axis
"$CAVIAR" inspect "$TMP/run-step/model.h5" >"$TMP/inspect.txt"
grep -q "embedding .*(12 steps, 8)" "$TMP/inspect.txt" || { cat "$TMP/inspect.txt"; fail "inspect: no (12 steps, 8)"; }
grep -q "gru .*(12 steps, 16)" "$TMP/inspect.txt" || fail "inspect: gru output without its steps"
ok "inspect shows (T steps, F) shapes"

# gradient checks: embedding + lstm, embedding + gru, bidirectional rnn + lstm, a plain rnn
for c in row step feat; do
    timeout 300 "$CAVIAR" gradcheck "$TMP/$c.yaml" --samples 4 >"$TMP/gc.txt" ||
        { cat "$TMP/gc.txt"; fail "gradcheck $c"; }
done
timeout 300 "$CAVIAR" gradcheck "$feat" --samples 4 model.layers.1.type=rnn >"$TMP/gc.txt" ||
    { cat "$TMP/gc.txt"; fail "gradcheck rnn"; }
ok "gradcheck passes for embedding, rnn, gru, lstm, bidirectional"

# a sweep over the per-step GRU's units, then an ensemble of its 2 best
# trials, evaluated per step (its accuracy is a fraction of valid steps)
cp "$step" "$TMP/sw.yaml"
cat >>"$TMP/sw.yaml" <<YAML
sweep:
  trials: 3
  strategy: random
  space:
    model.layers.1.units: int_uniform(8, 16)
YAML
run_np 2 sweep "$TMP/sw.yaml" run.dir="$TMP/sw" >"$TMP/sw.log" 2>&1 || { cat "$TMP/sw.log"; fail "sweep"; }
run_np 2 ensemble train "$TMP/sw.yaml" run.dir="$TMP/ens" --from-sweep "$TMP/sw/sweep/results.jsonl" \
    --top 2 >"$TMP/ens.log" 2>&1 || { cat "$TMP/ens.log"; fail "ensemble train"; }
# shellcheck disable=SC2046
run_np 2 ensemble eval $(cat "$TMP/ens/ensemble/members.txt") --data "$TMP/step.h5#dev" --json \
    >"$TMP/ens.json" || fail "ensemble eval"
acc=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["ensemble"]["accuracy"])' \
    "$TMP/ens.json")
"$PY" -c "import sys; sys.exit(float('$acc') < 0.9)" || fail "ensemble of per-step GRUs: accuracy $acc"
ok "sweep (3 trials) and ensemble (top 2) of per-step GRUs: accuracy $acc"

# exact resume: a 2-rank LSTM run stopped mid-epoch (step 25 of 20 per epoch)
want=$(params_hash "$TMP/run-row/model.h5")
rc=0
run_np 2 train "$row" run.dir="$TMP/res" --stop-after-steps 25 >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 75 ] || fail "stop-after-steps: exit $rc, expected 75"
run_np 2 train "$row" run.dir="$TMP/res" --resume "$TMP/res" >/dev/null 2>&1
got=$(params_hash "$TMP/res/model.h5")
[ "$got" = "$want" ] || fail "2-rank LSTM resumed mid-epoch: params $got != uninterrupted $want"
ok "2-rank LSTM stopped mid-epoch resumes byte-identically ($want)"

# bad data and models: every rank stops with one message, no model written
T1="train $row train.max_steps=3 run.dir=$TMP/bad"
expect_fail "bad-id.h5: /X\\[7, 3\\] = 9: token id outside \\[0, 6\\)" \
    run_np 2 $T1 data.train=$TMP/bad-id.h5 data.dev=""
expect_fail "bad-len0.h5: /lengths\\[4\\] = 0: expected 1 to 12" \
    run_np 2 $T1 data.train=$TMP/bad-len0.h5 data.dev=""
expect_fail "bad-lenT.h5: /lengths\\[4\\] = 13: expected 1 to 12" \
    run_np 2 $T1 data.train=$TMP/bad-lenT.h5 data.dev=""
expect_fail "bad-y.h5: /y is 1000 x 13 class ids \\(one per step\\), but /X has 12 steps" \
    run_np 2 $T1 data.train=$TMP/bad-y.h5 data.dev=""
flat=$(cfg flat feat "[36]" "{type: dense, units: 8}" "{type: lstm, units: 4}" \
    "{type: dense, units: 2, activation: softmax}")
expect_fail "layer 1 \\(lstm\\) needs a sequence" run_np 2 train "$flat" run.dir="$TMP/bad"
expect_fail "step.h5: /y holds one class per step \\(12 steps\\), but the model's output is the last step" \
    run_np 2 $T1 data.train=$TMP/step.h5 data.dev="" model.layers.2.units=6
expect_fail "the first layer is not an embedding" \
    run_np 2 train "$feat" train.max_steps=3 run.dir="$TMP/bad" data.train=$TMP/row.h5 data.dev="" \
    model.input=[12,1]
[ ! -e "$TMP/bad/model.h5" ] || fail "a failed run left a model file"
ok "bad sequence data and models stop every rank with one message"
