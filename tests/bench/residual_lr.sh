#!/usr/bin/env bash
# tests/bench/residual_lr.sh CAVIAR - learning-rate stability of a plain
# 7-conv CNN vs the same depth with batch norm and residual blocks
# (tests/bench/configs/cnn-{plain,residual}.yaml), SGD + momentum 0.9,
# 6 epochs on the 5000-row dev split, mpirun -np 2.  Prints the training
# loss per epoch (the curves) for each learning rate, or where it diverged.
# Needs datasets/fashion-mnist{,-test}.h5 (jobs/quickstart.sh imports them).
set -euo pipefail
CAVIAR=$(realpath "$1")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d /tmp/caviar-residual-lr.XXXXXX)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
cd "$ROOT"
for lr in ${LRS:-0.2 0.8 1.6 3.2}; do
    for net in plain residual; do
        dir=$WORK/$net-$lr
        mpirun -np 2 --bind-to none "$CAVIAR" train tests/bench/configs/cnn-$net.yaml \
            train.lr=$lr run.dir="$dir" >"$dir.log" 2>&1 || true
        curve=$(/usr/bin/python3 -c '
import json, sys
print(" ".join("%.3f" % json.loads(l)["train_loss"] for l in open(sys.argv[1])))' \
            "$dir/metrics.jsonl" 2>/dev/null || true)
        why=$(grep -o 'diverged: [^;]*' "$dir.log" | head -1 || true)
        printf '%-8s lr %-4s train loss per epoch: %s %s\n' "$net" "$lr" "${curve:--}" "$why"
    done
done
rm -rf "$WORK"
