#!/usr/bin/env bash
# Elastic resume: a checkpoint written by 2 ranks resumes on 1 and on 3
# ranks (global batch kept, shards recomputed); training continues and the
# training loss keeps falling.
source "$(dirname "$0")/lib.sh"
fm_data
cfg=$(tiny_config)
rc=0
run_np 2 train "$cfg" train.epochs=3 --stop-after-steps 300 >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 75 ] || fail "expected exit 75, got $rc"
for np in 1 3; do
    cp -r "$TMP/run" "$TMP/run$np"
    run_np $np train "$cfg" train.epochs=3 run.dir="$TMP/run$np" --resume "$TMP/run$np" \
        >"$TMP/out$np.txt" 2>&1 || { cat "$TMP/out$np.txt"; fail "resume on $np ranks"; }
    grep -q "elastic" "$TMP/out$np.txt" || fail "no elastic-resume note"
    "$PY" - "$TMP/run$np/metrics.jsonl" <<'PY' || fail "loss did not keep falling on $np ranks"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
loss = [l["train_loss"] for l in lines if l["event"] == "epoch"]
assert len(loss) == 3, loss
assert loss[0] > loss[1] > loss[2], loss
print("train loss by epoch:", loss)
PY
    ok "2 -> $np ranks"
done
