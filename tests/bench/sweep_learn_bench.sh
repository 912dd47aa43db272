#!/usr/bin/env bash
# tests/bench/sweep_learn_bench.sh CAVIAR [WORK_DIR] - the figures of the
# bars of the sweeps that learn (issue 24), printed, not asserted:
#   1. PBT against random search on Fashion-MNIST with the same groups and
#      the same epoch budget (POP members x EPOCHS epochs against POP trials
#      of EPOCHS epochs), over the space of jobs/configs/fmnist-pbt.yaml:
#      the best member's and the best trial's dev accuracy, per seed and the
#      median over SEEDS seeds;
#   2. TPE against random search with TPE_TRIALS trials of TPE_EPOCHS
#      epochs each on a cheap space (lr, 1 - beta1, L2 of a small MLP): the
#      best dev accuracy per seed and the median.
# Knobs (environment): NP (ranks = groups, default 4), SEEDS (3), POP (8),
# EPOCHS (8), READY (2), TPE_TRIALS (20), TPE_STARTUP (8), TPE_EPOCHS (2),
# DATA (datasets/fashion-mnist.h5; jobs/quickstart.sh imports it).
set -euo pipefail
CAVIAR=$(realpath "$1")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=${2:-$(mktemp -d /tmp/caviar-sweep-learn-bench.XXXXXX)}
mkdir -p "$WORK"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
PY=/usr/bin/python3
NP=${NP:-4}
SEEDS=${SEEDS:-3}
POP=${POP:-8}
EPOCHS=${EPOCHS:-8}
READY=${READY:-2}
TPE_TRIALS=${TPE_TRIALS:-20}
TPE_STARTUP=${TPE_STARTUP:-8}
TPE_EPOCHS=${TPE_EPOCHS:-2}
DATA=$(realpath "${DATA:-$ROOT/datasets/fashion-mnist.h5}")
cd "$ROOT"

best() { # results.jsonl -> the best final dev accuracy
    "$PY" - "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
vals = [r["value"] for r in rows if r["status"] in ("done", "paused") and r["value"] is not None]
print(f"{max(vals):.4f}")
PY
}

median() {
    "$PY" -c 'import statistics, sys; print(f"{statistics.median(map(float, sys.argv[1:])):.4f}")' "$@"
}

sweep() { # NAME CONFIG OVERRIDES...: run one sweep, print its best value
    local name=$1 cfg=$2
    shift 2
    mpirun -np "$NP" --bind-to none "$CAVIAR" sweep "$cfg" run.dir="$WORK/$name" \
        data.train="$DATA" data.dev="$DATA#dev" "$@" >"$WORK/$name.log" ||
        { tail -5 "$WORK/$name.log"; exit 1; }
    best "$WORK/$name/sweep/results.jsonl"
}

echo "== pbt ($POP members, ready $READY) vs random ($POP trials), $EPOCHS epochs each, -np $NP"
pbt=() rnd=()
for s in $(seq 1 "$SEEDS"); do
    common=(sweep.seed=$s train.seed=$s train.epochs=$EPOCHS sweep.trials=$POP)
    p=$(sweep "pbt-$s" jobs/configs/fmnist-pbt.yaml "${common[@]}" sweep.ready=$READY)
    r=$(sweep "pbt-random-$s" jobs/configs/fmnist-pbt.yaml "${common[@]}" sweep.strategy=random)
    echo "  seed $s: pbt best member $p, random best trial $r"
    pbt+=("$p")
    rnd+=("$r")
done
echo "  median over $SEEDS seeds: pbt $(median "${pbt[@]}"), random $(median "${rnd[@]}")"

echo "== tpe vs random, $TPE_TRIALS trials of $TPE_EPOCHS epoch(s) (tpe: $TPE_STARTUP start-up), -np $NP"
tpe=() rnd=()
for s in $(seq 1 "$SEEDS"); do
    common=(sweep.seed=$s train.seed=$s train.epochs=$TPE_EPOCHS sweep.trials=$TPE_TRIALS
        'sweep.space={train.lr: "log_uniform(1e-5, 1)", train.beta1: "one_minus_log_uniform(0.5, 0.9999)", train.l2: "log_uniform(1e-5, 10)"}'
        model.layers.0.units=32)
    t=$(sweep "tpe-$s" jobs/configs/fmnist-tpe.yaml "${common[@]}" sweep.tpe_startup=$TPE_STARTUP)
    r=$(sweep "tpe-random-$s" jobs/configs/fmnist-tpe.yaml "${common[@]}" sweep.strategy=random)
    echo "  seed $s: tpe best $t, random best $r"
    tpe+=("$t")
    rnd+=("$r")
done
echo "  median over $SEEDS seeds: tpe $(median "${tpe[@]}"), random $(median "${rnd[@]}")"
