#!/usr/bin/env python3
"""palettize.torch on all-MiniLM-L6-v2 at 3 bits (issue 17 item 5, second part).

Teacher: the fp32 model (sentence-transformers, mean pooled and L2-normalised embeddings). Students:
copies with every Linear weight of the encoder palettized at 3 bits, one table per tensor; the
embedding tables (word, position, token type) are left in fp32, as configs/torch/
dkm_4bit_milestone10.yaml does, and so is the pooler (its output is not part of the sentence
embedding). The same config for the three palettizers:

    global_config: {n_bits: 3, granularity: per_tensor}
    module_type_configs: {Embedding: null}
    module_name_configs: {0.model.pooler.dense: null}

(a) PostTrainingPalettizer; (b) SKMPalettizer calibrated on the training sentences (batch 1) with
scripts/bench_sensitivity.py's loss (the embedding projected on a fixed random sign vector: its
squared gradient estimates the Gauss-Newton diagonal of the embedding distortion; the distillation
loss itself has zero gradient at the fp32 weights); (c) DKMPalettizer (milestone 0, defaults
otherwise) fine-tuned with Adam on loss = 1 - cos(student, teacher) over the training sentences,
then finalize().

Metric: cosine between each student's and the teacher's embedding of held-out sentences
(disjoint from the training ones; text of scripts/bench_sensitivity.py): mean and 5th percentile.
DKM also reports the median wall and CPU time of a training step, the same for a plain fp32 step
of the same batch (what the soft k-means adds), and the peak RSS of the process over the
fine-tuning (VmHWM, reset just before it).

Dropout is off throughout (the models are in eval mode; DKM's wrappers do not depend on the mode),
so a run is deterministic: seeded batch order, one torch thread.

Run from the repo root (palettize.torch installed in .venv-torch by scripts/setup-torch):
    HF_HUB_OFFLINE=1 .venv-torch/bin/python scripts/bench_dkm_minilm.py
"""

import argparse
import copy
import ctypes
import os
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench_dkm  # noqa: E402  (one torch thread, /proc/self/status reader)
import bench_sensitivity as bs  # noqa: E402  (text, model loading, embedding, SKM loss)

torch = bs.torch


def config(n_bits):
    return {"global_config": {"n_bits": n_bits, "granularity": "per_tensor"},
            "module_type_configs": {"Embedding": None},
            "module_name_configs": {"0.model.pooler.dense": None}}


def sign_vectors(n, seed):
    """bench_sensitivity.loader()'s fixed Rademacher vectors, one per calibration sentence."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 2, (384,), generator=g, dtype=torch.float32) * 2 - 1 for _ in range(n)]


def cosines(student, sentences, reference):
    return (bs.encode(student, sentences) * reference).sum(dim=1).double()


def summary(cos):
    return float(cos.mean()), float(torch.quantile(cos, 0.05))


def max_distinct(model, n_bits_config):
    """The largest number of distinct values among the weights the config palettizes."""
    skip = set(n_bits_config["module_name_configs"])
    return max(torch.unique(mod.weight).numel() for name, mod in model.named_modules()
               if isinstance(mod, torch.nn.Linear) and name not in skip)


def batches(n, size, seed):
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g).tolist()
    return [order[i:i + size] for i in range(0, n, size)]


def distill(model, train, targets, args, palettizer=None, max_steps=None):
    """Adam on 1 - cos(model(x), teacher(x)); returns (per-step wall s, per-step CPU s, last loss)."""
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    walls, cpus, loss = [], [], float("nan")
    step = 0
    for epoch in range(args.dkm_epochs):
        for idx in batches(len(train), args.batch, args.seed * 1000 + epoch):
            if max_steps is not None and step == max_steps:
                return walls, cpus, loss
            w0, c0 = time.perf_counter(), time.process_time()
            emb = bs.embed(model, [train[i] for i in idx])
            cost = (1 - (emb * targets[idx]).sum(dim=1)).mean()
            opt.zero_grad()
            cost.backward()
            opt.step()
            if palettizer is not None:
                palettizer.step()
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
            loss = float(cost)
            step += 1
            if args.verbose:
                print(f"bench_dkm_minilm: step {step} loss {loss:.5f} {walls[-1]:.1f} s", file=sys.stderr)
    return walls, cpus, loss


def run(args):
    from palettize.torch import (PostTrainingPalettizer, PostTrainingPalettizerConfig, SKMPalettizer,
                                 SKMPalettizerConfig)

    train, held_out = bs.split(args.train, args.held_out)
    teacher = bs.model()
    teacher.max_seq_length = args.seq_len
    teacher.eval()
    reference = bs.encode(teacher, held_out)
    targets = bs.encode(teacher, train)
    cfg = config(args.n_bits)
    rows = []

    if args.dkm_only:
        return dkm_rows(args, teacher, train, targets, held_out, reference, cfg, rows)
    t0 = time.perf_counter()
    m = PostTrainingPalettizer(teacher, PostTrainingPalettizerConfig.from_dict(cfg)).compress()
    rows.append(dict(method="post-training", seconds=time.perf_counter() - t0,
                     cos=summary(cosines(m, held_out, reference)), distinct=max_distinct(m, cfg)))
    del m

    t0 = time.perf_counter()
    signs = sign_vectors(len(train), args.seed)
    loader = list(zip(train, signs))
    skm = SKMPalettizer(teacher, SKMPalettizerConfig.from_dict(dict(cfg, calibration_nsamples=len(train))))
    m = skm.compress(dataloader=loader, loss_fn=bs.loss_fn)
    rows.append(dict(method=f"SKM ({len(train)} calibration sentences)", seconds=time.perf_counter() - t0,
                     cos=summary(cosines(m, held_out, reference)), distinct=max_distinct(m, cfg)))
    del m, skm
    return dkm_rows(args, teacher, train, targets, held_out, reference, cfg, rows)


def dkm_rows(args, teacher, train, targets, held_out, reference, cfg, rows):
    from palettize.torch import DKMPalettizer, DKMPalettizerConfig

    # Reference step time: the same loss and batches on an fp32 copy, no palettization.
    plain = copy.deepcopy(teacher)
    plain_walls, plain_cpus, _ = distill(plain, train, targets, args, max_steps=args.plain_steps)
    del plain

    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM (the peak RSS) to the current RSS
    start_kb = bench_dkm._status_kb("VmRSS")
    t0 = time.perf_counter()
    dkm_cfg = copy.deepcopy(cfg)
    dkm_cfg["global_config"]["milestone"] = 0
    pal = DKMPalettizer(teacher, DKMPalettizerConfig.from_dict(dkm_cfg))
    prepared = pal.prepare()
    prepared.eval()  # dropout off; the DKM wrappers ignore the mode
    torch.manual_seed(args.seed)
    walls, cpus, loss = distill(prepared, train, targets, args, palettizer=pal)
    seconds = time.perf_counter() - t0
    peak_kb = bench_dkm._status_kb("VmHWM")
    # The soft weights, computed once, on a copy: a forward also moves the centroids.
    with torch.nn.utils.parametrize.cached():
        soft = summary(cosines(copy.deepcopy(prepared), held_out, reference))
    t0 = time.perf_counter()
    m = pal.finalize()
    seconds += time.perf_counter() - t0
    rows.append(dict(method=f"DKM, {len(walls)} steps, then finalize()", seconds=seconds,
                     cos=summary(cosines(m, held_out, reference)), distinct=max_distinct(m, cfg)))
    dkm = dict(steps=len(walls), loss=loss, soft=soft,
               wall=statistics.median(walls[1:] or walls), cpu=statistics.median(cpus[1:] or cpus),
               first_wall=walls[0], plain_wall=statistics.median(plain_walls),
               plain_cpu=statistics.median(plain_cpus), start_mb=start_kb / 1024, peak_mb=peak_kb / 1024)
    return rows, dkm


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-bits", type=int, default=3)
    p.add_argument("--train", type=int, default=256, help="training (and SKM calibration) sentences")
    p.add_argument("--held-out", type=int, default=500, help="evaluation sentences, after the training ones")
    p.add_argument("--seq-len", type=int, default=64, help="tokens per sentence at most")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--dkm-epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate of the DKM fine-tuning")
    p.add_argument("--plain-steps", type=int, default=3, help="timed fp32 steps, for reference")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dkm-only", action="store_true", help="skip post-training and SKM (for a learning-rate sweep)")
    p.add_argument("--verbose", action="store_true", help="print each DKM step's loss to stderr")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    w0, c0 = time.perf_counter(), time.process_time()
    rows, dkm = run(args)
    print(f"all-MiniLM-L6-v2, {args.n_bits} bits per tensor on the encoder's Linear weights (embeddings and "
          f"pooler fp32); {args.train} training / {args.held_out} held-out sentences, <= {args.seq_len} tokens; "
          f"DKM: Adam lr {args.lr:g}, batch {args.batch}, {args.dkm_epochs} epochs ({dkm['steps']} steps), "
          f"loss 1 - cos, milestone 0; seed {args.seed}, one torch thread")
    print("| method | cosine to fp32, held-out: mean | 5th percentile | 1 - mean | max distinct values "
          "per weight | time (s) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['cos'][0]:.5f} | {r['cos'][1]:.5f} | {1 - r['cos'][0]:.5f} "
              f"| {r['distinct']} | {r['seconds']:.0f} |")
    print(f"DKM before finalize (soft weights): cosine mean {dkm['soft'][0]:.5f}, 5th percentile "
          f"{dkm['soft'][1]:.5f}; last training loss {dkm['loss']:.5f}")
    print(f"DKM step (median of steps 2..{dkm['steps']}): wall {dkm['wall']:.2f} s, CPU {dkm['cpu']:.2f} s "
          f"(first step, with the k-means init: wall {dkm['first_wall']:.2f} s); plain fp32 step of the same "
          f"loss: wall {dkm['plain_wall']:.2f} s, CPU {dkm['plain_cpu']:.2f} s")
    print(f"peak RSS over the DKM fine-tuning: {dkm['peak_mb']:.0f} MB (RSS at its start "
          f"{dkm['start_mb']:.0f} MB, growth {dkm['peak_mb'] - dkm['start_mb']:.0f} MB)")
    print(f"whole run: wall {time.perf_counter() - w0:.0f} s, CPU {time.process_time() - c0:.0f} s")


if __name__ == "__main__":
    main()
