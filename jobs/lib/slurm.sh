# shellcheck shell=bash
# jobs/lib/slurm.sh - shared by the jobs/*.sbatch scripts (sourced).
#
#   cv_job_start CONFIG [key=value ...]   check the config and the run
#       directory, enforce the restart cap, set RUN_DIR and CAVIAR
#   cv_launch CMD...                      run caviar under srun (or mpirun),
#       forwarding a stop signal, and set CV_RC to caviar's exit code
#   cv_job_end                            requeue on 75 ("stopped with a
#       checkpoint, resume me") or 76 ("stopped during start-up, run
#       again"), else exit with caviar's code
#
# caviar's exit code is taken from the launcher, unless caviar recorded a
# clean stop in CAVIAR_STOP_FILE (RUN_DIR/.stop-TAG, removed before each
# launch): plain mpirun returns 1 after SIGTERM or SIGINT (it reports the
# signal it got, not its ranks' codes) although every rank checkpointed and
# exited 75; srun, and mpirun after SIGUSR1, return the ranks' code.
#
# Environment (all optional):
#   CAVIAR                  the caviar binary (default $CAVIAR_ROOT/build/caviar)
#   CAVIAR_LAUNCHER         srun (default) or mpirun
#   CAVIAR_RUNS             where run directories go (default $SLURM_SUBMIT_DIR/runs)
#   CAVIAR_RUN_DIR          the run directory itself (default $CAVIAR_RUNS/JOBNAME-JOBID)
#   CAVIAR_MAX_RESTARTS_NO_PROGRESS   give up after this many restarts in a row
#                           without a new checkpoint or result (default 3)

cv_die() {
    echo "caviar job ${SLURM_JOB_ID:-?}: error: $*" >&2
    exit 1
}

# A stamp of the progress a run directory has made: its newest checkpoint
# (trials' too) and its result lines.
cv_progress() {
    {
        find "$RUN_DIR" -name 'ckpt-*.h5' 2>/dev/null | sort
        find "$RUN_DIR" \( -name 'results.jsonl' -o -name 'result.jsonl' \) -exec cat {} + 2>/dev/null
    } | md5sum | cut -c1-16
}

cv_restart_cap() {
    local tag=${SLURM_ARRAY_TASK_ID:-job} max=${CAVIAR_MAX_RESTARTS_NO_PROGRESS:-3}
    local file=$RUN_DIR/.restarts-$tag now before="" count=0
    now=$(cv_progress)
    if [ -f "$file" ]; then
        read -r count before <"$file" || true
        if [ "$now" = "$before" ]; then count=$((count + 1)); else count=0; fi
    fi
    if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ] && [ "$count" -ge "$max" ]; then
        cv_die "restarted $count times in a row without progress (no new checkpoint or result in $RUN_DIR); not requeueing again (CAVIAR_MAX_RESTARTS_NO_PROGRESS=$max)"
    fi
    echo "$count $now" >"$file"
}

cv_job_start() {
    [ $# -ge 1 ] || cv_die "usage: sbatch ${0##*/} CONFIG.yaml [key.path=value ...]"
    CONFIG=$1
    if [ ! -f "$CONFIG" ] || [ ! -r "$CONFIG" ]; then
        cv_die "config '$CONFIG' not found or not readable (paths are relative to the submit directory ${SLURM_SUBMIT_DIR:-.})"
    fi
    CAVIAR=${CAVIAR:-$CAVIAR_ROOT/build/caviar}
    [ -x "$CAVIAR" ] || cv_die "caviar binary '$CAVIAR' not found: build it or set CAVIAR"
    local name=${SLURM_JOB_NAME:-caviar} id=${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-$$}}
    RUN_DIR=${CAVIAR_RUN_DIR:-${CAVIAR_RUNS:-${SLURM_SUBMIT_DIR:-.}/runs}/$name-$id}
    if ! mkdir -p "$RUN_DIR" 2>/dev/null || [ ! -w "$RUN_DIR" ]; then
        cv_die "run directory '$RUN_DIR' cannot be created or is not writable"
    fi
    # the run directory belongs to one config + overrides
    local stamp tmp
    stamp="config $(realpath "$CONFIG") $(sha256sum <"$CONFIG" | cut -c1-16) overrides: ${*:2}"
    if [ -f "$RUN_DIR/job-config.txt" ]; then
        [ "$(cat "$RUN_DIR/job-config.txt")" = "$stamp" ] ||
            cv_die "run directory '$RUN_DIR' belongs to a different config: it has '$(cat "$RUN_DIR/job-config.txt")', this job '$stamp'"
    else
        tmp=$(mktemp "$RUN_DIR/.job-config.XXXXXX")
        echo "$stamp" >"$tmp" && mv -f "$tmp" "$RUN_DIR/job-config.txt"
    fi
    cv_restart_cap
    export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
    echo "caviar job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}) on $(hostname -s): run directory $RUN_DIR, $OMP_NUM_THREADS thread(s) per rank"
}

# A stop signal to the batch shell (SLURM's --signal=B:USR1, scancel -b,
# Ctrl-C) goes on to the launcher as USR1: both srun and mpirun forward USR1
# to every rank (srun does not forward a single SIGINT), and caviar treats
# TERM, INT and USR1 alike.  A rank that also gets the signal directly (a
# preemption signals every process of the job) stops only once.
cv_forward() {
    echo "caviar job: got $1: asking caviar to checkpoint and stop"
    if [ -n "${CV_CHILD:-}" ]; then kill -USR1 "$CV_CHILD" 2>/dev/null || true; fi
}

cv_launch() {
    local launcher=${CAVIAR_LAUNCHER:-srun}
    export CAVIAR_STOP_FILE=$RUN_DIR/.stop-${SLURM_ARRAY_TASK_ID:-job}
    rm -f "$CAVIAR_STOP_FILE"
    case $launcher in
    srun) set -- srun --mpi=pmix --kill-on-bad-exit=1 "$CAVIAR" "$@" ;;
    mpirun) set -- mpirun --bind-to core --map-by "slot:PE=$OMP_NUM_THREADS" \
        -x CAVIAR_STOP_FILE "$CAVIAR" "$@" ;;
    *) cv_die "CAVIAR_LAUNCHER='$launcher': expected srun or mpirun" ;;
    esac
    # run the launcher in the background, so this shell can pass signals on
    trap 'cv_forward USR1' USR1
    trap 'cv_forward TERM' TERM
    trap 'cv_forward INT' INT
    "$@" &
    CV_CHILD=$!
    CV_RC=0
    while :; do
        wait "$CV_CHILD" && CV_RC=0 || CV_RC=$?
        kill -0 "$CV_CHILD" 2>/dev/null || break # wait returned for a trapped signal
    done
    trap - USR1 TERM INT
    cv_recorded_stop
}

# The launcher's code is not caviar's after some signals (see the top):
# caviar's own record of a clean stop wins.
cv_recorded_stop() {
    local code="" line
    [ -f "$CAVIAR_STOP_FILE" ] || return 0
    line=$(head -1 "$CAVIAR_STOP_FILE")
    code=${line%% *}
    case $code in
    75 | 76) ;;
    *) return 0 ;;
    esac
    if [ "$CV_RC" -ne "$code" ]; then
        echo "caviar job: the launcher exited $CV_RC, but caviar recorded a clean stop: ${line#* }"
        CV_RC=$code
    fi
}

cv_job_end() {
    if [ "$CV_RC" -eq 75 ] || [ "$CV_RC" -eq 76 ]; then
        local id=${SLURM_JOB_ID} what="checkpointed"
        [ -n "${SLURM_ARRAY_JOB_ID:-}" ] && id=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}
        [ "$CV_RC" -eq 75 ] || what="stopped during start-up (nothing trained)"
        echo "caviar job: $what; requeueing $id to resume from $RUN_DIR"
        scontrol requeue "$id"
        exit 0
    fi
    [ "$CV_RC" -eq 0 ] || echo "caviar job: caviar exited with $CV_RC" >&2
    exit "$CV_RC"
}
