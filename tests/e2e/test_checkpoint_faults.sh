#!/usr/bin/env bash
# Damaged checkpoints are never loaded silently: truncated or bit-flipped
# files are skipped by resume (with a note) and refused by inspect/eval with
# a message naming the file; a newer format version and a different
# architecture are clear errors; a full disk at any write of a run (each
# checkpoint, metrics.jsonl, model.h5) ends with exit 1 on every rank, a
# message naming the file, and the previous checkpoints intact.
source "$(dirname "$0")/lib.sh"
fm_data
cfg=$(tiny_config)
run_np 1 train "$cfg" train.epochs=1 checkpoint.every_steps=100 >/dev/null
mapfile -t cks < <(ls -r "$TMP"/run/checkpoints/ckpt-*.h5)
[ "${#cks[@]}" -ge 3 ] || fail "expected 3 checkpoints, got ${#cks[@]}"
newest=${cks[0]} older=${cks[1]}

# truncated newest: resume skips it and says why
cp "$newest" "$TMP/good.h5"
truncate -s $(($(stat -c %s "$newest") * 4 / 10)) "$newest"
expect_fail "$newest" "$CAVIAR" inspect "$newest"
run_np 1 train "$cfg" train.epochs=2 run.resume=auto train.max_steps=500 >"$TMP/r.txt" 2>&1
grep -q "skipping checkpoint $newest" "$TMP/r.txt" || fail "truncated checkpoint not reported"
grep -q "resuming from $older" "$TMP/r.txt" || fail "did not fall back to $older"
ok "truncated checkpoint skipped, resumed from the previous one"

# one flipped bit inside the first weight chunk: detected by the checksums
cp "$TMP/good.h5" "$TMP/flip.h5"
"$PY" - "$TMP/flip.h5" <<'PY'
import h5py, sys
with h5py.File(sys.argv[1], "r") as f:
    off = f["layers/00_dense/W"].id.get_chunk_info(0).byte_offset
with open(sys.argv[1], "r+b") as f:
    f.seek(off + 1000); b = f.read(1); f.seek(off + 1000); f.write(bytes([b[0] ^ 0x10]))
PY
expect_fail "flip.h5: /?layers/00_dense/W failed its checksum" "$CAVIAR" inspect "$TMP/flip.h5"
expect_fail "flip.h5.*checksum" "$CAVIAR" eval "$TMP/flip.h5" "$DATA/fm-test.h5"
ok "bit flip detected"

# a newer format version
cp "$TMP/good.h5" "$TMP/v99.h5"
"$PY" -c "import h5py,sys; f=h5py.File(sys.argv[1],'r+'); f.attrs['format_version']=99; f.close()" "$TMP/v99.h5"
expect_fail "format version 99 is not supported" "$CAVIAR" eval "$TMP/v99.h5" "$DATA/fm-test.h5"
ok "newer format refused"

# a different architecture
expect_fail "architecture differs \(model.layers.0.units differs\)" run_np 1 train "$cfg" \
    model.layers.0.units=32 run.resume=auto
ok "architecture change refused"

# ---- a full disk at each write of a run, and a `checkpoints` that is a file
# Every rank must exit 1 (exit 75 would promise a checkpoint written by this
# run), with one message naming the file, no crash, no temporary left, and
# every checkpoint already there still verifying.

# run_ranks DIR ARGS...: `caviar ARGS` on 2 ranks; each rank's exit code in
# DIR/rc.RANK (mpirun itself returns 0 when told not to abort on a non-zero
# exit, so that no rank is killed before it reports)
run_ranks() {
    local dir=$1
    shift
    rm -f "$dir"/rc.*
    timeout -k 10 "$STEP_TIMEOUT" mpirun -np 2 --bind-to none \
        --mca orte_abort_on_non_zero_status 0 bash -c \
        '"$@"; rc=$?; echo $rc >"'"$dir"'/rc.$OMPI_COMM_WORLD_RANK"; exit $rc' \
        sh "$CAVIAR" "$@" || true
}

# expect_rank_rc DIR RC LOG: both ranks exited RC, none died of a signal
expect_rank_rc() {
    local r got
    for r in 0 1; do
        got=$(cat "$1/rc.$r" 2>/dev/null || echo none)
        [ "$got" = "$2" ] || { cat "$3"; fail "rank $r exited $got, expected $2 ($3)"; }
    done
    ! grep -Eq "signal|Segmentation|core dumped" "$3" || { cat "$3"; fail "a rank crashed ($3)"; }
}

# checkpoints of step 2, 4 and 6, then metrics.jsonl and model.h5
fcfg=(train.max_steps=6 checkpoint.every_steps=2 checkpoint.keep=3 data.dev=)
run_ranks "$TMP" train "$cfg" "${fcfg[@]}" run.dir="$TMP/sizes" >"$TMP/sizes.txt" 2>&1
expect_rank_rc "$TMP" 0 "$TMP/sizes.txt"
pages() { echo $((($(stat -c %s "$1") + 4095) / 4096 * 4096)); }
# each checkpoint's own size: later ones embed a longer metrics history
S2=$(pages "$TMP/sizes/checkpoints/ckpt-000000000002.h5")
S4=$(pages "$TMP/sizes/checkpoints/ckpt-000000000004.h5")
S6=$(pages "$TMP/sizes/checkpoints/ckpt-000000000006.h5")
S=$S6
J=$(pages "$TMP/sizes/metrics.jsonl")
M=$(pages "$TMP/sizes/model.h5")

L=4096 # RUN_DIR/.caviar.lock holds the owner's line (one page) while the run lasts

# free bytes -> the write that must fail
levels=("0 ckpt-000000000002.h5" "$((L + S2 / 2)) ckpt-000000000002.h5"
    "$((L + S2 + S4 / 2)) ckpt-000000000004.h5" "$((L + S2 + S4 + S6)) metrics.jsonl"
    "$((L + S2 + S4 + S6 + J + M / 2)) model.h5")
mkdir -p "$TMP/full"
if mount -t tmpfs -o size=$((4 * S + 2 * M + J + (1 << 20))) tmpfs "$TMP/full" 2>/dev/null; then
    trap 'umount "$TMP/full" 2>/dev/null; rm -rf "$TMP"' EXIT
    for lv in "${levels[@]}"; do
        read -r free file <<<"$lv"
        rm -rf "${TMP:?}"/full/*
        mkdir -p "$TMP/full/run/checkpoints"
        avail=$(df -B1 --output=avail "$TMP/full" | tail -1)
        fallocate -l $((avail - free)) "$TMP/full/filler"
        log=$TMP/full-$free.txt
        run_ranks "$TMP" train "$cfg" "${fcfg[@]}" run.dir="$TMP/full/run" >"$log" 2>&1
        expect_rank_rc "$TMP" 1 "$log"
        grep -q "caviar train: error: .*$file.*No space left on device" "$log" ||
            { cat "$log"; fail "disk full at $file: no clear message"; }
        [ "$(grep -c "caviar train: error" "$log")" -eq 1 ] || fail "disk full: more than one message"
        for ck in "$TMP"/full/run/checkpoints/ckpt-*.h5; do
            [ -e "$ck" ] || continue
            "$CAVIAR" inspect "$ck" >/dev/null || fail "disk full at $file: $ck damaged"
        done
        ! ls "$TMP"/full/run/*.tmp.* "$TMP"/full/run/checkpoints/*.tmp.* >/dev/null 2>&1 ||
            fail "disk full at $file: temporary file left"
        [ ! -e "$TMP/full/run/$file" ] && [ ! -e "$TMP/full/run/checkpoints/$file" ] ||
            fail "disk full at $file: the file exists anyway"
        ok "disk full at $file ($free bytes free): exit 1 on both ranks, earlier checkpoints intact"
    done
    rm -rf "${TMP:?}"/full/*
    run_ranks "$TMP" train "$cfg" "${fcfg[@]}" run.dir="$TMP/full/run" >"$TMP/roomy.txt" 2>&1
    expect_rank_rc "$TMP" 0 "$TMP/roomy.txt"
    ok "the same run with room on the same tmpfs: exit 0"
else
    echo "note: cannot mount a tmpfs here (not root?): disk-full cases not run"
fi

# `checkpoints` is a file: refused at start-up, exit 1, never 75
mkdir -p "$TMP/cf"
touch "$TMP/cf/checkpoints"
run_ranks "$TMP" train "$cfg" "${fcfg[@]}" run.dir="$TMP/cf" >"$TMP/cf.txt" 2>&1
expect_rank_rc "$TMP" 1 "$TMP/cf.txt"
grep -q "checkpoints exists and is not a directory" "$TMP/cf.txt" || fail "checkpoints file: message"
ok "a file named checkpoints: exit 1 with a message"
