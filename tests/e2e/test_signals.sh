#!/usr/bin/env bash
# Signals: SIGTERM to one rank, or SIGUSR1 to mpirun (which forwards it),
# makes every rank finish its step, write one checkpoint and exit 75; the
# run then resumes and completes.  SIGTERM to plain mpirun: the ranks stop
# the same way and caviar records it in CAVIAR_STOP_FILE (mpirun's own exit
# code is printed).  TERM, INT and USR1 raised at each start-up phase
# (CAVIAR_DEBUG_RAISE) end in exit 76 on every rank with nothing written,
# never a death by signal; raised after the first step, in 75 and a
# checkpoint that resumes.  A second SIGINT aborts at once.
source "$(dirname "$0")/lib.sh"
fm_data
cfg=$(tiny_config)

# wait_for_file FILE: poll for FILE, bounded (not a timing assertion); the
# run ($pid) ending first makes the wait hopeless: fail at once
wait_for_file() {
    for _ in $(seq 600); do
        [ -e "$1" ] && return 0
        kill -0 "$pid" 2>/dev/null || fail "the run ended before $1 appeared"
        sleep 0.1
    done
    fail "timed out waiting for $1"
}

start() {   # sets $pid (a child of this shell, so `wait` can collect it)
    mpirun -np 2 --bind-to none "$CAVIAR" train "$cfg" train.epochs=20 run.dir="$1" \
        >"$1.log" 2>&1 &
    pid=$!
}

# 1. SIGTERM to one rank, after the first epoch line exists
mkdir -p "$TMP/a"
start "$TMP/a"
wait_for_file "$TMP/a/metrics.jsonl"
kill -TERM "$(pgrep -f "caviar train $cfg" | grep -v "^$pid$" | head -1)"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 75 ] || { cat "$TMP/a.log"; fail "SIGTERM: exit $rc, expected 75"; }
grep -q "stopped on request" "$TMP/a.log" || fail "no stop message"
ls "$TMP"/a/checkpoints/ckpt-*.h5 >/dev/null || fail "no checkpoint"
run_np 2 train "$cfg" train.epochs=3 run.dir="$TMP/a" --resume "$TMP/a" >/dev/null
ok "SIGTERM to a rank: checkpoint, exit 75, resumed"

# 2. SIGUSR1 to mpirun (what SLURM's --signal sends to the batch step)
mkdir -p "$TMP/b"
start "$TMP/b"
wait_for_file "$TMP/b/metrics.jsonl"
kill -USR1 "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 75 ] || { cat "$TMP/b.log"; fail "SIGUSR1 to mpirun: exit $rc, expected 75"; }
ok "SIGUSR1 to mpirun: exit 75"

# 3. SIGTERM to plain mpirun: mpirun's exit code is its own (1 with Open MPI
# 4.1); caviar's record of the stop says 75
mkdir -p "$TMP/t"
CAVIAR_STOP_FILE=$TMP/t/stop start "$TMP/t"
wait_for_file "$TMP/t/metrics.jsonl"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ -f "$TMP/t/stop" ] || { cat "$TMP/t.log"; fail "SIGTERM to mpirun: no stop record"; }
read -r code _ <"$TMP/t/stop"
[ "$code" = 75 ] || fail "SIGTERM to mpirun: recorded $(cat "$TMP/t/stop"), expected 75"
ls "$TMP"/t/checkpoints/ckpt-*.h5 >/dev/null || fail "SIGTERM to mpirun: no checkpoint"
ok "SIGTERM to mpirun: ranks checkpointed, caviar recorded 75 (mpirun itself exited $rc)"

# 4. a stop signal at each start-up phase, on one rank: exit 76 on every
# rank, one message, nothing written, no death by signal
# run_ranks LOG ARGS...: caviar on 2 ranks; each rank's exit code in LOG.rc.RANK
run_ranks() {
    local log=$1
    shift
    rm -f "$log".rc.*
    timeout -k 10 "$STEP_TIMEOUT" mpirun -np 2 --bind-to none -x CAVIAR_DEBUG_RAISE \
        --mca orte_abort_on_non_zero_status 0 bash -c \
        '"$@"; rc=$?; echo $rc >"'"$log"'.rc.$OMPI_COMM_WORLD_RANK"; exit $rc' \
        sh "$CAVIAR" "$@" >"$log" 2>&1 || true
}

expect_ranks() { # LOG RC
    local r got
    for r in 0 1; do
        got=$(cat "$1.rc.$r" 2>/dev/null || echo "none (killed?)")
        [ "$got" = "$2" ] || { cat "$1"; fail "rank $r exited $got, expected $2 ($1)"; }
    done
}

short=(train.epochs=1 train.max_steps=6 checkpoint.every_steps=0)
n=0
for sig in TERM INT USR1; do
    for phase in mpi_init config run_dir model data resume; do
        d=$TMP/p-$sig-$phase
        export CAVIAR_DEBUG_RAISE=$sig@$phase@$((n++ % 2))
        run_ranks "$d.log" train "$cfg" "${short[@]}" run.dir="$d"
        expect_ranks "$d.log" 76
        grep -q "caviar train: stopped: stopped on request during start-up" "$d.log" ||
            { cat "$d.log"; fail "$sig at $phase: no stop message"; }
        ! ls "$d"/checkpoints/*.h5 "$d"/model.h5 >/dev/null 2>&1 ||
            fail "$sig at $phase: something was written"
    done
done
unset CAVIAR_DEBUG_RAISE
ok "TERM, INT, USR1 at mpi_init, config, run_dir, model, data, resume: exit 76 on both ranks"

# 5. after the first step: a checkpoint, 75; then a stop while resuming
# (76, the checkpoint untouched); then the resume completes
d=$TMP/step
CAVIAR_DEBUG_RAISE=INT@step@1 run_ranks "$d.log" train "$cfg" "${short[@]}" run.dir="$d"
expect_ranks "$d.log" 75
mapfile -t cks < <(ls "$d"/checkpoints/ckpt-*.h5)
[ "${#cks[@]}" -eq 1 ] || fail "stop after a step: ${#cks[@]} checkpoints, expected 1"
sum=$(md5sum <"${cks[0]}")
CAVIAR_DEBUG_RAISE=USR1@resume@0 run_ranks "$d.log2" train "$cfg" "${short[@]}" run.dir="$d" \
    run.resume=auto
expect_ranks "$d.log2" 76
[ "$(md5sum <"${cks[0]}")" = "$sum" ] || fail "stop while resuming changed ${cks[0]}"
run_ranks "$d.log3" train "$cfg" "${short[@]}" run.dir="$d" run.resume=auto
expect_ranks "$d.log3" 0
grep -q "resuming from ${cks[0]}" "$d.log3" || { cat "$d.log3"; fail "did not resume"; }
ok "stop after the first step: 75 with a checkpoint; stop while resuming: 76; resume completes"

# 6. a sweep stopped before its first trial
sed -e "s/epochs: 2, seed: 3/epochs: 1, seed: 3/" "$cfg" >"$TMP/sw.yaml"
printf 'sweep:\n  trials: 2\n  space: {train.lr: "log_uniform(1e-4, 1e-2)"}\n' >>"$TMP/sw.yaml"
CAVIAR_DEBUG_RAISE=TERM@sweep_start@1 run_ranks "$TMP/sw.log" sweep "$TMP/sw.yaml" \
    run.dir="$TMP/sw"
expect_ranks "$TMP/sw.log" 76
ok "sweep stopped at sweep_start: exit 76 on both ranks"

# 7. a second SIGINT aborts without waiting for the checkpoint: the first
# is raised after the first step, the second just before the stop's
# checkpoint (an outside signal could only race the checkpoint's end)
mkdir -p "$TMP/c"
rc=0
CAVIAR_DEBUG_RAISE=INT@step,INT@stop_checkpoint timeout -k 10 "$STEP_TIMEOUT" \
    "$CAVIAR" train "$cfg" train.epochs=20 run.dir="$TMP/c" >"$TMP/c.log" 2>&1 || rc=$?
grep -q "stop requested" "$TMP/c.log" || { cat "$TMP/c.log"; fail "no stop notice"; }
[ "$rc" -eq 130 ] || { cat "$TMP/c.log"; fail "double SIGINT: exit $rc, expected death by SIGINT (130)"; }
! ls "$TMP"/c/checkpoints/ckpt-*.h5 >/dev/null 2>&1 || fail "double SIGINT: a checkpoint was written"
ok "double SIGINT aborts (exit $rc)"
