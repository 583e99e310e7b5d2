"""The measured sweep beyond one machine (issue 15 item 6): `compress --shard K/N --costs-out F`
measures slice K of N of the (weight, candidate) pairs into a costs file; `compress --costs F...`
merges the N slices and writes the package the unsharded --calibration run writes, byte for byte.
Slices that do not make up one sweep of this model, these options and these samples are refused in
one line naming the file and the field (exit 2, nothing written)."""
import json
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
N = 3


def run(bin_, *args):
    return subprocess.run([bin_, *map(str, args)], capture_output=True, text=True, timeout=600)


def tree(path):
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    d = tmp_path_factory.mktemp("shard_samples")
    rng = np.random.default_rng(16)
    (d / "activity").mkdir()
    for k in range(3):
        np.savez(d / "activity" / f"s{k}.npz", features=rng.standard_normal((1, 8)).astype(np.float32))
    (d / "mnist").mkdir()
    np.savez(d / "mnist" / "s0.npz", Input=rng.uniform(0, 1, (1, 1, 28, 28)).astype(np.float32))
    return d


def shards(bin_, model, calibration, folder, *flags, n=N):
    paths = []
    for k in range(n):
        path = folder / f"costs-{k}-of-{n}.json"
        r = run(bin_, "compress", model, "--target-bpw", 3, "--calibration", calibration, "--shard", f"{k}/{n}",
                "--costs-out", path, *flags)
        assert r.returncode == 0, r.stderr
        assert f"measured slice {k}/{n} of the costs into {path}" in r.stderr + r.stdout
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def activity_slices(palettize_bin, samples, tmp_path_factory):
    return shards(palettize_bin, ACTIVITY, samples / "activity", tmp_path_factory.mktemp("slices"), *SMALL)


def test_merged_slices_write_the_unsharded_package(palettize_bin, samples, activity_slices, tmp_path):
    whole = tmp_path / "whole.mlpackage"
    r = run(palettize_bin, "compress", ACTIVITY, "-o", whole, "--report", tmp_path / "whole.json", "--target-bpw", 3,
            "--calibration", samples / "activity", *SMALL)
    assert r.returncode == 0, r.stderr
    slices = [json.loads(p.read_text()) for p in activity_slices]
    assert [s["shard"] for s in slices] == [{"index": k, "count": N} for k in range(N)]
    tasks = slices[0]["tasks"]
    assert tasks >= 2 * N  # every slice measures something
    assert sorted(c["task"] for s in slices for c in s["costs"]) == list(range(tasks))
    assert all(len(c["errors"]) == 3 for s in slices for c in s["costs"])  # 3 samples x 1 float output

    # With the samples: the written model measured as well. Slices given in any order.
    merged = tmp_path / "merged.mlpackage"
    r = run(palettize_bin, "compress", ACTIVITY, "-o", merged, "--report", tmp_path / "merged.json", "--target-bpw",
            3, "--calibration", samples / "activity", "--costs", *reversed(activity_slices), *SMALL)
    assert r.returncode == 0, r.stderr
    assert tree(merged) == tree(whole)
    a = json.loads((tmp_path / "whole.json").read_text())["allocation"]
    b = json.loads((tmp_path / "merged.json").read_text())["allocation"]
    assert b["cost"] == "output"
    assert [w["candidates"] for w in b["weights"]] == [w["candidates"] for w in a["weights"]]
    assert b["outputs"] == a["outputs"]

    # From the costs alone: the same package; no output PSNR measured.
    alone = tmp_path / "alone.mlpackage"
    r = run(palettize_bin, "compress", ACTIVITY, "-o", alone, "--report", tmp_path / "alone.json", "--target-bpw", 3,
            "--costs", *activity_slices, *SMALL)
    assert r.returncode == 0, r.stderr
    assert tree(alone) == tree(whole)
    o = json.loads((tmp_path / "alone.json").read_text())["allocation"]["outputs"]
    assert o["measured_on"] == "" and o["measured_worst_psnr_db"] is None and o["samples"] == 3
    assert o["predicted_worst_psnr_db"] == a["outputs"]["predicted_worst_psnr_db"]

    # The costs do not depend on the budget: the same slices serve another one.
    other = tmp_path / "other.mlpackage"
    ref = tmp_path / "ref.mlpackage"
    for out, flags in [(other, ["--costs", *activity_slices]), (ref, ["--calibration", samples / "activity"])]:
        r = run(palettize_bin, "compress", ACTIVITY, "-o", out, "--target-bpw", 5, *flags, *SMALL)
        assert r.returncode == 0, r.stderr
    assert tree(other) == tree(ref)


def refused(bin_, tmp_path, *args, code=2):
    out = tmp_path / "out.mlpackage"
    r = run(bin_, "compress", ACTIVITY, "-o", out, "--target-bpw", 3, *args, *SMALL)
    assert r.returncode == code, r.stderr
    assert not out.exists()
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0].removeprefix("palettize: ")


def test_missing_slice(palettize_bin, activity_slices, tmp_path):
    assert refused(palettize_bin, tmp_path, "--costs", activity_slices[0], activity_slices[2]) == \
        "--costs: slice 1/3 is missing (given: 0/3, 2/3)"


def test_duplicate_slice(palettize_bin, activity_slices, tmp_path):
    a, b, c = activity_slices
    assert refused(palettize_bin, tmp_path, "--costs", a, b, b, c) == \
        f"{b}: shard: slice 1/3 again ({b} has it)"


def test_slice_of_another_count(palettize_bin, samples, activity_slices, tmp_path):
    two = shards(palettize_bin, ACTIVITY, samples / "activity", tmp_path, *SMALL, n=2)
    assert refused(palettize_bin, tmp_path, "--costs", *activity_slices, two[1]) == \
        f"{two[1]}: shard: slice 1/2, but {activity_slices[0]} is a slice of 3"


def test_slice_from_another_model(palettize_bin, samples, activity_slices, tmp_path):
    other = shards(palettize_bin, MNIST, samples / "mnist", tmp_path, n=3)
    assert refused(palettize_bin, tmp_path, "--costs", activity_slices[0], other[1], activity_slices[2]) == \
        f"{other[1]}: model: measured on another model than {ACTIVITY} (other weights or program)"


def test_slice_from_other_options(palettize_bin, samples, activity_slices, tmp_path):
    other = shards(palettize_bin, ACTIVITY, samples / "activity", tmp_path, *SMALL, "--mode", "uniform")
    assert refused(palettize_bin, tmp_path, "--costs", activity_slices[0], other[1], activity_slices[2]) == \
        f"{other[1]}: candidates: measured with other options (the config, widths, target or scale form give " \
        "other candidates than this run's)"


def test_slice_from_other_samples(palettize_bin, samples, activity_slices, tmp_path):
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    (fewer / "s0.npz").write_bytes((samples / "activity" / "s0.npz").read_bytes())
    assert refused(palettize_bin, tmp_path, "--calibration", fewer, "--costs", *activity_slices) == \
        f"{activity_slices[0]}: samples: measured on other samples than --calibration's"
    other = shards(palettize_bin, ACTIVITY, fewer, tmp_path, *SMALL)
    assert refused(palettize_bin, tmp_path, "--costs", activity_slices[0], other[1], activity_slices[2]) == \
        f"{other[1]}: samples: measured on other samples than {activity_slices[0]}"


@pytest.mark.parametrize("k_n", ["3/3", "4/3", "0/0", "x", "-1/3"])
def test_bad_shard(palettize_bin, samples, tmp_path, k_n):
    costs = tmp_path / "c.json"
    r = run(palettize_bin, "compress", ACTIVITY, "--target-bpw", 3, "--calibration", samples / "activity", "--shard",
            k_n, "--costs-out", costs, *SMALL)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip() == f"palettize: --shard: '{k_n}' is not K/N (slice K of N, 0 <= K < N)"
    assert not costs.exists()


@pytest.mark.parametrize("args, message", [
    (["--shard", "0/3"], "--shard: needs --calibration (the samples the slice is measured on)"),
    (["--shard", "0/3", "--calibration", "S"], "--shard: needs --costs-out FILE (where the slice's costs go)"),
    (["--costs-out", "C"], "--costs-out: needs --shard K/N"),
    (["--shard", "0/3", "--calibration", "S", "--costs-out", "C", "-o", "O"],
     "--shard: writes only the costs file, not a package (drop -o O)"),
    (["--shard", "0/3", "--calibration", "S", "--costs-out", "C", "--costs", "C"],
     "--shard: not with --costs (a slice is measured, not merged)"),
    (["--costs", "C", "--min-output-psnr", "30", "-o", "O"],
     "--min-output-psnr: needs --calibration (the samples to measure the outputs on)"),
])
def test_refused_combinations(palettize_bin, samples, tmp_path, args, message):
    args = [str(samples / "activity") if a == "S" else str(tmp_path / "c.json") if a == "C" else
            str(tmp_path / "o.mlpackage") if a == "O" else a for a in args]
    message = message.replace(" O)", f" {tmp_path / 'o.mlpackage'})")
    objective = [] if "--min-output-psnr" in args else ["--target-bpw", "3"]
    r = run(palettize_bin, "compress", ACTIVITY, *objective, *args, *SMALL)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip() == f"palettize: {message}"
    assert not (tmp_path / "c.json").exists() and not (tmp_path / "o.mlpackage").exists()
