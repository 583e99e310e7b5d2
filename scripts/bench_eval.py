#!/usr/bin/env python3
"""The evaluator's speed on a real transformer against PyTorch (issue 15 item 7; BENCHMARKS.md).

all-MiniLM-L6-v2, converted by scripts/make_minilm_package.py (fp16 and fp32 compute precision,
batch 1, --seq-len tokens, output the token embeddings), is run
  - by `palettize eval MODEL --inputs IN.npz --outputs OUT.npz` (the whole process: start, parse,
    consts, forward, writing), and
  - by build/test/eval_time (the interpreter's Run alone, the package loaded once in the process),
against PyTorch's forward of the same fp32 model (torch.set_num_threads(2), no grad) in this
process (and, for reference, with 1 thread: on a loaded machine 2 OpenMP threads wait for each
other). They alternate, round after round (--rounds); each keeps its best round. Wall is
time.perf_counter; CPU is user + system seconds of all threads (getrusage of the child for
palettize eval, eval_time's own, time.process_time for torch). The outputs of palettize eval are
checked against torch's: PSNR with peak max |reference|.

Run with the torch venv (scripts/bench --sections eval does): prints a markdown table, or with
--json FILE writes the rows too.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import make_minilm_package as mm  # noqa: E402


def psnr(ref, got):
    ref = np.asarray(ref, np.float64)
    got = np.asarray(got, np.float64).reshape(ref.shape)
    mse = np.mean((ref - got) ** 2)
    return float("inf") if mse == 0 else float(20 * np.log10(np.max(np.abs(ref)) / np.sqrt(mse)))


def child_cpu():
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def time_process(cmd):
    c0, t0 = child_cpu(), time.perf_counter()
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, child_cpu() - c0
    if r.returncode != 0:
        raise SystemExit(f"bench_eval: {' '.join(map(str, cmd))}: exit {r.returncode}\n{r.stderr}")
    return wall, cpu, r.stdout


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--precisions", default="fp16,fp32")
    ap.add_argument("--workdir", type=pathlib.Path, default=ROOT / ".cache" / "bench-eval")
    ap.add_argument("--build", type=pathlib.Path, default=ROOT / "build")
    ap.add_argument("--json", type=pathlib.Path)
    a = ap.parse_args(argv)
    palettize = a.build / "apps" / "palettize" / "palettize"
    eval_time = a.build / "test" / "eval_time"
    a.workdir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)

    inputs = a.workdir / f"in_{a.seq_len}.npz"
    ex = mm.example_inputs(a.seq_len)
    np.savez(inputs, **ex)
    model = mm.build_model("tokens", a.seq_len)
    args = tuple(torch.from_numpy(v.astype(np.int64)) for v in ex.values())
    with torch.no_grad():
        ref = model(*args).numpy()

    rows = []
    for prec in [p.strip() for p in a.precisions.split(",") if p.strip()]:
        package = a.workdir / f"minilm_{prec}_{a.seq_len}.mlpackage"
        if not package.exists():
            mm.convert(package, a.seq_len, prec, "iOS16", "tokens")
        out = a.workdir / f"out_{prec}.npz"
        best = {"process": (1e9, 1e9), "evaluator": (1e9, 1e9), "torch": (1e9, 1e9),
                "torch1": (1e9, 1e9)}

        def keep(key, wall, cpu):
            w, c = best[key]
            best[key] = (min(w, wall), min(c, cpu))

        loads = []
        for _ in range(a.rounds):
            loads.append(os.getloadavg()[0])
            wall, cpu, _ = time_process([palettize, "eval", package, "--inputs", inputs,
                                         "--outputs", out, "--force"])
            keep("process", wall, cpu)
            _, _, text = time_process([eval_time, package, inputs, "2"])
            line = text.strip().splitlines()[-1].split()  # best wall W cpu C
            keep("evaluator", float(line[2]), float(line[4]))
            for key, threads in (("torch", 2), ("torch1", 1)):
                torch.set_num_threads(threads)
                with torch.no_grad():
                    c0, t0 = time.process_time(), time.perf_counter()
                    model(*args)
                    keep(key, time.perf_counter() - t0, time.process_time() - c0)
        with np.load(out) as z:
            got = z["token_embeddings"]
        rows.append({
            "precision": prec, "seq_len": a.seq_len, "rounds": a.rounds,
            "process_wall": best["process"][0], "process_cpu": best["process"][1],
            "eval_wall": best["evaluator"][0], "eval_cpu": best["evaluator"][1],
            "torch_wall": best["torch"][0], "torch_cpu": best["torch"][1],
            "torch1_wall": best["torch1"][0], "torch1_cpu": best["torch1"][1],
            "psnr_db": psnr(ref, got), "load_min": min(loads), "load_max": max(loads),
        })
    print(table(rows))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


def table(rows):
    head = ("| package | palettize eval (process) s wall / CPU | evaluator alone s wall / CPU "
            "| PyTorch forward s wall / CPU | evaluator / PyTorch wall, CPU "
            "| process / PyTorch wall, CPU | PyTorch 1 thread s wall / CPU | PSNR vs PyTorch "
            "| load avg |\n"
            "|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        lines.append(
            f"| MiniLM {r['precision']}, {r['seq_len']} tokens "
            f"| {r['process_wall']:.3f} / {r['process_cpu']:.3f} "
            f"| {r['eval_wall']:.3f} / {r['eval_cpu']:.3f} "
            f"| {r['torch_wall']:.3f} / {r['torch_cpu']:.3f} "
            f"| {r['eval_wall'] / r['torch_wall']:.2f}x, {r['eval_cpu'] / r['torch_cpu']:.2f}x "
            f"| {r['process_wall'] / r['torch_wall']:.2f}x, {r['process_cpu'] / r['torch_cpu']:.2f}x "
            f"| {r['torch1_wall']:.3f} / {r['torch1_cpu']:.3f} "
            f"| {r['psnr_db']:.1f} dB | {r['load_min']:.1f}-{r['load_max']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
