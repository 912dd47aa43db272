#!/usr/bin/env bash
# Safe files and one owner per run directory (issue 18):
#  - symlinks planted at every final and temporary name caviar writes
#    (metrics.jsonl, model.h5, a checkpoint, their old guessable temporary
#    names, predictions, an import output) never overwrite their target:
#    it is compared byte for byte afterwards, and a dangling link's target
#    is never created; a symlink at the lock file, at checkpoints/ or at a
#    sweep trial directory is refused;
#  - a second train into a busy directory is refused at once, naming the
#    owner's pid, while the first (held still by SIGSTOP, so the refusal
#    cannot have waited for it) then finishes fine;
#  - a fresh train into an old run's directory is refused and the old files
#    are intact; --overwrite replaces the old run;
#  - kill -9 of rank 0: the directory is not left locked, the run resumes;
#  - a sweep directory held by another job is refused; --trial tasks share
#    it; a fresh sweep refuses an earlier one's results, --overwrite replaces them.
source "$(dirname "$0")/lib.sh"
fm_data
cfg=$(tiny_config)
base=$cfg
one=(train "$cfg" train.epochs=1 data.dev=)

# poll for a condition, bounded (not a timing assertion); fails at once if
# the background job $2 has ended without producing it
wait_until() {
    for _ in $(seq 1200); do
        eval "$1" && return 0
        [ -z "${2:-}" ] || kill -0 "$2" 2>/dev/null || fail "job ended before: $1"
        sleep 0.1
    done
    fail "timed out waiting for: $1"
}

# plant_tmp TARGET NAME...: symlinks NAME.tmp.PID -> TARGET(-PID if it is
# dangling) at the old, guessable temporary names, for the next 3000 pids
plant_tmp() {
    "$PY" - "$@" <<'PY'
import os, sys
target, names = sys.argv[1], sys.argv[2:]
for p in range(os.getpid(), os.getpid() + 3000):
    for name in names:
        os.symlink(target if os.path.exists(target) else f"{target}-{p}", f"{name}.tmp.{p}")
PY
}

# start_bg DIR EPOCHS: a 2-rank train into DIR in the background ($job),
# bounded by the step timeout; output in DIR.log
start_bg() {
    timeout -k 10 "$STEP_TIMEOUT" mpirun -np 2 --bind-to none "$CAVIAR" train "$cfg" \
        train.epochs="$2" data.dev= run.dir="$1" >"$1.log" 2>&1 &
    job=$!
}

owner_pid() { # the pid recorded in DIR's lock file by its owner (rank 0)
    awk '{print $2}' "$1/.caviar.lock"
}

head -c 4096 /dev/urandom >"$TMP/victim"
cp "$TMP/victim" "$TMP/victim.orig"
victim_intact() {
    cmp -s "$TMP/victim" "$TMP/victim.orig" || fail "$1: the symlink target was written to"
}

# ---- 1. planted symlinks at final and temporary names
R=$TMP/planted
mkdir -p "$R/checkpoints"
ln -s "$TMP/victim" "$R/metrics.jsonl"
ln -s "$TMP/victim" "$R/model.h5"
ln -s "$TMP/victim" "$R/checkpoints/ckpt-000000000100.h5"
ln -s "$TMP/victim" "$R/metrics.jsonl.tmp"
plant_tmp "$TMP/victim" "$R/model.h5" "$R/metrics.jsonl" "$R/checkpoints/ckpt-000000000100.h5"
plant_tmp "$TMP/dangling" "$R/checkpoints/ckpt-000000000200.h5"
run_np 2 "${one[@]}" run.dir="$R" run.resume=auto >"$TMP/planted.txt" 2>&1 ||
    { cat "$TMP/planted.txt"; fail "training with planted symlinks"; }
victim_intact "train"
! ls "$TMP"/dangling-* >/dev/null 2>&1 || fail "a dangling symlink's target was created"
for f in metrics.jsonl model.h5; do
    [ -f "$R/$f" ] && [ ! -L "$R/$f" ] || fail "$f is not a plain file after the run"
done
"$CAVIAR" inspect "$R/model.h5" | grep -q "checksums       verify" || fail "model.h5 does not verify"
[ "$(wc -l <"$R/metrics.jsonl")" -eq 1 ] || fail "metrics.jsonl: expected 1 line"
! ls "$R"/*.tmp.* "$R"/checkpoints/*.tmp.* >/dev/null 2>&1 || fail "planted temporaries left"
ok "symlinks at final and temporary names: replaced or removed, never followed"

ln -s "$TMP/victim" "$TMP/p.csv"
plant_tmp "$TMP/victim" "$TMP/p.csv" "$TMP/imp.h5"
run_np 1 predict "$R/model.h5" "$DATA/fm-test.h5" -o "$TMP/p.csv" >/dev/null
victim_intact "predict"
[ ! -L "$TMP/p.csv" ] && head -1 "$TMP/p.csv" | grep -q "^row,predicted" || fail "p.csv"
ln -s "$TMP/victim" "$TMP/imp.h5"
"$CAVIAR" import idx --images $FM/t10k-images-idx3-ubyte.gz --labels $FM/t10k-labels-idx1-ubyte.gz \
    -o "$TMP/imp.h5" >/dev/null
victim_intact "import"
[ ! -L "$TMP/imp.h5" ] || fail "imp.h5 is still a symlink"
ok "predict and import outputs: a symlink at the name is replaced, not followed"

mkdir -p "$TMP/lk"
ln -s "$TMP/victim" "$TMP/lk/.caviar.lock"
expect_fail "lock file.*symbolic link" run_np 2 "${one[@]}" run.dir="$TMP/lk"
victim_intact "lock file"
mkdir -p "$TMP/ck" "$TMP/elsewhere"
ln -s "$TMP/elsewhere" "$TMP/ck/checkpoints"
expect_fail "ck/checkpoints is a symbolic link" run_np 2 "${one[@]}" run.dir="$TMP/ck"
[ -z "$(ls -A "$TMP/elsewhere")" ] || fail "something was written through checkpoints/"
sweep_config "$TMP/s.yaml" 2 1
mkdir -p "$TMP/sw/sweep"
ln -s "$TMP/elsewhere" "$TMP/sw/sweep/trial-0001"
expect_fail "trial-0001 is a symbolic link" run_np 2 sweep "$TMP/s.yaml" run.dir="$TMP/sw"
[ -z "$(ls -A "$TMP/elsewhere")" ] || fail "something was written through trial-0001"
ok "symlinks at the lock file, checkpoints/ and a trial directory refused"

# ---- 2. a fresh train into an old run's directory; --overwrite
O=$TMP/old
run_np 2 "${one[@]}" run.dir="$O" >/dev/null
(cd "$O" && find . -type f ! -name .caviar.lock | sort | xargs sha256sum) >"$TMP/old.sums"
expect_fail "run.dir = $O holds another run \(model.h5, metrics.jsonl, 3 checkpoint\(s\)\).*--overwrite" \
    run_np 2 "${one[@]}" run.dir="$O" train.lr=0.5
(cd "$O" && find . -type f ! -name .caviar.lock | sort | xargs sha256sum) | cmp -s - "$TMP/old.sums" ||
    fail "a refused run changed the old run's files"
ok "fresh train into an old run's directory refused, old files intact"

run_np 2 "${one[@]}" run.dir="$O" checkpoint.every_steps=120 --overwrite >/dev/null
[ "$(ls "$O"/checkpoints)" = "$(printf 'ckpt-000000000240.h5\nckpt-000000000360.h5\nckpt-000000000430.h5')" ] ||
    fail "--overwrite: expected only the new run's checkpoints, got $(ls "$O"/checkpoints)"
[ "$(wc -l <"$O/metrics.jsonl")" -eq 1 ] || fail "--overwrite: metrics.jsonl holds the old run too"
expect_fail "exclude each other" run_np 1 "${one[@]}" run.dir="$O" --overwrite --resume "$O"
ok "--overwrite replaces the old run"

# ---- 3. a busy directory
B=$TMP/busy
start_bg "$B" 4
first=$job
wait_until "grep -q '^pid ' '$B/.caviar.lock' 2>/dev/null" "$first"
owner=$(owner_pid "$B")
kill -STOP "$owner" || fail "rank 0 (pid $owner) is gone before it could be stopped"
rc=0 # in subshells, so that rank 0 is continued whatever they find
(expect_fail "$B is in use by another caviar job \(pid $owner on host" run_np 2 "${one[@]}" \
    run.dir="$B") || rc=1
(expect_fail "$B is in use by another caviar job" run_np 2 "${one[@]}" run.dir="$B" \
    run.resume=auto) || rc=1
kill -CONT "$owner"
[ "$rc" -eq 0 ] || fail "second job not refused"
wait "$first" || rc=$?
[ "$rc" -eq 0 ] || { cat "$B.log"; fail "the first job did not finish fine (exit $rc)"; }
[ "$(wc -l <"$B/metrics.jsonl")" -eq 4 ] || fail "the first job's metrics are incomplete"
ok "a second job in a busy directory refused at once, naming the owner; the first finished"

# ---- 4. kill -9: the lock dies with its owner
K=$TMP/killed
start_bg "$K" 20
wait_until "ls '$K'/checkpoints/ckpt-*.h5 >/dev/null 2>&1" "$job"
kill -9 "$(owner_pid "$K")"
wait "$job" 2>/dev/null || true
run_np 2 train "$cfg" train.epochs=2 data.dev= run.dir="$K" run.resume=auto >"$TMP/resumed.txt" 2>&1 ||
    { cat "$TMP/resumed.txt"; fail "resume after kill -9"; }
grep -q "resuming from $K/checkpoints/ckpt-" "$TMP/resumed.txt" || fail "did not resume"
ok "kill -9: the directory is not left locked; the run resumes"

# ---- 5. sweep directories: exclusive for a sweep, shared by --trial tasks
S=$TMP/sl
mkdir -p "$S/sweep"
flock -s "$S/sweep/.caviar.lock" timeout -k 10 "$STEP_TIMEOUT" mpirun -np 1 --bind-to none \
    "$CAVIAR" sweep "$TMP/s.yaml" run.dir="$S" --trial 0 train.max_steps=5 >/dev/null ||
    fail "--trial with another --trial task holding the shared lock"
expect_fail "$S/sweep is in use by another caviar job" flock -s "$S/sweep/.caviar.lock" \
    timeout -k 10 "$STEP_TIMEOUT" mpirun -np 1 --bind-to none "$CAVIAR" sweep "$TMP/s.yaml" \
    run.dir="$S" --collect
ok "sweep directory: --trial tasks share it, --collect waits for them to end"

# ---- 6. a fresh sweep into an earlier sweep's directory; --overwrite
# (checkpoints every 100 steps, then every 120: a trial that kept or resumed
# the old run would still hold ckpt-000000000400.h5)
W=$TMP/sw2
run_np 2 sweep "$TMP/s.yaml" run.dir="$W" data.dev= sweep.metric=train.accuracy >/dev/null ||
    fail "first sweep"
cp "$W/sweep/results.jsonl" "$TMP/results.before"
expect_fail "results.jsonl exists: .*--overwrite" run_np 2 sweep "$TMP/s.yaml" run.dir="$W" \
    data.dev= sweep.metric=train.accuracy
cmp -s "$W/sweep/results.jsonl" "$TMP/results.before" || fail "a refused sweep changed results.jsonl"
expect_fail "usage" run_np 1 sweep "$TMP/s.yaml" run.dir="$W" --overwrite --resume
run_np 2 sweep "$TMP/s.yaml" run.dir="$W" data.dev= sweep.metric=train.accuracy \
    checkpoint.every_steps=120 --overwrite >/dev/null || fail "sweep --overwrite"
[ "$(wc -l <"$W/sweep/results.jsonl")" -eq 2 ] || fail "--overwrite: the old results were kept"
for t in 0000 0001; do
    [ "$(ls "$W/sweep/trial-$t/checkpoints")" = "$(printf 'ckpt-000000000240.h5\nckpt-000000000360.h5\nckpt-000000000430.h5')" ] ||
        fail "--overwrite: trial $t kept or resumed the old run: $(ls "$W/sweep/trial-$t/checkpoints")"
done
ok "a fresh sweep refuses an earlier sweep's directory; --overwrite replaces it"
