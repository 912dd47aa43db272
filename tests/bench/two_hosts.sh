#!/usr/bin/env bash
# Train on two network-namespace "hosts" joined by a veth pair, one rank
# each, over TCP (tests/e2e/lib.sh: two_hosts_setup), and print samples/s
# and the step-time breakdown: how the gradient exchange behaves when it
# crosses a network stack instead of shared memory.  Needs root.
#   bash tests/bench/two_hosts.sh build/caviar CONFIG [key=value ...]
# e.g. CONFIG = tests/bench/configs/wide-mlp.yaml (workload b of run.py),
# with comm.compression=bf16 or comm.shard_optimizer=true; run it from the
# repository root (the config's data path is relative).  Both ranks share
# this machine's cores.  LINK="RATE [RTT]" (e.g. LINK="1gbit 50us") shapes
# the link with tc (tests/e2e/lib.sh: two_hosts_link); by default it is a
# plain veth.  tests/bench/cluster_bench.sh measures every mode and link.
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,14p "$0"; exit 2; }
caviar=$1 cfg=$(realpath "$2")
shift 2
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$(dirname "$0")/../e2e/lib.sh" "$caviar" "$(dirname "$0")/../.."
# shellcheck disable=SC2086  # LINK is "RATE RTT": two arguments, or none
two_hosts_setup ${LINK:-}
[ -z "${LINK:-}" ] || echo "link: $link_qdisc"
run_two_hosts train "$cfg" run.dir="$TMP/run" "$@" >"$TMP/log" 2>&1 || { cat "$TMP/log"; exit 1; }
grep "^gradients:" "$TMP/log" || true
"$PY" - "$TMP/run/metrics.jsonl" <<'PY'
import json, sys
end = [e for e in map(json.loads, open(sys.argv[1])) if e["event"] == "end"][-1]
t = end["time_s"]
total = sum(t.values()) or 1
print(f"{end['samples_per_s']:.0f} samples/s   " +
      "  ".join(f"{k} {100 * v / total:.0f}%" for k, v in t.items()))
PY
