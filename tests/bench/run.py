#!/usr/bin/python3
"""caviar's benchmark: caviar and the PyTorch peer (same model, batch,
optimizer, init scheme, threads, data) measured in one run.

  /usr/bin/python3 tests/bench/run.py --caviar build/caviar --data datasets/fashion-mnist.h5 \\
      --out bench.json [--reps 3] [--workloads a,b] [--smoke] [--no-torch]

For each workload and configuration: median samples/s of --reps runs, the
caviar/PyTorch ratio (best vs best at the workload's global batch, and
caviar 2x1 weak vs PyTorch DDP 2x1 weak), achieved training GFLOP/s (forward +
backward FLOPs from the layer shapes) against the sgemm peak measured at
start, caviar's step-time breakdown (mean over ranks), and peak RSS per
rank (plus the private, anonymous RSS at the end, which leaves out shared
library pages) against a model of the memory caviar needs.  Scaling is
reported at the workload's global batch (strong) and, for 2x1, with the
batch per rank (weak, the DDP/Horovod convention), as the median of the
ratios of runs made side by side: repetitions go round-robin over the
configurations, so a host whose speed drifts biases no ratio.  Prints a
table and writes JSON.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = {  # name: (hidden layers, or conv filters per block for "c", global batch)
    "a": ([256, 128], 128),
    "b": ([2048, 2048], 256),
    "c": ([32, 64, 96], 128),  # CNN: conv3x3-BN-ReLU blocks, 2x2 max pool between, GAP, dense
    "d": ([32, 64], 128),  # ResNet: conv stem, 2 stages x 2 residual blocks (stride 2 between), GAP
}
# (ranks, threads, batch multiple, overrides): batch is global, so 2x1 splits
# it (strong scaling); "2x1 weak" gives each rank the workload's batch, as DDP
# and Horovod define batch size (per process), so the global batch doubles.
# The default 2x1 keeps one parameter arena per host and sums gradients in
# shared memory (comm.shared_memory); "2x1 private" gives each rank its own
# arenas, exchanged by MPI messages, and "2x1 replicated" also turns the
# sharded optimizer off (comm.shard_optimizer);
# "2x1 bf16" exchanges gradients as bfloat16 (comm.compression):
# workload b, whose exchange is the largest.
CAVIAR_CONFIGS = [(1, 1, 1, ()), (1, 2, 1, ()), (2, 1, 1, ())]
SCALING_CONFIGS = [(2, 1, 1, ("comm.shard_optimizer=false",)),
                   (2, 1, 1, ("comm.shared_memory=false",)), (2, 1, 2, ()),
                   (2, 1, 2, ("comm.shard_optimizer=false",)), (4, 1, 1, ())]
EXCHANGE_CONFIGS = {"b": [(2, 1, 1, ("comm.compression=bf16",)),
                          (2, 1, 2, ("comm.compression=bf16",))]}
OVERRIDE_LABELS = {"comm.shard_optimizer=false": "replicated",
                   "comm.shared_memory=false": "private",
                   "comm.compression=bf16": "bf16"}
# (label, threads, DDP processes, batch multiple): the weak DDP row is the
# counterpart of caviar's "2x1 weak" (the workload's batch per process)
TORCH_CONFIGS = [("torch 1 thread", 1, 0, 1), ("torch 2 threads", 2, 0, 1),
                 ("torch DDP 2x1", 1, 2, 1), ("torch DDP 2x1 weak", 1, 2, 2)]


def env_for(threads):
    e = dict(os.environ, OMP_NUM_THREADS=str(threads), OMPI_ALLOW_RUN_AS_ROOT="1",
             OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    return e


def sgemm_peak(tmp):
    exe = os.path.join(tmp, "sgemm_peak")
    subprocess.run(["gcc", "-O2", "-o", exe, os.path.join(HERE, "sgemm_peak.c"),
                    "-I/usr/include/x86_64-linux-gnu/openblas-openmp", "-lopenblas"], check=True)
    return {t: json.loads(subprocess.run([exe], env=env_for(t), capture_output=True, text=True,
                                         check=True).stdout) for t in (1, 2)}


def flops_per_sample(hidden, inputs=784, classes=10):
    dims = [inputs] + hidden + [classes]
    total = 0
    for i in range(len(dims) - 1):
        mac = dims[i] * dims[i + 1]
        total += 2 * mac * (3 if i > 0 else 2)  # forward, dW, dX (no dX for layer 0)
    return total


def cnn_shapes(filters, side=28):
    """(in channels, out channels, output side) of each conv of workload (c)."""
    out, prev = [], 1
    for i, f in enumerate(filters):
        out.append((prev, f, side))
        prev = f
        if i < len(filters) - 1:
            side //= 2
    return out


def cnn_flops_per_sample(filters, classes=10):
    total = 0
    for i, (c, f, side) in enumerate(cnn_shapes(filters)):
        mac = side * side * f * c * 9
        total += 2 * mac * (3 if i > 0 else 2)  # forward, dW, dX (no dX for the first)
    return total + 2 * 3 * filters[-1] * classes


def cnn_memory_model_mb(filters, batch, ranks, rows, classes=10):
    params = sum(f * c * 9 + f + 2 * f for c, f, _ in cnn_shapes(filters)) + \
        filters[-1] * classes + classes
    per_sample, widest = 0, 0
    for i, (c, f, side) in enumerate(cnn_shapes(filters)):
        per_sample += 2 * f * side * side  # conv and batchnorm outputs
        per_sample += (f * (side // 2) ** 2) if i < len(filters) - 1 else 0  # pooling
        per_sample += 9 * c * side * side  # im2col columns
        widest = max(widest, f * side * side)
    local = -(-batch // ranks)
    acts = local * (per_sample + 2 * widest)
    return 4 * (4 * params + acts + rows // ranks * 784) / 2**20


def resnet_convs(filters, side=28):
    """(in channels, out channels, output side, kernel) of each conv of
    workload (d): a 3x3 stem, then per stage two residual blocks of two 3x3
    convs; a stage after the first starts with stride 2 and a 1x1 projection."""
    out, prev = [(1, filters[0], side, 3)], filters[0]
    for s, f in enumerate(filters):
        for b in range(2):
            if s > 0 and b == 0:
                side = -(-side // 2)
                out.append((prev, f, side, 1))  # the shortcut's projection
            out += [(prev, f, side, 3), (f, f, side, 3)]
            prev = f
    return out


def resnet_flops_per_sample(filters, classes=10):
    total = 0
    for i, (c, f, side, k) in enumerate(resnet_convs(filters)):
        mac = side * side * f * c * k * k
        total += 2 * mac * (3 if i > 0 else 2)  # forward, dW, dX (no dX for the stem)
    return total + 2 * 3 * filters[-1] * classes


def resnet_memory_model_mb(filters, batch, ranks, rows, classes=10):
    convs = resnet_convs(filters)
    params = sum(f * c * k * k + f + 2 * f for c, f, _, k in convs) + filters[-1] * classes + classes
    per_sample = 0
    for c, f, side, k in convs:
        per_sample += 4 * f * side * side  # conv output and dz, BN output and z_hat
        per_sample += k * k * c * side * side  # im2col columns
    for c, f, side, k in convs[1:]:  # two 3x3 convs per block: half its buffers each
        per_sample += 2 * f * side * side if k == 3 else 0  # output, dpre, 2 gradient buffers
    local = -(-batch // ranks)
    return 4 * (4 * params + local * per_sample + rows // ranks * 784) / 2**20


def memory_model_mb(hidden, batch, ranks, rows, inputs=784, classes=10):
    dims = [inputs] + hidden + [classes]
    params = sum(dims[i] * dims[i + 1] + dims[i + 1] for i in range(len(dims) - 1))
    local = -(-batch // ranks)
    acts = local * (sum(dims[1:]) + 2 * max(dims))  # outputs + two gradient buffers
    shard = rows // ranks * inputs
    return 4 * (4 * params + acts + shard) / 2**20  # params, grads, 2 Adam moments


def resnet_layers(filters):
    conv = "    {}- {{type: conv2d, filters: {}, size: 3, pad: same{}}}\n"
    bn = "    {}- {{type: batchnorm{}}}\n"
    out = conv.format("", filters[0], "") + bn.format("", ", activation: relu")
    for s, f in enumerate(filters):
        for b in range(2):
            stride = ", stride: 2" if s > 0 and b == 0 else ""
            out += ("    - type: residual\n      layers:\n" +
                    conv.format("    ", f, stride) + bn.format("    ", ", activation: relu") +
                    conv.format("    ", f, "") + bn.format("    ", ""))
    return out + "    - {type: global_avgpool}\n"


def write_config(tmp, data, hidden, batch, steps, conv=False):
    if conv == "resnet":
        layers = resnet_layers(hidden)
    elif conv:
        blocks = [f"    - {{type: conv2d, filters: {f}, size: 3, pad: same}}\n"
                  f"    - {{type: batchnorm, activation: relu}}\n" for f in hidden]
        layers = "    - {type: maxpool, size: 2}\n".join(blocks) + \
            "    - {type: global_avgpool}\n"
    else:
        layers = "".join(f"    - {{type: dense, units: {h}, activation: relu}}\n" for h in hidden)
    kind = "r" if conv == "resnet" else "c" if conv else ""
    path = os.path.join(tmp, f"cfg-{kind}{'-'.join(map(str, hidden))}.yaml")
    shape = "[1, 28, 28]" if conv else "[784]"
    with open(path, "w") as f:
        f.write(f"data: {{train: {data}}}\nmodel:\n  input: {shape}\n  layers:\n{layers}"
                f"    - {{type: dense, units: 10, activation: softmax}}\n"
                f"train: {{optimizer: adam, lr: 1.0e-3, batch: {batch}, epochs: 1000, seed: 1,"
                f" max_steps: {steps}}}\ncheckpoint: {{every_epochs: 0}}\n")
    return path


def run_caviar(caviar, cfg, ranks, threads, tmp, batch, overrides=()):
    run_dir = os.path.join(tmp, f"run-{ranks}x{threads}-{batch}-" + "-".join(overrides))
    # one core per thread; oversubscribed runs cannot be bound
    bind = (["--map-by", f"slot:PE={threads}", "--bind-to", "core"] if ranks * threads <= 2
            else ["--bind-to", "none"])
    cmd = ["mpirun", "-np", str(ranks), *bind, caviar, "train", cfg, f"run.dir={run_dir}",
           f"train.batch={batch}", *overrides]
    subprocess.run(cmd, env=env_for(threads), capture_output=True, text=True, check=True)
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        lines = [json.loads(l) for l in f]
    return next((l for l in lines if l["event"] == "end"), lines[-1])


def run_torch(data, hidden, batch, steps, threads, ddp, conv=False):
    flag = "--resnet" if conv == "resnet" else "--cnn" if conv else "--hidden"
    cmd = ["/usr/bin/python3", os.path.join(HERE, "torch_peer.py"), data, flag, ",".join(map(str, hidden)), "--batch", str(batch),
           "--steps", str(steps), "--threads", str(threads)]
    if ddp:
        cmd += ["--ddp", str(ddp)]
    out = subprocess.run(cmd, env=env_for(threads), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["samples_per_s"]


def rows_of(data):
    import h5py
    with h5py.File(data, "r") as f:
        return f["X"].shape[0]


def bench_workload(args, name, tmp, peak):
    hidden, batch = WORKLOADS[name]
    conv = {"c": True, "d": "resnet"}.get(name, False)
    steps = args.steps or {"a": 300, "b": 60, "c": 60, "d": 30}[name]
    cfg = write_config(tmp, args.data, hidden, batch, steps, conv)
    fps, mem = {"c": (cnn_flops_per_sample, cnn_memory_model_mb),
                "d": (resnet_flops_per_sample, resnet_memory_model_mb)}.get(
                    name, (flops_per_sample, memory_model_mb))
    fps = fps(hidden)
    rows = rows_of(args.data)
    res = {"hidden": hidden, "batch": batch, "steps": steps, "flops_per_sample": fps,
           "caviar": {}, "torch": {}}
    configs = CAVIAR_CONFIGS + ([] if args.smoke else
                                SCALING_CONFIGS + EXCHANGE_CONFIGS.get(name, []))
    torch_configs = [] if args.no_torch else TORCH_CONFIGS
    ends = {c: [] for c in configs}
    torch_runs = {c: [] for c in torch_configs}
    # repetitions go round-robin over the configurations, so that a machine
    # whose speed drifts (shared hosts do) biases no ratio
    for rep in range(args.reps):
        rep_dir = os.path.join(tmp, f"{name}-rep{rep}")  # a run directory holds one run
        os.makedirs(rep_dir)
        for c in configs:
            ranks, threads, mult, over = c
            ends[c].append(run_caviar(args.caviar, cfg, ranks, threads, rep_dir, batch * mult,
                                      over))
        for c in torch_configs:
            _, threads, ddp, mult = c
            torch_runs[c].append(run_torch(args.data, hidden, batch * mult, steps, threads, ddp,
                                           conv))
    for (ranks, threads, mult, over), e in ends.items():
        sps = statistics.median(x["samples_per_s"] for x in e)
        cores = min(ranks * threads, 2)
        gflops = sps * fps / 1e9
        t = e[-1]["time_s"]  # the mean over ranks
        tot = sum(t.values()) or 1
        label = f"{ranks}x{threads}" + (" weak" if mult > 1 else "") + \
            "".join(" " + OVERRIDE_LABELS[o] for o in over)
        res["caviar"][label] = {
            "samples_per_s": sps, "gflops": gflops, "global_batch": batch * mult,
            "fraction_of_peak": gflops / (peak[min(cores, 2)]["gflops"]),
            "breakdown_pct": {k: 100 * v / tot for k, v in t.items()},
            "peak_rss_mb": e[-1]["peak_rss_mb"],
            "anon_rss_mb": e[-1].get("anon_rss_mb", 0),
            "memory_model_mb": mem(hidden, batch * mult, ranks, rows),
            "all_runs": [x["samples_per_s"] for x in e]}
    for (label, _, _, mult), runs in torch_runs.items():
        res["torch"][label] = {"samples_per_s": statistics.median(runs), "all_runs": runs,
                               "global_batch": batch * mult}
    # best vs best at the workload's global batch (the weak run trains another)
    best_c = max(v["samples_per_s"] for v in res["caviar"].values()
                 if v["global_batch"] == batch)
    if res["torch"]:
        best_t = max(v["samples_per_s"] for v in res["torch"].values()
                     if v["global_batch"] == batch)
        res["caviar_over_torch_best"] = best_c / best_t
    weak_c, weak_t = res["caviar"].get("2x1 weak"), res["torch"].get("torch DDP 2x1 weak")
    if weak_c and weak_t:  # both at the workload's batch per process
        res["caviar_over_torch_ddp_weak"] = weak_c["samples_per_s"] / weak_t["samples_per_s"]
    c = res["caviar"]
    for key, label in (("scaling_2x1_over_1x1", "2x1"), ("scaling_2x1_weak_over_1x1", "2x1 weak"),
                       ("scaling_4x1_over_1x1", "4x1")):
        if "1x1" in c and label in c:  # the median of the per-repetition ratios
            res[key] = statistics.median(
                a / b for a, b in zip(c[label]["all_runs"], c["1x1"]["all_runs"]))
    return res


def print_table(out):
    print(f"OpenBLAS core: {out['sgemm_peak'][1]['core']}  (OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')})   sgemm peak: "
          f"1 thread {out['sgemm_peak'][1]['gflops']:.0f} GFLOP/s, "
          f"2 threads {out['sgemm_peak'][2]['gflops']:.0f} GFLOP/s")
    for name, r in out["workloads"].items():
        net = {"c": f"CNN conv{'-'.join(map(str, r['hidden']))} (3x3, BN, ReLU, max pool, GAP)",
               "d": f"ResNet stem + 2x2 residual blocks of {'/'.join(map(str, r['hidden']))} "
                    "channels (3x3, BN, stride-2 projection, GAP)"}.get(
                        name, f"MLP 784-{'-'.join(map(str, r['hidden']))}-10")
        print(f"\nworkload ({name}): {net}, batch "
              f"{r['batch']}, Adam, {r['steps']} steps, median of {out['reps']}")
        print(f"  {'config':33} {'samples/s':>10} {'GFLOP/s':>8} {'%peak':>6}  "
              f"{'data/fwd/bwd/comm/opt %':>26} {'RSS MB':>7} {'anon MB':>7} {'model MB':>8}")
        for k, v in r["caviar"].items():
            b = v["breakdown_pct"]
            bd = "/".join(f"{b[x]:.0f}" for x in ("data", "forward", "backward",
                                                    "allreduce_exposed", "optimizer"))
            print(f"  caviar {k:26} {v['samples_per_s']:10.0f} {v['gflops']:8.1f} "
                  f"{100 * v['fraction_of_peak']:5.0f}%  {bd:>26} {v['peak_rss_mb']:7.0f} "
                  f"{v['anon_rss_mb']:7.0f} {v['memory_model_mb']:8.0f}")
        for k, v in r["torch"].items():
            print(f"  {k:33} {v['samples_per_s']:10.0f}")
        for key in ("caviar_over_torch_best", "caviar_over_torch_ddp_weak", "scaling_2x1_over_1x1",
                    "scaling_2x1_weak_over_1x1", "scaling_4x1_over_1x1"):
            if key in r:
                print(f"  {key}: {r[key]:.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--caviar", default="build/caviar")
    p.add_argument("--data", default="datasets/fashion-mnist.h5")
    p.add_argument("--out", default="bench.json")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--workloads", default="a,b,c,d")
    p.add_argument("--smoke", action="store_true", help="few steps, 1 rep: checks the harness")
    p.add_argument("--no-torch", action="store_true")
    args = p.parse_args()
    args.caviar = os.path.abspath(args.caviar)
    args.data = os.path.abspath(args.data)
    if args.smoke:
        args.reps, args.steps = 1, args.steps or 20
    with tempfile.TemporaryDirectory() as tmp:
        peak = sgemm_peak(tmp)
        out = {"reps": args.reps, "sgemm_peak": peak, "workloads": {}}
        for w in args.workloads.split(","):
            out["workloads"][w] = bench_workload(args, w, tmp, peak)
    print_table(out)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
