#!/usr/bin/env bash
# kill -9 of a rank at random moments, including during checkpoint writes
# (a 5.8M-parameter model checkpointed every 3 steps): afterwards the run
# directory always holds a checkpoint that verifies, and training resumes.
source "$(dirname "$0")/lib.sh"
fm_data
ROUNDS=${KILL_ROUNDS:-20}
cat >"$TMP/big.yaml" <<YAML
data: {train: $DATA/fm.h5}
model:
  input: [784]
  layers:
    - {type: dense, units: 2048, activation: relu}
    - {type: dense, units: 2048, activation: relu}
    - {type: dense, units: 10, activation: softmax}
train: {optimizer: adam, lr: 1.0e-4, batch: 64, epochs: 1, seed: 1}
checkpoint: {every_steps: 3, keep: 2}
run: {dir: $TMP/run, resume: auto}
YAML
resumable=0 corrupt=0
rc=0
run_np 2 train "$TMP/big.yaml" --stop-after-steps 3 >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 75 ] || fail "first checkpoint: exit $rc"
for i in $(seq "$ROUNDS"); do
    mpirun -np 2 --bind-to none "$CAVIAR" train "$TMP/big.yaml" >"$TMP/log$i.txt" 2>&1 &
    launcher=$!
    # a random moment 1.0-4.0 s into the run (fault injection, not a timing assertion)
    sleep "$("$PY" -c "import random; print(round(random.uniform(1.0, 4.0), 2))")"
    victim=$(pgrep -f "caviar train $TMP/big.yaml" | grep -v "^$launcher$" | shuf -n 1 || true)
    [ -n "$victim" ] && kill -9 "$victim" 2>/dev/null || true
    wait "$launcher" 2>/dev/null || true
    pkill -9 -f "caviar train $TMP/big.yaml" 2>/dev/null || true
    ls "$TMP"/run/checkpoints/*.tmp.* >/dev/null 2>&1 && echo "round $i: temporary file left (ignored by resume)"
    found=""
    for ck in $(ls -r "$TMP"/run/checkpoints/ckpt-*.h5 2>/dev/null); do
        if "$CAVIAR" inspect --json "$ck" >/dev/null 2>&1; then found=$ck; break; fi
        corrupt=$((corrupt + 1))
        echo "round $i: $ck does not verify"
    done
    [ -n "$found" ] || fail "round $i: no checkpoint verifies"
    step=$("$CAVIAR" inspect --json "$found" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["step"])')
    run_np 2 train "$TMP/big.yaml" --stop-after-steps $((step + 1)) >"$TMP/resume$i.txt" 2>&1 ||
        [ $? -eq 75 ] || { cat "$TMP/resume$i.txt"; fail "round $i: resume from $found failed"; }
    grep -q "resuming from" "$TMP/resume$i.txt" || fail "round $i: did not resume"
    resumable=$((resumable + 1))
done
echo "kill -9 rounds: $ROUNDS, resumable afterwards: $resumable, checkpoints that failed to verify: $corrupt"
[ "$corrupt" -eq 0 ] || fail "$corrupt corrupt checkpoints"
ok "kill -9 loop"
