"""Path rules (issue 12 item 1, README "Path rules"): where a run may write.

An output (a package, a checkpoint, --output-dir, every batch output) that is, holds or lies inside
an input, a report that is or lies inside an input or an output, and --force onto something that is
not an output of the same kind are refused before any work. Every case: exit 1, one line naming
the path as given, and every file and folder under the test's folder (the input, a sibling package,
an unrelated file, any earlier output) exactly as before: nothing written, nothing removed.
"""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import checkpoint_files as ck

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SHARED_MODELS", ROOT.parent / "shared/models"))
WEIGHTS = "Data/com.apple.CoreML/weights"


def run(bin_, *args):
    return subprocess.run([bin_, *map(str, args)], capture_output=True, text=True, timeout=120)


def snapshot(root):
    """Every path under `root`: a folder, a link's target, or a file's sha256."""
    out = {}
    for p in sorted(root.rglob("*")):
        key = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[key] = "link " + os.readlink(p)
        elif p.is_dir():
            out[key] = "folder"
        else:
            out[key] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def refused(bin_, root, args, named, message=None):
    """Runs palettize `args`, expecting a refusal before any work: exit 1, one line starting with
    `named` (the path as given), and nothing under `root` changed."""
    before = snapshot(root)
    r = run(bin_, *args)
    assert r.returncode == 1, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"palettize: {named}: "), r.stderr
    if message is not None:
        assert r.stderr == f"palettize: {named}: {message}\n"
    assert snapshot(root) == before
    return r


@pytest.fixture
def zoo(tmp_path):
    """tmp/zoo/a.mlpackage (the input), tmp/zoo/b.mlpackage (a sibling), tmp/zoo/notes.txt, and
    tmp/link -> zoo."""
    z = tmp_path / "zoo"
    for name in ("a", "b"):
        dst = z / f"{name}.mlpackage"
        shutil.copytree(SHARED / "mnist.mlpackage", dst)
        for p in [dst, *dst.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
    (z / "notes.txt").write_text("not a model\n")
    (tmp_path / "link").symlink_to(z)
    return z


@pytest.fixture
def checkpoint(tmp_path):
    """tmp/ck/m.safetensors (a checkpoint with one Linear weight) and tmp/ck/s.safetensors (its
    sensitivities)."""
    d = tmp_path / "ck"
    d.mkdir()
    w = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32)
    ck.write(d / "m.safetensors", {"lin.weight": w}, metadata={"format": "pt"})
    ck.write(d / "s.safetensors", {"lin.weight": np.ones_like(w)})
    return d


COMMANDS = ["compress", "decompress"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("spelling", ["zoo", "zoo/", "link", "zoo/b.mlpackage/.."])
def test_D1_output_is_the_folder_holding_the_input(palettize_bin, zoo, command, spelling):
    out = f"{zoo.parent}/{spelling}"
    for force in ([], ["--force"]):
        refused(palettize_bin, zoo.parent, [command, zoo / "a.mlpackage", "-o", out, *force], out,
                f"the output would replace the folder holding the input {zoo}/a.mlpackage")


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("inside", ["Data", "Manifest.json", "Data/o.mlpackage", f"{WEIGHTS}/x/y/z/o.mlpackage",
                                    f"{WEIGHTS}/weight.bin"])
def test_D2_output_inside_the_input(palettize_bin, zoo, command, inside):
    a = zoo / "a.mlpackage"
    for force in ([], ["--force"]):
        refused(palettize_bin, zoo.parent, [command, a, "-o", a / inside, *force], a / inside,
                f"the output lies inside the input {a}; write outside it")


@pytest.mark.parametrize("command", COMMANDS)
def test_D2_output_is_the_input_by_another_spelling(palettize_bin, zoo, command):
    a = zoo / "a.mlpackage"
    for out in (f"{zoo}/b.mlpackage/../a.mlpackage", f"{zoo.parent}/link/a.mlpackage/", f"{zoo}//./a.mlpackage"):
        refused(palettize_bin, zoo.parent, [command, a, "-o", out, "--force"], out,
                f"the output is the input {a}; write to another path")


def test_D2_output_dir_inside_or_holding_the_input(palettize_bin, zoo):
    a = zoo / "a.mlpackage"
    for out_dir in (a / "out", a / "Data", a / WEIGHTS):
        for force in ([], ["--force"]):
            refused(palettize_bin, zoo.parent, ["compress", a, "--output-dir", out_dir, *force], out_dir,
                    f"--output-dir lies inside the input {a}; write outside it")
    # A folder of models whose output folder is inside one of the models found in it.
    refused(palettize_bin, zoo.parent, ["compress", zoo, "--output-dir", zoo / "b.mlpackage/Data/out"],
            zoo / "b.mlpackage/Data/out", f"--output-dir lies inside the input {zoo}/b.mlpackage; write outside it")
    refused(palettize_bin, zoo.parent, ["compress", a, "--output-dir", zoo, "--force"], zoo,
            f"--output-dir holds the input {a}; write to another folder")


def test_D2_checkpoint_output_inside_or_onto_an_input(palettize_bin, checkpoint):
    m, s = checkpoint / "m.safetensors", checkpoint / "s.safetensors"
    for force in ([], ["--force"]):
        refused(palettize_bin, checkpoint.parent, ["compress", m, "-o", m / "o.safetensors", *force], m / "o.safetensors",
                f"the output lies inside the input {m}; write outside it")
    refused(palettize_bin, checkpoint.parent, ["compress", m, "-o", m, "--force"], m,
            "the output is the input; write to another path")
    refused(palettize_bin, checkpoint.parent, ["compress", m, "-o", s, "--force", "--sensitivity", s], s,
            "the output is the --sensitivity file; write to another path")
    config = checkpoint / "c.safetensors"  # a --config file of a name an output could take
    config.write_text("global_config:\n  n_bits: 4\n")
    refused(palettize_bin, checkpoint.parent, ["compress", m, "-o", config, "--force", "--config", config], config,
            "the output is the --config file; write to another path")


def test_D3_report_onto_the_input_weights(palettize_bin, zoo, tmp_path):
    a = zoo / "a.mlpackage"
    bin_ = a / WEIGHTS / "weight.bin"
    for force in ([], ["--force"]):
        refused(palettize_bin, zoo.parent, ["compress", a, "-o", tmp_path / "o.mlpackage", "--report", bin_, *force],
                bin_, f"the report lies inside the input {a}; write outside it")
    refused(palettize_bin, zoo.parent, ["compress", a, "--dry-run", "--report", a / "Manifest.json"],
            a / "Manifest.json", f"the report lies inside the input {a}; write outside it")
    # A link is compared by what it points at.
    link = zoo.parent / "r.json"
    link.symlink_to(bin_)
    refused(palettize_bin, zoo.parent, ["compress", a, "-o", tmp_path / "o.mlpackage", "--report", link], link,
            f"the report lies inside the input {a}; write outside it")


def test_D3_report_onto_the_checkpoint_input_and_output(palettize_bin, checkpoint):
    m, s = checkpoint / "m.safetensors", checkpoint / "s.safetensors"
    b = checkpoint / "b.safetensors"
    refused(palettize_bin, checkpoint.parent, ["compress", m, "-o", b, "--report", m], m,
            "the report is the input; write to another path")
    refused(palettize_bin, checkpoint.parent, ["compress", m, "-o", b, "--report", b], b,
            "the report is the output; write to another path")
    refused(palettize_bin, checkpoint.parent, ["compress", m, "-o", b, "--report", s, "--sensitivity", s], s,
            "the report is the --sensitivity file; write to another path")
    # An earlier output stays as it was.
    assert run(palettize_bin, "compress", m, "-o", b, "-q").returncode == 0
    refused(palettize_bin, checkpoint.parent, ["compress", m, "-o", b, "--force", "--report", b], b,
            "the report is the output; write to another path")


def test_D3_report_onto_or_inside_the_output_package(palettize_bin, zoo, tmp_path):
    a, o = zoo / "a.mlpackage", tmp_path / "o.mlpackage"
    sens = tmp_path / "s.safetensors"
    ck.write(sens, {"x": np.ones(4, np.float32)})
    refused(palettize_bin, tmp_path, ["compress", a, "-o", o, "--report", o], o,
            "the report is the output; write to another path")
    refused(palettize_bin, tmp_path, ["compress", a, "-o", o, "--report", o / "r.json"], o / "r.json",
            f"the report lies inside the output {o}; write outside it")
    refused(palettize_bin, tmp_path, ["compress", a, "-o", o, "--report", sens, "--sensitivity", sens], sens,
            "the report is the --sensitivity file; write to another path")
    assert run(palettize_bin, "compress", a, "-o", o, "-q").returncode == 0
    refused(palettize_bin, tmp_path, ["compress", a, "-o", o, "--force", "--report", o / "Manifest.json"],
            o / "Manifest.json", f"the report lies inside the output {o}; write outside it")
    # In a batch, the report may go into --output-dir, never into one of its outputs.
    out = tmp_path / "out"
    out.mkdir()
    refused(palettize_bin, tmp_path, ["compress", a, "--output-dir", out, "--report", out / "a.mlpackage/r.json"],
            out / "a.mlpackage/r.json", f"the report lies inside the output {out}/a.mlpackage; write outside it")
    r = run(palettize_bin, "compress", a, "--output-dir", out, "--report", out / "r.json", "-q")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.mlpackage", "r.json"]


@pytest.mark.parametrize("command", COMMANDS)
def test_force_replaces_only_an_existing_output_of_the_same_kind(palettize_bin, zoo, tmp_path, command):
    a = zoo / "a.mlpackage"
    folder = tmp_path / "plain"  # a folder of someone's files, named like an output
    folder.mkdir()
    (folder / "keep.txt").write_text("keep\n")
    file = tmp_path / "plain.mlpackage"
    file.write_text("a file\n")
    for target in (folder, file):
        for force in ([], ["--force"]):
            refused(palettize_bin, tmp_path, [command, a, "-o", target, *force], target,
                    "already exists and is not a package (a folder holding Manifest.json); --force replaces only a package")
    # A package is replaced.
    out = tmp_path / "o.mlpackage"
    assert run(palettize_bin, command, a, "-o", out).returncode == 0
    refused(palettize_bin, tmp_path, [command, a, "-o", out], out, "already exists (use --force to replace it)")
    r = run(palettize_bin, command, a, "-o", out, "--force")
    assert r.returncode == 0, r.stderr


def test_force_checkpoint_and_report_onto_a_folder(palettize_bin, checkpoint, zoo, tmp_path):
    m = checkpoint / "m.safetensors"
    folder = tmp_path / "plain.safetensors"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep\n")
    refused(palettize_bin, tmp_path, ["compress", m, "-o", folder, "--force"], folder,
            "already exists and is not a regular file; --force replaces only a file")
    for args in (["compress", m, "-o", tmp_path / "o.safetensors"], ["compress", zoo / "a.mlpackage", "-o",
                                                                      tmp_path / "o.mlpackage"]):
        refused(palettize_bin, tmp_path, [*args, "--force", "--report", folder], folder,
                "the report is a folder; name a file")
    # A regular file is replaced; a special file is written into.
    report = tmp_path / "r.json"
    report.write_text("old\n")
    r = run(palettize_bin, "compress", m, "-o", tmp_path / "o.safetensors", "--report", report, "-q")
    assert r.returncode == 0 and report.read_text().startswith("{"), r.stderr
    r = run(palettize_bin, "compress", m, "-o", tmp_path / "p.safetensors", "--report", "/dev/stdout", "-q")
    assert r.returncode == 0 and r.stdout.startswith("{"), r.stderr
