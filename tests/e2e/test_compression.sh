#!/usr/bin/env bash
# comm.compression: bf16 (gradients cross as bfloat16) still trains: 2 ranks,
# sharded and replicated, reach the dev accuracy of the float exchange
# within 0.01, and their models differ from it (the compression was used).
# The trainer itself checks that the replicas ended identical.
source "$(dirname "$0")/lib.sh"
fm_data
cfg=$(tiny_config)

train() { # NAME OVERRIDES...: train on 2 ranks, print the last dev accuracy
    local name=$1
    shift
    run_np 2 train "$cfg" run.dir="$TMP/$name" "$@" >"$TMP/$name.txt" 2>&1 ||
        { cat "$TMP/$name.txt"; fail "training $name"; }
    dev_accuracy "$TMP/$name"
}

float=$(train float)
for mode in true false; do
    acc=$(train "bf16-shard-$mode" comm.compression=bf16 comm.shard_optimizer=$mode)
    grep -q "gradients: blocking bfloat16 reduction" "$TMP/bf16-shard-$mode.txt" ||
        fail "shard_optimizer=$mode: the run does not say it exchanged bfloat16"
    "$PY" -c 'import sys; a, b = map(float, sys.argv[1:]); sys.exit(not (a >= b - 0.01 and a > 0.8))' \
        "$acc" "$float" || fail "bf16, shard_optimizer=$mode: dev accuracy $acc vs float $float"
    [ "$(params_hash "$TMP/bf16-shard-$mode/model.h5")" != "$(params_hash "$TMP/float/model.h5")" ] ||
        fail "bf16, shard_optimizer=$mode: the model equals the float one bit for bit"
    ok "bf16, shard_optimizer=$mode: dev accuracy $acc (float exchange: $float)"
done
