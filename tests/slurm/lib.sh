# shellcheck shell=bash
# tests/slurm/lib.sh - sourced by the slurm tests (`bash test_x.sh CAVIAR ROOT`):
# a real single-node SLURM on this machine, started without systemd, and
# stopped on exit (only the daemons started here).
#
#   slurm_start          munged (if none runs), slurmctld, slurmd with a
#                        generated slurm.conf (the machine's CPUs and memory);
#                        waits until sinfo shows the node idle
#   slurm_wait JOB SECONDS STATE...  until `scontrol show job` reports one
#                        of the STATEs; fails at once if the job ends in
#                        another (timeout otherwise)
#
# Facts (Debian 12: slurm 22.05, Open MPI 4.1): SlurmUser=root,
# proctrack/linuxproc and task/none run without cgroups or systemd.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

SLURM_DIR=$TMP/slurm
SLURM_PIDS=()
export SLURM_CONF=$SLURM_DIR/slurm.conf

slurm_stop() {
    local pid
    for pid in "${SLURM_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${SLURM_PIDS[@]}"; do # slurmd/slurmctld exit within a second
        timeout 10 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
    done
}

slurm_cleanup() {
    slurm_stop
    rm -rf "$TMP"
}
trap slurm_cleanup EXIT

slurm_start() {
    local t0 host cpus mem
    t0=$(date +%s.%N)
    mkdir -p "$SLURM_DIR"/{state,spool,log}
    host=$(hostname -s)
    read -r cpus mem < <(slurmd -C | awk '/^NodeName/ {
        for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        print v["CPUs"], v["RealMemory"] }')
    cat >"$SLURM_CONF" <<CONF
ClusterName=caviar-test
SlurmctldHost=$host
SlurmctldPort=${CV_SLURMCTLD_PORT:-16817}
SlurmdPort=${CV_SLURMD_PORT:-16818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1
MinJobAge=300
KillWait=10
InactiveLimit=0
JobRequeue=1
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
    # The daemon's pid comes from its pid file: `pgrep -x munged` also lists
    # the exited (zombie) parent of the daemonising fork, and a two-line pid
    # never got killed. A munged left running past the test and killed later
    # leaves a stale socket, and PMIx's munge plugin then retries that socket
    # for 2.5 s on every later mpirun on the machine.
    if ! pgrep -x munged >/dev/null; then
        [ -f /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
        mkdir -p /run/munge /var/log/munge /var/lib/munge
        rm -f /run/munge/munged.pid
        munged --force
        local w
        for w in $(seq 1 50); do
            [ -s /run/munge/munged.pid ] && break
            sleep 0.1
        done
        SLURM_PIDS+=("$(cat /run/munge/munged.pid)")
    fi
    slurmctld -f "$SLURM_CONF" -i
    slurmd -f "$SLURM_CONF"
    local i
    for i in $(seq 1 100); do
        [ -f "$SLURM_DIR/slurmctld.pid" ] && [ -f "$SLURM_DIR/slurmd.pid" ] && break
        sleep 0.1
    done
    SLURM_PIDS=("$(cat "$SLURM_DIR/slurmd.pid")" "$(cat "$SLURM_DIR/slurmctld.pid")" "${SLURM_PIDS[@]}")
    for i in $(seq 1 300); do
        if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
            echo "slurm: node idle after $(echo "$(date +%s.%N) - $t0" | bc) s"
            return 0
        fi
        sleep 0.2
    done
    cat "$SLURM_DIR"/log/*.log >&2
    fail "slurm: the node did not become idle within 60 s"
}

# job_state JOB: PENDING, RUNNING, COMPLETED, FAILED, ...  A job that
# requeues itself can show a terminal state for a moment while slurmctld
# processes the requeue: a terminal state counts only if it is still there
# a second later.
job_state() {
    local s
    s=$(scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
    case $s in
    COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY)
        sleep 1
        s=$(scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2) ;;
    esac
    echo "$s"
}

# job_ended STATE: a state the job leaves only by a requeue that has not
# come (a job that requeues itself is PENDING or REQUEUED by then).
job_ended() {
    case $1 in
    COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED) return 0 ;;
    *) return 1 ;;
    esac
}

# slurm_wait JOB SECONDS STATE...: until the job is in one of the states.
# A job that ends in another state can never get there: fail at once.
slurm_wait() {
    local job=$1 limit=$2 state i
    shift 2
    for i in $(seq 1 $((limit * 5))); do
        state=$(job_state "$job")
        for want in "$@"; do
            [ "$state" = "$want" ] && return 0
        done
        if job_ended "$state"; then
            scontrol show job "$job" >&2
            fail "job $job ended $state, expected $* (cannot happen any more)"
        fi
        sleep 0.2
    done
    scontrol show job "$job" >&2
    fail "job $job: still $state after $limit s, expected $*"
}
