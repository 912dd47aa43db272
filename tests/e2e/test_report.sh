#!/usr/bin/env bash
# `caviar report` in a real browser (issue 22).  Headless Chromium (Debian's
# chromium, installed here if missing) loads each page from disk, takes a
# screenshot, and the page's DOM is checked against numbers computed
# independently from the run's own files with python3:
#  - a run (2 ranks, run.report=true so the page is refreshed every epoch):
#    as many points as epochs in each curve, equal to metrics.jsonl; the
#    confusion heat map equals `caviar eval --json`, its cells sum to the
#    dev rows, rows and columns carry the class names; the per-class table;
#  - an ASHA sweep: the table sorted by the metric as results.jsonl says,
#    one point per finished trial against each hyperparameter, one line per
#    finished trial in parallel coordinates, the rungs, the best trial;
#  - an ensemble: members and ensemble equal `caviar ensemble eval --json`,
#    agreement 1 on the diagonal;
#  - two directories: curves overlaid;
#  - hostile input: not a run directory, a truncated metrics.jsonl, a
#    missing model.h5, a sweep with no finished trial, an unwritable -o.
source "$(dirname "$0")/lib.sh"
fm_data
if ! command -v chromium >/dev/null; then
    timeout -k 10 600 apt-get install -y chromium >"$TMP/apt.log" 2>&1 ||
        fail "chromium is not installed and apt-get install chromium failed"
fi
fm_named "$TMP/named.h5"

shot() { # PAGE.html PNG: load in Chromium, screenshot, DOM to PAGE.dom
    timeout -k 10 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --window-size=1300,2000 --screenshot="$2" "file://$1" >/dev/null 2>&1 ||
        fail "chromium could not screenshot $1"
    timeout -k 10 120 chromium --headless --no-sandbox --disable-gpu --dump-dom "file://$1" \
        2>/dev/null >"${1%.html}.dom" || fail "chromium could not load $1"
    "$PY" - "$2" <<'PY' || fail "screenshot $2 is blank"
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGB")
colours = len(set(im.resize((325, 500)).getdata()))
assert im.size == (1300, 2000) and colours > 50, (im.size, colours)
PY
}

cat >"$TMP/mlp.yaml" <<YAML
data: {train: "$DATA/fm.h5#dev", dev: "$TMP/named.h5"}
model:
  input: [784]
  layers:
    - {type: dense, units: 32, activation: relu}
    - {type: dense, units: 10, activation: softmax}
train: {optimizer: adam, lr: 2.0e-3, batch: 128, epochs: 3, seed: 3}
run: {dir: $TMP/run, progress: 0, report: true}
sweep:
  trials: 5
  strategy: asha
  eta: 3
  max_epochs: 3
  space:
    train.lr: log_uniform(1e-4, 1e-2)
    model.layers.0.units: int_uniform(8, 48)
YAML
run_np 2 train "$TMP/mlp.yaml" >"$TMP/train.txt" 2>&1 || { cat "$TMP/train.txt"; fail "train"; }
[ -s "$TMP/run/report.html" ] || fail "run.report=true wrote no RUN_DIR/report.html"
grep -q "warning" "$TMP/train.txt" && fail "report refresh warned: $(grep warning "$TMP/train.txt")"
"$CAVIAR" eval "$TMP/run/model.h5" "$TMP/named.h5" --json >"$TMP/eval.json" || fail "eval"

"$CAVIAR" report "$TMP/run" -o "$TMP/run.html" >/dev/null || fail "report run"
shot "$TMP/run.html" "$TMP/run.png"
"$PY" - "$ROOT/tests/e2e" "$TMP" <<'PY' || fail "the run's page does not show metrics.jsonl / eval"
import json, sys
sys.path.insert(0, sys.argv[1])
from report_dom import Page
tmp = sys.argv[2]
page = Page(open(f"{tmp}/run.dom").read())
hist = [json.loads(l) for l in open(f"{tmp}/run/metrics.jsonl")]
ev = json.load(open(f"{tmp}/eval.json"))
def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))
checks = {("r0-loss", "train loss"): "train_loss", ("r0-loss", "dev loss"): "dev_loss",
          ("r0-accuracy", "train accuracy"): "train_accuracy",
          ("r0-accuracy", "dev accuracy"): "dev_accuracy", ("r0-lr", "learning rate"): "lr",
          ("r0-sps", "samples/s"): "samples_per_s"}
for (svg, series), key in checks.items():
    pts = page.svgs[svg]["series"][series]
    assert len(pts) == len(hist) == 3, (svg, series, len(pts), len(hist))
    for (x, y), h in zip(pts, hist):
        assert x == h["epoch"] and close(y, h[key]), (svg, series, x, y, h["epoch"], h[key])
rows = page.tables["r0-epochs"][1:]
assert [float(r[1]) for r in rows] == [float(f"{h['train_loss']:.6g}") for h in hist], rows
cells = page.svgs["r0-confusion"]["cells"]
assert len(cells) == 100 and sum(v for _, _, v in cells) == 5000 == ev["count"], len(cells)
for i, j, v in cells:
    assert v == ev["confusion"][i][j], (i, j, v)
ticks = page.svgs["r0-confusion"].get("ticks", [])
assert ticks.count("Ankle boot") == 2 and ticks.count("T-shirt/top") == 2, ticks
prf = page.tables["r0-prf"][1:]
assert len(prf) == 10
for row, pc in zip(prf, ev["per_class"]):
    assert row[0] == pc["name"] and abs(float(row[3]) - pc["f1"]) <= 5e-5, (row, pc)
    assert int(row[4]) == pc["support"], (row, pc)
assert not page.notes, page.notes
live = Page(open(f"{tmp}/run/report.html").read())
assert len(live.svgs["r0-loss"]["series"]["train loss"]) == 3, "run.report page is stale"
print("run page: 6 curves x 3 epochs, 100 confusion cells (sum 5000), 10 classes with names")
PY
ok "run: curves equal metrics.jsonl, confusion and per-class equal eval --json, class names"

# An ASHA sweep (2 ranks).
run_np 2 sweep "$TMP/mlp.yaml" run.dir="$TMP/sw" run.report=false >"$TMP/sweep.txt" 2>&1 ||
    { cat "$TMP/sweep.txt"; fail "sweep"; }
"$CAVIAR" report "$TMP/sw" -o "$TMP/sweep.html" >/dev/null || fail "report sweep"
shot "$TMP/sweep.html" "$TMP/sweep.png"
"$PY" - "$ROOT/tests/e2e" "$TMP" <<'PY' || fail "the sweep's page does not show results.jsonl"
import json, math, sys
sys.path.insert(0, sys.argv[1])
from report_dom import Page
tmp = sys.argv[2]
page = Page(open(f"{tmp}/sweep.dom").read())
lines = [json.loads(l) for l in open(f"{tmp}/sw/sweep/results.jsonl")]
best = {}
for r in lines:  # a trial's line of the highest rung (no failures in this sweep)
    if r["trial"] not in best or r["rung"] >= best[r["trial"]]["rung"]:
        best[r["trial"]] = r
order = sorted(best.values(), key=lambda r: (-r["value"], r["trial"]))
table = page.tables["s0-results"]
assert table[0][4] == "dev.accuracy", table[0]
assert [int(r[1]) for r in table[1:]] == [r["trial"] for r in order], (table, order)
for row, r in zip(table[1:], order):
    assert abs(float(row[4]) - r["value"]) <= 1e-5 * abs(r["value"]), (row, r)
n = len(order)
for j, key in enumerate(["train.lr", "model.layers.0.units"]):
    pts = page.svgs[f"s0-param-{j}"]["series"]["dev.accuracy"]
    want = sorted((float(r["params"][key]), r["value"]) for r in order)
    assert len(pts) == n and all(abs(a[0] - b[0]) <= 1e-6 * b[0] and abs(a[1] - b[1]) <= 1e-6
                                 for a, b in zip(sorted(pts), want)), (key, pts, want)
assert page.svgs["s0-param-0"].get("ticks") and "(log)" in open(f"{tmp}/sweep.dom").read()
assert page.svgs["s0-parallel"]["lines"] == n
rungs = page.svgs["s0-rungs"]["series"]
assert sum(len(p) for p in rungs.values()) == sum(1 for r in lines if r["status"] != "failed")
assert any(s.startswith("run-1000") for s in [sid for _, sid in page.sections]), page.sections
print(f"sweep page: {n} trials in order, {n} points per hyperparameter, {n} parallel lines, "
      f"{sum(len(p) for p in rungs.values())} rung points")
PY
ok "sweep: table sorted by the metric, metric per hyperparameter (log lr), parallel, rungs, best"

# An ensemble of 3 members (2 ranks).
run_np 2 ensemble train "$TMP/mlp.yaml" run.dir="$TMP/en" train.epochs=1 run.report=false \
    --members 3 >"$TMP/ens.txt" 2>&1 || { cat "$TMP/ens.txt"; fail "ensemble train"; }
"$CAVIAR" ensemble eval $(cat "$TMP/en/ensemble/members.txt") --data "$TMP/named.h5" --json \
    >"$TMP/ens.json" || fail "ensemble eval"
"$CAVIAR" report "$TMP/en" -o "$TMP/ensemble.html" >/dev/null || fail "report ensemble"
shot "$TMP/ensemble.html" "$TMP/ensemble.png"
"$PY" - "$ROOT/tests/e2e" "$TMP" <<'PY' || fail "the ensemble's page does not match ensemble eval"
import json, sys
sys.path.insert(0, sys.argv[1])
from report_dom import Page
tmp = sys.argv[2]
page = Page(open(f"{tmp}/ensemble.dom").read())
ev = json.load(open(f"{tmp}/ens.json"))
bars = page.svgs["e0-members"]["bars"]
want = [m["metrics"]["accuracy"] for m in ev["members"]] + [ev["ensemble"]["accuracy"]]
assert len(bars) == 4 and all(abs(b[1] - w) <= 1e-6 for b, w in zip(bars, want)), (bars, want)
cells = page.svgs["e0-agreement"]["cells"]
assert len(cells) == 9 and all(v == 1 for i, j, v in cells if i == j)
assert all(0 < v <= 1 for _, _, v in cells)
print("ensemble page: 3 members + ensemble equal ensemble eval --json; agreement 3x3")
PY
ok "ensemble: members and ensemble equal ensemble eval --json, agreement heat map"

"$CAVIAR" report "$TMP/run" "$TMP/sw" -o "$TMP/compare.html" >/dev/null || fail "report 2 dirs"
shot "$TMP/compare.html" "$TMP/compare.png"
"$PY" - "$ROOT/tests/e2e" "$TMP" <<'PY' || fail "two directories are not overlaid"
import sys
sys.path.insert(0, sys.argv[1])
from report_dom import Page
page = Page(open(f"{sys.argv[2]}/compare.dom").read())
s = page.svgs["cmp-dev-accuracy"]["series"]
assert len(s) == 2 and all(len(p) >= 1 for p in s.values()), s
PY
ok "two directories: dev accuracy overlaid"

# ---- hostile input ----
mkdir -p "$TMP/empty"
expect_fail "report: error: .*empty is not a run directory" "$CAVIAR" report "$TMP/empty" -o "$TMP/x.html"
[ ! -e "$TMP/x.html" ] || fail "a page was written for a directory that is not a run"
expect_fail "not a run directory" "$CAVIAR" report "$TMP/nope" -o "$TMP/x.html"
cp -r "$TMP/run" "$TMP/killed"
head -c -40 "$TMP/run/metrics.jsonl" >"$TMP/killed/metrics.jsonl"   # a torn last line
rm "$TMP/killed/model.h5"
"$CAVIAR" report "$TMP/killed" -o "$TMP/killed.html" >/dev/null || fail "report on a killed run"
shot "$TMP/killed.html" "$TMP/killed.png"
mkdir -p "$TMP/nofin/sweep"
cp "$TMP/sw/sweep/config.yaml" "$TMP/nofin/sweep/"
"$PY" - "$TMP/sw/sweep/results.jsonl" "$TMP/nofin/sweep/results.jsonl" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).readline())
r.update(status="failed", value=None, message="training diverged")
open(sys.argv[2], "w").write(json.dumps(r) + "\n")
PY
"$CAVIAR" report "$TMP/nofin" -o "$TMP/nofin.html" >/dev/null || fail "report on an unfinished sweep"
shot "$TMP/nofin.html" "$TMP/nofin.png"
"$PY" - "$ROOT/tests/e2e" "$TMP" <<'PY' || fail "damaged input is not reported on the page"
import sys
sys.path.insert(0, sys.argv[1])
from report_dom import Page
tmp = sys.argv[2]
k = Page(open(f"{tmp}/killed.dom").read())
assert len(k.svgs["r0-loss"]["series"]["train loss"]) == 2, "the intact epochs are not shown"
assert any("could not be read" in n for n in k.notes), k.notes
assert any("no evaluation" in n and "model.h5" in n for n in k.notes), k.notes
n = Page(open(f"{tmp}/nofin.dom").read())
assert any("no trial has finished yet" in x for x in n.notes), n.notes
assert len(n.tables["s0-results"]) == 2 and n.tables["s0-results"][1][2] == "failed"
PY
chmod 500 "$TMP/empty"
if [ "$(id -u)" != 0 ]; then
    expect_fail "report: error: .*empty/r.html" "$CAVIAR" report "$TMP/run" -o "$TMP/empty/r.html"
fi
expect_fail "report: error: .*no-such-dir/r.html" "$CAVIAR" report "$TMP/run" -o "$TMP/no-such-dir/r.html"
ok "hostile: not a run (exit 2, no page), torn metrics.jsonl + no model.h5, no finished trial, bad -o"

if [ -n "${CV_REPORT_SHOTS:-}" ]; then   # refresh the screenshots in docs/
    for p in run sweep ensemble compare; do cp "$TMP/$p.png" "$CV_REPORT_SHOTS/report-$p.png"; done
fi
