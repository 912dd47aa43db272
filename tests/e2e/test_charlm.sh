#!/usr/bin/env bash
# The character-level language model bar (issue 21): the English word list
# (/usr/share/dict/words, Debian's wamerican) imported with `caviar import
# text --lines`, a short run of jobs/configs/words-charlm.yaml at -np 2, and
#  - the import checked independently: its rows, decoded in Python with the
#    stored vocabulary, are the file's lines (charlm_trigram.py);
#  - the model's dev cross-entropy per character, computed in Python from
#    its probabilities (caviar predict; eval's loss must agree), below that
#    of an add-one-smoothed character trigram model counted on the same
#    training split (charlm_trigram.py, h5py + numpy only);
#  - `caviar sample`: the same seed prints the same words, another seed other
#    ones, one word per line (it stops at the end-of-line token), word-like
#    (letters, plausible lengths, varied);
#  - refused: a prime outside the vocabulary, temperatures <= 0, a model
#    without a vocabulary, text files that are empty, not UTF-8, hold a NUL
#    byte or an over-long line (nothing written).
source "$(dirname "$0")/lib.sh"
WORDS=/usr/share/dict/words
[ -f $WORDS ] || fail "no $WORDS (apt-get install wamerican)"
"$PY" -c 'import h5py' 2>/dev/null || fail "python3-h5py is not installed"
cv() { timeout -k 10 "$STEP_TIMEOUT" "$CAVIAR" "$@"; }   # never hangs
EPOCHS=${CHARLM_EPOCHS:-1}   # the test's run: short enough for CI (the config trains longer)
UNITS=${CHARLM_UNITS:-128}

cv import text $WORDS --lines --shuffle --seed 1 --dev 10000 -o "$TMP/words.h5" \
    >"$TMP/import.txt" || fail "import text $WORDS"
grep -q "+ 10000 dev rows" "$TMP/import.txt" || fail "import: $(cat "$TMP/import.txt")"
tri=$("$PY" "$ROOT/tests/e2e/charlm_trigram.py" "$TMP/words.h5" $WORDS) ||
    fail "the imported rows are not the lines of $WORDS"
ok "import text --lines: rows decode to the word list; trigram dev cross-entropy $tri nats/char"

t0=$(date +%s)
run_np 2 train "$ROOT/jobs/configs/words-charlm.yaml" data.train="$TMP/words.h5" \
    data.dev="$TMP/words.h5#dev" train.epochs="$EPOCHS" model.layers.1.units="$UNITS" \
    run.dir="$TMP/run" run.progress=0 \
    >"$TMP/train.txt" 2>&1 || { cat "$TMP/train.txt" >&2; fail "train words-charlm"; }
secs=$(($(date +%s) - t0))
M=$TMP/run/model.h5
run_np 2 eval "$M" "$TMP/words.h5#dev" --json >"$TMP/eval.json" || fail "eval"
run_np 1 predict "$M" "$TMP/words.h5#dev" -o "$TMP/pred.h5" >/dev/null || fail "predict"
# the model's dev cross-entropy per character, from its probabilities
ce=$("$PY" - "$TMP/pred.h5" "$TMP/words.h5" <<'PY'
import sys, h5py, numpy as np
P = h5py.File(sys.argv[1], "r")["probabilities"]
d = h5py.File(sys.argv[2], "r")["dev"]
y, L, V = d["y"][:], d["lengths"][:], int(d.attrs["classes"])
N, T = y.shape
nll, n = 0.0, 0
for i in range(0, N, 1000):
    p = P[i:i + 1000].reshape(-1, T, V)
    yy, valid = y[i:i + 1000], np.arange(T)[None, :] < L[i:i + 1000, None]
    q = np.take_along_axis(p, yy[:, :, None], axis=2)[:, :, 0]
    nll -= np.log(q[valid].astype(np.float64)).sum()
    n += int(valid.sum())
print("%.6f" % (nll / n))
PY
) || fail "the dev cross-entropy from predict's probabilities"
eval_ce=$(json_get "$TMP/eval.json" loss)
awk -v a="$ce" -v b="$eval_ce" 'BEGIN { d = a - b; exit !(d < 1e-4 && d > -1e-4) }' ||
    fail "eval's dev loss $eval_ce differs from the cross-entropy of its probabilities $ce"
awk -v a="$ce" -v b="$tri" 'BEGIN { exit !(a < b) }' ||
    fail "dev cross-entropy $ce nats/char is not below the trigram's $tri"
ok "words-charlm ($EPOCHS epoch(s) of LSTM-$UNITS, ${secs}s at -np 2): dev cross-entropy $ce" \
    "nats/char (eval: $eval_ce) < trigram $tri"

# sampling: deterministic per seed, one word per line
S="cv sample $M --count 200 --temperature 0.8"
$S --seed 5 >"$TMP/s5a.txt" || fail "sample"
$S --seed 5 >"$TMP/s5b.txt" || fail "sample"
$S --seed 6 >"$TMP/s6.txt" || fail "sample"
cmp -s "$TMP/s5a.txt" "$TMP/s5b.txt" || fail "sample: the same seed printed different text"
! cmp -s "$TMP/s5a.txt" "$TMP/s6.txt" || fail "sample: seeds 5 and 6 printed the same text"
[ "$(wc -l <"$TMP/s5a.txt")" -eq 200 ] || fail "sample --count 200: $(wc -l <"$TMP/s5a.txt") lines"
run_np 2 sample "$M" --count 200 --temperature 0.8 --seed 5 >"$TMP/s5np2.txt" ||
    fail "sample under mpirun -np 2"
cmp -s "$TMP/s5a.txt" "$TMP/s5np2.txt" || fail "sample under -np 2: not the one text of rank 0"
"$PY" - "$TMP/s5a.txt" $WORDS <<'PY' || fail "samples are not word-like: $(head -20 "$TMP/s5a.txt")"
import sys, statistics
words = open(sys.argv[1], encoding="utf-8").read().split("\n")[:-1]
known = set(open(sys.argv[2], encoding="utf-8").read().split("\n"))
letters = sum(w.replace("'", "").isalpha() for w in words) / len(words)
median = statistics.median(len(w) for w in words)
distinct = len(set(words)) / len(words)
real = sum(w in known for w in words) / len(words)
print("samples: %.0f%% letters only, median length %g, %.0f%% distinct, %.0f%% dictionary words,"
      " e.g. %s" % (100 * letters, median, 100 * distinct, 100 * real, " ".join(words[:8])))
sys.exit(not (letters >= 0.95 and 4 <= median <= 12 and distinct >= 0.8))
PY
ok "sample: same seed same words, another seed others, one word per line, word-like"

# refused by sample: exit 2 for usage, 1 for a model without a vocabulary
expect_fail "'#' \(byte offset 1\) is not in the model's vocabulary" cv sample "$M" --prime 'a#'
[ "$(grep -c . "$TMP/out.txt")" -eq 1 ] || fail "sample --prime: more than one message"
for t in 0 -1 nan inf; do
    rc=0
    cv sample "$M" --temperature=$t >"$TMP/out.txt" 2>&1 || rc=$?
    [ $rc -eq 2 ] && grep -q -- "--temperature $t: expected a number" "$TMP/out.txt" ||
        fail "sample --temperature $t: exit $rc, $(cat "$TMP/out.txt")"
done
"$PY" - "$M" "$TMP/novocab.h5" <<'PY'
import shutil, sys, h5py
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "a") as f:
    del f.attrs["vocab"]
PY
expect_fail "novocab.h5: no vocabulary stored with it: not a character language model" \
    run_np 2 sample "$TMP/novocab.h5"
ok "sample refuses a prime outside the vocabulary, temperatures 0 -1 nan inf, a model without vocab"

# refused by import text: one message naming the place, nothing written
printf 'ab\ncd\x00e\n' >"$TMP/nul.txt"
printf 'ab\ncd\n\xffe\n' >"$TMP/bad.txt"
printf 'ab\nabcdefgh\n' >"$TMP/long.txt"
: >"$TMP/empty.txt"
expect_fail "nul.txt:2: a NUL byte at byte offset 5" cv import text "$TMP/nul.txt" --lines -o "$TMP/x.h5"
expect_fail "bad.txt:3: invalid UTF-8 at byte offset 6 \(byte 0xff\)" \
    cv import text "$TMP/bad.txt" --lines -o "$TMP/x.h5"
expect_fail "long.txt:2: a line of 8 characters, longer than --max-length 5" \
    cv import text "$TMP/long.txt" --lines --max-length 5 -o "$TMP/x.h5"
expect_fail "empty.txt: empty file" run_np 2 import text "$TMP/empty.txt" --window 4 -o "$TMP/x.h5"
[ -z "$(ls "$TMP" | grep '^x\.h5')" ] || fail "a refused import left $(ls "$TMP" | grep '^x\.h5')"
ok "import text refuses NUL, invalid UTF-8, an over-long line, an empty file; nothing written"
