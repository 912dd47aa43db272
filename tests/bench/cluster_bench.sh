#!/usr/bin/env bash
# cluster_bench.sh - what each gradient-exchange mode costs on an emulated
# cluster: for each workload, link and mode (and caviar binary, to compare
# two builds side by side), the median samples/s, step time and exposed
# communication time (metrics.jsonl's "end" event) of --reps runs.
#
# Links: "local" is both hosts' ranks on this host under plain mpirun (no
# namespaces, shared memory); every other link is two network-namespace
# hosts joined by a veth pair (tests/e2e/lib.sh: two_hosts_setup), the
# ranks of different hosts talking TCP over it: "unshaped" is the plain
# veth, RATE[/RTT] (e.g. 1gbit/50us; 1gbit alone means 1gbit/50us, 10gbit
# 10gbit/20us) shapes both ends with tc (two_hosts_link: netem, or tbf with
# no delay where the kernel lacks netem; the header says which, with each
# link's round trip and 4 MB transfer time as measured).  Both hosts share
# this machine's cores, so the network is the only thing emulated.
# Repetitions go round-robin over all configurations, so a host whose speed
# drifts biases no ratio; "vs allreduce" (and "vs <first binary>") are
# medians of the ratios of runs of the same repetition.  Needs root.
#
#   bash tests/bench/cluster_bench.sh [--caviar [LABEL=]BIN]... [--data H5]
#       [--workloads a,b,c] [--links 1gbit,10gbit,unshaped,local]
#       [--modes allreduce,sharded,bf16,default]
#       [--reps 3] [--steps a=200,b=60,c=30] [--per-host 1] [--tcp-cc cubic]
#       [--out cluster-bench.json]
#
# Workloads (tests/bench/configs): a = MLP 784-256-128-10 batch 128 (mlp.yaml),
# b = MLP 784-2048-2048-10 batch 256 (wide-mlp.yaml), c = CNN 32-64-96 batch
# 128 (cnn.yaml), all Adam.  Modes (overrides of `caviar train`):
#   allreduce        blocking allreduce, replicated optimizer
#   sharded          reduce-scatter + allgather, optimizer sharded (ZeRO-1)
#   bf16             replicated, gradients reduce-scattered and allgathered
#                    as bfloat16 (comm.compression)
#   default          no overrides (node-shared arenas with --per-host 2)
# The "exchange" column is what the run said it did (its "gradients:" line):
# blk = after backward, repl/shard, bf16, shm = node-shared arenas.  (The
# overlapped exchange, comm.overlap, was measured with this script at
# 1472928 and removed: docs/performance.md#overlap.)
# --per-host N runs N ranks per host (local: 2N ranks).  --tcp-cc sets the
# namespaces' TCP congestion control: cubic (Linux's default, most
# clusters'), or reno where the host allows namespaces no cubic (on links
# that never drop a packet neither backs off: they behave alike), or "host"
# to keep the host's (here BBR: its 23 MB allreduces at 1gbit took 195 or
# 360 ms, bimodal, where reno's took 195-197).  Run it from the
# repository root (the --data default is relative) after
#   build/caviar import idx --images /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz \
#     --labels /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz --shuffle --seed 1 \
#     --dev 5000 -o datasets/fashion-mnist.h5
# Every mpirun is bounded by STEP_TIMEOUT seconds (default 300); a failed
# run is reported, the others go on, and the exit status is then 1.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit "$1"
}

here=$(cd "$(dirname "$0")" && pwd)
bins=() labels=()
workloads=a,b,c links=1gbit,10gbit,unshaped,local reps=3 per_host=1 tcp_cc=cubic
modes=allreduce,sharded,bf16,default
steps_arg="" data=datasets/fashion-mnist.h5 out=cluster-bench.json
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || case $1 in -h | --help) usage 0 ;; *) usage 2 ;; esac
    case $1 in
        --caviar)
            label=${2%%=*}
            [ "$label" != "$2" ] || label=bin$((${#bins[@]} + 1))
            labels+=("$label") bins+=("${2#*=}")
            ;;
        --data) data=$2 ;;
        --workloads) workloads=$2 ;;
        --links) links=$2 ;;
        --modes) modes=$2 ;;
        --reps) reps=$2 ;;
        --steps) steps_arg=$2 ;;
        --per-host) per_host=$2 ;;
        --tcp-cc) tcp_cc=$2 ;;
        --out) out=$2 ;;
        *) usage 2 ;;
    esac
    shift 2
done
[ ${#bins[@]} -gt 0 ] || bins=(build/caviar) labels=(caviar)
for i in "${!bins[@]}"; do
    [ -x "${bins[$i]}" ] || { echo "cluster_bench: no executable ${bins[$i]}" >&2; exit 2; }
    bins[i]=$(realpath "${bins[$i]}")
done
[ -f "$data" ] || { echo "cluster_bench: no dataset $data (import it: see --help)" >&2; exit 2; }
data=$(realpath "$data")
[[ $reps =~ ^[1-9][0-9]*$ && $per_host =~ ^[1-9]$ ]] || usage 2

# workload: config, global batch, default steps
declare -A cfg=([a]=mlp.yaml [b]=wide-mlp.yaml [c]=cnn.yaml)
declare -A batch=([a]=128 [b]=256 [c]=128)
declare -A steps=([a]=200 [b]=60 [c]=30)
IFS=, read -ra steps_list <<<"$steps_arg"
for s in "${steps_list[@]}"; do
    [[ $s =~ ^([abc])=([1-9][0-9]*)$ ]] || { echo "cluster_bench: --steps $s: want a=N" >&2; exit 2; }
    steps[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
done
IFS=, read -ra workload_list <<<"$workloads"
IFS=, read -ra link_list <<<"$links"
IFS=, read -ra mode_list <<<"$modes"

# mode_overrides MODE: the `caviar train` overrides of a gradient-exchange mode
mode_overrides() {
    local private="comm.shared_memory=false"
    case $1 in
        allreduce) echo "comm.shard_optimizer=false $private" ;;
        sharded) echo "comm.shard_optimizer=true $private" ;;
        bf16) echo "comm.compression=bf16 comm.shard_optimizer=false $private" ;;
        default) echo "" ;;
        *) return 1 ;;
    esac
}

# link_spec LINK: "RATE RTT" for tc, "unshaped", or "local"
link_spec() {
    case $1 in
        local | unshaped) echo "$1" ;;
        1gbit) echo "1gbit 50us" ;;
        10gbit) echo "10gbit 20us" ;;
        *) [[ $1 =~ ^([0-9.]+[kmg]?bit)(/([0-9.]+[mu]?s))?$ ]] || return 1
            echo "${BASH_REMATCH[1]} ${BASH_REMATCH[3]:-0us}" ;;
    esac
}

# check every name before the first run
for w in "${workload_list[@]}"; do
    [ -n "${cfg[$w]:-}" ] || { echo "cluster_bench: unknown workload $w (a, b, c)" >&2; exit 2; }
done
for m in "${mode_list[@]}"; do
    mode_overrides "$m" >/dev/null || { echo "cluster_bench: unknown mode $m" >&2; exit 2; }
done
two_hosts=false
for l in "${link_list[@]}"; do
    link_spec "$l" >/dev/null || { echo "cluster_bench: link $l: want local, unshaped or RATE[/RTT]" >&2; exit 2; }
    [ "$l" = local ] || two_hosts=true
done

export OMP_NUM_THREADS=1
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$here/../e2e/lib.sh" "${bins[0]}" "$here/../.."
trap 'exit 130' INT   # so that the EXIT trap removes the namespaces and $TMP
trap 'exit 143' TERM
cat >"$TMP/bench.py" <<'PY'
"""The bench's bookkeeping: `probe` (a link's round trip and 4 MB transfer,
over TCP from Python: upper bounds), `record` (one run's figures) and
`report` (the table and JSON)."""
import json, os, socket, statistics, sys, time

def probe(role, host):
    if role == "server":
        s = socket.create_server((host, 5999))
        c, _ = s.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while (hdr := c.recv(8, socket.MSG_WAITALL)) and len(hdr) == 8:
            n = int.from_bytes(hdr, "little")
            while n > 0:
                n -= len(c.recv(min(n, 1 << 20)))
            c.sendall(b"k")
        return
    for _ in range(100):  # the server may still be starting
        try:
            c = socket.create_connection((host, 5999))
            break
        except OSError:
            time.sleep(0.05)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def xfer(n):
        t = time.perf_counter()
        c.sendall(n.to_bytes(8, "little") + bytes(n))
        c.recv(1)
        return time.perf_counter() - t
    rtt = [xfer(1) for _ in range(1000)]
    big = []
    for _ in range(10):
        time.sleep(0.005)  # after an idle spell, as a step's exchange
        big.append(xfer(4 << 20))
    print(f"measured RTT {1e6 * statistics.median(rtt):.0f} us (min {1e6 * min(rtt):.0f}), "
          f"4 MiB in {1e3 * statistics.median(big):.1f} ms (min {1e3 * min(big):.1f}: "
          f"{8 * (4 << 20) / min(big) / 1e9:.2f} Gbit/s)")

def record(results, log, metrics, *key):
    row = dict(zip(("workload", "link", "mode", "binary", "rep", "batch"), key))
    row["batch"] = int(row["batch"])
    try:
        end = [e for e in map(json.loads, open(metrics)) if e["event"] == "end"][-1]
    except (OSError, ValueError, IndexError):
        end = None
    text = open(log, errors="replace").read()
    grad = [l for l in text.splitlines() if l.startswith("gradients:")]
    row.update(end=end, gradients=grad[0] if grad else "", ok=end is not None)
    if end is None:
        row["log_tail"] = text[-2000:]
    with open(results, "a") as f:
        f.write(json.dumps(row) + "\n")
    return 0 if end else 1

def exchange(line):
    if not line:
        return "single"
    if "one parameter arena per host" in line or "node-shared" in line:
        return "shm/shard"
    return "/".join(["ovl" if "overlapped" in line or "during backward" in line else "blk",
                     "shard" if "optimizer sharded" in line else "repl"] +
                    (["bf16"] if "bfloat16" in line else []))

def report(results, meta_file, out):
    meta = {"binaries": [], "workloads": {}, "links": {}}
    for kind, *v in (l.rstrip("\n").split("\t") for l in open(meta_file)):
        if kind == "binary":
            meta["binaries"].append(dict(zip(("label", "path", "openblas_core"), v)))
        elif kind in ("workload", "link"):
            meta[kind + "s"][v[0]] = v[1]
        else:
            meta[kind] = v[0]
    runs = [json.loads(l) for l in open(results)]
    keys = list(dict.fromkeys((r["workload"], r["link"], r["mode"], r["binary"]) for r in runs))
    def per_run(r):
        e = r["end"]
        if not e:
            return None
        sps = e["samples_per_s"]
        comm = e["time_s"]["allreduce_exposed"] / e["step"]
        step = r["batch"] / sps
        return {"sps": sps, "step_ms": 1e3 * step, "comm_ms": 1e3 * comm,
                "comm_pct": 100 * comm / step}
    by_key = {k: {r["rep"]: r for r in runs if k == (r["workload"], r["link"], r["mode"],
                                                       r["binary"])} for k in keys}
    def ratio(k, ref):
        a, b = by_key.get(k, {}), by_key.get(ref, {})
        rs = [a[i]["end"]["samples_per_s"] / b[i]["end"]["samples_per_s"]
              for i in a if i in b and a[i]["ok"] and b[i]["ok"]]
        return statistics.median(rs) if rs else None
    first = meta["binaries"][0]["label"]
    rows = []
    for k in keys:
        figs = [f for f in map(per_run, by_key[k].values()) if f]
        row = dict(zip(("workload", "link", "mode", "binary"), k))
        row["failed"] = len(by_key[k]) - len(figs)
        if figs:
            row.update({f: statistics.median(x[f] for x in figs) for f in figs[0]})
        row["exchange"] = exchange(next(iter(by_key[k].values()))["gradients"])
        row["vs_allreduce"] = ratio(k, (k[0], k[1], "allreduce", k[3]))
        row["vs_first"] = ratio(k, (k[0], k[1], k[2], first))
        row["runs"] = [by_key[k][i] for i in sorted(by_key[k])]
        rows.append(row)
    two = len(meta["binaries"]) > 1
    print(f"\ncaviar cluster bench: {meta['ranks']}, median of {meta['reps']} runs "
          f"(OMP_NUM_THREADS=1, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')})")
    for b in meta["binaries"]:
        print(f"  {b['label']}: {b['path']}  (OpenBLAS core {b['openblas_core']})")
    for w, d in meta["workloads"].items():
        print(f"  workload {w}: {d}")
    for l, d in meta["links"].items():
        print(f"  link {l}: {d}")
    if "tcp" in meta:
        print(f"  TCP between hosts: {meta['tcp']}")
    head = (f"{'wl':2} {'link':12} {'mode':16} {'binary':8} {'exchange':14} {'samples/s':>9} "
            f"{'step ms':>8} {'comm ms':>8} {'comm %':>6} {'vs allred':>9}")
    if two:
        head += f" {'vs ' + first:>9}"
    print("\n" + head + "\n" + "-" * len(head))
    fmt = lambda v, f: format(v, f) if v is not None else "-"
    last = None
    for r in rows:
        if last and last != (r["workload"], r["link"]):
            print()
        last = (r["workload"], r["link"])
        line = (f"{r['workload']:2} {r['link']:12} {r['mode']:16} {r['binary']:8} "
                f"{r['exchange']:14} ")
        if "sps" in r:
            line += (f"{r['sps']:9.0f} {r['step_ms']:8.2f} {r['comm_ms']:8.2f} "
                     f"{r['comm_pct']:5.0f}% {fmt(r['vs_allreduce'], '9.2f')}")
            if two:
                line += f" {fmt(r['vs_first'], '9.2f')}"
        if r["failed"]:
            line += f"  ({r['failed']} failed)"
        print(line)
    json.dump({**meta, "rows": rows}, open(out, "w"), indent=1)
    print(f"\nwrote {out}")
    return 1 if any(r["failed"] for r in rows) else 0

if __name__ == "__main__":
    cmd = sys.argv[1]
    sys.exit({"probe": probe, "record": record, "report": report}[cmd](*sys.argv[2:]) or 0)
PY

# openblas_core BIN: the OpenBLAS kernels BIN runs with this environment
openblas_core() {
    local lib
    lib=$(ldd "$1" | awk '/libopenblas/ { print $3; exit }')
    [ -n "$lib" ] || { echo "not OpenBLAS"; return; }
    "$PY" -c 'import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
for f in (lib.openblas_get_corename, lib.openblas_get_config):
    f.restype = ctypes.c_char_p
print(lib.openblas_get_corename().decode(), "-", lib.openblas_get_config().decode())' "$lib"
}

# probe_link: the current link's round trip and 4 MiB transfer time
probe_link() {
    timeout 60 ip netns exec "$ns2" "$PY" "$TMP/bench.py" probe server "$ip2" &
    local server=$!
    timeout 60 ip netns exec "$ns1" "$PY" "$TMP/bench.py" probe client "$ip2" || echo "probe failed"
    wait "$server" || true
}

# run_one WORKLOAD LINK MODE I REP: one training run of binary I, recorded
run_one() {
    local w=$1 link=$2 mode=$3 i=$4 rep=$5 dir=$TMP/run rc=0
    local -a args
    # shellcheck disable=SC2207  # the overrides have no spaces
    args=(train "$here/configs/${cfg[$w]}" "run.dir=$dir" "data.train=$data"
          "train.batch=${batch[$w]}" train.epochs=1000 "train.max_steps=${steps[$w]}"
          $(mode_overrides "$mode"))
    rm -rf "$dir"
    CAVIAR=${bins[$i]}
    if [ "$link" = local ]; then
        run_np $((2 * per_host)) "${args[@]}" >"$TMP/log" 2>&1 || rc=$?
    else
        PER_HOST=$per_host run_two_hosts "${args[@]}" >"$TMP/log" 2>&1 || rc=$?
    fi
    case $rc in
        0) ;;
        124 | 137) echo "timed out after $STEP_TIMEOUT s" >>"$TMP/log" ;;
        *) echo "exit status $rc" >>"$TMP/log" ;;
    esac
    "$PY" "$TMP/bench.py" record "$TMP/results.jsonl" "$TMP/log" "$dir/metrics.jsonl" \
        "$w" "$link" "$mode" "${labels[$i]}" "$rep" "${batch[$w]}" || {
        echo "FAILED: workload $w, link $link, mode $mode, ${labels[$i]} (rep $rep):" >&2
        tail -n 15 "$TMP/log" >&2
    }
}

# the header (binaries, workloads, links: shaped, then probed), as lines
# of tab-separated fields
if [ "$per_host" = 1 ]; then ranks="2 hosts x 1 rank"; else ranks="2 hosts x $per_host ranks"; fi
printf 'reps\t%s\nranks\t%s\n' "$reps" "$ranks" >"$TMP/meta.tsv"
for i in "${!bins[@]}"; do
    printf 'binary\t%s\t%s\t%s\n' "${labels[$i]}" "${bins[$i]}" "$(openblas_core "${bins[$i]}")"
done >>"$TMP/meta.tsv"
for w in "${workload_list[@]}"; do
    printf 'workload\t%s\t%s, batch %d, %d steps\n' "$w" "${cfg[$w]}" "${batch[$w]}" "${steps[$w]}"
done >>"$TMP/meta.tsv"
# shellcheck disable=SC2119  # no shaping yet: two_hosts_link does it per link
if $two_hosts; then
    two_hosts_setup
    for ns in "$ns1" "$ns2"; do
        [ "$tcp_cc" = host ] || ip netns exec "$ns" sysctl -qw "net.ipv4.tcp_congestion_control=$tcp_cc" \
            2>/dev/null || ip netns exec "$ns" sysctl -qw net.ipv4.tcp_congestion_control=reno
    done
    printf 'tcp\t%s congestion control, slow start after idle %s\n' \
        "$(ip netns exec "$ns1" sysctl -n net.ipv4.tcp_congestion_control)" \
        "$(ip netns exec "$ns1" sysctl -n net.ipv4.tcp_slow_start_after_idle)" >>"$TMP/meta.tsv"
fi
for l in "${link_list[@]}"; do
    if [ "$l" = local ]; then
        desc="one host, plain mpirun -np $((2 * per_host)) (shared memory)"
    else
        # shellcheck disable=SC2046  # "RATE RTT": two arguments
        two_hosts_link $(link_spec "$l")
        [ "$link_qdisc" != none ] || link_qdisc="no qdisc"
        desc="veth, $link_qdisc; $(probe_link)"
    fi
    printf 'link\t%s\t%s\n' "$l" "$desc" >>"$TMP/meta.tsv"
done

total=$((reps * ${#workload_list[@]} * ${#link_list[@]} * ${#mode_list[@]} * ${#bins[@]})) n=0
for rep in $(seq "$reps"); do
    for w in "${workload_list[@]}"; do
        for l in "${link_list[@]}"; do
            # shellcheck disable=SC2046
            [ "$l" = local ] || two_hosts_link $(link_spec "$l")
            for m in "${mode_list[@]}"; do
                for i in "${!bins[@]}"; do
                    n=$((n + 1))
                    echo "[$n/$total] rep $rep: workload $w, link $l, mode $m, ${labels[$i]}" >&2
                    run_one "$w" "$l" "$m" "$i" "$rep"
                done
            done
        done
    done
done
"$PY" "$TMP/bench.py" report "$TMP/results.jsonl" "$TMP/meta.tsv" "$out"
