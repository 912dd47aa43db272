#!/usr/bin/env bash
# The metrics of every task against scikit-learn (Debian's python3-sklearn),
# computed from the model's own predictions (caviar predict) and the targets:
#  - regression (2 outputs): MAE, RMSE, R^2 (uniform average) and per output;
#  - multi-label (3 labels): per-label P/R/F1, micro/macro F1, Hamming loss,
#    subset accuracy;
#  - binary: accuracy, per-class P/R/F1, ROC AUC, under 2 ranks;
#  - 10 classes (Fashion-MNIST dev, with class names): per-class P/R/F1,
#    macro F1, top-5 accuracy, the confusion matrix, and the names;
# all to 1e-6.  eval refuses data whose targets do not fit the model.
# Training logs the same figures per epoch (metrics.jsonl dev_mae, ...), and
# a sweep ranks trials by any of them (dev.rmse, minimised).
source "$(dirname "$0")/lib.sh"
fm_data
"$PY" -c 'import sklearn' 2>/dev/null || fail "python3-sklearn is not installed (apt-get install python3-sklearn)"

# Synthetic data with known structure (seeded): regression, multi-label, binary.
"$PY" - "$TMP" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
r = np.random.default_rng(7)
def write(name, X, y, classes):
    with h5py.File(f"{d}/{name}.h5", "w") as f:
        f["X"] = X.astype(np.float32)
        f["y"] = y
        f.attrs["classes"] = classes
X = r.normal(size=(1200, 8))
W = r.normal(size=(8, 2))
write("reg", X, (X @ W + 0.3 * r.normal(size=(1200, 2)) + [5.0, -2.0]).astype(np.float32), 0)
L = (X @ r.normal(size=(8, 3)) + 0.5 * r.normal(size=(1200, 3)) > 0).astype(np.float32)
write("ml", X, L, 0)
write("bin", X, (X[:, 0] + X[:, 1] ** 2 + 0.5 * r.normal(size=1200) > 1).astype(np.int32), 2)
PY

model_yaml() { # NAME UNITS ACT LOSS
    cat >"$TMP/$1.yaml" <<YAML
data: {train: $TMP/$1.h5, dev: $TMP/$1.h5}
model:
  input: [8]
  layers:
    - {type: dense, units: 16, activation: tanh}
    - {type: dense, units: $2, activation: $3}
  loss: $4
train: {optimizer: adam, lr: 1.0e-2, batch: 64, epochs: 3, seed: 1}
run: {dir: $TMP/run-$1, progress: 0}
YAML
}
model_yaml reg 2 linear mse
model_yaml ml 3 sigmoid binary_cross_entropy
model_yaml bin 1 sigmoid binary_cross_entropy
for t in reg ml bin; do
    run_np 1 train "$TMP/$t.yaml" >/dev/null || fail "train $t"
done
fm_named "$TMP/fm-named.h5"
base=$(tiny_config)
run_np 2 train "$base" train.epochs=1 run.dir="$TMP/run-fm" run.progress=0 >/dev/null || fail "train fm"

check() { # NAME MODEL DATA NP
    run_np "$4" eval "$2" "$3" --json >"$TMP/$1.json" || fail "eval --json $1"
    "$CAVIAR" predict "$2" "$3" -o "$TMP/$1-pred.h5" >/dev/null || fail "predict $1"
    "$PY" - "$TMP/$1.json" "$TMP/$1-pred.h5" "$3" "$1" <<'PY' || fail "$1: caviar and scikit-learn differ"
import json, sys, h5py, numpy as np
from sklearn import metrics as M
got = json.load(open(sys.argv[1]))
p = h5py.File(sys.argv[2])["probabilities"][:].astype(np.float64)
spec = sys.argv[3].split("#")
g = h5py.File(spec[0])[spec[1] if len(spec) > 1 else "/"]
y = g["y"][:]
kind = sys.argv[4]
want = {}
if kind == "reg":
    want["task"] = "regression"
    want["mae"] = M.mean_absolute_error(y, p)
    want["rmse"] = np.mean([M.mean_squared_error(y[:, j], p[:, j], squared=False) for j in range(2)])
    want["r2"] = M.r2_score(y, p)
    for j in range(2):
        want[f"per_output.{j}.r2"] = M.r2_score(y[:, j], p[:, j])
        want[f"per_output.{j}.mae"] = M.mean_absolute_error(y[:, j], p[:, j])
elif kind == "ml":
    want["task"] = "multilabel"
    yp = (p > 0.5).astype(int); yt = (y > 0.5).astype(int)
    f1 = M.f1_score(yt, yp, average=None, zero_division=0)
    for j in range(3):
        want[f"per_label.{j}.f1"] = f1[j]
        want[f"per_label.{j}.precision"] = M.precision_score(yt[:, j], yp[:, j], zero_division=0)
        want[f"per_label.{j}.recall"] = M.recall_score(yt[:, j], yp[:, j], zero_division=0)
    want["f1"] = M.f1_score(yt, yp, average="macro", zero_division=0)
    want["micro_f1"] = M.f1_score(yt, yp, average="micro", zero_division=0)
    want["hamming_loss"] = M.hamming_loss(yt, yp)
    want["subset_accuracy"] = M.accuracy_score(yt, yp)
else:
    k = p.shape[1]
    yp = (p[:, 0] > 0.5).astype(int) if k == 1 else p.argmax(1)
    labels = list(range(max(2, k)))
    P, R, F, S = M.precision_recall_fscore_support(y, yp, labels=labels, zero_division=0)
    for c in labels:
        want[f"per_class.{c}.precision"], want[f"per_class.{c}.recall"] = P[c], R[c]
        want[f"per_class.{c}.f1"], want[f"per_class.{c}.support"] = F[c], S[c]
    want["accuracy"] = M.accuracy_score(y, yp)
    want["f1"] = M.f1_score(y, yp, average="macro", zero_division=0)
    want["confusion"] = M.confusion_matrix(y, yp, labels=labels).tolist()
    if k == 1:
        want["task"] = "binary"
        want["roc_auc"] = M.roc_auc_score(y, p[:, 0])
    else:
        want["task"] = "classification"
        want["top_k_accuracy"] = M.top_k_accuracy_score(y, p, k=5, labels=labels)
        names = g.attrs.get("class_names")
        if names is not None:
            want["per_class.9.name"] = names[9].decode() if isinstance(names[9], bytes) else names[9]
def get(path):
    v = got
    for part in path.split("."):
        v = v[int(part)] if isinstance(v, list) else v[part]
    return v
bad = 0
for key, w in want.items():
    v = get(key)
    same = v == w if isinstance(w, (str, list)) else abs(v - w) <= 1e-6
    if not same:
        print(f"{kind} {key}: caviar {v}, scikit-learn {w}")
        bad += 1
print(f"{kind}: {len(want)} figures checked, {bad} differ")
sys.exit(1 if bad else 0)
PY
}
check reg "$TMP/run-reg/model.h5" "$TMP/reg.h5" 2
ok "regression: MAE, RMSE, R^2 (and per output) equal scikit-learn's to 1e-6"
check ml "$TMP/run-ml/model.h5" "$TMP/ml.h5" 2
ok "multi-label: per-label P/R/F1, micro/macro F1, Hamming loss, subset accuracy equal scikit-learn's"
check bin "$TMP/run-bin/model.h5" "$TMP/bin.h5" 2
ok "binary (2 ranks): accuracy, per-class P/R/F1, ROC AUC equal scikit-learn's"
check fm "$TMP/run-fm/model.h5" "$TMP/fm-named.h5" 1
ok "10 classes: per-class P/R/F1, macro F1, top-5, confusion and class names"

"$CAVIAR" eval "$TMP/run-fm/model.h5" "$TMP/fm-named.h5" >"$TMP/human.txt" || fail "eval (human)"
grep -q "Ankle boot" "$TMP/human.txt" || fail "the human report does not name the classes"
expect_fail "reg.h5.*targets \(0 classes, 2 columns\) do not fit 1 outputs" \
    "$CAVIAR" eval "$TMP/run-bin/model.h5" "$TMP/reg.h5"
expect_fail "bin.h5.*targets \(2 classes, 1 columns\) do not fit 3 outputs" \
    run_np 2 eval "$TMP/run-ml/model.h5" "$TMP/bin.h5"
ok "eval refuses data whose targets do not fit the model"

# train logs the task's figures; they equal eval's on the same split
for t in reg ml; do
    "$PY" - "$TMP/run-$t/metrics.jsonl" "$TMP/$t.json" <<'PY' || fail "$t: metrics.jsonl differs from eval"
import json, sys
last = [json.loads(l) for l in open(sys.argv[1])][-1]
ev = json.load(open(sys.argv[2]))
keys = ["mae", "rmse", "r2"] if ev["task"] == "regression" else ["f1", "micro_f1", "hamming_loss", "subset_accuracy"]
for k in keys:
    assert abs(last["dev_" + k] - ev[k]) <= 1e-5 * max(1, abs(ev[k])), (k, last, ev[k])
assert "dev_accuracy" not in last or last["dev_accuracy"] is None
PY
done
grep -q "MAE .* RMSE .* R2" <(run_np 1 train "$TMP/reg.yaml" run.dir="$TMP/reg2" train.epochs=1) ||
    fail "the regression epoch line does not show MAE / RMSE / R2"
ok "train: metrics.jsonl has the task's dev figures (equal to eval), the epoch line shows them"

cat "$TMP/reg.yaml" - >"$TMP/reg-sweep.yaml" <<YAML
sweep:
  trials: 3
  metric: dev.rmse
  space:
    train.lr: log_uniform(1e-3, 3e-2)
YAML
run_np 2 sweep "$TMP/reg-sweep.yaml" run.dir="$TMP/rs" >"$TMP/rs.txt" 2>&1 || { cat "$TMP/rs.txt"; fail "sweep on dev.rmse"; }
"$PY" - "$TMP/rs/sweep" <<'PY' || fail "the dev.rmse sweep does not rank by dev.rmse, lowest first"
import glob, json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/results.jsonl")]
assert len(rows) == 3 and all(r["metric"] == "dev.rmse" for r in rows)
for r in rows:
    last = [json.loads(l) for l in open(r["model"].rsplit("/", 1)[0] + "/metrics.jsonl")][-1]
    assert abs(r["value"] - last["dev_rmse"]) <= 1e-5 * last["dev_rmse"], (r, last)
PY
best=$(grep -Eo "best: trial [0-9]+" "$TMP/rs.txt" | grep -Eo "[0-9]+$")
"$PY" - "$TMP/rs/sweep/results.jsonl" "$best" <<'PY' || fail "the best dev.rmse trial is not the lowest"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert min(rows, key=lambda r: r["value"])["trial"] == int(sys.argv[2]), (rows, sys.argv[2])
PY
ok "sweep.metric=dev.rmse: results are the trials' dev_rmse, the lowest is best"

# the report of a regression run shows its figures, and no accuracy plot
"$CAVIAR" report "$TMP/run-reg" -o "$TMP/reg.html" >/dev/null || fail "report on a regression run"
"$PY" - "$TMP/reg.html" "$TMP/reg.json" <<'PY' || fail "the regression report lacks MAE/RMSE/R2"
import re, sys, json
page, ev = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
kpis = dict(re.findall(r'<div class="kpi"><span>([^<]+)</span><b>([^<]+)</b>', page))
assert abs(float(kpis["MAE"]) - ev["mae"]) <= 5e-5 and abs(float(kpis["R²"]) - ev["r2"]) <= 5e-5, kpis
assert "accuracy" not in kpis and 'id="r0-accuracy"' not in page, kpis
PY
ok "report of a regression run: MAE / RMSE / R2, no accuracy"
