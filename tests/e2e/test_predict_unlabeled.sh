#!/usr/bin/env bash
# predict and ensemble predict on new data: an HDF5 file with only /X, a CSV
# of features (with or without a label column of class names), checked
# against independent paths: the same rows with labels, a numpy forward pass
# with the model's stored weights and normalisation, and numpy's mean (or
# vote) of the members' own predictions.  Bad input: one message, exit 1 on
# every rank, nothing written.
source "$(dirname "$0")/lib.sh"
fm_data
cd "$TMP"

# 6,000 training rows with class names; 1,000 test rows as files of each kind
"$PY" - "$DATA" <<'PY' || fail "writing the data"
import sys, h5py, numpy as np
names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"]
with h5py.File(f"{sys.argv[1]}/fm.h5") as s, h5py.File("sub.h5", "w") as d:
    for grp, n in (("/", 6000), ("dev", 1000)):
        g = d.require_group(grp)
        for k in ("X", "y"):
            g[k] = s[grp][k][:n]
        for k, v in s[grp].attrs.items():
            g.attrs[k] = v
        g.attrs["class_names"] = names
with h5py.File(f"{sys.argv[1]}/fm-test.h5") as s:
    X, y, scale = s["X"][:1000], s["y"][:1000], s.attrs["scale"]
with h5py.File("lab.h5", "w") as d:
    d["X"], d["y"] = X, y
    d.attrs["classes"], d.attrs["scale"] = 10, scale
with h5py.File("nolab.h5", "w") as d:
    d["X"] = X
    d.attrs["scale"] = scale
x = X.astype(np.float32) * np.float32(scale)
with open("feat.csv", "w") as f:
    for row in x:
        f.write(",".join("%.9g" % v for v in row) + "\n")
with open("featlab.csv", "w") as f:
    f.write(",".join(["label"] + [f"px{i}" for i in range(784)]) + "\n")
    for row, c in zip(x, y):
        f.write(",".join(['"%s"' % names[c]] + ["%.9g" % v for v in row]) + "\n")
with open("ids.csv", "w") as f:  # class ids, only classes 0-4 present
    for row, c in zip(x, y):
        if c < 5:
            f.write(",".join([str(c)] + ["%.9g" % v for v in row]) + "\n")
with open("id12.csv", "w") as f:
    f.write(",".join(["12"] + ["0"] * 784) + "\n")
with h5py.File("wrong.h5", "w") as d:
    d["X"] = np.zeros((5, 10), np.float32)
PY
sed -e "s|$DATA/fm.h5#dev|$TMP/sub.h5#dev|; s|$DATA/fm.h5|$TMP/sub.h5|" "$(tiny_config)" >m.yaml
run_np 1 train m.yaml run.dir="$TMP/m1" >/dev/null || fail "train member 1"
run_np 1 train m.yaml run.dir="$TMP/m2" train.seed=11 >/dev/null || fail "train member 2"

run_np 1 predict m1/model.h5 lab.h5 -o p-lab.h5 >/dev/null || fail "predict lab.h5"
run_np 2 predict m1/model.h5 nolab.h5 -o p-nolab.h5 >out.txt || fail "predict nolab.h5"
grep -q "wrote 1000 predictions (10 outputs) to p-nolab.h5" out.txt || fail "$(cat out.txt)"
run_np 2 predict m1/model.h5 feat.csv -o p-feat.csv >/dev/null || fail "predict feat.csv"
run_np 1 predict m1/model.h5 featlab.csv --header --label-column label -o p-featlab.csv \
    >/dev/null || fail "predict featlab.csv"
run_np 2 predict m1/model.h5 ids.csv --label-column 0 -o p-ids.h5 >/dev/null ||
    fail "predict ids.csv (a subset of the classes)"
"$PY" - <<'PY' || fail "predictions on label-free data"
import csv, h5py, numpy as np
names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"]
with h5py.File("p-lab.h5") as a, h5py.File("p-nolab.h5") as b, h5py.File("lab.h5") as d:
    P, y = a["probabilities"][:], d["y"][:]
    assert np.array_equal(a["label"][:], y)
    assert "label" not in b
    assert np.allclose(b["probabilities"][:], P, rtol=1e-6, atol=1e-7)
    assert np.array_equal(b["predicted"][:], a["predicted"][:])
    got = [n.decode() if isinstance(n, bytes) else n for n in b.attrs["class_names"]]
    assert got == names, got
    x = d["X"][:].astype(np.float32) * d.attrs["scale"]
for path, labelled in (("p-feat.csv", False), ("p-featlab.csv", True)):
    rows = list(csv.DictReader(open(path)))
    assert ("label" in rows[0]) == labelled, path
    p = np.array([[float(r[f"p{j}"]) for j in range(10)] for r in rows])
    assert np.allclose(p, P, rtol=1e-5, atol=1e-7), path
    pred = [int(r["predicted"]) for r in rows]
    assert [r["predicted_name"] for r in rows] == [names[i] for i in pred]
    if labelled:
        assert [int(r["label"]) for r in rows] == list(y)
with h5py.File("p-ids.h5") as f:
    sub = y < 5
    assert np.array_equal(f["label"][:], y[sub])
    assert np.allclose(f["probabilities"][:], P[sub], rtol=1e-5, atol=1e-7)
# an independent forward pass: the model's weights and stored normalisation
with h5py.File("m1/model.h5") as f:
    layers = [f["layers"][n] for n in sorted(f["layers"])]
    mean, std = f["normalization/mean"][:], f["normalization/std"][:]
    weights = [(g["W"][:], g["b"][:]) for g in layers if "W" in g]
def forward(a):
    for i, (W, b) in enumerate(weights):
        a = a @ W.T + b
        a = np.maximum(a, 0) if i < len(weights) - 1 else a
    e = np.exp(a - a.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)
err = np.abs(forward((x - mean) / std) - P).max()
assert err < 1e-4, err
assert np.abs(forward(x) - P).max() > 1e-2  # without the normalisation: other outputs
PY
ok "predict on /X only, a CSV of features and a CSV with named labels: the labelled file's predictions, numpy's forward pass with the stored normalisation"

run_np 1 predict m2/model.h5 nolab.h5 -o p2.h5 >/dev/null || fail "predict member 2"
run_np 2 ensemble predict m1/model.h5 m2/model.h5 --data nolab.h5 -o e-mean.h5 >out.txt ||
    fail "ensemble predict: $(cat out.txt)"
grep -q "wrote 1000 predictions of 2 member(s) (mean probabilities) to e-mean.h5" out.txt ||
    fail "$(cat out.txt)"
run_np 1 ensemble predict m1/model.h5 m2/model.h5 --data featlab.csv --header \
    --label-column label --vote majority -o e-vote.csv >/dev/null || fail "ensemble --vote majority"
"$PY" - <<'PY' || fail "ensemble predict disagrees with numpy on the members' predictions"
import csv, h5py, numpy as np
with h5py.File("p-nolab.h5") as a, h5py.File("p2.h5") as b, h5py.File("e-mean.h5") as e, \
        h5py.File("lab.h5") as d:
    p1, p2, y = a["probabilities"][:], b["probabilities"][:], d["y"][:]
    mean = p1 / np.float32(2) + p2 / np.float32(2)
    assert np.allclose(e["probabilities"][:], mean, rtol=1e-6, atol=1e-7)
    assert np.array_equal(e["predicted"][:], mean.argmax(1))
    assert "label" not in e
votes = np.zeros_like(p1)
for p in (p1, p2):
    votes[np.arange(len(p)), p.argmax(1)] += 0.5
rows = list(csv.DictReader(open("e-vote.csv")))
got = np.array([[float(r[f"p{j}"]) for j in range(10)] for r in rows])
assert np.array_equal(got, votes)
assert [int(r["predicted"]) for r in rows] == list(votes.argmax(1))  # ties: the lower class
assert [int(r["label"]) for r in rows] == list(y)
PY
ok "ensemble predict: numpy's mean of the members' probabilities, and their vote fractions"

# Class names travel in model.h5 (root attribute class_names, written at
# training time): predict names the classes with the training file gone; an
# older model without the attribute takes them from its training file.
cp m1/model.h5 old.h5
"$PY" - <<'PY' || fail "model.h5: no class_names attribute with the training split's names"
import h5py
with h5py.File("m1/model.h5") as f, h5py.File("sub.h5") as d:
    got = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["class_names"]]
    want = [n.decode() if isinstance(n, bytes) else n for n in d.attrs["class_names"]]
assert got == want and len(got) == 10, got
with h5py.File("old.h5", "r+") as f:  # as models trained before names were stored
    del f.attrs["class_names"]
PY
mv sub.h5 sub-moved.h5
run_np 2 predict m1/model.h5 nolab.h5 -o names-stored.csv >/dev/null || fail "predict, no training file"
run_np 1 predict old.h5 nolab.h5 -o names-none.csv >/dev/null || fail "predict an old model"
mv sub-moved.h5 sub.h5
run_np 1 predict old.h5 nolab.h5 -o names-old.csv >/dev/null || fail "predict an old model"
"$PY" - <<'PY' || fail "class names: not from model.h5, or no fallback to the training file"
import csv
names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"]
for path, named in (("names-stored.csv", True), ("names-none.csv", False), ("names-old.csv", True)):
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == 1000 and ("predicted_name" in rows[0]) == named, path
    if named:
        assert [r["predicted_name"] for r in rows] == [names[int(r["predicted"])] for r in rows]
PY
ok "class names: stored in model.h5 at training, used without the training file; older models fall back to it"

# Per-step models (a character model on the word list): one prediction per
# valid step; the ensemble's vote is taken on each step.
timeout -k 10 "$STEP_TIMEOUT" "$CAVIAR" import text /usr/share/dict/words --lines --shuffle \
    --seed 1 --dev 300 -o words.h5 >/dev/null || fail "import text /usr/share/dict/words"
read -r V T <<<"$("$PY" -c 'import h5py; f = h5py.File("words.h5"); print(f.attrs["classes"], f["X"].shape[1])')"
for s in 1 2; do
    cat >"c$s.yaml" <<YAML
data: {train: words.h5, dev: words.h5#dev}
model:
  input: [$T]
  layers:
    - {type: embedding, vocab: $V, dim: 8}
    - {type: gru, units: 16, return_sequences: true}
    - {type: dense, units: $V, activation: softmax}
  loss: softmax_cross_entropy
train: {optimizer: adam, lr: 1.0e-2, batch: 64, epochs: 1, max_steps: 20, seed: $s}
checkpoint: {every_epochs: 0, every_steps: 0}
run: {dir: c$s, report: false, progress: 0}
YAML
    run_np 1 train "c$s.yaml" >"c$s.log" 2>&1 || { cat "c$s.log" >&2; fail "train c$s"; }
    run_np 2 predict "c$s/model.h5" "words.h5#dev" -o "c$s.h5" >/dev/null || fail "predict c$s"
done
run_np 2 predict c1/model.h5 "words.h5#dev" -o c1.csv >/dev/null || fail "predict c1 to CSV"
run_np 2 ensemble predict c1/model.h5 c2/model.h5 --data "words.h5#dev" --vote majority \
    -o cvote.h5 >/dev/null || fail "ensemble predict --vote majority, per step"
run_np 2 ensemble eval c1/model.h5 c2/model.h5 --data "words.h5#dev" --vote majority --json \
    >cvote.json || fail "ensemble eval --vote majority, per step"
"$PY" - "$V" "$T" <<'PY' || fail "per-step predictions disagree with numpy"
import csv, json, sys, h5py, numpy as np
V, T = int(sys.argv[1]), int(sys.argv[2])
with h5py.File("words.h5") as f:
    L, y = f["dev/lengths"][:], f["dev/y"][:]
N = len(L)
valid = np.arange(T)[None, :] < L[:, None]
P, pred = [], []
for s in (1, 2):
    with h5py.File(f"c{s}.h5") as f:
        P.append(f["probabilities"][:].reshape(N, T, V))
        pred.append(f["predicted"][:])
    assert pred[-1].shape == (N, T), pred[-1].shape
    want = np.where(valid, P[-1].argmax(2), -1)  # one class per valid step, -1 on padding
    assert np.array_equal(pred[-1], want)
rows = list(csv.DictReader(open("c1.csv")))
assert len(rows) == int(L.sum()), (len(rows), int(L.sum()))  # a line per valid step
r, s = np.nonzero(valid)
assert [(int(x["row"]), int(x["step"])) for x in rows] == list(zip(r.tolist(), s.tolist()))
assert [int(x["predicted"]) for x in rows] == pred[0][valid].tolist()
got = np.array([[float(x[f"p{j}"]) for j in range(V)] for x in rows])
assert np.allclose(got, P[0][valid], rtol=1e-6, atol=1e-9)
votes = np.zeros_like(P[0])
for p in P:
    idx = p.argmax(2)
    for a in range(N):
        votes[a, np.arange(T), idx[a]] += 0.5
with h5py.File("cvote.h5") as f:
    e, epred = f["probabilities"][:].reshape(N, T, V), f["predicted"][:]
assert np.array_equal(e[valid], votes[valid])
assert np.array_equal(epred, np.where(valid, votes.argmax(2), -1))  # ties: the lower class
acc = float((votes.argmax(2) == y)[valid].mean())
got_acc = json.load(open("cvote.json"))["ensemble"]["accuracy"]
assert abs(got_acc - acc) < 1e-5, (got_acc, acc)
print(f"{N} rows, {int(L.sum())} steps; vote accuracy per step {acc:.4f}")
PY
ok "per-step model: predict gives a class per valid step (HDF5 N x T, -1 on padding; CSV a line per step); ensemble votes per step (predict and eval)"

# bad input: one message on every rank, exit 1, nothing written
echo old >keep.csv
printf '1,2\n3,4\n' >two.csv
sed 's/"Sneaker"/"Sneakerz"/' featlab.csv >unknown.csv
printf '0.5,0.25\0\n' >nul.csv
expect_fail "wrong.h5: 10 features per row, but model.input describes 784" \
    run_np 2 predict m1/model.h5 wrong.h5 -o keep.csv
expect_fail "two.csv: 2 features per row, but model.input describes 784" \
    run_np 2 predict m1/model.h5 two.csv -o keep.csv
expect_fail "unknown.csv:[0-9]+:1: label 'Sneakerz' is not one of the 10 class names" \
    run_np 2 predict m1/model.h5 unknown.csv --header --label-column label -o keep.csv
expect_fail "id12.csv: label 12, but the model has 10 outputs" \
    run_np 2 predict m1/model.h5 id12.csv --label-column 0 -o keep.csv
expect_fail "nul.csv:1:2: a NUL byte inside the field" \
    "$CAVIAR" predict m1/model.h5 nul.csv -o keep.csv
expect_fail "nothere.h5: cannot open dataset" "$CAVIAR" predict m1/model.h5 nothere.h5 -o keep.csv
expect_fail "two.csv: 2 features per row, but model.input describes 784" \
    run_np 2 ensemble predict m1/model.h5 m2/model.h5 --data two.csv -o keep.csv
expect_fail "-o p.txt: expected a file name ending in .h5 or .csv" \
    run_np 2 predict m1/model.h5 nolab.h5 -o p.txt
[ "$(cat keep.csv)" = old ] && [ ! -e p.txt ] || fail "a failed predict wrote its output"
expect_fail "nolab.h5: no dataset /y" "$CAVIAR" eval m1/model.h5 nolab.h5
rc=0
"$CAVIAR" ensemble predict m1/model.h5 --data nolab.h5 >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "ensemble predict without -o: exit $rc, expected 2"
ok "bad data for predict: one message naming the file (and line), nothing written; eval still needs /y"
