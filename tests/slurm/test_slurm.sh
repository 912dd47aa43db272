#!/usr/bin/env bash
# The job scripts of jobs/ against a real single-node SLURM (tests/slurm/lib.sh):
#  1. train.sbatch completes and its model evaluates;
#  2. a job with a 1-minute limit and an early warning signal checkpoints,
#     requeues itself, resumes, and ends byte-identical to an uninterrupted
#     run;
#  3. sweep-array.sbatch with 4 array tasks, then --collect: 4 trials;
#  4. ensemble.sbatch trains and evaluates an ensemble;
#  5. bad input (missing config, run directory of another config, an
#     unwritable run directory) fails at once with a clear message and
#     does not requeue;
#  6. a job that keeps asking to be resumed without making progress stops
#     requeueing after CAVIAR_MAX_RESTARTS_NO_PROGRESS restarts;
#  7. sweep.sbatch at the time limit: running trials checkpoint, the job
#     requeues and the sweep finishes with every trial done exactly once;
#  8. TERM and INT mid-training under the mpirun launcher to every process
#     of the job (what a preemption or `scancel --signal=TERM --full` does),
#     under srun to its tasks, and TERM to the batch shell: the job
#     checkpoints, requeues and completes (mpirun exits 1 after TERM, but
#     the ranks recorded their clean stop);
#  9. a stop signal during start-up (before MPI_Init is through, as SLURM's
#     warning once came 0.4 s into a job): exit 76, requeued, completes.
# CV_SLURM_ONLY="2 8" runs only those scenarios; CV_SLURM_STOPS="mpirun:TERM:full"
# only those launcher:signal:target cases of 8.  A wait whose outcome
# became impossible (the job ended, or is held) fails at once.
# Prints the harness start-up time and each scenario's wall time.
source "$(dirname "$0")/lib.sh"
fm_data
slurm_start

want() { [ -z "${CV_SLURM_ONLY:-}" ] || [[ " $CV_SLURM_ONLY " == *" $1 "* ]]; }
cfg=$(tiny_config)
cat >"$TMP/long.yaml" <<YAML
data: {train: $DATA/fm.h5, dev: "$DATA/fm.h5#dev"}
model:
  input: [784]
  layers:
    - {type: dense, units: 256, activation: relu}
    - {type: dense, units: 256, activation: relu}
    - {type: dense, units: 10, activation: softmax}
train: {optimizer: adam, lr: 1.0e-3, batch: 64, epochs: 16, seed: 5}
checkpoint: {every_steps: 200, every_epochs: 1, keep: 2}
YAML

JOBS=$TMP/jobs
mkdir -p "$JOBS"
export CAVIAR_ROOT=$ROOT CAVIAR=$CAVIAR CAVIAR_RUNS=$JOBS/runs

submit() { # sbatch from $JOBS (the submit directory), print the job id
    (cd "$JOBS" && sbatch --parsable "$@")
}

out_of() { # the job's output file
    cat "$JOBS"/caviar-*-"$1".out "$JOBS"/caviar-*-"$1"_*.out 2>/dev/null || true
}

# Wait for a requeueing job to finish.  A job that requeues itself waits
# ~2 min (BeginTime) before it may start again: move its start time to now
# to keep the test fast (the scripts themselves do not depend on this),
# 3 s after the requeue and once the previous run's step daemons are gone
# (restarting at once races with their teardown: the batch launch fails).
finish_requeued() {
    local job=$1 limit=$2 i state waited=0
    for i in $(seq 1 $((limit * 5))); do
        state=$(job_state "$job")
        if scontrol show job "$job" | grep -Eq 'Reason=(JobHeld[A-Za-z]*|launch_failed_requeued_held)'; then
            state=HELD
        fi
        case $state in
        COMPLETED) return 0 ;;
        FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED | HELD)
            out_of "$job" >&2
            scontrol show job "$job" >&2
            grep -E "JobId=$job |job_id=$job|JOB $job" "$SLURM_DIR"/log/*.log | tail -20 >&2
            fail "job $job ended $state" ;;
        PENDING)
            if scontrol show job "$job" | grep -q 'Reason=BeginTime'; then
                waited=$((waited + 1))
                # 3 s after the requeue and once its step daemons are gone
                if [ "$waited" -ge 15 ] && ! pgrep -f "slurmstepd: \[$job\." >/dev/null; then
                    scontrol update JobId="$job" StartTime=now 2>/dev/null || true
                    waited=0
                fi
            fi ;;
        *) waited=0 ;;
        esac
        sleep 0.2
    done
    out_of "$job" >&2
    fail "job $job not done after $limit s (state $state)"
}

elapsed() { echo "$(echo "$(date +%s.%N) - $1" | bc | cut -c1-6) s"; }

# poll SECONDS CMD...: until CMD succeeds (0) or SECONDS have passed (1).
poll() {
    local limit=$1 i
    shift
    for i in $(seq 1 $((limit * 5))); do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}

checkpointed_or_ended() { # JOB DIR
    find "$2" -name 'ckpt-*.h5' 2>/dev/null | grep -q . || job_ended "$(job_state "$1")"
}

warned() { grep -q "got USR1" <(out_of "$1"); } # JOB: its batch shell has the warning signal

warned_or_ended() { warned "$1" || job_ended "$(job_state "$1")"; }

# fail_if_failed JOB WHAT: the job ended other than COMPLETED: no wait can
# succeed any more
fail_if_failed() {
    local state
    state=$(job_state "$1")
    if job_ended "$state" && [ "$state" != COMPLETED ]; then
        out_of "$1"
        fail "job $1 ended $state $2"
    fi
}

# Hold a job's ranks paused from its first checkpoint until its batch shell
# has the time-limit warning signal, so the signal lands mid-training however
# fast this machine trains.  slurmctld checks time limits every 30 s, so with
# --time=1 --signal=B:USR1@30 the signal comes 30 to 60 s in; on a fast CI
# machine the 16-epoch job once finished in 24 s, before any signal.  A paused
# rank is a slow one: the pending USR1 reaches caviar when it continues, and
# the step it was in finishes before the checkpoint, as on any machine.
hold_until_warned() {
    local job=$1 dir=$2 pids
    poll 120 checkpointed_or_ended "$job" "$dir" || true
    fail_if_failed "$job" "before its first checkpoint"
    # the ranks, not srun or mpirun: their command line starts with caviar's
    pids=$(pgrep -f "^$CAVIAR [a-z]+ .*run\.dir=$dir( |\$)" || true)
    if [ -z "$pids" ]; then # signalled before its first checkpoint, or done
        warned "$job" && return 0
        out_of "$job"
        fail "job $job: no running ranks to hold at its first checkpoint"
    fi
    # shellcheck disable=SC2086
    kill -STOP $pids 2>/dev/null || true
    local rc=0
    poll 120 warned_or_ended "$job" || rc=$?
    # shellcheck disable=SC2086
    kill -CONT $pids 2>/dev/null || true
    warned "$job" || fail_if_failed "$job" "while held for the warning signal"
    [ "$rc" -eq 0 ] || { out_of "$job"; fail "job $job: no warning signal within 120 s"; }
}

# ---- 1. a training job
if want 1; then

cfg=$(tiny_config)
t0=$(date +%s.%N)
job=$(submit --job-name=t1 "$ROOT/jobs/train.sbatch" "$cfg" train.epochs=1)
slurm_wait "$job" 120 COMPLETED FAILED
[ "$(job_state "$job")" = COMPLETED ] || { out_of "$job"; fail "train.sbatch: $(job_state "$job")"; }
"$CAVIAR" eval "$JOBS/runs/t1-$job/model.h5" "$DATA/fm-test.h5" --json >"$TMP/eval.json" ||
    fail "eval of the job's model"
ok "1. train.sbatch completed; test accuracy $(json_get "$TMP/eval.json" accuracy) ($(elapsed "$t0"))"
fi

# ---- 2. time limit: warning signal, checkpoint, requeue, resume, identical
if want 2; then

t0=$(date +%s.%N)
job=$(submit --job-name=t2 --time=1 --signal=B:USR1@30 "$ROOT/jobs/train.sbatch" "$TMP/long.yaml")
# the reference takes minutes on a loaded machine: more than run_np's 300 s
STEP_TIMEOUT=1500 run_np 2 train "$TMP/long.yaml" run.dir="$TMP/uninterrupted" >/dev/null &
uninterrupted=$!
hold_until_warned "$job" "$JOBS/runs/t2-$job"
finish_requeued "$job" 600
wait "$uninterrupted" || fail "the uninterrupted run of $TMP/long.yaml failed"
restarts=$(scontrol show job "$job" | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
[ "$restarts" -ge 1 ] || { out_of "$job"; fail "time-limit job: expected a requeue, Restarts=$restarts"; }
grep -q "requeueing" <(out_of "$job") || fail "time-limit job: no requeue in its output"
want=$(params_hash "$TMP/uninterrupted/model.h5")
got=$(params_hash "$JOBS/runs/t2-$job/model.h5")
[ "$got" = "$want" ] || { out_of "$job"; fail "time-limit job: params $got != uninterrupted $want"; }
ok "2. signalled at the time limit, requeued $restarts time(s), resumed byte-identically ($(elapsed "$t0"))"
fi

# ---- 3. a sweep as a job array, then --collect
if want 3; then

cat "$cfg" >"$TMP/sweep.yaml"
cat >>"$TMP/sweep.yaml" <<YAML
sweep:
  trials: 4
  strategy: random
  space: {train.lr: 'log_uniform(1e-4, 1e-2)', model.layers.0.units: 'int_uniform(16, 64)'}
YAML
t0=$(date +%s.%N)
arr=$(submit --job-name=sa --array=0-3 "$ROOT/jobs/sweep-array.sbatch" "$TMP/sweep.yaml" train.epochs=1)
col=$(CAVIAR_RUN_DIR=$JOBS/runs/sa-$arr submit --job-name=sa --dependency="afterany:$arr" \
    "$ROOT/jobs/sweep-array.sbatch" --collect "$TMP/sweep.yaml" train.epochs=1)
slurm_wait "$col" 300 COMPLETED FAILED
[ "$(job_state "$col")" = COMPLETED ] || { out_of "$col"; fail "collect: $(job_state "$col")"; }
results=$JOBS/runs/sa-$arr/sweep/results.jsonl
[ "$("$PY" -c 'import json,sys; print(sorted({json.loads(l)["trial"] for l in open(sys.argv[1]) if json.loads(l)["status"] == "done"}))' "$results")" = "[0, 1, 2, 3]" ] ||
    fail "collected results do not hold trials 0-3: $(cat "$results")"
grep -q "collected 4 of 4" <(out_of "$col") || fail "collect output"
ok "3. sweep-array: 4 array tasks, collected 4 trials ($(elapsed "$t0"))"
fi

# ---- 4. an ensemble, trained and evaluated in one job
if want 4; then

t0=$(date +%s.%N)
job=$(submit --job-name=en "$ROOT/jobs/ensemble.sbatch" "$cfg" 3 "$DATA/fm-test.h5" train.epochs=1)
slurm_wait "$job" 300 COMPLETED FAILED
[ "$(job_state "$job")" = COMPLETED ] || { out_of "$job"; fail "ensemble.sbatch: $(job_state "$job")"; }
out_of "$job" | grep '^{"vote"' | tail -1 >"$TMP/ens.json"
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["members"]) == 3 and d["ensemble"]["accuracy"] > 0.7, d' \
    "$TMP/ens.json" || fail "ensemble report"
ok "4. ensemble.sbatch: 3 members, gain over the best member $(json_get "$TMP/ens.json" gain | cut -c1-7) ($(elapsed "$t0"))"
fi

# ---- 5. bad input: one clear message, no requeue loop
if want 5; then

expect_job_error() { # PATTERN sbatch-args...
    local pattern=$1 job
    shift
    job=$(submit "$@")
    slurm_wait "$job" 60 FAILED COMPLETED
    [ "$(job_state "$job")" = FAILED ] || fail "job $job ($*): expected FAILED"
    grep -Eq "$pattern" <(out_of "$job") || { out_of "$job"; fail "job output does not match /$pattern/"; }
    [ "$(scontrol show job "$job" | grep -o 'Restarts=[0-9]*')" = "Restarts=0" ] || fail "job $job requeued"
}
t0=$(date +%s.%N)
expect_job_error "config '.*nope.yaml' not found" --job-name=b1 "$ROOT/jobs/train.sbatch" "$TMP/nope.yaml"
mkdir -p "$JOBS/runs/other"
echo "config /elsewhere.yaml 0123456789abcdef overrides: " >"$JOBS/runs/other/job-config.txt"
expect_job_error "belongs to a different config" --job-name=b2 \
    --export=ALL,CAVIAR_RUN_DIR="$JOBS/runs/other" \
    "$ROOT/jobs/train.sbatch" "$cfg" train.epochs=2
touch "$TMP/file"
expect_job_error "cannot be created or is not writable" --job-name=b3 \
    --export=ALL,CAVIAR_RUN_DIR="$TMP/file/run" "$ROOT/jobs/train.sbatch" "$cfg"
ok "5. bad input fails at once with a clear message and no requeue ($(elapsed "$t0"))"
fi

# ---- 6. the restart cap: "resume me" without progress does not loop
if want 6; then

cat >"$TMP/stuck.sh" <<'SH'
#!/bin/sh
exit 75
SH
chmod +x "$TMP/stuck.sh"
t0=$(date +%s.%N)
waited=0
job=$(CAVIAR=$TMP/stuck.sh CAVIAR_MAX_RESTARTS_NO_PROGRESS=2 submit --job-name=st \
    "$ROOT/jobs/train.sbatch" "$cfg")
for i in $(seq 1 600); do
    state=$(job_state "$job")
    [ "$state" = FAILED ] || [ "$state" = COMPLETED ] && break
    if [ "$state" = PENDING ]; then
        waited=$((waited + 1))
        if [ "$waited" -ge 15 ] && ! pgrep -f "slurmstepd: \[$job\." >/dev/null; then
            scontrol update JobId="$job" StartTime=now 2>/dev/null || true
            waited=0
        fi
    else
        waited=0
    fi
    sleep 0.2
done
[ "$(job_state "$job")" = FAILED ] || { out_of "$job"; fail "stuck job: $(job_state "$job")"; }
grep -q "without progress" <(out_of "$job") || {
    out_of "$job"
    scontrol show job "$job"
    grep -E "JobId=$job |job_id=$job|JOB $job" "$SLURM_DIR"/log/*.log | tail -20
    fail "stuck job: no cap message"
}
restarts=$(scontrol show job "$job" | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
[ "$restarts" -eq 2 ] || fail "stuck job: $restarts restarts, expected 2"
ok "6. no progress: gave up after $restarts restarts ($(elapsed "$t0"))"
fi

# ---- 7. a sweep in one allocation, preempted by its time limit
if want 7; then

# 6 trials of 16 epochs on 2 groups, held at the first trial checkpoint
# until the warning signal comes (hold_until_warned)
cp "$TMP/long.yaml" "$TMP/sweep-long.yaml"
cat >>"$TMP/sweep-long.yaml" <<YAML
sweep:
  trials: 6
  space: {train.lr: 'log_uniform(1e-4, 1e-2)'}
YAML
t0=$(date +%s.%N)
job=$(submit --job-name=sw --ntasks=2 --time=1 --signal=B:USR1@30 "$ROOT/jobs/sweep.sbatch" "$TMP/sweep-long.yaml")
hold_until_warned "$job" "$JOBS/runs/sw-$job"
finish_requeued "$job" 900
restarts=$(scontrol show job "$job" | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
[ "$restarts" -ge 1 ] || { out_of "$job"; fail "sweep job: expected a requeue, Restarts=$restarts"; }
results=$JOBS/runs/sw-$job/sweep/results.jsonl
for t in 0 1 2 3 4 5; do
    n=$(grep -c "^{\"trial\":$t,.*\"status\":\"done\"" "$results" || true)
    [ "$n" -eq 1 ] || { cat "$results"; fail "sweep job: trial $t done $n times"; }
done
ok "7. sweep.sbatch requeued $restarts time(s); all 6 trials done once ($(elapsed "$t0"))"
fi

# ---- 8. TERM and INT during training under the mpirun and srun launchers.
# Where they land: "full" = every process of the job (scancel --full, as a
# preemption does), "steps" = the job steps' tasks (scancel's default),
# "batch" = the batch shell only (scancel -b).  Not tested: TERM to srun
# itself ("full" under srun), which srun answers by killing its step.
if want 8; then
for case in ${CV_SLURM_STOPS:-mpirun:TERM:full mpirun:INT:full srun:TERM:steps srun:INT:steps srun:TERM:batch}; do
    IFS=: read -r launcher sig target <<<"$case"
    how=(--full)
    [ "$target" != steps ] || how=()
    [ "$target" != batch ] || how=(--batch)
    t0=$(date +%s.%N)
    job=$(CAVIAR_LAUNCHER=$launcher submit --job-name=tm "$ROOT/jobs/train.sbatch" \
        "$TMP/long.yaml" train.epochs=2)
    poll 120 checkpointed_or_ended "$job" "$JOBS/runs/tm-$job" || true
    fail_if_failed "$job" "before its first checkpoint"
    [ "$(job_state "$job")" != COMPLETED ] || fail "job $job completed before it could be signalled"
    scancel --signal="$sig" "${how[@]}" "$job"
    finish_requeued "$job" 600
    restarts=$(scontrol show job "$job" | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
    [ "$restarts" -ge 1 ] || { out_of "$job"; fail "$case: expected a requeue"; }
    grep -q "requeueing" <(out_of "$job") || fail "$case: no requeue in its output"
    grep -q "resuming from" <(out_of "$job") || fail "$case: the restart did not resume"
    "$CAVIAR" inspect "$JOBS/runs/tm-$job/model.h5" >/dev/null || fail "$case: no model"
    said=$(grep -o "the launcher exited [0-9]*" <(out_of "$job") | head -1 || true)
    said=${said:+$said, but caviar recorded a clean stop}
    ok "8. $sig to $target of a job under $launcher: checkpointed, requeued $restarts time(s), completed (${said:-the launcher returned 75}) ($(elapsed "$t0"))"
done
fi

# ---- 9. a stop signal during start-up (srun): the first start raises USR1
# right after MPI_Init on rank 1
if want 9; then
cat >"$TMP/early.sh" <<SH
#!/bin/sh
[ "\${SLURM_RESTART_COUNT:-0}" -gt 0 ] || export CAVIAR_DEBUG_RAISE=USR1@mpi_init@1
exec "$CAVIAR" "\$@"
SH
chmod +x "$TMP/early.sh"
t0=$(date +%s.%N)
job=$(CAVIAR=$TMP/early.sh submit --job-name=ea "$ROOT/jobs/train.sbatch" "$cfg" train.epochs=1)
finish_requeued "$job" 300
restarts=$(scontrol show job "$job" | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
[ "$restarts" -ge 1 ] || { out_of "$job"; fail "start-up stop: expected a requeue, Restarts=$restarts"; }
grep -q "stopped during start-up (nothing trained); requeueing" <(out_of "$job") ||
    { out_of "$job"; fail "start-up stop: not requeued as a start-up stop"; }
"$CAVIAR" inspect "$JOBS/runs/ea-$job/model.h5" >/dev/null || fail "start-up stop: no model"
ok "9. stop signal right after MPI_Init: exit 76, requeued $restarts time(s), completed ($(elapsed "$t0"))"
fi
