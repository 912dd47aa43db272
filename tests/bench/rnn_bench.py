#!/usr/bin/python3
"""caviar's recurrent benchmark, caviar against PyTorch's nn.LSTM
(tests/bench/torch_peer.py) in one run, each at 1 thread, 2 threads and
2 ranks of 1 thread (caviar mpirun, torch DDP gloo), same batch, Adam, data.
Two models:
- `--model fmnist` (default): an LSTM-128 over Fashion-MNIST read row by row
  (28 steps of 28 pixels, its last state into a softmax);
- `--model charlm`: jobs/configs/words-charlm.yaml, the character model of
  the English word list (embedding 32, LSTM-256 over every step, a softmax
  per step over 70 characters, padded rows of 24 steps); --data is the
  `caviar import text --lines` file that config names.

  /usr/bin/python3 tests/bench/rnn_bench.py --caviar build/caviar \\
      --data datasets/fashion-mnist.h5 [--out rnn-bench.json] [--reps 3] [--steps 150]
  /usr/bin/python3 tests/bench/rnn_bench.py --model charlm --caviar build/caviar \\
      --data datasets/words.h5

For each configuration: the median samples/s of --reps runs (round-robin
over the configurations, as run.py does), the achieved GFLOP/s (the GEMM
FLOPs of forward and backward, from the layer shapes) against the sgemm
peak measured at start, and the ratio of caviar's best to torch's best.
Prints a table and writes JSON.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as bench  # noqa: E402  (tests/bench/run.py: runners and the sgemm peak)

BATCH = 128
# steps, features in, LSTM units, softmax width; charlm's features are the
# embedding's width (its lookup costs no FLOPs) and its softmax is per step
MODELS = {"fmnist": dict(T=28, F=28, H=128, C=10, per_step=False),
          "charlm": dict(T=24, F=32, H=256, C=70, per_step=True)}
CAVIAR = [("caviar 1 thread", 1, 1), ("caviar 2 threads", 1, 2), ("caviar 2x1", 2, 1)]
TORCH = [("torch 1 thread", 1, 0), ("torch 2 threads", 2, 0), ("torch DDP 2x1", 1, 2)]


def flops_per_sample(m):
    """forward: T (x W^T + h U^T) and the head (per step or once); backward:
    dW, dx, dU, dh (twice the recurrent forward) and the head's dW, dx. The
    charlm counts every one of the T steps, padded or not."""
    head = 2 * m["H"] * m["C"] * (m["T"] if m["per_step"] else 1)
    return 3 * (2 * m["T"] * 4 * m["H"] * (m["F"] + m["H"]) + head)


def write_config(tmp, model, data, steps):
    m = MODELS[model]
    if model == "charlm":
        layers = (f"    - {{type: embedding, vocab: {m['C']}, dim: {m['F']}}}\n"
                  f"    - {{type: lstm, units: {m['H']}, return_sequences: true}}\n")
        shape = f"[{m['T']}]"
    else:
        layers = f"    - {{type: lstm, units: {m['H']}}}\n"
        shape = f"[{m['T']}, {m['F']}]"
    path = os.path.join(tmp, "lstm.yaml")
    with open(path, "w") as f:
        f.write(f"data: {{train: {data}}}\nmodel:\n  input: {shape}\n  layers:\n{layers}"
                f"    - {{type: dense, units: {m['C']}, activation: softmax}}\n"
                f"train: {{optimizer: adam, lr: 1.0e-3, batch: {BATCH}, epochs: 1000, seed: 1,"
                f" max_steps: {steps}}}\ncheckpoint: {{every_epochs: 0}}\n")
    return path


def run_torch(model, data, steps, threads, ddp):
    import subprocess
    m = MODELS[model]
    net = (["--charlm", f"{m['F']},{m['H']}"] if model == "charlm" else ["--lstm", str(m["H"])])
    cmd = ["/usr/bin/python3", os.path.join(HERE, "torch_peer.py"), data, *net,
           "--batch", str(BATCH), "--steps", str(steps), "--threads", str(threads)]
    if ddp:
        cmd += ["--ddp", str(ddp)]
    out = subprocess.run(cmd, env=bench.env_for(threads), capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["samples_per_s"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=sorted(MODELS), default="fmnist")
    p.add_argument("--caviar", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", default="rnn-bench.json")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--steps", type=int, default=150)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        peak = bench.sgemm_peak(tmp)
        cfg = write_config(tmp, args.model, args.data, args.steps)
        runs = {c[0]: [] for c in CAVIAR + TORCH}
        for rep in range(args.reps):
            rep_dir = os.path.join(tmp, f"rep{rep}")  # a run directory holds one run
            os.mkdir(rep_dir)
            for label, ranks, threads in CAVIAR:
                end = bench.run_caviar(args.caviar, cfg, ranks, threads, rep_dir, BATCH)
                runs[label].append(end["samples_per_s"])
            for label, threads, ddp in TORCH:
                runs[label].append(run_torch(args.model, args.data, args.steps, threads, ddp))
    m = MODELS[args.model]
    fps = flops_per_sample(m)
    rows = {}
    for label, sps in runs.items():
        cores = 2 if " 2" in label else 1  # 2 threads or 2 ranks: the 2-thread peak
        med = statistics.median(sps)
        gflops = med * fps / 1e9
        rows[label] = {"samples_per_s": med, "runs": sps, "gflops": gflops,
                       "pct_peak": 100 * gflops / peak[cores]["gflops"]}
    best_c = max(v["samples_per_s"] for k, v in rows.items() if k.startswith("caviar"))
    best_t = max(v["samples_per_s"] for k, v in rows.items() if k.startswith("torch"))
    print(f"{args.model}: LSTM-{m['H']}, {m['T']} steps of {m['F']}, batch {BATCH}, {args.steps} steps, median of {args.reps}; "
          f"sgemm peak 1 thread {peak[1]['gflops']:.1f}, 2 threads {peak[2]['gflops']:.1f} GFLOP/s; "
          f"OpenBLAS core {peak[1]['core']} (OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')})")
    print(f"{'configuration':<18} {'samples/s':>10} {'GFLOP/s':>8} {'% peak':>7}")
    for label, r in rows.items():
        print(f"{label:<18} {r['samples_per_s']:>10.0f} {r['gflops']:>8.1f} {r['pct_peak']:>6.1f}%")
    print(f"caviar best / torch best: {best_c / best_t:.2f}x")
    with open(args.out, "w") as f:
        json.dump({"model": args.model, "units": m["H"], "steps": m["T"], "features": m["F"],
                   "batch": BATCH,
                   "train_steps": args.steps, "flops_per_sample": fps, "sgemm_peak": peak,
                   "results": rows, "caviar_over_torch": best_c / best_t}, f, indent=1)


if __name__ == "__main__":
    main()
