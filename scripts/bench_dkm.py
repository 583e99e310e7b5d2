#!/usr/bin/env python3
"""palettize.torch on scikit-learn's digits (issue 17 item 5, first part).

1. Accuracy: a small CNN trained in fp32 on the bundled 8x8 digits (seeded split), then at 2 and
   3 bits per tensor: PostTrainingPalettizer, SKMPalettizer (sensitivities from training samples,
   cross-entropy) and DKMPalettizer (fine-tuned from the fp32 weights, milestone 0, finalized).
2. Memory and time per training step of our DKMPalettizer against coremltools'
   (coremltools.optimize.torch.palettization.DKMPalettizer) on one 1024x1024 Linear at 4 bits,
   each run in a fresh subprocess: peak RSS growth (VmHWM) over the first step (which also runs
   the k-means that initialises the centroids) and, after resetting the peak, over the later steps;
   the bytes autograd saves for backward in one step (saved-tensor hooks), and the median
   wall and CPU time of a step.

Run from the repo root (one thread; a few minutes):
    .venv-torch/bin/python scripts/bench_dkm.py   # palettize.torch installed (scripts/setup-torch)
"""

import argparse
import copy
import json
import os
import ctypes
import subprocess
import sys
import time

os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", "AVX512_ICL")
import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


class Net(torch.nn.Module):
    """Two conv layers and two linear layers; every weight has more than 100 elements."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = torch.nn.Linear(32 * 4 * 4, 64)
        self.fc2 = torch.nn.Linear(64, 10)

    def forward(self, x):
        h = torch.relu(self.conv1(x))
        h = torch.nn.functional.max_pool2d(torch.relu(self.conv2(h)), 2)
        return self.fc2(torch.relu(self.fc1(h.flatten(1))))


def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32)[:, None]
    y = torch.tensor(d.target, dtype=torch.long)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    return xtr, ytr, xte, yte


def batches(x, y, size, seed):
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=g)
    for i in range(0, len(x), size):
        j = order[i:i + size]
        yield x[j], y[j]


def train(model, x, y, epochs, lr, seed, palettizer=None):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for epoch in range(epochs):
        for xb, yb in batches(x, y, 32, seed * 1000 + epoch):
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if palettizer is not None:
                palettizer.step()
    return model


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    return float((model(x).argmax(1) == y).float().mean())


def distinct(model):
    return max(torch.unique(m.weight).numel() for m in (model.conv1, model.conv2, model.fc1, model.fc2))


def accuracy_table(args):
    from palettize.torch import (DKMPalettizer, DKMPalettizerConfig, PostTrainingPalettizer,
                                 PostTrainingPalettizerConfig, SKMPalettizer, SKMPalettizerConfig)

    xtr, ytr, xte, yte = digits()
    torch.manual_seed(0)
    fp32 = train(Net(), xtr, ytr, args.epochs, 1e-3, seed=0)
    rows = [("fp32", "-", accuracy(fp32, xte, yte), distinct(fp32), 0.0)]
    # Control: DKM's fine-tuning schedule without palettization (what the extra epochs alone give).
    t0 = time.perf_counter()
    tuned = copy.deepcopy(fp32)
    torch.manual_seed(1)
    train(tuned, xtr, ytr, args.dkm_epochs, args.dkm_lr, seed=1)
    rows.append(("fp32, fine-tuned as DKM", "-", accuracy(tuned, xte, yte), distinct(tuned),
                 time.perf_counter() - t0))
    for n_bits in (2, 3):
        tensor = {"n_bits": n_bits, "granularity": "per_tensor"}

        t0 = time.perf_counter()
        ptq = PostTrainingPalettizer(fp32, PostTrainingPalettizerConfig.from_dict({"global_config": tensor}))
        m = ptq.compress()
        rows.append(("post-training", n_bits, accuracy(m, xte, yte), distinct(m), time.perf_counter() - t0))

        t0 = time.perf_counter()
        loader = [(xtr[i:i + 1], ytr[i:i + 1]) for i in range(args.calibration)]

        def loss_fn(model, data):
            return torch.nn.functional.cross_entropy(model(data[0]), data[1])

        cfg = SKMPalettizerConfig.from_dict({"global_config": tensor, "calibration_nsamples": args.calibration})
        m = SKMPalettizer(fp32, cfg).compress(dataloader=loader, loss_fn=loss_fn)
        rows.append(("SKM", n_bits, accuracy(m, xte, yte), distinct(m), time.perf_counter() - t0))

        t0 = time.perf_counter()
        cfg = DKMPalettizerConfig.from_dict({"global_config": dict(tensor, weight_threshold=100, milestone=0)})
        pal = DKMPalettizer(fp32, cfg)
        prepared = pal.prepare()
        torch.manual_seed(1)
        train(prepared, xtr, ytr, args.dkm_epochs, args.dkm_lr, seed=1, palettizer=pal)
        m = pal.finalize()
        rows.append(("DKM", n_bits, accuracy(m, xte, yte), distinct(m), time.perf_counter() - t0))

        # coremltools' DKMPalettizer, same config and schedule.
        from coremltools.optimize.torch.palettization import DKMPalettizer as CtDKM
        from coremltools.optimize.torch.palettization import DKMPalettizerConfig as CtDKMConfig
        t0 = time.perf_counter()
        pal = CtDKM(copy.deepcopy(fp32), CtDKMConfig.from_dict(
            {"global_config": dict(tensor, weight_threshold=100, milestone=0)}))
        prepared = pal.prepare()
        torch.manual_seed(1)
        train(prepared, xtr, ytr, args.dkm_epochs, args.dkm_lr, seed=1, palettizer=pal)
        m = pal.finalize()
        rows.append(("coremltools DKM", n_bits, accuracy(m, xte, yte), distinct(m), time.perf_counter() - t0))
    return rows, len(xtr), len(xte)


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status: no {field}")


def child(kind, steps):
    """One run in this (fresh) process; prints a JSON line."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(1024, 1024)
    model = torch.nn.Sequential(layer)
    x = torch.randn(64, 1024)
    target = torch.randn(64, 1024)
    cfg = {"global_config": {"n_bits": 4, "granularity": "per_tensor", "weight_threshold": 1000, "milestone": 0}}
    if kind == "coremltools":
        from coremltools.optimize.torch.palettization import DKMPalettizer, DKMPalettizerConfig
        pal = DKMPalettizer(model, DKMPalettizerConfig.from_dict(cfg))
    else:
        from palettize.torch import DKMPalettizer, DKMPalettizerConfig
        pal = DKMPalettizer(model, DKMPalettizerConfig.from_dict(cfg))
        if kind == "ours-naive":
            pal._efficient = False
    base_kb = _status_kb("VmHWM")
    prepared = pal.prepare()
    opt = torch.optim.SGD(prepared.parameters(), lr=1e-3)
    walls, cpus, saved = [], [], 0
    for step in range(steps + 1):
        total = [0]

        def pack(t):
            total[0] += t.numel() * t.element_size()
            return t

        w0, c0 = time.perf_counter(), time.process_time()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = torch.nn.functional.mse_loss(prepared(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        pal.step()
        w1, c1 = time.perf_counter(), time.process_time()
        if step == 0:  # the first step also initialises the centroids (k-means): measured apart
            init_kb = _status_kb("VmHWM")
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM (the peak RSS) to the current RSS
            steady_kb = _status_kb("VmRSS")
        else:
            walls.append(w1 - w0)
            cpus.append(c1 - c0)
        saved = max(saved, total[0])
    peak_kb = _status_kb("VmHWM")
    print(json.dumps({"kind": kind, "init_mb": (init_kb - base_kb) / 1024, "step_mb": (peak_kb - steady_kb) / 1024,
                      "saved_mb": saved / 2**20, "wall_ms": 1e3 * float(np.median(walls)),
                      "cpu_ms": 1e3 * float(np.median(cpus)), "loss": float(loss)}))


def memory_table(steps):
    rows = []
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    for kind in ("ours", "ours-naive", "coremltools"):
        out = subprocess.run([sys.executable, __file__, "--child", kind, "--steps", str(steps)],
                             capture_output=True, text=True, env=env, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=30, help="fp32 training epochs")
    p.add_argument("--dkm-epochs", type=int, default=4, help="DKM fine-tuning epochs")
    p.add_argument("--dkm-lr", type=float, default=1e-4)
    p.add_argument("--calibration", type=int, default=256, help="SKM calibration samples (batch 1)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per memory run")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    args = p.parse_args()
    if args.child:
        child(args.child, args.steps)
        return
    if not args.skip_accuracy:
        rows, ntr, nte = accuracy_table(args)
        print(f"digits: {ntr} train / {nte} test images; per_tensor tables on conv1, conv2, fc1, fc2")
        print("| method | bits | test accuracy | test errors | max distinct values per weight | time (s) |")
        print("|---|---|---|---|---|---|")
        for name, bits, acc, nd, sec in rows:
            print(f"| {name} | {bits} | {100 * acc:.2f}% | {round((1 - acc) * nte)} | {nd} | {sec:.1f} |")
    if not args.skip_memory:
        print("\nDKM training step, Linear(1024, 1024), 4 bits per_tensor, batch 64, one thread:")
        print("| DKMPalettizer | first step, with centroid init: peak RSS growth (MB) "
              "| later steps: peak RSS growth (MB) | saved for backward (MB) "
              "| wall per step (ms) | CPU per step (ms) |")
        print("|---|---|---|---|---|---|")
        for r in memory_table(args.steps):
            print(f"| {r['kind']} | {r['init_mb']:.0f} | {r['step_mb']:.0f} | {r['saved_mb']:.1f} "
                  f"| {r['wall_ms']:.0f} | {r['cpu_ms']:.0f} |")


if __name__ == "__main__":
    main()
