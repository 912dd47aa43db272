#!/usr/bin/env bash
# Train a small MLP on 2 ranks, then eval (1 and 2 ranks must agree),
# predict to .h5 and .csv, inspect; metrics.jsonl has one line per epoch.
source "$(dirname "$0")/lib.sh"
fm_data
cfg=$(tiny_config)
run_np 2 train "$cfg" train.max_steps=0 >"$TMP/train.txt"
cat "$TMP/train.txt"
[ -f "$TMP/run/model.h5" ] || fail "no model.h5"
[ "$(grep -c '"event":"epoch"' "$TMP/run/metrics.jsonl")" -eq 2 ] || fail "expected 2 epoch lines"
grep -q 'samples/s' "$TMP/train.txt" || fail "no human epoch line"

run_np 1 eval --json "$TMP/run/model.h5" "$DATA/fm-test.h5" >"$TMP/e1.json"
run_np 2 eval --json "$TMP/run/model.h5" "$DATA/fm-test.h5" >"$TMP/e2.json"
acc1=$(json_get "$TMP/e1.json" accuracy)
acc2=$(json_get "$TMP/e2.json" accuracy)
[ "$acc1" = "$acc2" ] || fail "eval on 1 and 2 ranks differ: $acc1 vs $acc2"
"$PY" - "$TMP/e1.json" <<'PY' || fail "eval JSON"
import json, sys
e = json.loads(open(sys.argv[1]).read())
assert e["count"] == 10000, e["count"]
assert e["accuracy"] > 0.80, e["accuracy"]
for k in ("loss", "precision", "recall", "f1"):
    assert 0 < e[k] < 2, (k, e[k])
c = e["confusion"]
assert len(c) == 10 and sum(map(sum, c)) == 10000
assert abs(sum(c[i][i] for i in range(10)) / 10000 - e["accuracy"]) < 1e-9
PY
ok "eval accuracy $acc1 (1 and 2 ranks agree)"

run_np 2 predict "$TMP/run/model.h5" "$DATA/fm-test.h5" -o "$TMP/p.csv" >/dev/null
[ "$(wc -l <"$TMP/p.csv")" -eq 10001 ] || fail "csv rows"
run_np 1 predict "$TMP/run/model.h5" "$DATA/fm-test.h5" -o "$TMP/p.h5" >/dev/null
h5dump -H "$TMP/p.h5" | grep -q probabilities || fail "h5 predictions"
"$CAVIAR" inspect "$TMP/run/model.h5" | grep -q "checksums       verify" || fail "inspect"
ok "predict and inspect"
