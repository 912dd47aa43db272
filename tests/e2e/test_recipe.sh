#!/usr/bin/env bash
# The practitioner's recipe end to end (issue 20):
#  - early stopping on an overfitting MLP (large, no regularisation) stops
#    within `patience` epochs of the best dev epoch, on every rank at the same
#    epoch (2 ranks: both exit 0, replicas checked identical), and model.h5 is the best epoch's model: its
#    dev accuracy and loss under `caviar eval` are the best epoch's line in
#    metrics.jsonl; last.h5 is the last epoch's;
#  - exact resume with AdamW + warmup + cosine + label smoothing + early
#    stopping, and with Nesterov + reduce-on-plateau + balanced class
#    weights: stopped mid-run and resumed, the parameters, model.h5 and the
#    metric lines equal the uninterrupted run's; a run resumed after it
#    stopped early trains nothing;
#  - the learning rate of every epoch is in metrics.jsonl (warmup, cosine);
#  - bad input: one clear message naming the key, non-zero exit on every rank.
source "$(dirname "$0")/lib.sh"
fm_data

# 1,500 training rows and a 1,000-row dev split: an MLP of 400k parameters
# overfits within a few epochs.
"$PY" - "$DATA/fm.h5" "$TMP/small.h5" <<'PY'
import sys, h5py
src, dst = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "w")
for name, n in (("", 1500), ("dev", 1000)):
    g = dst.require_group(name) if name else dst
    s = src[name] if name else src
    for k, v in s.attrs.items():
        g.attrs[k] = v
    g["X"], g["y"] = s["X"][:n], s["y"][:n]
PY

cat >"$TMP/overfit.yaml" <<YAML
data: {train: $TMP/small.h5, dev: "$TMP/small.h5#dev"}
model:
  input: [784]
  layers:
    - {type: dense, units: 512, activation: relu}
    - {type: dense, units: 512, activation: relu}
    - {type: dense, units: 10, activation: softmax}
train: {optimizer: adam, lr: 1.0e-3, batch: 50, epochs: 60, seed: 5,
        monitor: dev.loss, early_stopping: {patience: 3}}
checkpoint: {every_epochs: 1, keep: 2}
YAML

metrics_best() { # metrics.jsonl -> "epochs best_epoch best_dev_acc best_dev_loss" (min dev loss)
    "$PY" -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
b = min(rows, key=lambda r: r["dev_loss"])
print(len(rows), b["epoch"], b["dev_accuracy"], b["dev_loss"])' "$1"
}

for np in 1 2; do
    run_np $np train "$TMP/overfit.yaml" run.dir="$TMP/es$np" >"$TMP/es$np.txt" 2>&1 ||
        { cat "$TMP/es$np.txt"; fail "np=$np: early-stopping run failed"; }
    grep -q "early stopping after epoch" "$TMP/es$np.txt" || fail "np=$np: no early-stopping line"
    read -r epochs best acc loss < <(metrics_best "$TMP/es$np/metrics.jsonl")
    [ "$epochs" -lt 60 ] || fail "np=$np: ran all 60 epochs"
    [ $((epochs - best)) -le 3 ] || fail "np=$np: stopped at $epochs, best $best: more than patience"
    "$CAVIAR" inspect --json "$TMP/es$np/model.h5" >/dev/null
    got_best=$("$PY" -c 'import h5py,sys; print(int(h5py.File(sys.argv[1])["/"].attrs["best_epoch"]))' \
        "$TMP/es$np/model.h5")
    [ "$got_best" = "$best" ] || fail "np=$np: model.h5 best_epoch $got_best != metrics' $best"
    "$CAVIAR" eval "$TMP/es$np/model.h5" "$TMP/small.h5#dev" --json >"$TMP/ev.json"
    "$PY" - "$TMP/ev.json" "$acc" "$loss" <<'PY' || fail "np=$np: model.h5 is not the best epoch's"
import json, sys
e = json.load(open(sys.argv[1]))
acc, loss = float(sys.argv[2]), float(sys.argv[3])
assert abs(e["accuracy"] - acc) < 1e-6, (e["accuracy"], acc)
assert abs(e["loss"] - loss) < 1e-5 * (1 + loss), (e["loss"], loss)
PY
    [ -f "$TMP/es$np/last.h5" ] || fail "np=$np: no last.h5"
    ok "np=$np: stopped after epoch $epochs, best dev loss at epoch $best (acc $acc) kept in model.h5"
done

# A resumed run that had stopped early trains nothing and keeps its model.
h=$(params_hash "$TMP/es1/model.h5")
run_np 1 train "$TMP/overfit.yaml" run.dir="$TMP/es1" --resume "$TMP/es1" >"$TMP/again.txt" 2>&1 ||
    { cat "$TMP/again.txt"; fail "resume after early stop failed"; }
grep -q "early stopping after epoch" "$TMP/again.txt" || fail "resume after early stop: no note"
[ "$(params_hash "$TMP/es1/model.h5")" = "$h" ] || fail "resume after early stop changed model.h5"
ok "a run resumed after early stopping trains nothing"

# Early stopping inside an ASHA sweep: a trial that stops early is done (not
# promoted), its result is its best epoch's, and the sweep still finishes.
cp "$TMP/overfit.yaml" "$TMP/sweep.yaml"
cat >>"$TMP/sweep.yaml" <<YAML
sweep:
  trials: 4
  strategy: asha
  eta: 2
  min_epochs: 3
  max_epochs: 24
  space:
    train.lr: log_uniform(3e-4, 3e-3)
YAML
run_np 2 sweep "$TMP/sweep.yaml" run.dir="$TMP/sw" train.epochs=24 sweep.metric=dev.loss \
    >"$TMP/sw.txt" 2>&1 || { cat "$TMP/sw.txt"; fail "ASHA sweep with early stopping"; }
"$PY" - "$TMP/sw/sweep/results.jsonl" <<'PY' || fail "ASHA sweep: no trial stopped early as done"
import json, sys, h5py
rows = [json.loads(l) for l in open(sys.argv[1])]
done = [r for r in rows if r["status"] == "done"]
early = [r for r in done if r["epochs"] < 24]
assert early, rows
for r in early:  # the result is the kept (best) model's figures
    best = h5py.File(r["model"], "r")["/"].attrs["best_epoch"]
    m = [json.loads(l) for l in open(r["model"].replace("model.h5", "metrics.jsonl"))]
    assert abs(m[best - 1]["dev_loss"] - r["value"]) < 1e-6, (r, m[best - 1])
PY
[ -s "$TMP/sw/sweep/best.yaml" ] || fail "ASHA sweep: no best.yaml"
ok "ASHA sweep: trials stop early as done with their best epoch's figures"

# Early stopping in an ensemble: each member stops on its own, keeps its
# best epoch, and the ensemble evaluates the kept models.
run_np 2 ensemble train "$TMP/overfit.yaml" run.dir="$TMP/ens" --members 2 >"$TMP/ens.txt" 2>&1 ||
    { cat "$TMP/ens.txt"; fail "ensemble with early stopping"; }
"$PY" - "$TMP/ens/ensemble/members.txt" <<'PY' || fail "ensemble members did not stop early"
import json, sys, h5py
for path in open(sys.argv[1]).read().split():
    rows = [json.loads(l) for l in open(path.replace("model.h5", "metrics.jsonl"))]
    best = int(h5py.File(path, "r")["/"].attrs["best_epoch"])
    assert len(rows) < 60 and len(rows) - best <= 3, (path, len(rows), best)
PY
run_np 2 ensemble eval $(cat "$TMP/ens/ensemble/members.txt") --data "$TMP/small.h5#dev" \
    >/dev/null || fail "ensemble eval of early-stopped members"
ok "ensemble: members stop early and keep their best epoch"

strip_timing() {
    "$PY" -c '
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    for k in ("samples_per_s", "elapsed_s", "time_s", "peak_rss_mb", "anon_rss_mb"):
        d.pop(k, None)
    print(json.dumps(d, sort_keys=True))' "$1"
}

recipe0=(train.optimizer=adamw train.weight_decay=0.05 "train.warmup={steps: 40}"
    "train.decay={kind: cosine, floor: 1.0e-5}" model.label_smoothing=0.1
    train.monitor=dev.accuracy "train.early_stopping={patience: 2}")
recipe1=(train.optimizer=nesterov train.lr=0.01 "train.decay={kind: plateau, rate: 0.5, patience: 0}"
    model.class_weights=balanced train.l2=0.5 "train.early_stopping={patience: 3, min_delta: 0.001}")
for i in 0 1; do
    declare -n ov="recipe$i"
    run_np 2 train "$TMP/overfit.yaml" run.dir="$TMP/ra$i" train.epochs=12 "${ov[@]}" \
        >"$TMP/ra$i.txt" 2>&1 || { cat "$TMP/ra$i.txt"; fail "recipe $i: uninterrupted run failed"; }
    rc=0
    run_np 2 train "$TMP/overfit.yaml" run.dir="$TMP/rb$i" train.epochs=12 "${ov[@]}" \
        --stop-after-steps 95 >/dev/null 2>&1 || rc=$?
    [ "$rc" -eq 75 ] || fail "recipe $i: expected exit 75 from the stopped run, got $rc"
    run_np 2 train "$TMP/overfit.yaml" run.dir="$TMP/rb$i" train.epochs=12 "${ov[@]}" \
        --resume "$TMP/rb$i" >/dev/null 2>&1 || fail "recipe $i: resumed run failed"
    for f in model.h5 last.h5; do
        [ "$(params_hash "$TMP/ra$i/$f")" = "$(params_hash "$TMP/rb$i/$f")" ] ||
            fail "recipe $i: $f differs after resume"
    done
    diff <(strip_timing "$TMP/ra$i/metrics.jsonl") <(strip_timing "$TMP/rb$i/metrics.jsonl") ||
        fail "recipe $i: metric lines differ after resume"
    ok "recipe $i: resumed run byte-identical ($(wc -l <"$TMP/ra$i/metrics.jsonl") epochs)"
done
# warmup of 40 steps (30 per epoch) then cosine: the logged rates
"$PY" - "$TMP/ra0/metrics.jsonl" <<'PY' || fail "learning rates in metrics.jsonl are not the schedule's"
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for r in rows:
    e = r["epoch"] - 1
    want = 1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi * e / 12)) / 2
    if r["step"] - 1 < 40:
        want *= r["step"] / 40
    assert abs(r["lr"] - want) <= 1e-6 * want, (r["epoch"], r["lr"], want)
PY
grep -q '"lr":' "$TMP/ra1/metrics.jsonl" || fail "no lr in metrics.jsonl"
ok "the learning rate of every epoch is logged"

# Transfer learning: from the early-stopped MLP, layer 0 (same shape) is
# loaded and frozen, layers 1 and 2 (another width) are new; after training
# layer 0 still holds the source's weights bit for bit, layer 1 has moved.
# With train.lr_loaded=0 a loaded layer that stays trainable is frozen too.
tl=(model.init_from="$TMP/es1/model.h5" model.layers.1.units=256 train.epochs=2
    "train.early_stopping={patience: 5}")
run_np 2 train "$TMP/overfit.yaml" run.dir="$TMP/tl" "${tl[@]}" model.layers.0.trainable=false \
    >"$TMP/tl.txt" 2>&1 || { cat "$TMP/tl.txt"; fail "init_from run failed"; }
grep -Eq "init_from: layer  0 dense +loaded from .* \(frozen\)" "$TMP/tl.txt" &&
    grep -Eq "init_from: layer  1 dense +new" "$TMP/tl.txt" &&
    grep -Eq "init_from: layer  2 dense +new" "$TMP/tl.txt" || { cat "$TMP/tl.txt"; fail "init_from summary"; }
run_np 1 train "$TMP/overfit.yaml" run.dir="$TMP/tl0" "${tl[@]}" train.lr_loaded=0 >/dev/null 2>&1 ||
    fail "init_from with lr_loaded=0 failed"
"$PY" - "$TMP/es1/model.h5" "$TMP/tl/last.h5" "$TMP/tl0/last.h5" <<'PY' || fail "frozen/loaded weights"
import sys, h5py, numpy as np
src, a, b = (h5py.File(p, "r") for p in sys.argv[1:4])
for f in (a, b):
    for k in ("layers/00_dense/W", "layers/00_dense/b"):
        assert np.array_equal(src[k][...], f[k][...]), (f.filename, k)
    assert f["layers/01_dense/W"].shape == (256, 512)
src_norm = src["normalization/mean"][...]
assert np.array_equal(src_norm, a["normalization/mean"][...])  # the source's input normalisation
PY
ok "init_from: matching layer loaded (frozen: unchanged), new widths fresh, lr_loaded=0 freezes"

# Bad input: one message naming the key, non-zero exit on every rank, before training.
for np in 1 2; do
    expect_fail "train.monitor = dev.f1 .*data.dev is not set" run_np $np train "$TMP/overfit.yaml" \
        data.dev= train.monitor=dev.f1 run.dir="$TMP/bad"
    expect_fail "train.warmup.steps = 100000 is not shorter" run_np $np train "$TMP/overfit.yaml" \
        "train.warmup={steps: 100000}" run.dir="$TMP/bad"
    expect_fail "train.weight_decay = -0.1: expected a number >= 0" run_np $np train \
        "$TMP/overfit.yaml" train.optimizer=adamw train.weight_decay=-0.1 run.dir="$TMP/bad"
    expect_fail "train.warmup.epochs = 60 is not shorter" run_np $np train "$TMP/overfit.yaml" \
        "train.warmup={epochs: 60}" run.dir="$TMP/bad"
    expect_fail "every layer with parameters has trainable: false" run_np $np train \
        "$TMP/overfit.yaml" model.layers.0.trainable=false model.layers.1.trainable=false \
        model.layers.2.trainable=false run.dir="$TMP/bad"
    expect_fail "model.init_from = .*: no layer matches" run_np $np train "$TMP/overfit.yaml" \
        model.init_from="$TMP/es1/model.h5" model.layers.0.units=100 model.layers.1.units=100 \
        run.dir="$TMP/bad"
    [ ! -e "$TMP/bad/metrics.jsonl" ] || fail "a refused run wrote metrics"
done
ok "bad recipe input is refused before training"
