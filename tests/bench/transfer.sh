#!/usr/bin/env bash
# tests/bench/transfer.sh CAVIAR TRAIN.h5 TEST.h5 - transfer learning on
# Fashion-MNIST (issue 20): a CNN is trained on classes 0-4 (all their
# training rows, random shifts of up to 2 pixels), then classes 5-9 are learnt
# from 1,000 labelled rows by
#   scratch   the same network, fresh weights, for as many epochs as frozen
#             and fine-tuning together (SCRATCH_EPOCHS)
#   frozen    init_from the 0-4 model, convolutions frozen (trainable: false),
#             a new 10-way head (the old one had 5 outputs)
#   finetune  FT=direct: init_from the 0-4 model, every layer trained, loaded
#             layers at LR_LOADED x the rate;  FT=lpft: init_from the frozen
#             run's model (head already trained: "linear probe, then fine-tune",
#             a two-step gradual unfreezing), every layer trained at FT_LR
# Every run keeps its best epoch on the dev rows of classes 5-9 (the dev split
# of TRAIN.h5, not drawn from the 1,000 rows; the same for all three).
# Prints the test accuracy on classes 5-9 of each for every seed in SEEDS,
# and exits 1 unless the medians of both transferred runs beat scratch's.
# NET_ARGS are overrides for every run (source included), SRC_ARGS for the
# source run, RUN_ARGS for the three classes 5-9 runs; SRC_MODEL reuses a
# trained source model instead of training one.
# TRAIN.h5 has a #dev group (caviar import idx --dev); one rank,
# OMP_NUM_THREADS=1 unless set.
set -euo pipefail
CAVIAR=$(realpath "$1")
TRAIN=$(realpath "$2")
TEST=$(realpath "$3")
WORK=${WORK:-$(mktemp -d /tmp/caviar-transfer.XXXXXX)}
ROWS=${ROWS:-1000}
SEEDS=${SEEDS:-4 5 6}          # seeds of the classes 5-9 runs (medians are compared)
SRC_EPOCHS=${SRC_EPOCHS:-8}   # epochs of the source model
LR_LOADED=${LR_LOADED:-1}     # fine-tuning: learning-rate factor of the loaded layers
NORMALIZE=${NORMALIZE:-none} # data.normalize of every run
EPOCHS=${EPOCHS:-15}          # epochs of the frozen and fine-tuning runs
SCRATCH_EPOCHS=${SCRATCH_EPOCHS:-$((2 * EPOCHS))}
FT=${FT:-lpft}                # lpft | direct
FT_LR=${FT_LR:-2e-4}          # FT=lpft: learning rate of the fine-tuning step
read -ra NET_ARGS <<<"${NET_ARGS:-}"
read -ra SRC_ARGS <<<"${SRC_ARGS-data.augment.shift=2}"
read -ra RUN_ARGS <<<"${RUN_ARGS:-}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
case $FT in lpft | direct) ;; *) echo "transfer.sh: FT=$FT: expected lpft or direct" >&2; exit 2 ;; esac
[ -z "${SRC_MODEL:-}" ] || [ -f "$SRC_MODEL" ] ||
    { echo "transfer.sh: SRC_MODEL=$SRC_MODEL: no such file" >&2; exit 2; }
PY=/usr/bin/python3

"$PY" - "$TRAIN" "$TEST" "$WORK" "$ROWS" <<'PY'
import sys, h5py, numpy as np
train, test, work, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def subset(src, lo, hi, n):
    y = src["y"][...]
    keep = np.flatnonzero((y >= lo) & (y <= hi))[:n]
    return src["X"][...][keep], y[keep], dict(src.attrs)
def write(path, groups):
    with h5py.File(path, "w") as f:
        for name, (x, y, attrs) in groups.items():
            g = f.require_group(name) if name else f
            for k, v in attrs.items():
                g.attrs[k] = v
            g["X"], g["y"] = x, y
with h5py.File(train) as t:
    a = subset(t, 0, 4, None)
    a_dev = subset(t["dev"], 0, 4, None)
    for part in (a, a_dev):
        part[2]["classes"] = 5
    write(work + "/a.h5", {"": a, "dev": a_dev})
    write(work + "/b.h5", {"": subset(t, 5, 9, rows), "dev": subset(t["dev"], 5, 9, None)})
with h5py.File(test) as t:
    write(work + "/b-test.h5", {"": subset(t, 5, 9, None)})
PY

cat >"$WORK/cnn.yaml" <<YAML
data: {train: $WORK/b.h5, dev: "$WORK/b.h5#dev", normalize: $NORMALIZE}
model:
  input: [1, 28, 28]
  layers:
    - {type: conv2d, filters: 32, size: 3, pad: same}
    - {type: batchnorm, activation: relu}
    - {type: maxpool, size: 2}
    - {type: conv2d, filters: 64, size: 3, pad: same}
    - {type: batchnorm, activation: relu}
    - {type: maxpool, size: 2}
    - {type: dense, units: 128, activation: relu}
    - {type: dense, units: 10, activation: softmax}
train: {optimizer: adam, lr: 2.0e-3, batch: 50, epochs: 15, seed: 4, monitor: dev.accuracy}
checkpoint: {every_epochs: 0}
YAML

# the source model: classes 0-4, 5 outputs
SRC=${SRC_MODEL:-$WORK/src/model.h5}
[ -n "${SRC_MODEL:-}" ] ||
    "$CAVIAR" train "$WORK/cnn.yaml" data.train="$WORK/a.h5" "data.dev=$WORK/a.h5#dev" \
        model.layers.7.units=5 train.epochs="$SRC_EPOCHS" train.batch=128 run.dir="$WORK/src" \
        "${NET_ARGS[@]}" "${SRC_ARGS[@]}" >"$WORK/src.log"
freeze=(model.layers.0.trainable=false model.layers.1.trainable=false
    model.layers.3.trainable=false model.layers.4.trainable=false)
acc() {
    "$CAVIAR" eval "$WORK/$1/model.h5" "$WORK/b-test.h5" --json |
        "$PY" -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["accuracy"])'
}
src=$("$CAVIAR" eval "$SRC" "$WORK/a.h5#dev" --json |
    "$PY" -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["accuracy"])')
echo "source model $SRC (classes 0-4, dev accuracy): $src"
S=() F=() T=()
for seed in $SEEDS; do
    run() { "$CAVIAR" train "$WORK/cnn.yaml" run.dir="$WORK/$1-$seed" train.seed="$seed" \
        "${NET_ARGS[@]}" "${RUN_ARGS[@]}" train.epochs="$EPOCHS" "${@:2}" >"$WORK/$1-$seed.log"; }
    run frozen model.init_from="$SRC" "${freeze[@]}" # first: a source that does not fit fails at once
    if [ "$FT" = lpft ]; then
        run finetune model.init_from="$WORK/frozen-$seed/model.h5" train.lr="$FT_LR"
    else
        run finetune model.init_from="$SRC" train.lr_loaded="$LR_LOADED"
    fi
    run scratch train.epochs="$SCRATCH_EPOCHS"
    S+=("$(acc "scratch-$seed")") F+=("$(acc "frozen-$seed")") T+=("$(acc "finetune-$seed")")
    echo "seed $seed, classes 5-9 from $ROWS rows, test accuracy: scratch ${S[-1]} |" \
        "frozen convs + new head ${F[-1]} | fine-tuned ($FT) ${T[-1]}"
done
grep "init_from" "$WORK/frozen-${SEEDS%% *}.log"
"$PY" - "${#S[@]}" "${S[@]}" "${F[@]}" "${T[@]}" <<'PY' || { echo "FAIL: transfer did not beat scratch"; exit 1; }
import statistics, sys
k = int(sys.argv[1]); v = list(map(float, sys.argv[2:]))
s, f, t = (statistics.median(v[i * k:(i + 1) * k]) for i in range(3))
print("median over %d seeds: scratch %.4f | frozen %.4f | fine-tuned %.4f" % (k, s, f, t))
sys.exit(0 if f > s and t > s else 1)
PY
