#!/usr/bin/env bash
# Progress during an epoch and during a sweep (issue 22):
#  - a 2-rank CNN run logging to a file prints plain progress lines with
#    step / steps, samples/s, loss and ETA during its first epoch, from
#    rank 0 only, at the configured step interval, before the epoch line;
#  - on a terminal (under script(1)) the line is rewritten in place;
#  - run.progress=0 turns it off;
#  - a sweep's log shows trials done / total with the best so far, and
#    each trial's epoch lines are in its own train.log.
source "$(dirname "$0")/lib.sh"
fm_data

cat >"$TMP/cnn.yaml" <<YAML
data: {train: "$DATA/fm.h5#dev", dev: "$DATA/fm.h5#dev"}
model:
  input: [1, 28, 28]
  layers:
    - {type: conv2d, filters: 4, size: 3, pad: same, activation: relu}
    - {type: maxpool, size: 2}
    - {type: flatten}
    - {type: dense, units: 10, activation: softmax}
train: {optimizer: adam, lr: 3.0e-3, batch: 64, epochs: 1, seed: 4}
checkpoint: {every_steps: 0, every_epochs: 1, keep: 1}
run: {dir: $TMP/cnn}
YAML
# 5000 rows / 64 = 79 steps: lines after steps 20, 40 and 60
run_np 2 train "$TMP/cnn.yaml" run.progress_steps=20 >"$TMP/log.txt" 2>&1 ||
    { cat "$TMP/log.txt"; fail "CNN run"; }
pat='^epoch 1/1  step [0-9]+/79  [0-9]+ samples/s  loss [0-9.]+  ETA epoch [0-9hms]+, run [0-9hms]+$'
n=$(grep -Ec "$pat" "$TMP/log.txt" || true)
[ "$n" = 3 ] || { cat "$TMP/log.txt"; fail "expected 3 progress lines (rank 0 only), got $n"; }
steps=$(grep -E "$pat" "$TMP/log.txt" | sed -E 's/.*step ([0-9]+)\/79.*/\1/' | tr '\n' ' ')
[ "$steps" = "20 40 60 " ] || fail "progress at steps '$steps', expected 20 40 60"
first=$(grep -nE "$pat" "$TMP/log.txt" | head -1 | cut -d: -f1)
ep=$(grep -nE '^epoch 1/1  step 79  train loss' "$TMP/log.txt" | cut -d: -f1)
[ -n "$ep" ] && [ "$first" -lt "$ep" ] || fail "progress lines do not come before the epoch line"
! grep -q $'\r' "$TMP/log.txt" || fail "a file got terminal control characters"
ok "2-rank CNN: 3 plain progress lines with ETA during the first epoch, rank 0 only"

run_np 2 train "$TMP/cnn.yaml" run.dir="$TMP/off" run.progress=0 run.progress_steps=0 \
    >"$TMP/off.txt" 2>&1 || fail "run with progress off"
! grep -q "ETA" "$TMP/off.txt" || fail "run.progress=0 still printed progress"
ok "run.progress=0: no progress lines"

# A terminal: script(1) gives caviar a pty; the line is redrawn in place.
timeout -k 10 "$STEP_TIMEOUT" script -qec "mpirun -np 1 --bind-to none $CAVIAR train \
    $TMP/cnn.yaml run.dir=$TMP/tty run.progress_steps=20" "$TMP/tty.txt" >/dev/null 2>&1 ||
    fail "run under script"
redraws=$(grep -ao $'\r\e\\[Kepoch 1/1  step [0-9]*/79' "$TMP/tty.txt" | wc -l)
[ "$redraws" -ge 3 ] || fail "expected in-place redraws on a terminal, got $redraws"
grep -aqE $'\r\e\\[Kepoch 1/1  step 79  train loss' "$TMP/tty.txt" ||
    fail "the epoch line does not replace the progress line"
ok "terminal: the progress line is rewritten in place ($redraws redraws)"

base=$(tiny_config)
sweep_config "$TMP/sweep.yaml" 3 1
run_np 2 sweep "$TMP/sweep.yaml" run.dir="$TMP/sw" >"$TMP/sweep.txt" 2>&1 ||
    { cat "$TMP/sweep.txt"; fail "sweep"; }
spat='^sweep: [0-9]/3 trials done, [0-9] running, best dev.accuracy 0\.[0-9]{4} \(trial [0-9]\)'
grep -Eq "${spat}, ETA [0-9hms]+, [0-9hms]+ elapsed$" "$TMP/sweep.txt" ||
    { cat "$TMP/sweep.txt"; fail "no 'trials done / total ... ETA' line"; }
grep -Eq "^sweep: 3/3 trials done, 0 running, best" "$TMP/sweep.txt" ||
    fail "the last result does not say 3/3 done"
for t in 0 1 2; do
    log=$(ls -d "$TMP"/sw/sweep/trial*"$t"/train.log 2>/dev/null | head -1)
    [ -n "$log" ] && grep -Eq '^epoch 1/1  step [0-9]+  train loss' "$log" ||
        fail "trial $t has no epoch line in its own train.log"
done
ok "sweep: trials done / total, running, best and ETA; each trial's log in its directory"
