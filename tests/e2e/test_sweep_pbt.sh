#!/usr/bin/env bash
# Sweeps that learn, through the CLI (docs/sweeps.md):
#  - bad input for pbt and tpe: each one message naming the key, non-zero
#    exit on every rank, before anything trains, no results written;
#  - a pbt sweep (4 members, 2 groups, ready every epoch) stopped by SIGTERM
#    to its ranks after its first exploit step and resumed ends with the
#    same results, lineage and models as an uninterrupted one; the lineage
#    is consistent (every parent existed and was better at that time); the
#    report has the lineage section; a refused resume names the key;
#  - a pbt sweep over train.lr, 1 - beta1, a dropout keep and the
#    augmentation shift: best.yaml replays the best member's whole schedule
#    (train.schedule) as one plain run, which ends with exactly the member's
#    parameters; a bad train.schedule is refused;
#  - train.schedule of keep and shift from epoch 0 trains exactly as the
#    config's own values; a run stopped after keep and shift changed and
#    resumed mid-epoch ends with the uninterrupted run's parameters;
#  - train.schedule in steps (unit: steps) at the epoch starts trains as
#    the epoch schedule, and with changes within epochs resumes exactly;
#  - sweep.ready = 2 over 4 epochs: two generations, one exploit step;
#  - a results line whose value is outside its choice is refused on resume;
#  - a tpe sweep runs its start-up trials as random draws, then proposals.
source "$(dirname "$0")/lib.sh"
fm_data
base=$(tiny_config)

# pbt_config FILE: 4 members over lr and the dropout keep, 4 epochs, ready 1.
pbt_config() {
    sed -e "s/epochs: 2, seed: 3/epochs: 4, seed: 3/" -e "s/units: 64/units: 32/" "$base" >"$1"
    cat >>"$1" <<YAML
sweep:
  trials: 4
  strategy: pbt
  ready: 1
  space:
    train.lr: log_uniform(1e-4, 1e-2)
    model.layers.1.keep: uniform(0.5, 1)
YAML
}
pbt_config "$TMP/p.yaml"

# ---- bad input
bad() { # PATTERN NP ARGS...
    local pattern=$1 np=$2
    shift 2
    expect_fail "$pattern" run_np "$np" sweep "$@"
}
bad "sweep.trials = 2: a pbt population smaller than its 3 groups" 3 "$TMP/p.yaml" \
    sweep.trials=2 run.dir="$TMP/bad"
bad "sweep.trials = 1: pbt needs a population of at least 2" 1 "$TMP/p.yaml" sweep.trials=1 \
    run.dir="$TMP/bad"
bad "sweep.ready = 4 epochs is not shorter than the training" 2 "$TMP/p.yaml" sweep.ready=4 \
    run.dir="$TMP/bad"
bad "sweep.space changes the architecture \(model.layers.0.units differs\)" 2 "$TMP/p.yaml" \
    'sweep.space={model.layers.0.units: "int_uniform(16, 48)"}' run.dir="$TMP/bad"
bad "sweep.space.train.optimizer: pbt members copy" 2 "$TMP/p.yaml" \
    'sweep.space={train.optimizer: "choice(adam, momentum)"}' run.dir="$TMP/bad"
bad "sweep.tpe_startup = 10 random trials is not less than sweep.trials = 4" 2 "$TMP/p.yaml" \
    sweep.strategy=tpe run.dir="$TMP/bad"
bad "every key is a choice of one value: tpe has nothing to model" 2 "$TMP/p.yaml" \
    sweep.strategy=tpe sweep.tpe_startup=2 'sweep.space={train.optimizer: "choice(adam)"}' \
    run.dir="$TMP/bad"
bad "sweep.pbt_fraction" 2 "$TMP/p.yaml" sweep.pbt_fraction=0.7 run.dir="$TMP/bad"
bad "sweep.direction" 2 "$TMP/p.yaml" sweep.direction=up run.dir="$TMP/bad"
bad "--trial needs sweep.strategy random or grid: pbt decides" 1 "$TMP/p.yaml" --trial 0 \
    run.dir="$TMP/bad"
[ ! -e "$TMP/bad/sweep/results.jsonl" ] || fail "a refused sweep wrote results"
ok "pbt/tpe bad input refused before training, each naming its key"

# ---- pbt: uninterrupted, then stopped by SIGTERM and resumed
run_np 2 sweep "$TMP/p.yaml" run.dir="$TMP/ref" >"$TMP/ref.txt" || { cat "$TMP/ref.txt"; fail "pbt"; }
grep -q '"status":"exploit"' "$TMP/ref/sweep/results.jsonl" || fail "no exploit step"
# term_after_exploit CONFIG DIR ARGS...: a pbt sweep on 2 ranks, its ranks
# sent SIGTERM once its first exploit step is recorded, as a batch
# system's preemption does (mpirun itself would end the job on a TERM of
# its own): exit 75 with a job interrupted; output in DIR.txt.
term_after_exploit() {
    local cfg=$1 dir=$2 rc=0
    shift 2
    timeout -k 10 "$STEP_TIMEOUT" mpirun -np 2 --bind-to none "$CAVIAR" sweep "$cfg" \
        run.dir="$dir" "$@" >"$dir.txt" 2>&1 &
    local pid=$!
    for i in $(seq 1 1800); do # until the first exploit step is recorded
        grep -q '"status":"exploit"' "$dir/sweep/results.jsonl" 2>/dev/null && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.05
    done
    pkill -TERM -f "^$CAVIAR sweep $cfg run.dir=$dir" || fail "no pbt sweep to signal ($dir)"
    wait $pid || rc=$?
    [ "$rc" -eq 75 ] || { cat "$dir.txt"; fail "stopped pbt ($dir): expected exit 75, got $rc"; }
    grep -q '"status":"interrupted"' "$dir/sweep/results.jsonl" ||
        fail "stopped pbt ($dir): no job was interrupted (stopped too late to test a resume)"
}
term_after_exploit "$TMP/p.yaml" "$TMP/int"
bad "1 key\(s\) differ .*: train.lr: 2.0e-3 -> 3e-3" 2 "$TMP/p.yaml" run.dir="$TMP/int" train.lr=3e-3 --resume
run_np 2 sweep "$TMP/p.yaml" run.dir="$TMP/int" --resume >"$TMP/res.txt" ||
    { cat "$TMP/res.txt"; fail "pbt resume"; }
grep -q "result line(s) kept" "$TMP/res.txt" || fail "resume did not replay results"
# the same lines (order aside: groups finish in any order), interrupted ones aside
lines() {
    "$PY" - "$1" <<'PY'
import json, sys
keep = ("trial", "rung", "epochs", "steps", "status", "value", "params", "parent",
        "parent_value")
rows = [json.loads(l) for l in open(sys.argv[1])]
for r in sorted(json.dumps({k: r.get(k) for k in keep}, sort_keys=True)
                for r in rows if r["status"] != "interrupted"):
    print(r)
PY
}
diff <(lines "$TMP/ref/sweep/results.jsonl") <(lines "$TMP/int/sweep/results.jsonl") ||
    fail "resumed pbt results differ from the uninterrupted sweep's"
for t in 0 1 2 3; do
    want=$(params_hash "$TMP/ref/sweep/trial-000$t/model.h5")
    got=$(params_hash "$TMP/int/sweep/trial-000$t/model.h5")
    [ "$got" = "$want" ] || fail "member $t: params $got != uninterrupted $want"
done
# lineage: each exploit line's parent had a job line at that generation
# with the recorded value, better than the copier's own
"$PY" - "$TMP/int/sweep/results.jsonl" <<'PY' || fail "lineage is not consistent"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
jobs = {(r["trial"], r["rung"]): r for r in rows if r["status"] in ("done", "paused", "failed")}
ex = [r for r in rows if r["status"] == "exploit"]
assert ex, "no exploit lines"
for r in ex:
    p, k = r["parent"], r["rung"]
    assert p != r["trial"], r
    assert (p, k) in jobs and jobs[(p, k)]["value"] == r["parent_value"], r
    assert (r["trial"], k) in jobs and jobs[(r["trial"], k)].get("value") == r["value"], r
    assert r["value"] is None or r["parent_value"] > r["value"], r
    assert (r["trial"], k + 1) in jobs, ("no next generation", r)
    assert jobs[(r["trial"], k + 1)]["params"] == r["params"], ("values not used", r)
print(len(ex), "exploit steps consistent")
PY
"$CAVIAR" report "$TMP/int" -o "$TMP/report.html" >/dev/null || fail "report"
grep -q 'id="s0-lineage"' "$TMP/report.html" && grep -q 'id="s0-schedule"' "$TMP/report.html" ||
    fail "report: no lineage or schedule"
ok "pbt: SIGTERM after an exploit step (exit 75), resumed: same results, lineage and models"

# ---- pbt over schedulable keys: best.yaml replays the best member exactly
"$PY" - "$DATA/fm.h5" "$TMP/small.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1]) as s, h5py.File(sys.argv[2], "w") as d:
    for k in ("X", "y"):
        d[k] = s["dev"][k][:1000]
    for k, v in s["dev"].attrs.items():
        d.attrs[k] = v
PY
space='{train.lr: "log_uniform(1e-4, 1e-2)", train.beta1: "one_minus_log_uniform(0.5, 0.99)",
  model.layers.1.keep: "uniform(0.5, 1)", data.augment.shift: "int_uniform(0, 3)"}'
run_np 2 sweep "$TMP/p.yaml" run.dir="$TMP/rep" data.train="$TMP/small.h5" data.dev="$TMP/small.h5" \
    'model.input=[1, 28, 28]' "sweep.space=$space" >"$TMP/rep.txt" ||
    { cat "$TMP/rep.txt"; fail "pbt over lr, beta1, keep and shift"; }
grep -q "best.yaml replays trial" "$TMP/rep.txt" || fail "best.yaml does not replay the schedule"
for k in train.lr train.beta1 model.layers.1.keep data.augment.shift; do
    grep -A1 "^    $k:\$" "$TMP/rep/sweep/best.yaml" | grep -q "^      0: " ||
        { cat "$TMP/rep/sweep/best.yaml"; fail "best.yaml: no train.schedule of $k"; }
done
best=$(sed -n 's/^best: trial \([0-9]*\),.*/\1/p' "$TMP/rep.txt")
# the lineage changed the keep and the shift of some member (else the
# replay below would not show that they are scheduled)
"$PY" - "$TMP/rep/sweep/results.jsonl" <<'PY' || fail "no exploit step changed keep and shift"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
jobs = {(r["trial"], r["rung"]): r["params"] for r in rows if r["status"] in ("done", "paused")}
ex = [r for r in rows if r["status"] == "exploit"]
for k in ("model.layers.1.keep", "data.augment.shift"):
    assert any(r["params"][k] != jobs[(r["trial"], r["rung"])][k] for r in ex), k
PY
run_np 1 train "$TMP/rep/sweep/best.yaml" >/dev/null || fail "best.yaml does not train"
want=$(params_hash "$TMP/rep/sweep/trial-000$best/model.h5")
got=$(params_hash "$TMP/rep/best/model.h5")
[ "$got" = "$want" ] || fail "replay of trial $best: params $got != the member's $want"
expect_fail "train.schedule.train.batch" run_np 1 train "$TMP/rep/sweep/best.yaml" \
    run.dir="$TMP/rep-bad" 'train.schedule={train.batch: {0: 64}}'
expect_fail "train.schedule.train.lr.-1" run_np 1 train "$TMP/rep/sweep/best.yaml" \
    run.dir="$TMP/rep-bad" 'train.schedule={train.lr: {-1: 0.1}}'
ok "pbt: best.yaml replays trial $best's schedule (lr, beta1, keep, shift) in one run, to the same parameters"

# ---- sweep.ready: 2 over 4 epochs: generations end after epochs 2 and 4
run_np 2 sweep "$TMP/p.yaml" run.dir="$TMP/rd2" data.train="$TMP/small.h5" \
    data.dev="$TMP/small.h5" sweep.ready=2 >"$TMP/rd2.txt" || { cat "$TMP/rd2.txt"; fail "ready 2"; }
"$PY" - "$TMP/rd2/sweep/results.jsonl" <<'PY' || fail "sweep.ready = 2: generations are not 2 epochs"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
jobs = sorted((r["trial"], r["rung"], r["epochs"]) for r in rows if r["status"] != "exploit")
assert jobs == [(t, g, 2 * (g + 1)) for t in range(4) for g in range(2)], jobs
ex = [(r["rung"], r["epochs"]) for r in rows if r["status"] == "exploit"]
assert ex and all(e == (0, 2) for e in ex), ex
PY
ok "pbt: sweep.ready = 2 makes generations of 2 epochs (one exploit step in 4 epochs)"

# ---- sweep.ready_steps: generations of 300 global steps over 3 epochs of
# 430 (55,000 rows, batch 128, one rank a member): exploit steps within
# epochs, stopped and resumed exactly, replayed as one run with a step
# schedule
sed '/^  ready: 1$/d' "$TMP/p.yaml" >"$TMP/ps.yaml" # ready_steps instead
steps_sweep() { # DIR ARGS...
    local d=$1
    shift
    run_np 2 sweep "$TMP/ps.yaml" run.dir="$d" train.epochs=3 sweep.ready_steps=300 "$@"
}
bad "sweep.ready and sweep.ready_steps are both given" 2 "$TMP/p.yaml" sweep.ready_steps=300 \
    run.dir="$TMP/bad"
for v in 0 -3; do
    bad "sweep.ready_steps = $v: expected" 2 "$TMP/ps.yaml" sweep.ready_steps=$v \
        run.dir="$TMP/bad"
done
bad "sweep.ready_steps = 16 steps is not shorter than the training \(sweep.max_epochs = 2 of 8 steps" \
    2 "$TMP/ps.yaml" data.train="$TMP/small.h5" train.epochs=2 sweep.ready_steps=16 \
    run.dir="$TMP/bad"
steps_sweep "$TMP/sref" >"$TMP/sref.txt" || { cat "$TMP/sref.txt"; fail "pbt in steps"; }
"$PY" - "$TMP/sref/sweep/results.jsonl" <<'PY' || fail "sweep.ready_steps = 300: not generations of 300 steps"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
jobs = sorted((r["trial"], r["rung"], r["steps"]) for r in rows if r["status"] != "exploit")
gens = (300, 600, 900, 1200, 1290)
assert jobs == [(t, g, s) for t in range(4) for g, s in enumerate(gens)], jobs
ex = [r for r in rows if r["status"] == "exploit"]
assert ex and all(r["steps"] == 300 * (r["rung"] + 1) for r in ex), ex
PY
term_after_exploit "$TMP/ps.yaml" "$TMP/sint" train.epochs=3 sweep.ready_steps=300
steps_sweep "$TMP/sint" --resume >"$TMP/sres.txt" || { cat "$TMP/sres.txt"; fail "step pbt resume"; }
diff <(lines "$TMP/sref/sweep/results.jsonl") <(lines "$TMP/sint/sweep/results.jsonl") ||
    fail "resumed step pbt results differ from the uninterrupted sweep's"
for t in 0 1 2 3; do
    [ "$(params_hash "$TMP/sint/sweep/trial-000$t/model.h5")" = \
        "$(params_hash "$TMP/sref/sweep/trial-000$t/model.h5")" ] ||
        fail "step pbt member $t: resumed params differ"
done
grep -A1 "^    unit: steps" "$TMP/sref/sweep/best.yaml" >/dev/null || fail "best.yaml: no unit: steps"
best=$(sed -n 's/^best: trial \([0-9]*\),.*/\1/p' "$TMP/sref.txt")
run_np 1 train "$TMP/sref/sweep/best.yaml" >/dev/null || fail "step best.yaml does not train"
[ "$(params_hash "$TMP/sref/best/model.h5")" = "$(params_hash "$TMP/sref/sweep/trial-000$best/model.h5")" ] ||
    fail "replay of step pbt trial $best: params differ from the member's"
ok "pbt: sweep.ready_steps = 300: generations of 300 steps, resumed exactly after SIGTERM, replayed in one run"

# ---- train.schedule of keep and shift: a point at epoch 0 is the config's
# own value; a change mid-run resumes byte-exact
sched_run() { # DIR ARGS...
    local d=$1
    shift
    run_np 2 train "$TMP/p.yaml" run.dir="$d" data.train="$TMP/small.h5" data.dev="$TMP/small.h5" \
        'model.input=[1, 28, 28]' train.epochs=3 "$@" >"$d.txt" 2>&1 || { cat "$d.txt"; return 1; }
}
sched_run "$TMP/own" model.layers.1.keep=0.5 data.augment.shift=2 || fail "keep 0.5, shift 2"
sched_run "$TMP/at0" 'train.schedule={model.layers.1.keep: {0: 0.5}, data.augment.shift: {0: 2}}' ||
    fail "scheduled from epoch 0"
[ "$(params_hash "$TMP/at0/model.h5")" = "$(params_hash "$TMP/own/model.h5")" ] ||
    fail "a schedule from epoch 0 differs from the config's own keep and shift"
mid='train.schedule={model.layers.1.keep: {1: 0.5, 2: 0.7}, data.augment.shift: {1: 2}}'
sched_run "$TMP/mid" "$mid" || fail "schedule changing keep and shift"
[ "$(params_hash "$TMP/mid/model.h5")" != "$(params_hash "$TMP/own/model.h5")" ] ||
    fail "the keep/shift schedule changed nothing"
# 1000 rows at batch 128: 8 steps an epoch; stop at step 3 of the second
# epoch (0-based epoch 1), after keep and shift changed
rc=0
run_np 2 train "$TMP/p.yaml" run.dir="$TMP/cut" data.train="$TMP/small.h5" data.dev="$TMP/small.h5" \
    'model.input=[1, 28, 28]' train.epochs=3 "$mid" --stop-after-steps 11 >"$TMP/cut0.txt" 2>&1 ||
    rc=$?
[ "$rc" -eq 75 ] || { cat "$TMP/cut0.txt"; fail "stop after 11 steps: exit $rc, not 75"; }
sched_run "$TMP/cut" "$mid" run.resume=auto || fail "resume"
grep -q "resuming from .*: epoch 2, step 3 " "$TMP/cut.txt" ||
    { cat "$TMP/cut.txt"; fail "the second run did not resume at step 3 of epoch 2"; }
[ "$(params_hash "$TMP/cut/model.h5")" = "$(params_hash "$TMP/mid/model.h5")" ] ||
    fail "resumed mid-epoch with a keep/shift schedule: params differ from the uninterrupted run"
expect_fail "train.schedule.model.layers.0.keep: layer 0 is dense, not a dropout layer" \
    run_np 1 train "$TMP/p.yaml" run.dir="$TMP/rep-bad" 'train.schedule={model.layers.0.keep: {0: 0.5}}'
ok "train.schedule of keep and shift: from epoch 0 = the config's own; resumed mid-run byte-exact"

# ---- train.schedule in steps: points at the epoch starts (8 steps an
# epoch) train as the epoch schedule; changes within an epoch resume exactly
sched_run "$TMP/st" 'train.schedule={unit: steps, model.layers.1.keep: {8: 0.5, 16: 0.7},
  data.augment.shift: {8: 2}}' || fail "a schedule in steps"
[ "$(params_hash "$TMP/st/model.h5")" = "$(params_hash "$TMP/mid/model.h5")" ] ||
    fail "a step schedule at the epoch starts differs from the same epoch schedule"
within='train.schedule={unit: steps, model.layers.1.keep: {5: 0.5}, data.augment.shift: {3: 1},
  train.lr: {13: 1.0e-3}}'
sched_run "$TMP/win" "$within" || fail "a schedule changing within epochs"
[ "$(params_hash "$TMP/win/model.h5")" != "$(params_hash "$TMP/st/model.h5")" ] ||
    fail "changes within an epoch changed nothing"
rc=0
run_np 2 train "$TMP/p.yaml" run.dir="$TMP/wcut" data.train="$TMP/small.h5" \
    data.dev="$TMP/small.h5" 'model.input=[1, 28, 28]' train.epochs=3 "$within" \
    --stop-after-steps 11 >"$TMP/wcut0.txt" 2>&1 || rc=$?
[ "$rc" -eq 75 ] || { cat "$TMP/wcut0.txt"; fail "step schedule: stop after 11 steps: exit $rc"; }
sched_run "$TMP/wcut" "$within" run.resume=auto || fail "step schedule: resume"
[ "$(params_hash "$TMP/wcut/model.h5")" = "$(params_hash "$TMP/win/model.h5")" ] ||
    fail "resumed at step 11 (between step-schedule points): params differ from the uninterrupted run"
expect_fail "train.schedule.unit = hours: expected epochs or steps" run_np 1 train "$TMP/p.yaml" \
    run.dir="$TMP/rep-bad" 'train.schedule={unit: hours, train.lr: {0: 0.1}}'
ok "train.schedule in steps: = the epoch schedule at epoch starts; changes within epochs resume exactly"

# ---- a value outside its choice in results.jsonl is refused on resume
cp -r "$TMP/ref" "$TMP/edit"
sed -i -e "s|$TMP/ref|$TMP/edit|g" "$TMP/edit/sweep/config.yaml" # the run.dir override
"$PY" - "$TMP/edit/sweep/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rows[0]["params"]["model.layers.1.keep"] = 7
open(sys.argv[1], "w").write("".join(json.dumps(r) + "\n" for r in rows))
PY
bad "trial [0-9]+ has model.layers.1.keep = '7', outside sweep.space.model.layers.1.keep" 2 \
    "$TMP/p.yaml" run.dir="$TMP/edit" --resume
ok "a value outside its distribution in the results is refused on resume"

# ---- tpe: start-up draws are random search's, then proposals
sed -e "s/strategy: pbt/strategy: tpe/" -e "s/trials: 4/trials: 5/" "$TMP/p.yaml" >"$TMP/t.yaml"
run_np 2 sweep "$TMP/t.yaml" run.dir="$TMP/tpe" sweep.tpe_startup=3 train.epochs=1 \
    >"$TMP/tpe.txt" || { cat "$TMP/tpe.txt"; fail "tpe"; }
sed -e "s/strategy: pbt/strategy: random/" -e "s/trials: 4/trials: 5/" "$TMP/p.yaml" >"$TMP/r.yaml"
run_np 2 sweep "$TMP/r.yaml" run.dir="$TMP/rnd" train.epochs=1 train.max_steps=1 >/dev/null ||
    fail "random"
"$PY" - "$TMP/tpe/sweep/results.jsonl" "$TMP/rnd/sweep/results.jsonl" <<'PY' ||
import json, sys
t = {r["trial"]: r["params"] for r in map(json.loads, open(sys.argv[1])) if r["status"] == "done"}
r = {r["trial"]: r["params"] for r in map(json.loads, open(sys.argv[2]))}
assert len(t) == 5, t
assert all(t[i] == r[i] for i in range(3)), "start-up trials are not the random draws"
assert any(t[i] != r[i] for i in (3, 4)), "no proposal differs from a random draw"
PY
    fail "tpe start-up/proposals"
ok "tpe: 3 start-up trials as random search draws them, then 2 proposals"
