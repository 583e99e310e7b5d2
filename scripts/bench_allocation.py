#!/usr/bin/env python3
"""Evidence for bit allocation on a real model (BENCHMARKS.md, section "Bit allocation").

all-MiniLM-L6-v2 (the checkpoint of scripts/bench_sensitivity.py, whose text, recipe and
evaluation this script reuses) is palettized at equal stored bytes in seven ways, and each result's
sentence embeddings are compared, by cosine similarity, with the fp32 model's over 500 sentences
the calibration never saw:

- uniform: `--nbits N`, every weight at N bits (plain k-means);
- allocation, plain cost: `--target-bpw B`, B = the uniform run's exact bits per weight, so the
  allocated weights take at most the uniform run's bytes; cost = each weight's SSE;
- allocation, Fisher cost: the same with `--sensitivity` (cost = sensitivity-weighted SSE, and
  the tables are sensitivity-weighted k-means, as in a uniform `--sensitivity` run);
- uniform with `--sensitivity`, for reference;
- allocation on relative error: each candidate's cost is its SSE over the weight's mean square
  (elements x 10^(-SNR/10)), computed here from the allocation's curves and solved by a
  Lagrangian (not palettize's exact solver), written as a config; and the same cost in
  palettize, `--target-bpw B --cost relative` (exact solver);
- Apple's greedy recipe (apple/ml-stable-diffusion mixed_bit_compression_pre_analysis.py),
  reimplemented here on the same per-weight costs palettize reports: rank the weights by their
  damage alone at the smallest width, walk them in that order giving each the smallest width whose
  cumulative cost stays under a threshold, and take the threshold (bisected) whose recipe is the
  best that fits the byte budget. Its recipe is written as a config and run by
  `palettize compress --config`;
- allocation by measured output error (`--calibration`, scripts/bench_allocation_measured.py):
  each candidate's cost is the output error of the converted package with only that weight at
  that width, on a few calibration sentences; its widths are then applied to the checkpoint.

Bits per weight count what the allocation counts: stored bytes (indices, tables, scales) of the
weights the config palettizes, over their elements. Run with scripts/bench_allocation.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench_sensitivity as bs  # noqa: E402  (text, recipe, model loading, evaluation)

torch = bs.torch


def run(cmd):
    start = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise SystemExit(f"bench_allocation: {' '.join(map(str, cmd))}: exit {proc.returncode}\n"
                         f"{proc.stderr.decode(errors='replace')}")
    return time.perf_counter() - start


def palettized_bpw(report):
    """8 x stored bytes / elements over the tensors the run palettized, from the report."""
    rows = [w for w in report["weights"] if w["status"] == "palettized"]
    elements = sum(_elements(w) for w in rows)
    return 8 * sum(w["bytes_after"] for w in rows) / elements, elements


def _elements(w):
    n = 1
    for d in w["shape"]:
        n *= d
    return n


def greedy_recipe(weights, budget_bytes):
    """Apple's greedy on the allocation's curves: returns the chosen candidate index per weight."""
    def smallest(c):
        return min(range(len(c)), key=lambda i: c[i]["bytes"])

    order = sorted(range(len(weights)),
                   key=lambda k: weights[k]["candidates"][smallest(weights[k]["candidates"])]["cost"])

    def recipe(threshold):
        chosen, total = [None] * len(weights), 0.0
        for k in order:
            c = weights[k]["candidates"]
            by_bytes = sorted(range(len(c)), key=lambda i: c[i]["bytes"])
            pick = by_bytes[-1]  # the largest (kept uncompressed) when nothing fits the threshold
            for i in by_bytes:
                if total + c[i]["cost"] <= threshold:
                    pick = i
                    break
            chosen[k] = pick
            total += c[pick]["cost"]
        size = sum(weights[k]["candidates"][chosen[k]]["bytes"] for k in range(len(weights)))
        return chosen, size, total

    lo, hi = 0.0, sum(max(x["cost"] for x in w["candidates"]) for w in weights) + 1.0
    best = None
    for _ in range(200):  # bytes fall as the threshold grows: bisect the smallest that fits
        mid = (lo + hi) / 2
        chosen, size, total = recipe(mid)
        if size <= budget_bytes:
            best, hi = (chosen, size, total), mid
        else:
            lo = mid
    if best is None:
        raise SystemExit("bench_allocation: the greedy found no recipe within the budget")
    return best


def relative_recipe(weights, budget_bytes):
    """Each candidate's cost as relative error (SSE over the weight's mean square, i.e. elements x
    10^(-SNR/10)), so that every weight's noise-to-signal counts alike whatever its magnitude;
    solved by a Lagrangian over the curves (bisecting the price of a byte), which may leave a few
    bytes of the budget unused. Returns the chosen candidate index per weight and their bytes."""
    def cost(w, c):
        return 0.0 if c["nbits"] is None else w["elements"] * 10 ** (-c["snr_db"] / 10)

    def pick(price):
        chosen = [min(range(len(w["candidates"])),
                      key=lambda i: (cost(w, w["candidates"][i]) + price * w["candidates"][i]["bytes"],
                                     w["candidates"][i]["bytes"])) for w in weights]
        return chosen, sum(w["candidates"][i]["bytes"] for w, i in zip(weights, chosen))

    lo, hi = 0.0, 1.0
    while pick(hi)[1] > budget_bytes:
        lo, hi = hi, hi * 2
    for _ in range(100):
        mid = (lo + hi) / 2
        if pick(mid)[1] <= budget_bytes:
            hi = mid
        else:
            lo = mid
    return pick(hi)


def recipe_yaml(weights, chosen, base_config):
    lines = ["global_config: " + json.dumps(base_config), "module_name_configs:"]
    for w, i in zip(weights, chosen):
        nbits = w["candidates"][i]["nbits"]
        cfg = dict(base_config, n_bits=nbits) if nbits is not None else None
        lines.append(f"  {json.dumps(w['config_key'])}: {json.dumps(cfg)}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--palettize", default=os.environ.get("PALETTIZE_BIN",
                                                          str(bs.ROOT / "build/apps/palettize/palettize")))
    ap.add_argument("--work", help="folder for the files written (default: a temporary one)")
    ap.add_argument("--nbits", default="3,4", help="the uniform widths to match (default 3,4)")
    ap.add_argument("--evaluation", type=int, default=500)
    ap.add_argument("--json", help="write every number here too")
    ap.add_argument("--measured-samples", type=int, default=4,
                    help="calibration sentences for the measured-cost row (0: no such row)")
    ap.add_argument("--methods", default="uniform,fisher,sse,greedy,relative,measured",
                    help="rows to run (uniform and the SSE allocation, whose curves the others use, always run)")
    args = ap.parse_args()
    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="bench_allocation."))
    work.mkdir(parents=True, exist_ok=True)
    ckpt = bs.model_dir() / "model.safetensors"
    _, evaluation = bs.split(bs.CALIBRATION, args.evaluation)

    methods = set(args.methods.split(","))
    sens = work / "minilm.sensitivity.safetensors"
    if "fisher" in methods and not sens.exists():
        run([sys.executable, bs.ROOT / "scripts/sensitivity.py", bs.__file__, "-o", sens,
             "-n", bs.CALIBRATION, "-q"])
    m = bs.model()
    reference = bs.encode(m, evaluation)

    def evaluate(out):
        bs.load_checkpoint(m, out)
        cos = (bs.encode(m, evaluation) * reference).sum(dim=1).double()
        bs.load_checkpoint(m, ckpt)
        return float(cos.mean()), float(torch.quantile(cos, 0.05))

    def compress(name, flags):
        out, rep = work / f"{name}.safetensors", work / f"{name}.json"
        seconds = run([args.palettize, "compress", ckpt, "-o", out, "--force", "-q",
                       "--report", rep, *flags])
        report = json.loads(rep.read_text())
        return out, report, seconds

    rows = []
    for nbits in [int(b) for b in args.nbits.split(",")]:
        out, report, secs = compress(f"uniform{nbits}", ["--nbits", nbits])
        bpw, elements = palettized_bpw(report)
        budget = int(bpw * elements / 8)
        cos = evaluate(out)
        rows.append(dict(nbits=nbits, method=f"uniform {nbits}-bit", bpw=bpw, seconds=secs,
                         cost=sum(w["sse"] for w in report["weights"] if w["status"] == "palettized"),
                         cos=cos))
        if "fisher" in methods:
            out, report, secs = compress(f"uniform{nbits}.fisher", ["--nbits", nbits, "--sensitivity", sens])
            rows.append(dict(nbits=nbits, method=f"uniform {nbits}-bit, --sensitivity",
                             bpw=palettized_bpw(report)[0], seconds=secs, cost=None, cos=evaluate(out)))
        target = f"{bpw:.6f}"
        out, report, secs = compress(f"alloc{nbits}", ["--target-bpw", target])
        alloc = report["allocation"]
        rows.append(dict(nbits=nbits, method="allocation, SSE cost", bpw=alloc["bpw"], seconds=secs,
                         cost=alloc["total_cost"], gap=alloc["gap"], cos=evaluate(out)))
        weights = alloc["weights"]
        if "fisher" in methods:
            out, report, secs = compress(f"alloc{nbits}.fisher",
                                         ["--target-bpw", target, "--sensitivity", sens])
            fa = report["allocation"]
            rows.append(dict(nbits=nbits, method="allocation, Fisher cost", bpw=fa["bpw"], seconds=secs,
                             cost=None, gap=fa["gap"], cos=evaluate(out)))
        if "greedy" in methods:
            chosen, size, total = greedy_recipe(weights, budget)
            cfg = work / f"greedy{nbits}.yaml"
            cfg.write_text(recipe_yaml(weights, chosen, {"n_bits": nbits}))
            out, report, secs = compress(f"greedy{nbits}", ["--config", cfg])
            rows.append(dict(nbits=nbits, method="Apple's greedy recipe, SSE cost",
                             bpw=8 * size / alloc["elements"], seconds=secs, cost=total, cos=evaluate(out)))
        if "relative" in methods:
            chosen, size = relative_recipe(weights, budget)
            cfg = work / f"relative{nbits}.yaml"
            cfg.write_text(recipe_yaml(weights, chosen, {"n_bits": nbits}))
            out, report, secs = compress(f"relative{nbits}", ["--config", cfg])
            rows.append(dict(nbits=nbits, method="allocation, relative SSE (benchmark-side Lagrangian)",
                             bpw=8 * size / alloc["elements"], seconds=secs, cost=None, cos=evaluate(out)))
            out, report, secs = compress(f"alloc{nbits}.relative", ["--target-bpw", target, "--cost", "relative"])
            ra = report["allocation"]
            rows.append(dict(nbits=nbits, method="allocation, --cost relative", bpw=ra["bpw"], seconds=secs,
                             cost=None, gap=ra["gap"], cos=evaluate(out)))
        if "measured" in methods and args.measured_samples > 0:
            import bench_allocation_measured as bam
            ctx = dict(work=work, palettize=args.palettize, compress=compress, evaluate=evaluate, model=m,
                       ckpt=ckpt, recipe_yaml=recipe_yaml, run=run)
            calib_sentences = bs.split(bs.CALIBRATION, 0)[0][:args.measured_samples]
            rows.append(bam.measured_row(ctx, nbits, budget, alloc, calib_sentences))
        for r in [r for r in rows if r["nbits"] == nbits]:
            print(f"bench_allocation: {r['method']}: {r['bpw']:.4f} bpw, cos {r['cos'][0]:.5f}",
                  file=sys.stderr)

    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))
    print("| matched to | method | bpw (palettized weights) | total SSE | solver gap | cosine to fp32: mean | "
          "5th percentile | 1 - mean | palettize wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cost = f"{r['cost']:.4g}" if r.get("cost") is not None else "-"
        gap = f"{r['gap']:.3g}" if r.get("gap") is not None else "-"
        print(f"| {r['nbits']}-bit | {r['method']} | {r['bpw']:.4f} | {cost} | {gap} | {r['cos'][0]:.5f} | "
              f"{r['cos'][1]:.5f} | {1 - r['cos'][0]:.5f} | {r['seconds']:.2f} |")


if __name__ == "__main__":
    main()
