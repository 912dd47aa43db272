#!/usr/bin/env bash
# tests/bench/sweep_bench.sh CAVIAR [WORK_DIR] - the figures of the sweep
# and ensemble bars, printed (not asserted):
#   1. random sweep of 16 trials (fmnist-sweep.yaml) with mpirun -np 4 and
#      ranks_per_trial 1 and 2: trials finished, best vs median dev accuracy;
#   2. ASHA on the same space with the same epoch budget (16 x 6 = 96):
#      best dev accuracy and the histogram of epochs per trial;
#   3. throughput: 8 small trials (1 and 3 epochs) with -np 2 vs -np 1
#      (one thread per rank);
#   4. a 5-member ensemble vs its best member on the test set.
# Needs datasets/fashion-mnist{,-test}.h5 (jobs/quickstart.sh imports them).
set -euo pipefail
CAVIAR=$(realpath "$1")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=${2:-$(mktemp -d /tmp/caviar-sweep-bench.XXXXXX)}
mkdir -p "$WORK"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
PY=/usr/bin/python3
cd "$ROOT"
SWEEP=jobs/configs/fmnist-sweep.yaml

summary() { # results.jsonl -> finished count, best, median of each trial's final value
    "$PY" - "$1" <<'PY'
import json, sys, statistics, collections
rows = [json.loads(l) for l in open(sys.argv[1])]
final = {}
for r in rows:
    if r["status"] in ("done", "paused", "failed"):
        if r["trial"] not in final or r["rung"] >= final[r["trial"]]["rung"]:
            final[r["trial"]] = r
vals = [r["value"] for r in final.values() if r["value"] is not None]
epochs = collections.Counter(r["epochs"] for r in final.values())
done = sum(r["status"] in ("done", "paused") for r in final.values())
print(f"  trials {len(final)}, finished {done}, failed {len(final) - done}, "
      f"epochs in all {sum(r['epochs'] for r in final.values())}")
print(f"  best dev accuracy {max(vals):.4f}, median {statistics.median(vals):.4f}, "
      f"margin {100 * (max(vals) - statistics.median(vals)):.1f} points")
print("  epochs per trial: " + ", ".join(f"{e} epochs x {n}" for e, n in sorted(epochs.items())))
PY
}

for k in 1 2; do
    echo "== random sweep, 16 trials, mpirun -np 4, ranks_per_trial $k"
    t0=$(date +%s.%N)
    mpirun -np 4 --bind-to none "$CAVIAR" sweep $SWEEP run.dir="$WORK/random-k$k" \
        sweep.ranks_per_trial=$k >"$WORK/random-k$k.log"
    echo "  wall $(echo "$(date +%s.%N) - $t0" | bc) s"
    summary "$WORK/random-k$k/sweep/results.jsonl"
done

echo "== asha, 64 trials sampled, eta 3, rungs 1/3/6 epochs, budget 96 epochs, -np 4"
t0=$(date +%s.%N)
mpirun -np 4 --bind-to none "$CAVIAR" sweep $SWEEP run.dir="$WORK/asha" sweep.strategy=asha \
    sweep.trials=64 sweep.budget_epochs=96 >"$WORK/asha.log"
echo "  wall $(echo "$(date +%s.%N) - $t0" | bc) s"
summary "$WORK/asha/sweep/results.jsonl"

# Each run pays a fixed start (mpirun, MPI init, the plan: about 0.5 s here)
# that a second rank does not halve, so the ratio is shown for 1-epoch
# (about 1.2 s) and 3-epoch trials.
for ep in 1 3; do
    echo "== throughput: 8 trials of $ep epoch(s) (784-512-10) with -np 1 and -np 2, 1 thread per rank"
    for rep in 1 2 3; do
        for np in 1 2; do
            t0=$(date +%s.%N)
            mpirun -np $np --bind-to core "$CAVIAR" sweep $SWEEP run.dir="$WORK/tp$np-$ep-$rep" \
                sweep.trials=8 train.epochs=$ep model.layers.0.units=512 \
                'sweep.space={train.lr: "log_uniform(1e-4, 1e-2)"}' >/dev/null
            echo "$(echo "$(date +%s.%N) - $t0" | bc)" >>"$WORK/tp$np-$ep.txt"
        done
    done
    "$PY" - "$WORK/tp1-$ep.txt" "$WORK/tp2-$ep.txt" <<'PY'
import statistics, sys
a, b = (statistics.median(float(x) for x in open(f)) for f in sys.argv[1:3])
print(f"  median of 3: np 1 {a:.2f} s, np 2 {b:.2f} s, ratio {b / a:.3f} (bar <= 0.55)")
PY
done
# the machine's own floor: one training alone vs two at once on the two cores
for rep in 1 2 3; do
    one=$( { /usr/bin/time -f %e taskset -c 0 "$CAVIAR" train $SWEEP run.dir="$WORK/one-$rep" \
        train.epochs=1 model.layers.0.units=512 >/dev/null; } 2>&1)
    pair=$( { /usr/bin/time -f %e taskset -c 0 "$CAVIAR" train $SWEEP run.dir="$WORK/pa-$rep" \
        train.epochs=1 model.layers.0.units=512 >/dev/null & /usr/bin/time -f %e taskset -c 1 \
        "$CAVIAR" train $SWEEP run.dir="$WORK/pb-$rep" train.epochs=1 model.layers.0.units=512 \
        >/dev/null; wait; } 2>&1 | sort -n | tail -1)
    echo "$one $pair" >>"$WORK/floor.txt"
done
"$PY" - "$WORK/floor.txt" <<'PY'
import statistics, sys
pairs = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
slow = statistics.median(p / o for o, p in pairs)
print(f"  machine floor: two 1-epoch trainings at once take {slow:.2f}x one alone")
PY

echo "== ensemble: 5 members (fmnist-ensemble.yaml), mpirun -np 2"
mpirun -np 2 --bind-to none "$CAVIAR" ensemble train jobs/configs/fmnist-ensemble.yaml \
    --members 5 run.dir="$WORK/ens" >"$WORK/ens.log"
mpirun -np 2 --bind-to none "$CAVIAR" ensemble eval $(cat "$WORK/ens/ensemble/members.txt") \
    --data datasets/fashion-mnist-test.h5 | tail -8
echo "work dir: $WORK"
