#!/usr/bin/python3
"""PyTorch peer for caviar's benchmark (measurement only, never a caviar
dependency): the same MLP, batch, optimizer, He-normal init and data
(a caviar HDF5 dataset, standardised per feature) trained for a fixed number
of steps; prints one JSON line with samples/s.

  torch_peer.py DATA.h5 --hidden 256,128 --batch 128 --steps 300 --threads 1
  torch_peer.py DATA.h5 ... --ddp 2      # DistributedDataParallel, gloo, 2 processes
  torch_peer.py DATA.h5 --cnn 32,64,96   # workload (c): the CNN of tests/bench/run.py
  torch_peer.py DATA.h5 --resnet 32,64   # workload (d): the ResNet of tests/bench/run.py
  torch_peer.py DATA.h5 --lstm 128       # nn.LSTM over 28 rows of 28 pixels (rnn_bench.py)
  torch_peer.py WORDS.h5 --charlm 32,256  # embedding 32, nn.LSTM 256 every step, per-step softmax
"""
import argparse
import json
import os
import time

import h5py
import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def load(path, rank=0, world=1):
    with h5py.File(path, "r") as f:
        n = f["X"].shape[0]
        lo, hi = rank * n // world, (rank + 1) * n // world
        x = f["X"][lo:hi].astype(np.float32) * float(f["X"].attrs.get("scale", f.attrs.get("scale", 1.0)))
        y = f["y"][lo:hi].astype(np.int64)
    mean, std = x.mean(0), x.std(0)
    std[std < 1e-6] = 1
    return torch.from_numpy((x - mean) / std), torch.from_numpy(y)


def model(inputs, hidden, classes):
    layers, prev = [], inputs
    for h in hidden:
        lin = torch.nn.Linear(prev, h)
        torch.nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")  # He, fan_in
        torch.nn.init.zeros_(lin.bias)
        layers += [lin, torch.nn.ReLU()]
        prev = h
    out = torch.nn.Linear(prev, classes)
    torch.nn.init.xavier_normal_(out.weight)
    torch.nn.init.zeros_(out.bias)
    return torch.nn.Sequential(*layers, out)


def cnn(filters, classes):
    """conv 3x3 same -> BN -> ReLU (-> 2x2 max pool between blocks), global
    average pool, dense softmax: caviar's workload (c), He init."""
    layers, prev = [], 1
    for i, f in enumerate(filters):
        conv = torch.nn.Conv2d(prev, f, 3, padding=1)
        torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        torch.nn.init.zeros_(conv.bias)
        layers += [conv, torch.nn.BatchNorm2d(f, momentum=0.1, eps=1e-5), torch.nn.ReLU()]
        if i < len(filters) - 1:
            layers.append(torch.nn.MaxPool2d(2))
        prev = f
    out = torch.nn.Linear(prev, classes)
    torch.nn.init.xavier_normal_(out.weight)
    torch.nn.init.zeros_(out.bias)
    return torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), out)


def conv_bn(c, f, stride, relu):
    conv = torch.nn.Conv2d(c, f, 3, stride=stride, padding=1)
    torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    torch.nn.init.zeros_(conv.bias)
    layers = [conv, torch.nn.BatchNorm2d(f, momentum=0.1, eps=1e-5)]
    return layers + [torch.nn.ReLU()] if relu else layers


class Block(torch.nn.Module):
    """relu(conv-BN-ReLU-conv-BN (x) + shortcut(x)); the shortcut is a 1x1
    strided conv (with bias, as caviar's) when the shape changes."""

    def __init__(self, c, f, stride):
        super().__init__()
        self.branch = torch.nn.Sequential(*conv_bn(c, f, stride, True), *conv_bn(f, f, 1, False))
        self.proj = torch.nn.Conv2d(c, f, 1, stride=stride) if stride > 1 or c != f else None
        if self.proj is not None:
            torch.nn.init.kaiming_normal_(self.proj.weight, nonlinearity="linear")
            torch.nn.init.zeros_(self.proj.bias)

    def forward(self, x):
        sc = x if self.proj is None else self.proj(x)
        return torch.relu(self.branch(x) + sc)


def resnet(filters, classes):
    """caviar's workload (d): 3x3 stem with BN + ReLU, per stage two residual
    blocks (the first of a later stage with stride 2), global average pool,
    dense softmax."""
    layers, prev = conv_bn(1, filters[0], 1, True), filters[0]
    for s, f in enumerate(filters):
        for b in range(2):
            layers.append(Block(prev, f, 2 if s > 0 and b == 0 else 1))
            prev = f
    out = torch.nn.Linear(prev, classes)
    torch.nn.init.xavier_normal_(out.weight)
    torch.nn.init.zeros_(out.bias)
    return torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), out)


class LastStep(torch.nn.Module):
    """nn.LSTM over the rows of an image, its last state into a Linear."""

    def __init__(self, steps_in, hidden, classes):
        super().__init__()
        self.lstm = torch.nn.LSTM(steps_in, hidden, batch_first=True)
        self.out = torch.nn.Linear(hidden, classes)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.out(h[-1])


class CharModel(torch.nn.Module):
    """words-charlm.yaml: embedding, nn.LSTM returning every step, a Linear
    per step; padded steps are computed (as usual in PyTorch) and ignored by
    the loss."""

    def __init__(self, vocab, dim, hidden):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim)
        self.lstm = torch.nn.LSTM(dim, hidden, batch_first=True)
        self.out = torch.nn.Linear(hidden, vocab)

    def forward(self, x):
        h, _ = self.lstm(self.embed(x))
        return self.out(h).flatten(0, 1)


def load_text(path, rank, world):
    """token ids, and per-step targets with the padded steps set to -100
    (CrossEntropyLoss's ignore_index)."""
    with h5py.File(path, "r") as f:
        n = f["X"].shape[0]
        lo, hi = rank * n // world, (rank + 1) * n // world
        x = torch.from_numpy(f["X"][lo:hi].astype(np.int64))
        y = torch.from_numpy(f["y"][lo:hi].astype(np.int64))
        vocab = len(f.attrs["vocab"]) if "vocab" in f.attrs else len(f["vocab"])
        if "lengths" in f:
            steps = torch.arange(x.shape[1])[None, :]
            y[steps >= torch.from_numpy(f["lengths"][lo:hi].astype(np.int64))[:, None]] = -100
    return x, y, vocab


def data_and_net(args, rank, world):
    if args.charlm:
        x, y, vocab = load_text(args.data, rank, world)
        return x, y, CharModel(vocab, *args.charlm)
    x, y = load(args.data, rank, world)
    classes = int(y.max()) + 1
    if args.lstm:
        return x.reshape(-1, 28, 28).contiguous(), y, LastStep(28, args.lstm, classes)
    if args.cnn or args.resnet:
        net = (cnn if args.cnn else resnet)(args.cnn or args.resnet, classes)
        return x.reshape(-1, 1, 28, 28).contiguous(), y, net
    return x, y, model(x.shape[1], args.hidden, classes)


def train(args, rank=0, world=1):
    torch.manual_seed(1)
    torch.set_num_threads(args.threads)
    x, y, net = data_and_net(args, rank, world)
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(net)
    # foreach: PyTorch's fastest CPU Adam (3x the default per-tensor loop here)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, foreach=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    b = args.batch // world
    steps_per_epoch = x.shape[0] // b

    def step(i):
        j = (i % steps_per_epoch) * b
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x[j:j + b]), y[j:j + b].flatten())
        loss.backward()
        opt.step()

    for i in range(args.warmup):
        step(i)
    if world > 1:
        dist.barrier()
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(i)
    if world > 1:
        dist.barrier()
    return args.steps * args.batch / (time.perf_counter() - t0)


def ddp_worker(rank, args, queue):
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
    dist.init_process_group("gloo", rank=rank, world_size=args.ddp)
    sps = train(args, rank, args.ddp)
    if rank == 0:
        queue.put(sps)
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("--hidden", default="256,128")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ddp", type=int, default=0)
    p.add_argument("--cnn", default="", help="conv filters per block, e.g. 32,64,96")
    p.add_argument("--resnet", default="", help="channels per stage, e.g. 32,64")
    p.add_argument("--lstm", type=int, default=0, help="LSTM units over 28 rows of 28 pixels")
    p.add_argument("--charlm", default="", help="embedding dim and LSTM units, e.g. 32,256")
    args = p.parse_args()
    args.charlm = [int(v) for v in args.charlm.split(",")] if args.charlm else []
    args.hidden = [int(h) for h in args.hidden.split(",")]
    args.cnn = [int(f) for f in args.cnn.split(",")] if args.cnn else []
    args.resnet = [int(f) for f in args.resnet.split(",")] if args.resnet else []
    if args.ddp > 1:
        os.environ["MASTER_PORT"] = str(29500 + os.getpid() % 1000)
        ctx = mp.get_context("spawn")
        queue = ctx.SimpleQueue()
        mp.spawn(ddp_worker, args=(args, queue), nprocs=args.ddp, join=True)
        sps = queue.get()
    else:
        sps = train(args)
    print(json.dumps({"samples_per_s": sps, "threads": args.threads, "ddp": args.ddp}))


if __name__ == "__main__":
    main()
