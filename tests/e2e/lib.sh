# tests/e2e/lib.sh - sourced by the e2e tests: `bash test_x.sh CAVIAR ROOT`.
# Sets up a temp dir, the MPI environment for root, and a cached import of
# Fashion-MNIST (from the Debian package dataset-fashion-mnist).
set -euo pipefail
CAVIAR=$(realpath "$1")
ROOT=$(realpath "$2")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# No munge credential for single-node launches (see tests/run.sh).
export PMIX_MCA_psec=${PMIX_MCA_psec:-native}
TMP=$(mktemp -d /tmp/caviar-e2e.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
DATA=${CV_TEST_DATA:-$(dirname "$CAVIAR")/test-data}
FM=/usr/share/datasets/fashion-mnist
PY=/usr/bin/python3   # Debian's python, where python3-h5py installs
STEP_TIMEOUT=${STEP_TIMEOUT:-300}   # no command of a test may hang longer than this

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

ok() {
    echo "ok: $*"
}

# Run caviar under mpirun with N ranks, never hanging.
run_np() {
    local np=$1
    shift
    timeout -k 10 "$STEP_TIMEOUT" mpirun -np "$np" --bind-to none "$CAVIAR" "$@"
}

# Import Fashion-MNIST once per build tree (flock: ctest may run tests in parallel).
fm_data() {
    mkdir -p "$DATA"
    (
        flock 9
        [ -f "$DATA/fm.h5" ] || "$CAVIAR" import idx --images $FM/train-images-idx3-ubyte.gz \
            --labels $FM/train-labels-idx1-ubyte.gz --shuffle --seed 1 --dev 5000 -o "$DATA/fm.h5"
        [ -f "$DATA/fm-test.h5" ] || "$CAVIAR" import idx --images $FM/t10k-images-idx3-ubyte.gz \
            --labels $FM/t10k-labels-idx1-ubyte.gz -o "$DATA/fm-test.h5"
    ) 9>"$DATA/.lock" >/dev/null
}

# fm_named OUT.h5: the Fashion-MNIST dev split (5000 rows) with its class
# names stored (attribute class_names), as `import --class-names` writes.
fm_named() {
    "$PY" - "$DATA/fm.h5" "$1" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1]) as s, h5py.File(sys.argv[2], "w") as d:
    for k in ("X", "y"):
        d[k] = s["dev"][k][:]
    for k, v in s["dev"].attrs.items():
        d.attrs[k] = v
    d.attrs["class_names"] = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                              "Shirt", "Sneaker", "Bag", "Ankle boot"]
PY
}

# A small MLP config on the imported data; extra overrides go on the command line.
tiny_config() {
    cat >"$TMP/tiny.yaml" <<YAML
data: {train: $DATA/fm.h5, dev: "$DATA/fm.h5#dev"}
model:
  input: [784]
  layers:
    - {type: dense, units: 64, activation: relu}
    - {type: dropout, keep: 0.9}
    - {type: dense, units: 10, activation: softmax}
  loss: softmax_cross_entropy
train: {optimizer: adam, lr: 2.0e-3, batch: 128, epochs: 2, seed: 3}
checkpoint: {every_steps: 100, every_epochs: 1, keep: 3}
run: {dir: $TMP/run}
YAML
    echo "$TMP/tiny.yaml"
}

# expect_fail PATTERN CMD... : CMD exits non-zero (and not by timeout) and
# its output matches PATTERN.
expect_fail() {
    local pattern=$1 rc=0
    shift
    "$@" >"$TMP/out.txt" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || fail "expected failure, got exit 0: $*"
    [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "timed out (hang): $*"
    grep -Eq -- "$pattern" "$TMP/out.txt" || {
        cat "$TMP/out.txt" >&2
        fail "output does not match /$pattern/: $*"
    }
}

# json_get FILE KEY: a top-level field of a one-object JSON file or text.
json_get() {
    "$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]])' "$1" "$2"
}

# dev_accuracy RUN_DIR: the dev accuracy of the run's last epoch.
dev_accuracy() {
    "$PY" -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1])
        if "\"epoch\"" in l][-1]["dev_accuracy"])' "$1/metrics.jsonl"
}

# sweep_config FILE TRIALS EPOCHS: tiny_config's model ($base) with a random
# sweep over the learning rate and the hidden units.
sweep_config() {
    sed -e "s/epochs: 2, seed: 3/epochs: $3, seed: 3/" "$base" >"$1"
    cat >>"$1" <<YAML
sweep:
  trials: $2
  strategy: random
  space:
    train.lr: log_uniform(1e-4, 1e-2)
    model.layers.0.units: int_uniform(16, 48)
YAML
}

params_hash() {
    "$CAVIAR" inspect --json "$1" >"$TMP/inspect.json" && json_get "$TMP/inspect.json" params_fnv1a
}

# two_hosts_setup [RATE [RTT]]: two network namespaces joined by a veth pair
# act as two hosts ($ip1, $ip2); Open MPI's rsh launcher reaches the second
# through $TMP/agent.sh, which enters its namespace (with its own host name)
# where a cluster would use ssh.  The link is a plain veth unless RATE is
# given (two_hosts_link).  Exits 77 (ctest: skipped) where no namespace can
# be made.  Needs root.
two_hosts_setup() {
    local id=$$
    ns1=cvh1-$id ns2=cvh2-$id
    veth1=cva$id veth2=cvb$id
    ip1=10.77.0.1 ip2=10.77.0.2   # inside the namespaces made here, nowhere else
    trap 'ip netns del "$ns1" 2>/dev/null || true; ip netns del "$ns2" 2>/dev/null || true
          rm -rf "$TMP"' EXIT
    if ! ip netns add "$ns1" 2>"$TMP/netns.err"; then
        echo "skipped: cannot create a network namespace: $(cat "$TMP/netns.err")"
        exit 77
    fi
    ip netns add "$ns2"
    ip link add "$veth1" type veth peer name "$veth2"
    ip link set "$veth1" netns "$ns1"
    ip link set "$veth2" netns "$ns2"
    ip -n "$ns1" addr add $ip1/24 dev "$veth1"
    ip -n "$ns2" addr add $ip2/24 dev "$veth2"
    for ns in "$ns1" "$ns2"; do
        ip -n "$ns" link set lo up
    done
    ip -n "$ns1" link set "$veth1" up
    ip -n "$ns2" link set "$veth2" up
    cat >"$TMP/agent.sh" <<AGENT
#!/bin/sh
host=\$1
shift
case \$host in
$ip1) ns=$ns1 ;;
$ip2) ns=$ns2 ;;
*) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
echo "\$host" >>"$TMP/agent.log"
exec ip netns exec "\$ns" unshare --uts sh -c "hostname \$ns; \$*"
AGENT
    chmod +x "$TMP/agent.sh"
    printf '%s slots=2\n%s slots=2\n' $ip1 $ip2 >"$TMP/hosts"
    [ $# -eq 0 ] || two_hosts_link "$@"
}

# two_hosts_link RATE [RTT] | unshaped: shape both ends of two_hosts_setup's
# link (again whenever called) like a wire of RATE (tc units: 1gbit,
# 500mbit) with a round trip of RTT (tc time: 50us, default none); sets
# $link_qdisc to what does it.  netem (half the RTT and RATE on each end)
# models a link exactly: each packet waits its serialization time behind the
# previous one, then the propagation delay.  Kernels without netem
# (CONFIG_NET_SCH_NETEM unset, no modules: some VMs) get tbf, rate only (no
# delay: $link_qdisc says so), with a queue of 100 ms (packets wait, not
# drop) and a bucket of 80 kB or 64 us of RATE if more: it must hold one of
# veth's 64 KiB GSO packets, else tbf cuts each into MTU frames in software
# and, on busy cores, loses tokens to late timer wake-ups (with 8 kB, 2
# ranks allreduced 4 MB in 45 ms at 1gbit, 74 at 10gbit); the price is that
# 80 kB after an idle spell go unpaced (0.64 ms early at 1gbit).  With 80 kB:
# 33 ms at 1gbit (33.5 ideal with headers), 4.0 at 10gbit (3.4).
two_hosts_link() {
    local rate=$1 rtt=${2:-0us} half burst ns dev
    link_qdisc=none
    for ns in "$ns1" "$ns2"; do
        dev=$veth1
        [ "$ns" = "$ns1" ] || dev=$veth2
        tc -n "$ns" qdisc del dev "$dev" root 2>/dev/null || true
        [ "$rate" != unshaped ] || continue
        half=$(awk -v t="$rtt" 'BEGIN { n = t + 0; u = substr(t, length(n "") + 1)
            print n / 2 (u == "" ? "us" : u) }')
        if tc -n "$ns" qdisc add dev "$dev" root netem delay "$half" rate "$rate" limit 100000 \
            2>/dev/null; then
            link_qdisc="netem delay $half rate $rate"
            continue
        fi
        burst=$(awk -v r="$rate" 'BEGIN { n = r + 0; u = tolower(substr(r, length(n "") + 1))
            m = u == "gbit" ? 1e9 : u == "mbit" ? 1e6 : u == "kbit" ? 1e3 : u == "bit" ? 1 : 0
            if (m == 0) exit 1
            b = int(n * m * 64e-6 / 8); print (b > 80000 ? b : 80000) }') ||
            fail "two_hosts_link: rate $rate: want <number>gbit, mbit, kbit or bit"
        tc -n "$ns" qdisc add dev "$dev" root tbf rate "$rate" burst "$burst" latency 100ms
        link_qdisc="tbf rate $rate burst $burst (no netem here: no delay, RTT $rtt not emulated)"
    done
}

# run_two_hosts ARGS...: `caviar ARGS` as $PER_HOST ranks (default 1) on each
# host, or with RANKS=3 two on the first and one on the second, over TCP
# across the veth link only (never hanging); the ranks of one host talk
# through shared memory (btl vader) and may share arenas.
run_two_hosts() {
    local ifs=10.77.0.0/24   # the veth subnet; each host has one of the two interfaces
    local env="-x OMP_NUM_THREADS" per=${PER_HOST:-1}
    local place="-np $((2 * per)) --map-by ppr:$per:node"
    [ "${RANKS:-}" != 3 ] || place="-np 3 --map-by slot"   # fills the first host's 2 slots
    [ -z "${OPENBLAS_CORETYPE:-}" ] || env="$env -x OPENBLAS_CORETYPE"
    timeout -k 10 "$STEP_TIMEOUT" ip netns exec "$ns1" unshare --uts sh -c \
        "hostname $ns1 && exec mpirun $place --hostfile $TMP/hosts \
         --mca plm_rsh_agent $TMP/agent.sh --mca btl tcp,vader,self \
         --mca btl_tcp_if_include $ifs --mca oob_tcp_if_include $ifs \
         $env --bind-to none $CAVIAR $*"
}
