#!/usr/bin/env bash
# A fault inside libhdf5 on a crafted file must not crash caviar: every
# HDF5 file (data, model, checkpoint) is read first by a checking process
# (src/h5_check.c), and a file that kills it is refused with one message
# on every rank.  The checker's fault is stood in for by
# CAVIAR_DEBUG_RAISE=SEGV@check_h5 (a fault inside libhdf5 kills it the
# same way; tests/fuzz/run.sh fuzzes the readers through it).
source "$(dirname "$0")/lib.sh"
fm_data
cfg=$(tiny_config)
run_np 1 train "$cfg" train.epochs=1 train.max_steps=20 >"$TMP/train.txt" || fail "train"
# a SEGV kills the checker; under ASan the sanitizer reports it and exits 1
refused="the HDF5 library failed while a checking process read this file \((signal 11|exit 1)"

# the model, refused by both ranks of eval: exit 1, no hang
CAVIAR_DEBUG_RAISE=SEGV@check_h5 expect_fail "run/model.h5: $refused" \
    run_np 2 eval "$TMP/run/model.h5" "$DATA/fm-test.h5"
[ "$(grep -c "caviar eval: error" "$TMP/out.txt")" -eq 1 ] || fail "one message expected"
ok "a model that kills the checker is refused (2 ranks, exit 1)"

# the training data, refused before anything is written
CAVIAR_DEBUG_RAISE=SEGV@check_h5 expect_fail "fm.h5: $refused" \
    run_np 2 train "$cfg" run.dir="$TMP/r2"
[ ! -e "$TMP/r2/model.h5" ] && [ -z "$(ls "$TMP/r2/checkpoints" 2>/dev/null)" ] ||
    fail "a refused run wrote a model or checkpoint"
ok "training data that kills the checker is refused before training"

# without a fault: each file is checked once per process (strace counts
# the checkers: the model once although eval reads it twice, the data
# split for its header and its rows), and the checkers' reads match
strace -f -qq -e trace=execve -o "$TMP/strace.txt" \
    "$CAVIAR" eval "$TMP/run/model.h5" "$DATA/fm-test.h5" >"$TMP/e.txt" || fail "eval"
n_model=$(grep -c '"__check-h5", "ckpt"' "$TMP/strace.txt" || true)
n_data=$(grep -c '"__check-h5", "dataset"' "$TMP/strace.txt" || true)
[ "$n_model" -eq 1 ] && [ "$n_data" -ge 1 ] && [ "$n_data" -le 2 ] ||
    fail "checkers: model $n_model (want 1), data $n_data (want 1-2)"
grep -q "accuracy" "$TMP/e.txt" || fail "eval output"
ok "one checker per file and process (model $n_model, data $n_data)"

# crafted files the fuzzers kept (faults inside libhdf5 under ASan):
# refused with a message, exit 1, whatever the build
for f in "$ROOT"/tests/fuzz/known-hdf5/ckpt/*; do
    expect_fail "$(basename "$f")" run_np 2 eval "$f" "$DATA/fm-test.h5"
done
for f in "$ROOT"/tests/fuzz/known-hdf5/dataset/*; do
    expect_fail "$(basename "$f")" run_np 2 eval "$TMP/run/model.h5" "$f"
done
ok "the kept crafted files are refused"
