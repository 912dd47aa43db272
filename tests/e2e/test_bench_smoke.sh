#!/usr/bin/env bash
# A smoke run of the benchmark harness (a few steps, one repetition, no
# PyTorch): it runs end to end and writes well-formed JSON with a figure for
# every caviar configuration.
source "$(dirname "$0")/lib.sh"
fm_data
"$PY" "$ROOT/tests/bench/run.py" --caviar "$CAVIAR" --data "$DATA/fm.h5" --out "$TMP/b.json" \
    --smoke --no-torch --workloads a >"$TMP/out.txt" 2>&1 || { cat "$TMP/out.txt"; fail "bench"; }
"$PY" - "$TMP/b.json" <<'PY' || fail "bench JSON"
import json, sys
b = json.load(open(sys.argv[1]))
assert b["sgemm_peak"]["1"]["gflops"] > 1  # JSON keys are strings
c = b["workloads"]["a"]["caviar"]
assert set(c) == {"1x1", "1x2", "2x1"}, c.keys()
for v in c.values():
    assert v["samples_per_s"] > 0 and v["peak_rss_mb"] > 0 and v["anon_rss_mb"] > 0, v
    assert abs(sum(v["breakdown_pct"].values()) - 100) < 1e-6, v
PY
ok "bench harness smoke run"
