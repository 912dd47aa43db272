#!/usr/bin/env bash
# Damaged checkpoints are never loaded silently: truncated or bit-flipped
# files are skipped by resume (with a note) and refused by inspect/eval with
# a message naming the file; a newer format version and a different
# architecture are clear errors; a full disk stops training with exit 75 and
# leaves the previous checkpoint intact.
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

# disk full: a 2 MiB tmpfs holds two checkpoints of this model (~0.76 MB each) but not three
if mkdir -p "$TMP/full" && mount -t tmpfs -o size=2m tmpfs "$TMP/full" 2>/dev/null; then
    trap 'umount "$TMP/full" 2>/dev/null; rm -rf "$TMP"' EXIT
    rc=0
    run_np 1 train "$cfg" run.dir="$TMP/full/run" checkpoint.every_steps=20 checkpoint.keep=3 \
        >"$TMP/full.txt" 2>&1 || rc=$?
    [ "$rc" -eq 75 ] || { cat "$TMP/full.txt"; fail "disk full: exit $rc, expected 75"; }
    grep -q "cannot reserve .* No space left on device\|closing failed\|cannot create\|write failed" "$TMP/full.txt" ||
        fail "disk full: no clear message"
    n=$(ls "$TMP"/full/run/checkpoints/ckpt-*.h5 | wc -l)
    [ "$n" -ge 1 ] || fail "disk full: expected the earlier checkpoints to survive"
    for ck in "$TMP"/full/run/checkpoints/ckpt-*.h5; do
        "$CAVIAR" inspect "$ck" >/dev/null || fail "previous checkpoint damaged: $ck"
    done
    ! ls "$TMP"/full/run/checkpoints/*.tmp.* >/dev/null 2>&1 || fail "temporary file left"
    ok "disk full: exit 75, previous checkpoint intact"
else
    echo "note: cannot mount a tmpfs here (not root?): disk-full case not run"
fi
