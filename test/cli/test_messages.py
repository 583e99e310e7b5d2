"""What the CLI says on stderr besides errors: the unknown-command line, silence under -q (TBB's
own warnings included), the summary's note on weights that were already compressed, and -v."""
import os
import re
import subprocess

import pytest

KNOWN = "inspect, compress, decompress, compare, eval"


def run(bin_, *args):
    return subprocess.run([bin_, *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("word", ["evaluate", "frobnicate", "Compress"])
def test_unknown_command_is_named(palettize_bin, word):
    r = run(palettize_bin, word, "model.mlpackage")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == f"palettize: {word}: unknown command; the commands are {KNOWN} (see --help)\n"


def test_no_command(palettize_bin):
    r = run(palettize_bin)
    assert r.returncode == 1
    assert r.stderr == "palettize: A subcommand is required (see --help)\n"


def test_quiet_with_more_threads_than_cores(palettize_bin, mnist, tmp_path):
    threads = 2 * (os.cpu_count() or 1) + 2
    r = run(palettize_bin, "compress", mnist, "-o", tmp_path / "out.mlpackage", "-q", "--threads", threads)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout == ""


def test_quiet_batch_with_more_threads_than_cores(palettize_bin, mnist, tmp_path):
    threads = 2 * (os.cpu_count() or 1) + 2
    r = run(palettize_bin, "compress", mnist.parent, "--output-dir", tmp_path / "out", "-q", "--jobs", 2,
            "--threads", threads)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert (tmp_path / "out" / "mnist.mlpackage" / "Manifest.json").is_file()


def test_quiet_and_verbose_exclude_each_other(palettize_bin, mnist, tmp_path):
    r = run(palettize_bin, "compress", mnist, "-o", tmp_path / "out.mlpackage", "-q", "-v")
    assert r.returncode == 1
    assert r.stderr == "palettize: --quiet excludes --verbose (see --help)\n"


def test_already_compressed_weights_are_named(palettize_bin, mnist, tmp_path):
    once, twice = tmp_path / "once.mlpackage", tmp_path / "twice.mlpackage"
    assert run(palettize_bin, "compress", mnist, "-o", once, "-q").returncode == 0
    r = run(palettize_bin, "compress", once, "-o", twice)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0].startswith("palettized 0 weights (5 skipped): ") and "(1.00x)" in lines[0]
    assert ("  2 weights were already compressed in the input (constexpr_* ops) and copied as they are; "
            "`palettize decompress` first would let them be palettized again") in lines
    # Decompressed first, the same weights are palettized again.
    dense = tmp_path / "dense.mlpackage"
    assert run(palettize_bin, "decompress", once, "-o", dense).returncode == 0
    r = run(palettize_bin, "compress", dense, "-o", tmp_path / "again.mlpackage")
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("palettized 2 weights (3 skipped): ")
    assert "already compressed" not in r.stderr
    r = run(palettize_bin, "compress", once, "-o", tmp_path / "quiet.mlpackage", "-q")
    assert r.returncode == 0 and r.stderr == ""


def test_verbose_adds_the_plan(palettize_bin, mnist, tmp_path):
    plain = run(palettize_bin, "compress", mnist, "-o", tmp_path / "a.mlpackage")
    verbose = run(palettize_bin, "compress", mnist, "-o", tmp_path / "b.mlpackage", "-v")
    assert plain.returncode == 0 and verbose.returncode == 0
    line = "main/model_Dense1_weight_to_fp16: kmeans 6-bit per_tensor (global_config)"
    assert line not in plain.stderr
    # After a run, each palettized weight's line says how long it took; a dry run's plan does not.
    assert re.search("^" + re.escape(line) + r", \d+\.\d{3} s$", verbose.stderr, re.M), verbose.stderr
    assert "main/model_Dense1_bias_to_fp16: skip: rank 1: 1-D tensors are left uncompressed\n" in verbose.stderr
    dry = run(palettize_bin, "compress", mnist, "--dry-run")
    assert dry.returncode == 0 and line + "\n" in dry.stdout
    assert "\n\n" not in verbose.stderr
    summary = [l for l in plain.stderr.splitlines() if l.startswith("palettized 2 weights (3 skipped): ")]
    assert len(summary) == 1
    assert any(l.startswith("palettized 2 weights (3 skipped): ") for l in verbose.stderr.splitlines())
