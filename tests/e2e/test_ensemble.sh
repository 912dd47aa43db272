#!/usr/bin/env bash
# Ensembles from a sweep, checked against a second code path:
#  - `ensemble train --from-sweep RESULTS --top 3` trains exactly the 3 best
#    trials of the sweep (their hyperparameters, in each member's stored
#    config);
#  - `ensemble eval --vote mean` and `--vote majority` report the accuracy
#    that numpy computes from each member's own `caviar predict`
#    probabilities (float32 mean in member order; majority = most votes,
#    lowest class on a tie), to the row.
source "$(dirname "$0")/lib.sh"
fm_data
base=$(tiny_config)
sweep_config "$TMP/s.yaml" 5 1

run_np 2 sweep "$TMP/s.yaml" run.dir="$TMP/sw" >/dev/null || fail "sweep"
run_np 2 ensemble train "$TMP/s.yaml" run.dir="$TMP/ens" \
    --from-sweep "$TMP/sw/sweep/results.jsonl" --top 3 >/dev/null || fail "ensemble --from-sweep"

"$PY" - "$TMP/sw/sweep/results.jsonl" "$TMP/ens/ensemble/results.jsonl" \
    "$TMP/ens/ensemble/members.txt" <<'PY' || fail "--from-sweep did not train the top 3 trials"
import json, sys
import h5py
sweep = [json.loads(l) for l in open(sys.argv[1])]
best = sorted((r for r in sweep if r["status"] == "done"), key=lambda r: (-r["value"], r["trial"]))[:3]
want = sorted(json.dumps(r["params"], sort_keys=True) for r in best)
members = [json.loads(l) for l in open(sys.argv[2])]
got = sorted(json.dumps({k: v for k, v in m["params"].items() if k in best[0]["params"]},
                        sort_keys=True) for m in members)
assert got == want, (got, want)
models = open(sys.argv[3]).read().split()
assert len(models) == 3, models
lrs = sorted(str(r["params"]["train.lr"]) for r in best)
stored = []
for path in models:  # each member's own config, as stored in its model file
    with h5py.File(path, "r") as f:
        cfg = f["config"][()].decode()
    stored += [lr for lr in lrs if "lr: " + lr in cfg]
assert sorted(stored) == lrs, (stored, lrs)
PY
ok "ensemble --from-sweep --top 3 trained the sweep's 3 best trials"

members=$(cat "$TMP/ens/ensemble/members.txt")
i=0
for m in $members; do
    "$CAVIAR" predict "$m" "$DATA/fm-test.h5" -o "$TMP/p$i.h5" >/dev/null || fail "predict $m"
    i=$((i + 1))
done
for vote in mean majority; do
    # shellcheck disable=SC2086
    run_np 2 ensemble eval $members --data "$DATA/fm-test.h5" --vote $vote --json \
        >"$TMP/$vote.json" || fail "ensemble eval --vote $vote"
    "$PY" - "$TMP/$vote.json" "$DATA/fm-test.h5" "$vote" "$TMP"/p?.h5 <<'PY' ||
import json, sys
import h5py
import numpy as np
report, data, vote, preds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
rep = json.load(open(report))
with h5py.File(data, "r") as f:
    y = f["y"][()]
probs = []
for p in preds:
    with h5py.File(p, "r") as f:
        probs.append(f["probabilities"][()].astype(np.float32))
n, k = len(probs), probs[0].shape[1]
combined = np.zeros_like(probs[0])
for p in probs:
    if vote == "majority":
        combined[np.arange(len(y)), p.argmax(1)] += np.float32(1.0 / n)
    else:
        combined += p / np.float32(n)
want = int((combined.argmax(1) == y).sum())
got = round(rep["ensemble"]["accuracy"] * rep["ensemble"]["count"])
assert rep["ensemble"]["count"] == len(y), rep["ensemble"]
assert got == want, f"{vote}: ensemble eval says {got} correct, numpy {want}"
for m, p in zip(rep["members"], probs):
    assert round(m["metrics"]["accuracy"] * len(y)) == int((p.argmax(1) == y).sum()), m
print(f"{vote}: {got} of {len(y)} correct")
PY
        fail "ensemble eval --vote $vote disagrees with numpy"
done
ok "ensemble eval (mean and majority) matches numpy on the members' own predictions"
