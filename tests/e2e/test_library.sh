#!/usr/bin/env bash
# caviar as a C library: `cmake --install` into a temporary prefix, then
# docs/examples/predict.c (the example docs/library.md shows) is compiled
# against the installed files only, with `cc $(pkg-config ... caviar)`, and
# run as a plain program (no mpirun): its predictions on the 10,000
# Fashion-MNIST test rows must be those of `caviar predict` (same class on
# every row, probabilities as printed: %.7g).  Every installed public
# header must also compile on its own.
source "$(dirname "$0")/lib.sh"
fm_data
BUILD=$(dirname "$CAVIAR")
PREFIX=$TMP/prefix

timeout -k 10 "$STEP_TIMEOUT" cmake --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" ||
    { cat "$TMP/install.log" >&2; fail "cmake --install failed"; }
for f in lib/libcaviar.a lib/pkgconfig/caviar.pc include/caviar/model.h include/caviar/export.h \
    bin/caviar; do
    [ -f "$PREFIX/$f" ] || fail "cmake --install did not install $f"
done
export PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig
flags=$(pkg-config --cflags --libs caviar) || fail "pkg-config does not know caviar"
case $flags in
*"$ROOT"*) fail "pkg-config points into the source tree: $flags" ;;
esac
# a sanitizer build's library needs its runtime in the program too
san=$(sed -n 's/^CV_SANITIZE:STRING=//p' "$BUILD/CMakeCache.txt")
[ -z "$san" ] || flags="-fsanitize=$san $flags"

for h in "$PREFIX"/include/caviar/*.h; do
    echo "#include <caviar/$(basename "$h")>" >"$TMP/h.c"
    # shellcheck disable=SC2086
    cc -std=c11 -Wall -Wextra -Werror -c "$TMP/h.c" -o "$TMP/h.o" $(pkg-config --cflags caviar) ||
        fail "installed header $(basename "$h") does not compile on its own"
done
ok "every installed header compiles on its own"

# shellcheck disable=SC2086
cc -std=c11 -O2 -Wall -Wextra -Werror -o "$TMP/predict" "$ROOT/docs/examples/predict.c" $flags ||
    fail "docs/examples/predict.c does not build against the installed library"

cfg=$(tiny_config)
run_np 1 train "$cfg" train.epochs=1 >/dev/null
"$CAVIAR" predict "$TMP/run/model.h5" "$DATA/fm-test.h5" -o "$TMP/cli.h5" >/dev/null
# a plain process: no mpirun, no MPI environment
env -u OMPI_COMM_WORLD_SIZE -u PMIX_RANK timeout -k 10 "$STEP_TIMEOUT" \
    "$TMP/predict" "$TMP/run/model.h5" "$DATA/fm-test.h5" >"$TMP/lib.csv" ||
    fail "the example failed: $(tail -3 "$TMP/lib.csv")"
"$PY" - "$TMP/cli.h5" "$TMP/lib.csv" <<'PY' || fail "library predictions differ from caviar predict"
import sys
import h5py
import numpy as np
with h5py.File(sys.argv[1]) as f:
    p, cls = f["probabilities"][:], f["predicted"][:]
got = np.loadtxt(sys.argv[2], delimiter=",", ndmin=2)
assert got.shape == (10000, 2 + p.shape[1]), got.shape
assert (got[:, 0] == np.arange(len(p))).all(), "row numbers"
same = int((got[:, 1] == cls).sum())
diff = float(np.abs(got[:, 2:] - p).max())
print(f"{len(p)} rows: same class on {same}, max |p diff| {diff:.3g}")
sys.exit(0 if same == len(p) and diff <= 1e-6 else 1)
PY
ok "the installed-library example predicts as caviar predict does, without mpirun"

expect_fail "not-there.h5" "$TMP/predict" "$TMP/not-there.h5" "$DATA/fm-test.h5"
ok "the example reports a missing model and exits 1"

# docs/library.md shows the example as it is in the repository
"$PY" - "$ROOT/docs/library.md" "$ROOT/docs/examples/predict.c" <<'PY' ||
import sys
doc, src = open(sys.argv[1]).read(), open(sys.argv[2]).read()
block = doc.split("```c\n", 1)[1].split("```\n", 1)[0]
sys.exit(0 if block == src[src.index("#include"):] else 1)
PY
    fail "docs/library.md's example differs from docs/examples/predict.c"
ok "docs/library.md shows docs/examples/predict.c as it is"
