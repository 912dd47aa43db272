#!/usr/bin/env bash
# tests/fuzz/make_seeds.sh CAVIAR - (re)generate the fuzz seeds in
# tests/fuzz/seeds/<target>/ from small valid inputs: configs (with
# overrides after NUL bytes), CSV and IDX files (with the targets' option
# bytes in front), and datasets, a model and a checkpoint written by caviar
# itself.  The seeds are committed; rerun this when a format changes.
set -euo pipefail
CAVIAR=$(realpath "$1")
S=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/seeds
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
rm -rf "$S" && mkdir -p "$S"/{config,csv,idx,dataset,ckpt,image}

# config: the YAML, then overrides separated by NUL bytes
cfg='data: {train: d.h5, dev: "d.h5#dev"}
model:
  input: [1, 4, 4]
  layers:
    - &conv {type: conv2d, filters: 2, size: 3, pad: same, activation: relu}
    - {type: maxpool, size: 2}
    - type: residual
      layers: [*conv, {type: batchnorm}]
    - {type: dense, units: 3, activation: softmax}
train: {optimizer: adam, lr: 1.0e-3, batch: 4, epochs: 1, decay: {kind: step, rate: 0.5, every: 2}}
checkpoint: {every_steps: 2, keep: 1}
sweep: {trials: 2, space: {train.lr: "log_uniform(1e-4, 1e-1)", model.layers.3.units: "choice(3, 4)"}}
'
printf '%s\0train.lr=3e-3\0model.layers.1={type: dropout, keep: 0.5}\0data.dev=' "$cfg" \
    >"$S/config/layers"
printf '%s' "$(cat "$S/../../../jobs/configs/fmnist-mlp.yaml")" >"$S/config/mlp"
printf 'data: {train: x}\nmodel: {input: [4], layers: [{type: dense, units: 2}]}\0run.dir=r\0comm.compression=bf16' \
    >"$S/config/small"

# csv: a flags byte (bit 0 header, 1 regression, 2 shuffle, 3 dev, 4-5 label 0/1/y), the file
printf '\x09a,y,b\n1,0,2.5\n3,1,-4e-2\n5,2,6\n' >"$S/csv/header-label1"
printf '\x06 0.5 , 1\n"2",3\n\n4,5e3\n' >"$S/csv/regression"

# idx: a 2-byte little-endian labels length, a flags byte, labels, images (3 images 2 x 2)
lab='\x00\x00\x08\x01\x00\x00\x00\x03\x01\x00\x02'
img='\x00\x00\x08\x03\x00\x00\x00\x03\x00\x00\x00\x02\x00\x00\x00\x02\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xff'
printf "\x0b\x00\x03$lab$img" >"$S/idx/raw"
printf "$img" | gzip -9n >"$W/img.gz"
{ printf "\x0b\x00\x00$lab"; cat "$W/img.gz"; } >"$S/idx/gzip-images"

# datasets: float32 with a dev group, uint8 images with shape and scale
printf 'a,y,b\n1,0,2.5\n3,1,-4e-2\n5,2,6\n7,1,8\n' >"$W/t.csv"
"$CAVIAR" import csv "$W/t.csv" --label-column y --header --dev 1 -o "$S/dataset/float-dev.h5" >/dev/null
printf "$lab" >"$W/l.idx"
printf "$img" >"$W/i.idx"
"$CAVIAR" import idx --images "$W/i.idx" --labels "$W/l.idx" -o "$S/dataset/uint8-shape.h5" >/dev/null

# sequences (h5py): int32 token ids with vocab_size, lengths and per-step
# classes, with a dev group; float (N, T, F) steps with per-row classes
/usr/bin/python3 - "$S/dataset" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1] + "/seq-tokens.h5", "w") as f:
    for g, n in (("/", 3), ("dev", 2)):
        grp = f.require_group(g)
        grp["X"] = (np.arange(n * 4).reshape(n, 4) % 5).astype(np.int32)
        grp["X"].attrs["vocab_size"] = 5
        grp["X"].attrs["pad_id"] = 0
        grp["lengths"] = np.array([4, 2, 3][:n], np.int32)
        grp["y"] = (np.arange(n * 4).reshape(n, 4) % 3).astype(np.int32)
        grp.attrs["classes"] = 3
with h5py.File(sys.argv[1] + "/seq-float.h5", "w") as f:
    f["X"] = np.linspace(-1, 1, 3 * 4 * 2, dtype=np.float32).reshape(3, 4, 2)
    f["y"] = np.array([0, 1, 0], np.int32)
    f.attrs["classes"] = 2
PY

# a model and a checkpoint of a tiny MLP (train, optimizer and metrics groups)
: >"$W/d.csv"
for i in $(seq 0 15); do printf '%d,%d\n' "$i" $((i % 2)) >>"$W/d.csv"; done
"$CAVIAR" import csv "$W/d.csv" --label-column 1 -o "$W/d.h5" >/dev/null
printf 'data: {train: %s}\nmodel: {input: [1], layers: [{type: dense, units: 2, activation: softmax}]}\ntrain: {optimizer: adam, batch: 8, epochs: 1}\ncheckpoint: {every_steps: 1, keep: 1}\nrun: {dir: %s}\n' \
    "$W/d.h5" "$W/run" >"$W/c.yaml"
"$CAVIAR" train "$W/c.yaml" >/dev/null
cp "$W/run/model.h5" "$S/ckpt/model.h5"
cp "$(ls "$W"/run/checkpoints/*.h5 | tail -1)" "$S/ckpt/checkpoint.h5"
# image: a flags byte (bit 0 gray, 1 crop, 2 size 5x7, 3 two classes), a PNG or JPEG (Pillow)
/usr/bin/python3 - "$S/image/" <<'PY'
import io, sys, numpy as np
from PIL import Image
rng = np.random.default_rng(0)
def save(name, flags, img, fmt, **kw):
    b = io.BytesIO(); img.save(b, fmt, **kw)
    open(sys.argv[1] + name, "wb").write(bytes([flags]) + b.getvalue())
save("gray-png", 0x0, Image.fromarray(rng.integers(0, 256, (6, 9), dtype=np.uint8), "L"), "PNG")
save("rgba-png-size", 0x6, Image.fromarray(rng.integers(0, 256, (8, 5, 4), dtype=np.uint8), "RGBA"), "PNG")
save("palette-png", 0x9, Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).convert("P"), "PNG")
save("rgb-jpeg", 0x3, Image.fromarray(rng.integers(0, 256, (16, 12, 3), dtype=np.uint8)), "JPEG", quality=80)
save("gray-jpeg-size", 0x5, Image.fromarray(rng.integers(0, 256, (9, 9), dtype=np.uint8), "L"), "JPEG")
save("progressive-jpeg", 0xc, Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)), "JPEG", progressive=True)
PY
ls -l "$S"/*
