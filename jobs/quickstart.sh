#!/usr/bin/env bash
# jobs/quickstart.sh - the main job on a fresh Debian 12 machine: install,
# build, import Fashion-MNIST (package dataset-fashion-mnist) into HDF5,
# train the default MLP with `mpirun -np 2`, evaluate it on the test set.
# Re-running skips what is done (the run resumes from its final checkpoint).
set -euo pipefail
CV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/setup.sh
source "$CV_ROOT/jobs/lib/setup.sh"

NP=${NP:-2}                                     # MPI ranks
CONFIG=${CONFIG:-$CV_ROOT/jobs/configs/fmnist-mlp.yaml}
RUN_DIR=${RUN_DIR:-$CV_ROOT/runs/quickstart}
FM=/usr/share/datasets/fashion-mnist

cv_install "${CV_PACKAGES[@]}" dataset-fashion-mnist
cv_build "$CV_ROOT/build"
CAVIAR=$CV_ROOT/build/caviar
cd "$CV_ROOT"

if [ ! -f datasets/fashion-mnist.h5 ]; then
    "$CAVIAR" import idx --images $FM/train-images-idx3-ubyte.gz \
        --labels $FM/train-labels-idx1-ubyte.gz --shuffle --seed 1 --dev 5000 \
        -o datasets/fashion-mnist.h5
fi
if [ ! -f datasets/fashion-mnist-test.h5 ]; then
    "$CAVIAR" import idx --images $FM/t10k-images-idx3-ubyte.gz \
        --labels $FM/t10k-labels-idx1-ubyte.gz -o datasets/fashion-mnist-test.h5
fi

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mpirun -np "$NP" --bind-to none "$CAVIAR" train "$CONFIG" run.dir="$RUN_DIR" run.resume=auto
"$CAVIAR" eval "$RUN_DIR/model.h5" datasets/fashion-mnist-test.h5
