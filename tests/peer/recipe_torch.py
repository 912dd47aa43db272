#!/usr/bin/python3
"""PyTorch 1.13 as an independent peer for caviar's training recipe.

  recipe_torch.py RECIPE_DUMP   (tests/peer/recipe_dump.c prints caviar's side)

Checks AdamW (decoupled decay, bias in a group without decay), SGD with
Nesterov momentum (with and without coupled weight decay = caviar's L2 / m),
CosineAnnealingLR, CosineAnnealingWarmRestarts, the course's k/sqrt(epoch)
as a LambdaLR, LinearLR warmup followed by cosine, ReduceLROnPlateau
(threshold 0, absolute), and cross_entropy with label_smoothing and class
weights (Keras' convention: w[y] times each sample's loss, summed).
Exit 77 (skip) without torch.
"""
import json
import math
import subprocess
import sys

try:
    import torch
except ImportError:
    print("skip: no torch")
    sys.exit(77)

failures = 0


def close(name, got, want, tol):
    global failures
    worst = max(abs(a - b) / (1 + abs(b)) for a, b in zip(got, want))
    ok = len(got) == len(want) and worst <= tol
    print(("ok  " if ok else "FAIL"), f"{name}: worst relative difference {worst:.3g} (tol {tol:g})")
    if not ok:
        print("  caviar:", got, "\n  torch: ", want)
        failures += 1


def trajectory(grads, make, steps=6):
    w = torch.tensor([[0.5, -1.5]], dtype=torch.float32, requires_grad=True)
    b = torch.tensor([0.25], dtype=torch.float32, requires_grad=True)
    opt = make(w, b)
    out = []
    for t in range(steps):
        lr = 0.05 * (1 + t % 2)
        for g in opt.param_groups:
            g["lr"] = lr
        w.grad = torch.tensor([grads[3 * t : 3 * t + 2]], dtype=torch.float32)
        b.grad = torch.tensor([grads[3 * t + 2]], dtype=torch.float32)
        opt.step()
        out += [w[0, 0].item(), w[0, 1].item(), b[0].item()]
    return out


def optimizers(d):
    g = d["grads"]
    adamw = trajectory(g, lambda w, b: torch.optim.AdamW(
        [{"params": [w], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}],
        lr=0.05, betas=(0.9, 0.999), eps=1e-8))
    close("AdamW (decoupled, bias excluded)", d["adamw"], adamw, 2e-6)
    nest = trajectory(g, lambda w, b: torch.optim.SGD([w, b], lr=0.05, momentum=0.8, nesterov=True))
    close("SGD Nesterov", d["nesterov"], nest, 2e-6)
    nest_l2 = trajectory(g, lambda w, b: torch.optim.SGD(
        [{"params": [w], "weight_decay": 0.8 / 4}, {"params": [b], "weight_decay": 0.0}],
        lr=0.05, momentum=0.8, nesterov=True))
    close("SGD Nesterov + L2 (lambda/m on weights)", d["nesterov_l2"], nest_l2, 2e-6)


def epoch_rates(sched_fn, epochs, lr=0.1):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    s = sched_fn(opt)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    return out


def schedules(d):
    S = torch.optim.lr_scheduler
    close("CosineAnnealingLR", d["cosine"],
          epoch_rates(lambda o: S.CosineAnnealingLR(o, T_max=12, eta_min=0.001), 12), 1e-9)
    close("CosineAnnealingWarmRestarts", d["restarts"],
          epoch_rates(lambda o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001), 21),
          1e-9)
    close("k/sqrt(epoch) (LambdaLR)", d["inverse_sqrt"],
          epoch_rates(lambda o: S.LambdaLR(o, lambda e: 2.0 / math.sqrt(e + 1)), 10), 1e-12)
    # warmup: LinearLR per step over 2 epochs x 4 steps, then cosine per epoch
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    warm = S.LinearLR(opt, start_factor=1 / 8, end_factor=1.0, total_iters=7)
    rates = []
    for _ in range(8):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        warm.step()
    opt2 = torch.optim.SGD([p], lr=0.1)
    cos = S.CosineAnnealingLR(opt2, T_max=6, eta_min=0.001)
    for _ in range(6):
        rates += [opt2.param_groups[0]["lr"]] * 4
        opt2.step()
        cos.step()
    close("LinearLR warmup + CosineAnnealingLR", d["warmup_cosine"], rates, 1e-9)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    s = S.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=1, threshold=0.0,
                            threshold_mode="abs", min_lr=0.02)
    rates = []
    for v in d["plateau_values"]:
        s.step(v)
        rates.append(opt.param_groups[0]["lr"])
    close("ReduceLROnPlateau", d["plateau"], rates, 1e-12)


def loss(d):
    z = torch.tensor(d["z"], dtype=torch.float64).reshape(3, 4).requires_grad_(True)
    y = torch.tensor(d["y"])
    w = torch.tensor(d["weights"], dtype=torch.float64)
    per = torch.nn.functional.cross_entropy(z, y, label_smoothing=d["smoothing"], reduction="none")
    total = (w[y] * per).sum()
    (total * d["scale"]).backward()
    close("cross_entropy(label_smoothing) x class weight: loss", [d["loss"]], [total.item()], 1e-6)
    close("... gradient", d["dz"], z.grad.flatten().tolist(), 1e-6)


def main():
    d = json.loads(subprocess.check_output([sys.argv[1]]))
    print("torch", torch.__version__)
    optimizers(d)
    schedules(d)
    loss(d)
    sys.exit(1 if failures else 0)


main()
