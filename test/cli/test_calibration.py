"""Bit allocation by measured output error (issue 15 item 5) on the shared models: --calibration's
costs, the written model's output PSNR against `compare --inputs` on the same samples, the dry
run's substituted measurement against the written one, --min-output-psnr's bar and its search, and
the refused combinations (one line, exit 1, nothing written)."""
import json
import math
import os
import pathlib
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path(os.environ.get("SHARED_MODELS", ROOT.parent / "shared/models"))
ACTIVITY = SHARED / "activity_fp32.mlpackage"
MNIST = SHARED / "mnist.mlpackage"
# activity_fp32's two weight matrices have 128 and 48 elements: below the default threshold.
SMALL = ["--weight-threshold", "16"]


def run(bin_, *args):
    return subprocess.run([bin_, *map(str, args)], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    d = tmp_path_factory.mktemp("calib")
    rng = np.random.default_rng(15)
    (d / "activity").mkdir()
    for k in range(4):
        np.savez(d / "activity" / f"s{k}.npz", features=rng.standard_normal((1, 8)).astype(np.float32))
    (d / "mnist").mkdir()
    for k in range(3):
        np.savez(d / "mnist" / f"s{k}.npz", Input=rng.uniform(0, 1, (1, 1, 28, 28)).astype(np.float32))
    return d


def compress(bin_, model, out, *flags):
    report = out.parent / (out.name + ".json")
    r = run(bin_, "compress", model, "-o", out, "--report", report, *flags)
    assert r.returncode == 0, r.stderr
    return json.loads(report.read_text())["allocation"], r


def worst_compare_psnr(bin_, model, out, inputs):
    r = run(bin_, "compare", model, out, "--json", "--inputs", inputs)
    assert r.returncode == 0, r.stderr
    return min(math.inf if c["psnr_db"] is None else c["psnr_db"] for c in json.loads(r.stdout)["outputs"]["per_sample"])


@pytest.mark.parametrize("model, folder, extra", [(ACTIVITY, "activity", SMALL), (MNIST, "mnist", [])])
def test_measured_costs_and_written_psnr(palettize_bin, samples, tmp_path, model, folder, extra):
    out = tmp_path / "m.mlpackage"
    a, r = compress(palettize_bin, model, out, "--target-bpw", "4", "--calibration", samples / folder, *extra)
    assert a["cost"] == "output"
    o = a["outputs"]
    assert o["samples"] == len(list((samples / folder).glob("*.npz")))
    assert o["measured_on"] == "written"
    for w in a["weights"]:
        costs = [c["cost"] for c in w["candidates"]]
        assert all(c >= 0 for c in costs), w["name"]
        assert w["candidates"][-1]["nbits"] is None and costs[-1] == 0
        # Not monotone width by width on these models (activity's first layer does less damage at
        # 1 bit than at 2 on these samples; mnist's 6-bit costs more than its 4-bit, both ~1e-4),
        # but the widest palettized candidate does far less damage than the narrowest.
        pal = costs[:-1]
        assert len(pal) >= 3 and pal[-1] < pal[0] / 100, (w["name"], pal)
    assert a["bpw"] <= 4
    # The written model's PSNR is what `compare --inputs` measures on the same samples.
    assert o["measured_worst_psnr_db"] == pytest.approx(
        worst_compare_psnr(palettize_bin, model, out, samples / folder), abs=0.01)
    print(f"{model.name} at 4 bpw: predicted {o['predicted_worst_psnr_db']:.2f} dB, "
          f"measured {o['measured_worst_psnr_db']:.2f} dB")
    assert "output PSNR on" in r.stderr + r.stdout


def test_dry_run_substitution_equals_written(palettize_bin, samples, tmp_path):
    flags = ["--target-bpw", "3", "--calibration", samples / "activity", *SMALL]
    written, _ = compress(palettize_bin, ACTIVITY, tmp_path / "m.mlpackage", *flags)
    r = run(palettize_bin, "compress", ACTIVITY, "-o", tmp_path / "d.mlpackage", "--dry-run", *flags)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "d.mlpackage").exists()
    line = [x for x in r.stdout.splitlines() if "output PSNR on" in x]
    assert len(line) == 1 and "on the substituted weights" in line[0], r.stdout
    measured = written["outputs"]["measured_worst_psnr_db"]
    assert f"measured {measured:.2f} dB" in line[0]


def test_measured_allocation_beats_sse_at_equal_bytes(palettize_bin, samples, tmp_path):
    """The measured-cost allocation minimises the predicted output error; at the same budget its
    measured output error is no worse than the SSE allocation's."""
    budget = ["--target-bpw", "3", *SMALL]
    measured, _ = compress(palettize_bin, ACTIVITY, tmp_path / "m.mlpackage", *budget, "--calibration",
                           samples / "activity")
    sse, _ = compress(palettize_bin, ACTIVITY, tmp_path / "s.mlpackage", *budget)
    assert measured["bytes"] <= sse["bytes"] or measured["bpw"] <= 3
    m = worst_compare_psnr(palettize_bin, ACTIVITY, tmp_path / "m.mlpackage", samples / "activity")
    s = worst_compare_psnr(palettize_bin, ACTIVITY, tmp_path / "s.mlpackage", samples / "activity")
    print(f"activity_fp32 at 3 bpw: measured-cost allocation {m:.2f} dB, SSE allocation {s:.2f} dB")
    assert m >= s


def test_min_output_psnr_meets_its_bar_and_one_step_less_does_not(palettize_bin, samples, tmp_path):
    out = tmp_path / "m.mlpackage"
    bar = 30.0
    a, r = compress(palettize_bin, ACTIVITY, out, "--min-output-psnr", bar, "--calibration", samples / "activity",
                    *SMALL)
    o = a["outputs"]
    assert a["objective"] == "min_output_psnr" and a["budget"] == bar
    assert o["measured_worst_psnr_db"] >= bar
    assert worst_compare_psnr(palettize_bin, ACTIVITY, out, samples / "activity") >= bar
    probes = o["probes"]
    assert probes[0]["passed"]  # the top (every weight at its widest) first
    assert len(probes) <= 2 + math.ceil(math.log2(o["path_steps"] + 1))
    passed = [p["bytes"] for p in probes if p["passed"]]
    assert a["bytes"] == min(passed)
    # The allocation one step smaller on the path was probed and missed the bar (unless the
    # chosen one is the path's first).
    failed = [p for p in probes if not p["passed"]]
    assert failed, probes
    below = max(failed, key=lambda p: p["bytes"])
    assert below["bytes"] < a["bytes"] and below["worst_psnr_db"] < bar
    print(f"--min-output-psnr {bar}: {a['bpw']:.3f} bpw, measured {o['measured_worst_psnr_db']:.2f} dB, "
          f"{len(probes)} probes over {o['path_steps']} allocations; one step smaller "
          f"{below['worst_psnr_db']:.2f} dB")


def test_min_output_psnr_out_of_reach(palettize_bin, samples, tmp_path):
    out = tmp_path / "m.mlpackage"
    r = run(palettize_bin, "compress", ACTIVITY, "-o", out, "--min-output-psnr", "300",
            "--calibration", samples / "activity", *SMALL)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("palettize: ")
    assert ("--min-output-psnr 300: even every weight at its largest width gives an output PSNR of "
            in lines[0]) and lines[0].endswith(" dB on the calibration samples")
    assert not out.exists()


@pytest.mark.parametrize("flags, message", [
    (["--calibration", "S"],
     "--calibration: needs an allocation objective (--target-bpw, --target-size or --min-output-psnr)"),
    (["--min-output-psnr", "30"], "--min-output-psnr: needs --calibration (the samples to measure the outputs on)"),
    (["--target-bpw", "4", "--calibration", "S", "--cost", "relative"], "--calibration: not with --cost relative"),
    (["--min-snr", "20", "--calibration", "S"], "--calibration: not with --min-snr (use --min-output-psnr)"),
    (["--min-output-psnr", "20", "--target-bpw", "4", "--calibration", "S"],
     "--target-bpw excludes --min-output-psnr"),
    (["--target-bpw", "4", "--calibration", "S", "--sensitivity", "S/s0.npz"],
     "--calibration: not with --sensitivity"),
])
def test_refused(palettize_bin, samples, tmp_path, flags, message):
    flags = [f.replace("S", str(samples / "activity")) if f.startswith("S") else f for f in flags]
    out = tmp_path / "m.mlpackage"
    r = run(palettize_bin, "compress", ACTIVITY, "-o", out, *flags)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert message in lines[0]
    assert not out.exists()


def test_refused_for_checkpoints_and_batches(palettize_bin, samples, tmp_path):
    ck = tmp_path / "w.safetensors"
    header = json.dumps({"w": {"dtype": "F32", "shape": [64, 64], "data_offsets": [0, 16384]}}).encode()
    ck.write_bytes(len(header).to_bytes(8, "little") + header + bytes(16384))
    r = run(palettize_bin, "compress", ck, "-o", tmp_path / "o.safetensors", "--target-bpw", "4",
            "--calibration", samples / "activity")
    assert r.returncode == 1
    assert r.stderr.strip() == (f"palettize: --calibration: only for packages ({ck} is a checkpoint, "
                                "which palettize cannot run)")
    r = run(palettize_bin, "compress", ACTIVITY, "--output-dir", tmp_path / "zoo", "--target-bpw", "4",
            "--calibration", samples / "activity")
    assert r.returncode == 1
    assert r.stderr.strip() == "palettize: --calibration: not with --output-dir"
    assert not (tmp_path / "zoo").exists()
    assert not (tmp_path / "o.safetensors").exists()
