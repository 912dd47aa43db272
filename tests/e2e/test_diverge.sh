#!/usr/bin/env bash
# A loss that becomes NaN/Inf stops training with a message naming the
# epoch and step; the model of the last good epoch is kept and evaluates.
source "$(dirname "$0")/lib.sh"
fm_data
cfg=$(tiny_config)
# epoch 1 trains normally; resumed with lr 1e12 (a schedule change, which
# resume allows) epoch 2 diverges
run_np 2 train "$cfg" train.optimizer=sgd train.lr=0.01 train.epochs=1 >/dev/null
expect_fail "diverged.*epoch 2, step" run_np 2 train "$cfg" train.optimizer=sgd train.lr=1e12 \
    train.epochs=3 run.resume=auto
"$CAVIAR" inspect "$TMP/run/model.h5" | grep -q "checksums       verify" || fail "model kept"
run_np 1 eval --json "$TMP/run/model.h5" "$DATA/fm-test.h5" >"$TMP/e.json"
"$PY" -c "import json,sys; a=json.load(open('$TMP/e.json'))['accuracy']; sys.exit(0 if a > 0.6 else 1)" ||
    fail "kept model does not evaluate"
ok "divergence reported; last good model kept"
