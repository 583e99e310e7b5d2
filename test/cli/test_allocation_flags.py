"""Bit allocation's flags (issue 14): the combinations refused before any work, each with one line,
exit 1, nothing written and the input unchanged."""
import hashlib
import subprocess

import pytest


def run(bin_, *args):
    return subprocess.run([bin_, *map(str, args)], capture_output=True, text=True, timeout=120)


def tree_hash(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("flags, message", [
    (["--target-bpw", "4", "--nbits", "4"],
     "--target-bpw: conflicts with --nbits (the allocation chooses each weight's nbits)"),
    (["--min-snr", "30", "--nbits", "2"],
     "--min-snr: conflicts with --nbits (the allocation chooses each weight's nbits)"),
    (["--target-bpw", "4", "--target-size", "1M"], "--target-bpw excludes --target-size"),
    (["--target-size", "1M", "--min-snr", "20"], "--target-size excludes --min-snr"),
    (["--emit-config", "OUT/alloc.yaml"],
     "--emit-config: needs an allocation objective (--target-bpw, --target-size or --min-snr)"),
    (["--plot", "OUT/alloc.svg"],
     "--plot: needs an allocation objective (--target-bpw, --target-size or --min-snr)"),
    (["--cost", "relative"],
     "--cost relative: needs an allocation objective (--target-bpw, --target-size or --min-snr)"),
    (["--target-bpw", "4", "--cost", "relative", "--sensitivity", "OUT/s.safetensors"],
     "--cost relative: not with --sensitivity"),
    (["--target-bpw", "4", "--cost", "snr"], "--cost: snr not in {sse,relative}"),
    (["--target-size", "1.5X"],
     "--target-size: '1.5X' is not a size in bytes (a number with an optional K, M, G or T)"),
    (["--target-size", "0.5"],
     "--target-size: '0.5' is not a size in bytes (a number with an optional K, M, G or T)"),
])
def test_refused_before_any_work(palettize_bin, mnist, tmp_path, flags, message):
    out = tmp_path / "out"
    out.mkdir()
    flags = [f.replace("OUT", str(out)) for f in flags]
    before = tree_hash(mnist)
    r = run(palettize_bin, "compress", mnist, "-o", out / "m.mlpackage", *flags)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert message in lines[0]
    assert list(out.iterdir()) == []
    assert tree_hash(mnist) == before


@pytest.mark.parametrize("flags, message", [
    (["--target-size", "1M"], "--target-size: one size for every model of --output-dir is not supported; "
                              "use --target-bpw"),
    (["--target-bpw", "4", "--emit-config", "X.yaml"], "--emit-config: not with --output-dir"),
    (["--target-bpw", "4", "--plot", "X.svg"], "--plot: not with --output-dir"),
])
def test_batch_refusals(palettize_bin, mnist, tmp_path, flags, message):
    out = tmp_path / "zoo"
    flags = [str(tmp_path / f) if f.endswith((".yaml", ".svg")) else f for f in flags]
    r = run(palettize_bin, "compress", mnist, "--output-dir", out, *flags)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert not out.exists()


def test_impossible_budget_names_the_reachable_range(palettize_bin, mnist, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    before = tree_hash(mnist)
    r = run(palettize_bin, "compress", mnist, "-o", out / "m.mlpackage", "--target-bpw", "0.5",
            "--report", out / "r.json", "--emit-config", out / "c.yaml", "--plot", out / "p.svg")
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip() == ("palettize: --target-bpw 0.5: below the smallest reachable 1.00 bpw "
                                "(largest 16.00)")
    assert list(out.iterdir()) == []
    assert tree_hash(mnist) == before


def test_each_model_of_a_batch_gets_its_own_allocation(palettize_bin, mnist, tmp_path):
    import json
    out = tmp_path / "zoo"
    r = run(palettize_bin, "compress", mnist, "--output-dir", out, "--target-bpw", "3",
            "--report", tmp_path / "batch.json", "-q")
    assert r.returncode == 0, r.stderr
    (model,) = json.loads((tmp_path / "batch.json").read_text())["models"]
    alloc = model["report"]["allocation"]
    assert alloc["objective"] == "target_bpw" and alloc["budget"] == 3
    assert alloc["bpw"] <= 3 and alloc["gap"] == 0
    assert 8 * alloc["bytes"] <= 3 * alloc["elements"]
    assert (out / "mnist.mlpackage" / "Manifest.json").is_file()


def test_relative_cost_in_the_report(palettize_bin, mnist, tmp_path):
    import json
    runs = {}
    for cost in ("sse", "relative"):
        r = run(palettize_bin, "compress", mnist, "-o", tmp_path / f"{cost}.mlpackage", "--target-bpw", "3",
                "--cost", cost, "--report", tmp_path / f"{cost}.json", "--plot", tmp_path / f"{cost}.svg", "-q")
        assert r.returncode == 0, r.stderr
        runs[cost] = json.loads((tmp_path / f"{cost}.json").read_text())["allocation"]
    sse, rel = runs["sse"], runs["relative"]
    assert sse["cost"] == "sse" and rel["cost"] == "relative"
    assert "total cost: SSE / mean square" in (tmp_path / "relative.svg").read_text()
    assert "total cost: SSE (log scale)" in (tmp_path / "sse.svg").read_text()
    assert rel["bpw"] <= 3 and rel["gap"] == 0
    # Each candidate's cost is its sse over the weight's mean square: elements x 10^(-snr/10).
    for w in rel["weights"]:
        for c in w["candidates"]:
            if c["snr_db"] is None:  # kept uncompressed, or lossless
                assert c["cost"] == 0
            else:
                assert c["cost"] == pytest.approx(w["elements"] * 10 ** (-c["snr_db"] / 10), rel=1e-9)
    # The same curves' bytes and sse whatever the cost.
    assert [[(c["bytes"], c["sse"]) for c in w["candidates"]] for w in sse["weights"]] == \
        [[(c["bytes"], c["sse"]) for c in w["candidates"]] for w in rel["weights"]]
