"""The "measured" rows of scripts/bench_allocation.py: allocation by measured output error
(`compress --calibration`, issue 15 item 5) on all-MiniLM-L6-v2.

palettize measures output error on an ML Program, so the checkpoint is converted to a package
(scripts/make_minilm_package.py: fp32, fixed length, the pooled sentence embedding as output). The
calibration samples are a few tokenized sentences of the calibration split (disjoint from the 500
evaluation sentences). `palettize compress PACKAGE --target-size S --calibration DIR` chooses each
const's width; each const is matched by value to its checkpoint tensor, and the checkpoint is then
compressed with those widths (`--config`), so that the evaluation (cosine in PyTorch over the 500
sentences) is the same as every other row's. Checkpoint tensors the package does not hold as a
weight (the position table, which the fixed-length trace folds into a slice, and the pooler, which
the sentence embedding does not use) take the uniform width and 1 bit; the package's budget is the
uniform run's bytes less theirs."""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np


def package(work, seq_len):
    """The fp32 MiniLM package (made once)."""
    out = work / f"minilm_fp32_{seq_len}.mlpackage"
    if not out.exists():
        try:
            import make_minilm_package as mmp
        except ImportError:
            raise SystemExit("bench_allocation: scripts/make_minilm_package.py is missing (branch h-evalspeed)")
        mmp.convert(out, seq_len=seq_len, precision="fp32", target="iOS16", output="pooled")
    return out


def calibration_samples(m, sentences, folder, seq_len):
    folder.mkdir(parents=True, exist_ok=True)
    for k, s in enumerate(sentences):
        t = m.tokenizer([s], padding="max_length", max_length=seq_len, truncation=True, return_tensors="np")
        np.savez(folder / f"s{k:02d}.npz", input_ids=t["input_ids"].astype(np.int32),
                 attention_mask=t["attention_mask"].astype(np.int32))
    return folder


def package_weights(path):
    """const name -> float32 values, for the consts palettize would select (> 2048 elements)."""
    import coremltools as ct
    ml = ct.models.MLModel(str(path), skip_model_load=True)
    meta = ct.optimize.coreml.get_weights_metadata(ml, weight_threshold=2048)
    return {name: np.asarray(w.val) for name, w in meta.items()}


def match(pkg, ckpt_path):
    """const name -> checkpoint tensor name, by equal values (or the transpose)."""
    from safetensors.numpy import load_file
    tensors = load_file(str(ckpt_path))
    by_shape = {}
    for name, t in tensors.items():
        by_shape.setdefault(t.shape, []).append(name)
    out = {}
    for const, v in pkg.items():
        for cand_shape, transpose in ((v.shape, False), (v.T.shape if v.ndim == 2 else None, True)):
            for name in by_shape.get(cand_shape, []):
                t = tensors[name].T if transpose else tensors[name]
                if t.shape == v.shape and np.array_equal(t.astype(np.float32), v.astype(np.float32)):
                    out[const] = name
                    break
            if const in out:
                break
    return out


def measured_row(ctx, nbits, budget_bytes, ckpt_alloc, calib_sentences, seq_len=64):
    """One row: (method, bpw, seconds, gap, cosine, extra). ctx: work, palettize, compress(name,
    flags), evaluate(out), model, ckpt, recipe_yaml, run."""
    work = ctx["work"]
    pkg = package(work, seq_len)
    calib = calibration_samples(ctx["model"], calib_sentences, work / f"calibration{len(calib_sentences)}", seq_len)
    names = match(package_weights(pkg), ctx["ckpt"])
    matched = set(names.values())
    # The checkpoint weights the package does not hold: the position table at the uniform width,
    # an unused one (the pooler) at its smallest candidate.
    fixed, fixed_bytes = {}, 0
    for w in ckpt_alloc["weights"]:
        if w["name"] in matched:
            continue
        pick = 0 if w["name"].startswith("pooler.") else next(
            i for i, c in enumerate(w["candidates"]) if c["nbits"] == nbits)
        fixed[w["name"]] = pick
        fixed_bytes += w["candidates"][pick]["bytes"]
    report = work / f"measured{nbits}.pkg.json"
    seconds = ctx["run"]([ctx["palettize"], "compress", pkg, "-o", work / f"measured{nbits}.mlpackage", "--force",
                          "-q", "--report", report, "--target-size", str(budget_bytes - fixed_bytes),
                          "--calibration", calib])
    pa = json.loads(report.read_text())["allocation"]
    width = {names[w["name"]]: w["candidates"][w["chosen"]]["nbits"] for w in pa["weights"] if w["name"] in names}
    chosen = []
    for w in ckpt_alloc["weights"]:
        if w["name"] in width:
            chosen.append(next(i for i, c in enumerate(w["candidates"]) if c["nbits"] == width[w["name"]]))
        else:
            chosen.append(fixed[w["name"]])
    cfg = work / f"measured{nbits}.yaml"
    cfg.write_text(ctx["recipe_yaml"](ckpt_alloc["weights"], chosen, {"n_bits": nbits}))
    out, rep, _ = ctx["compress"](f"measured{nbits}", ["--config", cfg])
    size = sum(w["candidates"][i]["bytes"] for w, i in zip(ckpt_alloc["weights"], chosen))
    o = pa["outputs"]
    extra = (f"package: {len(names)} of {len(ckpt_alloc['weights'])} weights matched, {o['samples']} calibration "
             f"samples, predicted/measured output PSNR {o['predicted_worst_psnr_db']:.2f}/"
             f"{o['measured_worst_psnr_db']:.2f} dB, widths "
             + ", ".join(f"{names[w['name']]}:{w['candidates'][w['chosen']]['nbits']}" for w in pa["weights"]
                         if w["name"] in names))
    print(f"bench_allocation: measured {nbits}: {extra}", file=sys.stderr)
    return dict(nbits=nbits, method="allocation, measured output cost (--calibration)",
                bpw=8 * size / ckpt_alloc["elements"], seconds=seconds, cost=None, gap=pa["gap"],
                cos=ctx["evaluate"](out), note=extra)
