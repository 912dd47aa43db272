#!/usr/bin/python3
"""The yardstick of tests/e2e/test_charlm.sh, computed from the dataset alone
(h5py + numpy, nothing of caviar's): the dev cross-entropy per character, in
nats, of an add-one-smoothed character trigram model counted on the training
split of a `caviar import text --lines` file.

Each row predicts its targets y[0..len) ; the context of y[k] is the two
inputs before it, (x[k-1], x[k]) with x[-1] = the end-of-line token, so the
first character of a line is predicted from (EOL, EOL) and the line's end
from its last two characters - the same targets the network is scored on.

  charlm_trigram.py DATA.h5 [WORDS]   prints the cross-entropy
With WORDS (the text file that was imported), first checks that the rows of
both splits, decoded with the stored vocabulary, are exactly its non-empty
lines (as a multiset), so the import itself is checked independently.
"""
import sys
from collections import Counter

import h5py
import numpy as np


def rows(g):
    return g["X"][:], g["y"][:], g["lengths"][:]


def decode(g, vocab):
    X, _, L = rows(g)
    return ["".join(vocab[t] for t in X[r, 1:L[r]]) for r in range(len(L))]


def main():
    f = h5py.File(sys.argv[1], "r")
    vocab = [t.decode("utf-8") for t in f.attrs["vocab"]]
    eol, V = int(f.attrs["eol_id"]), len(vocab)
    if len(sys.argv) > 2:
        with open(sys.argv[2], encoding="utf-8") as w:
            want = Counter(line.rstrip("\r\n") for line in w if line.strip("\r\n"))
        got = Counter(decode(f, vocab) + decode(f["dev"], vocab))
        if got != want:
            sys.exit("decoded rows differ from the lines of %s: %d vs %d distinct"
                     % (sys.argv[2], len(got), len(want)))
    tri, bi = Counter(), Counter()
    X, Y, L = rows(f)
    for r in range(len(L)):
        prev = eol
        for k in range(L[r]):
            tri[prev, X[r, k], Y[r, k]] += 1
            bi[prev, X[r, k]] += 1
            prev = X[r, k]
    X, Y, L = rows(f["dev"])
    nll, n = 0.0, 0
    for r in range(len(L)):
        prev = eol
        for k in range(L[r]):
            nll -= np.log((tri[prev, X[r, k], Y[r, k]] + 1) / (bi[prev, X[r, k]] + V))
            n += 1
            prev = X[r, k]
    print("%.6f" % (nll / n))


main()
