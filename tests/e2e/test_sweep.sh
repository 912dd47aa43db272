#!/usr/bin/env bash
# Sweeps and ensembles through the CLI:
#  - bad input: each a clear error before training, non-zero exit, no hang;
#  - a random sweep with 2 groups: every trial once, table, best.yaml that
#    trains; the same trials with --trial I + --collect;
#  - a sweep stopped by SIGUSR1 (exit 75) and resumed: finished trials kept,
#    every trial done exactly once, final models identical to an
#    uninterrupted sweep's;
#  - an ensemble trained in 2 groups and evaluated; members that differ.
source "$(dirname "$0")/lib.sh"
fm_data
base=$(tiny_config)


# ---- bad input
sweep_config "$TMP/s.yaml" 4 1
bad() { # PATTERN NP ARGS...
    local pattern=$1 np=$2
    shift 2
    expect_fail "$pattern" run_np "$np" sweep "$@"
}
printf 'data: {train: x.h5}\nmodel: {input: [4], layers: [{type: dense, units: 2, activation: softmax}]}\n' \
    >"$TMP/empty.yaml"
bad "sweep.space is empty" 2 "$TMP/empty.yaml"
bad "positive bounds" 2 "$TMP/s.yaml" 'sweep.space={train.lr: "log_uniform(0, 1)"}'
bad "a < b" 2 "$TMP/s.yaml" 'sweep.space={train.lr: "uniform(0.1, 0.01)"}'
bad "unknown key .*lrr|lrr" 2 "$TMP/s.yaml" 'sweep.space={train.lrr: "log_uniform(1e-3, 1)"}'
bad "ranks_per_trial = 2 does not divide the 3 ranks" 3 "$TMP/s.yaml" sweep.ranks_per_trial=2
bad "3 groups of 1 rank\(s\) for only 2 trials" 3 "$TMP/s.yaml" sweep.trials=2
[ ! -e "$TMP/run/sweep/results.jsonl" ] || fail "a refused sweep wrote results"
ok "bad input refused before training"

# ---- a random sweep in 2 groups
run_np 2 sweep "$TMP/s.yaml" run.dir="$TMP/a" >"$TMP/a.txt" || { cat "$TMP/a.txt"; fail "sweep"; }
[ "$(grep -c '"status":"done"' "$TMP/a/sweep/results.jsonl")" -eq 4 ] || fail "4 done lines"
for t in 0 1 2 3; do
    [ "$(grep -c "^{\"trial\":$t," "$TMP/a/sweep/results.jsonl")" -eq 1 ] || fail "trial $t not once"
done
grep -q "best: trial" "$TMP/a.txt" || fail "no best line"
run_np 1 train "$TMP/a/sweep/best.yaml" run.dir="$TMP/best" train.max_steps=5 >/dev/null ||
    fail "best.yaml does not train"
bad "exists: resume that run with --resume" 2 "$TMP/s.yaml" run.dir="$TMP/a"
bad "belongs to a different config" 2 "$TMP/s.yaml" run.dir="$TMP/a" train.batch=64 --resume
ok "random sweep: 4 trials once each, best.yaml trains, reruns refused"

for t in 0 1 2 3; do
    run_np 1 sweep "$TMP/s.yaml" run.dir="$TMP/arr" --trial $t >/dev/null || fail "--trial $t"
done
run_np 1 sweep "$TMP/s.yaml" run.dir="$TMP/arr" --collect >"$TMP/col.txt" || fail "--collect"
grep -q "collected 4 of 4" "$TMP/col.txt" || fail "collect count"
# the same trials as in the one-job sweep: same sampled hyperparameters
params() { "$PY" -c 'import json,sys; print(sorted(json.dumps(json.loads(l)["params"], sort_keys=True) for l in open(sys.argv[1])))' "$1"; }
[ "$(params "$TMP/arr/sweep/results.jsonl")" = "$(params "$TMP/a/sweep/results.jsonl")" ] ||
    fail "--trial/--collect trials differ from the one-job sweep"
rm -r "$TMP/arr/sweep/trial-0002/result.jsonl"
expect_fail "1 of 4 trial\(s\) have no result" run_np 1 sweep "$TMP/s.yaml" run.dir="$TMP/arr" --collect
ok "--trial + --collect: the same 4 trials; a missing one is named"

# ---- stopped by SIGTERM and resumed
sweep_config "$TMP/long.yaml" 6 3
run_np 2 sweep "$TMP/long.yaml" run.dir="$TMP/ref" >/dev/null || fail "reference sweep"
rc=0
timeout -k 10 "$STEP_TIMEOUT" mpirun -np 2 --bind-to none "$CAVIAR" sweep "$TMP/long.yaml" \
    run.dir="$TMP/int" >"$TMP/int.txt" 2>&1 &
pid=$!
for i in $(seq 1 600); do # until the first trial has finished
    [ -s "$TMP/int/sweep/results.jsonl" ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
# USR1, as SLURM's warning signal: mpirun forwards it to the ranks (a TERM
# to mpirun itself would make mpirun end the job)
pkill -USR1 -f "^mpirun .*sweep $TMP/long.yaml run.dir=$TMP/int" || fail "no sweep to signal"
wait $pid || rc=$?
[ "$rc" -eq 75 ] || { cat "$TMP/int.txt"; fail "stopped sweep: expected exit 75, got $rc"; }
kept=$(grep -c '"status":"done"' "$TMP/int/sweep/results.jsonl")
[ "$kept" -ge 1 ] && [ "$kept" -lt 6 ] || fail "stopped sweep: $kept done trials"
run_np 2 sweep "$TMP/long.yaml" run.dir="$TMP/int" --resume >"$TMP/res.txt" ||
    { cat "$TMP/res.txt"; fail "resume"; }
grep -q "result line(s) kept" "$TMP/res.txt" || fail "resume did not replay results"
for t in 0 1 2 3 4 5; do
    n=$(grep -c "^{\"trial\":$t,.*\"status\":\"done\"" "$TMP/int/sweep/results.jsonl")
    [ "$n" -eq 1 ] || fail "trial $t done $n times after resume"
    want=$(params_hash "$TMP/ref/sweep/trial-000$t/model.h5")
    got=$(params_hash "$TMP/int/sweep/trial-000$t/model.h5")
    [ "$got" = "$want" ] || fail "trial $t: params $got != uninterrupted $want"
done
ok "SIGUSR1: exit 75 with $kept trial(s) done; resumed, every trial once and identical"

# ---- ensembles
run_np 2 ensemble train "$base" run.dir="$TMP/e" --members 2 train.epochs=1 >/dev/null ||
    fail "ensemble train"
run_np 2 ensemble eval $(cat "$TMP/e/ensemble/members.txt") --data "$DATA/fm-test.h5" --json \
    >"$TMP/e.json" || fail "ensemble eval"
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["members"]) == 2 and d["ensemble"]["count"] == 10000, d' \
    "$TMP/e.json" || fail "ensemble report"
# a member with 3 outputs: trained on a 3-class CSV dataset of 784 features
"$PY" -c 'import random
random.seed(1)
for i in range(60): print(",".join(["%d" % (i % 3)] + ["%.2f" % random.random() for _ in range(784)]))' \
    >"$TMP/three.csv"
"$CAVIAR" import csv "$TMP/three.csv" --label-column 0 -o "$TMP/three.h5" >/dev/null
run_np 1 train "$base" run.dir="$TMP/other" data.train="$TMP/three.h5" data.dev= \
    'model.layers.2={type: dense, units: 3, activation: softmax}' train.max_steps=2 >/dev/null ||
    fail "training the 3-class member"
expect_fail "ensemble members differ" run_np 2 ensemble eval "$TMP/e/ensemble/member-0000/model.h5" \
    "$TMP/other/model.h5" --data "$DATA/fm-test.h5"
ok "ensemble of 2 trained in 2 groups and evaluated; differing members refused"
