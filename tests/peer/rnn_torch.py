#!/usr/bin/python3
"""PyTorch 1.13 as an independent peer for caviar's recurrent layers.

  rnn_torch.py RNN_DUMP   (tests/peer/rnn_dump.c prints caviar's side)

For nn.RNN (tanh), nn.GRU and nn.LSTM, one and two directions, last step
and every step: caviar's parameters are loaded into torch (weight_ih = W,
weight_hh = U, bias_ih = b, bias_hh = 0 except the GRU's n block = bh),
the ragged batch goes through pack_padded_sequence, a Linear head and
cross_entropy summed over valid steps and averaged over rows; the loss and
every gradient must match caviar's.  Exit 77 (skip) without torch.
"""
import json
import subprocess
import sys

try:
    import torch
except ImportError:
    print("skip: no torch")
    sys.exit(77)

torch.set_num_threads(1)
failures = 0


def take(flat, pos, *shape):
    n = 1
    for s in shape:
        n *= s
    return torch.tensor(flat[pos : pos + n], dtype=torch.float64).reshape(shape), pos + n


def run(dump, kind, bi, seq):
    global failures
    d = json.loads(subprocess.check_output([dump, kind, bi, seq]))
    n, t, f, h, c = d["n"], d["t"], d["f"], d["h"], d["c"]
    g = {"rnn": 1, "gru": 3, "lstm": 4}[kind]
    dirs = 2 if d["bidirectional"] else 1
    cls = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[kind]
    rnn = cls(f, h, batch_first=True, bidirectional=dirs == 2).double()
    head = torch.nn.Linear(dirs * h, c).double()
    p, pos = d["params"], 0
    with torch.no_grad():
        for k in range(dirs):
            sfx = "_l0" + ("_reverse" if k else "")
            w, pos = take(p, pos, g * h, f)
            u, pos = take(p, pos, g * h, h)
            b, pos = take(p, pos, g * h)
            bh = torch.zeros(g * h, dtype=torch.float64)
            if kind == "gru":
                bn, pos = take(p, pos, h)
                bh[2 * h :] = bn
            getattr(rnn, "weight_ih" + sfx).copy_(w)
            getattr(rnn, "weight_hh" + sfx).copy_(u)
            getattr(rnn, "bias_ih" + sfx).copy_(b)
            getattr(rnn, "bias_hh" + sfx).copy_(bh)
        hw, pos = take(p, pos, c, dirs * h)
        hb, pos = take(p, pos, c)
        head.weight.copy_(hw)
        head.bias.copy_(hb)
    x = torch.tensor(d["x"], dtype=torch.float64).reshape(n, t, f)
    lengths = torch.tensor(d["lengths"])
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                     enforce_sorted=False)
    out, state = rnn(packed)
    if d["sequence"]:
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=t)
        logits = head(out).reshape(n * t, c)
        y = torch.tensor(d["y"]).reshape(n * t)
        loss = torch.nn.functional.cross_entropy(logits, y, ignore_index=-1, reduction="sum") / n
    else:
        hn = state[0] if kind == "lstm" else state  # (dirs, n, h)
        last = torch.cat([hn[k] for k in range(dirs)], dim=1)
        loss = torch.nn.functional.cross_entropy(head(last), torch.tensor(d["y"]),
                                                 reduction="sum") / n
    loss.backward()
    want = []
    for k in range(dirs):
        sfx = "_l0" + ("_reverse" if k else "")
        want += getattr(rnn, "weight_ih" + sfx).grad.flatten().tolist()
        want += getattr(rnn, "weight_hh" + sfx).grad.flatten().tolist()
        want += getattr(rnn, "bias_ih" + sfx).grad.flatten().tolist()
        if kind == "gru":
            want += getattr(rnn, "bias_hh" + sfx).grad[2 * h :].tolist()
    want += head.weight.grad.flatten().tolist() + head.bias.grad.tolist()
    got = d["grads"]
    scale = max(abs(v) for v in want)
    worst = max(abs(a - b) for a, b in zip(got, want)) / scale
    dl = abs(d["loss"] - loss.item()) / abs(loss.item())
    ok = len(got) == len(want) and worst < 1e-5 and dl < 1e-6
    print(("ok  " if ok else "FAIL"),
          f"{kind} {bi} {seq}: loss {d['loss']:.7f} vs {loss.item():.7f}, "
          f"gradients worst {worst:.2e} of max |g|")
    failures += not ok


for kind in ("rnn", "gru", "lstm"):
    for bi in ("uni", "bi"):
        for seq in ("last", "sequence"):
            run(sys.argv[1], kind, bi, seq)
sys.exit(1 if failures else 0)
