#!/usr/bin/env bash
# Signals: SIGTERM to one rank, or SIGUSR1 to mpirun (which forwards it),
# makes every rank finish its step, write one checkpoint and exit 75; the
# run then resumes and completes.  A second SIGINT aborts at once.
source "$(dirname "$0")/lib.sh"
fm_data
cfg=$(tiny_config)

wait_for_file() {   # poll for a condition, bounded (not a timing assertion)
    for _ in $(seq 600); do
        [ -e "$1" ] && return 0
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

# 3. a second SIGINT aborts without waiting for the checkpoint
mkdir -p "$TMP/c"
"$CAVIAR" train "$cfg" train.epochs=20 run.dir="$TMP/c" >"$TMP/c.log" 2>&1 &
pid=$!
wait_for_file "$TMP/c/metrics.jsonl"
kill -INT "$pid"
for _ in $(seq 600); do    # the first signal was handled once its notice is out
    grep -q "stop requested" "$TMP/c.log" && break
    sleep 0.1
done
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 75 ] || fail "double SIGINT: exit $rc, expected an abort"
ok "double SIGINT aborts (exit $rc)"
