#!/usr/bin/env bash
# comm.compression: bf16 (gradients cross as bfloat16 both ways) still
# trains: 2 ranks reach the dev accuracy
# of the float exchange within 0.01, and the model differs from it (the
# compression was used).  The trainer itself checks that the replicas
# ended identical.
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
acc=$(train bf16 comm.compression=bf16)
grep -q "gradients: allreduce of bfloat16 gradients" "$TMP/bf16.txt" ||
    fail "the run does not say it exchanged bfloat16"
"$PY" -c 'import sys; a, b = map(float, sys.argv[1:]); sys.exit(not (a >= b - 0.01 and a > 0.8))' \
    "$acc" "$float" || fail "bf16: dev accuracy $acc vs float $float"
[ "$(params_hash "$TMP/bf16/model.h5")" != "$(params_hash "$TMP/float/model.h5")" ] ||
    fail "bf16: the model equals the float one bit for bit"
ok "bf16: dev accuracy $acc (float exchange: $float)"
