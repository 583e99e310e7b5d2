"""`palettize compress A.mlpackage DIR ... --output-dir OUT [--jobs N]`: a model zoo in one run.

A zoo folder holds the real models (../shared/models) and the fixtures (scripts/oracle/
make_fixtures.py, in FIXTURES_DIR) in sub-folders. Checked: every output is at OUT/<path in the
zoo>, loads in coremltools and is byte-identical to what `compress INPUT -o OUTPUT` writes; the
summary report holds each model's full report; --jobs 2 writes the same bytes as --jobs 1; a
corrupted model among good ones fails alone (listed, nothing written for it, exit non-zero, the
worst code); name clashes and existing outputs are refused before any work.
"""

import contextlib
import filecmp
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SHARED_MODELS", ROOT.parent / "shared/models"))
FLAGS = ["--nbits", "4", "--weight-threshold", "0"]
WEIGHTS = "Data/com.apple.CoreML/weights/weight.bin"


def run(bin_, *args):
    return subprocess.run([bin_, *map(str, args)], capture_output=True, text=True, timeout=600)


def copy_package(src, dst):
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


def fixture_packages():
    d = os.environ.get("FIXTURES_DIR")
    if not d or not (Path(d) / "fixtures.json").exists():
        pytest.fail("FIXTURES_DIR must hold the fixtures (ctest --test-dir build -R fixtures)")
    index = json.loads((Path(d) / "fixtures.json").read_text())
    return {e["name"]: Path(d) / e["path"] for e in index}


def tree_files(root):
    return sorted(p.relative_to(root).as_posix() for p in Path(root).rglob("*") if p.is_file())


def same_tree(a, b):
    files = tree_files(a)
    assert files == tree_files(b)
    for f in files:
        assert filecmp.cmp(Path(a) / f, Path(b) / f, shallow=False), f


def load_in_coremltools(pkg):
    import coremltools as ct

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return ct.models.MLModel(str(pkg), skip_model_load=True)


def strip_timings(report):
    report = json.loads(json.dumps(report))
    report["totals"].pop("wall_seconds", None)
    for w in report["weights"]:
        w.pop("seconds", None)
    return report


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """zoo/shared/<model>.mlpackage and zoo/fixtures/<fixture>.mlpackage."""
    root = tmp_path_factory.mktemp("zoo") / "zoo"
    for p in sorted(SHARED.glob("*.mlpackage")):
        copy_package(p, root / "shared" / p.name)
    for name, p in sorted(fixture_packages().items()):
        copy_package(p, root / "fixtures" / f"{name}.mlpackage")
    (root / "notes.txt").write_text("not a model\n")
    return root


@pytest.fixture(scope="module")
def zoo_run(palettize_bin, zoo):
    out = zoo.parent / "out"
    report = zoo.parent / "batch.json"
    r = run(palettize_bin, "compress", zoo, "--output-dir", out, "--report", report, *FLAGS)
    return r, out, json.loads(report.read_text()) if report.exists() else None


def zoo_models(zoo):
    return sorted(p.relative_to(zoo) for p in zoo.rglob("*.mlpackage"))


def test_zoo_every_output_written_mirrored_and_loads(zoo, zoo_run, tmp_path):
    r, out, _ = zoo_run
    assert r.returncode == 0, r.stderr
    models = zoo_models(zoo)
    assert len(models) >= 15
    assert sorted(p.relative_to(out) for p in out.rglob("*.mlpackage")) == models
    for i, rel in enumerate(models):
        # A copy: opening a package, coremltools rewrites a Manifest.json not in its own layout
        # (manifest_overlays), and the other tests compare the outputs byte for byte.
        copy = tmp_path / str(i) / rel.name
        shutil.copytree(out / rel, copy)
        load_in_coremltools(copy)
    assert f"compressed {len(models)} of {len(models)} models: " in r.stderr
    done = [line for line in r.stderr.splitlines() if line.startswith("[")]
    assert len(done) == len(models)  # a line per model: "[k/N] IN -> OUT: palettized ..."
    assert all(f"/{len(models)}] {zoo}/" in line for line in done)


def test_zoo_outputs_and_reports_are_what_single_compress_writes(palettize_bin, zoo, zoo_run, tmp_path):
    _, out, batch = zoo_run
    models = zoo_models(zoo)
    assert [Path(m["input"]).relative_to(zoo) for m in batch["models"]] == models
    assert batch["totals"]["models"] == batch["totals"]["ok"] == len(models)
    assert batch["totals"]["failed"] == 0
    before = after = 0
    for m, rel in zip(batch["models"], models):
        assert (m["status"], m["error"], m["error_kind"]) == ("ok", None, None)
        assert m["output"] == str(out / rel)
        assert m["report"]["input"] == m["input"] and m["report"]["output"] == m["output"]
        single = tmp_path / rel.name
        report = tmp_path / f"{rel.name}.json"
        r = run(palettize_bin, "compress", zoo / rel, "-o", single, "--report", report, *FLAGS)
        assert r.returncode == 0, r.stderr
        same_tree(single, out / rel)
        expected = strip_timings(json.loads(report.read_text()))
        expected["output"] = m["output"]
        assert strip_timings(m["report"]) == expected
        before += expected["totals"]["bytes_before"]
        after += expected["totals"]["bytes_after"]
    assert (batch["totals"]["bytes_before"], batch["totals"]["bytes_after"]) == (before, after)


def test_jobs_2_writes_the_same_bytes_as_jobs_1(palettize_bin, zoo, zoo_run):
    _, out1, _ = zoo_run
    out2 = zoo.parent / "out-jobs2"
    r = run(palettize_bin, "compress", zoo, "--output-dir", out2, "--jobs", "2", "-q", *FLAGS)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    same_tree(out1, out2)


@pytest.fixture
def small_zoo(tmp_path):
    root = tmp_path / "small"
    for name in ("mnist", "activity_fp16", "keras_video"):
        copy_package(SHARED / f"{name}.mlpackage", root / f"{name}.mlpackage")
    return root


def truncated_mnist(path):
    copy_package(SHARED / "mnist.mlpackage", path)
    data = (path / WEIGHTS).read_bytes()
    (path / WEIGHTS).write_bytes(data[:1000])
    return path


def test_corrupted_model_among_good_ones(palettize_bin, small_zoo, tmp_path):
    bad = truncated_mnist(small_zoo / "sub" / "bad.mlpackage")
    out = tmp_path / "out"
    report = tmp_path / "batch.json"
    r = run(palettize_bin, "compress", small_zoo, "--output-dir", out, "--report", report, "--jobs", "2")
    assert r.returncode == 2, r.stderr
    error = f"{bad}/{WEIGHTS}: blob at offset 64: size 1254400 past end of file (1000 bytes)"
    assert f"palettize: {error}\n" in r.stderr
    assert r.stderr.endswith(f"failed 1 of 4 models:\n  {error}\n")
    assert "compressed 3 of 4 models: " in r.stderr
    for name in ("mnist", "activity_fp16", "keras_video"):
        load_in_coremltools(out / f"{name}.mlpackage")
    assert not (out / "sub").exists()  # nothing for the failed model, not even its folder
    assert sorted(p.name for p in out.iterdir()) == ["activity_fp16.mlpackage", "keras_video.mlpackage",
                                                     "mnist.mlpackage"]
    doc = json.loads(report.read_text())
    failed = [m for m in doc["models"] if m["status"] == "failed"]
    assert failed == [{"input": str(bad), "output": str(out / "sub" / "bad.mlpackage"), "status": "failed",
                       "error": error, "error_kind": "invalid_input", "report": None}]
    assert (doc["totals"]["ok"], doc["totals"]["failed"]) == (3, 1)


def test_exit_code_is_the_worst_failure(palettize_bin, small_zoo, tmp_path):
    # compressed_ios16 holds iOS16 LUTs; nbits 3 needs iOS18: refused as a usage error (1).
    copy_package(fixture_packages()["compressed_ios16"], small_zoo / "compressed_ios16.mlpackage")
    r = run(palettize_bin, "compress", small_zoo, "--output-dir", tmp_path / "out1", "--nbits", "3", "-q")
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith(f"palettize: {small_zoo}/compressed_ios16.mlpackage: weight ")
    assert len(list((tmp_path / "out1").glob("*.mlpackage"))) == 3
    # A corrupted model (2) as well: the worst code wins.
    truncated_mnist(small_zoo / "bad.mlpackage")
    r = run(palettize_bin, "compress", small_zoo, "--output-dir", tmp_path / "out2", "--nbits", "3", "-q")
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 2
    assert len(list((tmp_path / "out2").glob("*.mlpackage"))) == 3


def test_name_clash_is_refused_before_any_work(palettize_bin, tmp_path):
    a = copy_package(SHARED / "activity_fp16.mlpackage", tmp_path / "a" / "m.mlpackage")
    b = copy_package(SHARED / "activity_fp32.mlpackage", tmp_path / "b" / "m.mlpackage")
    out = tmp_path / "out"
    r = run(palettize_bin, "compress", a, b, "--output-dir", out)
    assert r.returncode == 1
    assert r.stderr == (f"palettize: {out}/m.mlpackage: output of both {a} and {b} (rename one, or pass the "
                        "folder holding both: sub-folders are mirrored)\n")
    assert not out.exists()
    # Their common folder mirrors them apart.
    r = run(palettize_bin, "compress", tmp_path, "--output-dir", out, "-q")
    assert r.returncode == 0, r.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mlpackage")) == ["a/m.mlpackage",
                                                                                       "b/m.mlpackage"]


def test_existing_output_is_refused_before_any_work(palettize_bin, small_zoo, tmp_path):
    out = tmp_path / "out"
    (out / "mnist.mlpackage").mkdir(parents=True)
    (out / "mnist.mlpackage" / "Manifest.json").write_text("{}")  # --force replaces only a package
    r = run(palettize_bin, "compress", small_zoo, "--output-dir", out)
    assert r.returncode == 1
    assert r.stderr == f"palettize: {out}/mnist.mlpackage: already exists (use --force to replace it)\n"
    assert [p.name for p in out.iterdir()] == ["mnist.mlpackage"]
    r = run(palettize_bin, "compress", small_zoo, "--output-dir", out, "--force", "-q")
    assert r.returncode == 0, r.stderr
    load_in_coremltools(out / "mnist.mlpackage")


def test_packages_named_directly_and_dry_run(palettize_bin, small_zoo, tmp_path):
    out = tmp_path / "out"
    r = run(palettize_bin, "compress", small_zoo / "mnist.mlpackage", f"{small_zoo}/keras_video.mlpackage/",
            "--output-dir", out, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert f"== {small_zoo}/mnist.mlpackage -> {out}/mnist.mlpackage\n" in r.stdout
    assert f"== {small_zoo}/keras_video.mlpackage -> {out}/keras_video.mlpackage\n" in r.stdout
    assert not out.exists()


def test_usage_errors(palettize_bin, small_zoo, tmp_path):
    m = small_zoo / "mnist.mlpackage"
    r = run(palettize_bin, "compress", m, small_zoo / "keras_video.mlpackage", "-o", tmp_path / "x.mlpackage")
    assert (r.returncode, r.stderr) == (1, "palettize: compress: 2 inputs need --output-dir OUT (-o names one output)\n")
    r = run(palettize_bin, "compress", m, "-o", tmp_path / "x.mlpackage", "--output-dir", tmp_path / "o")
    assert r.returncode == 1 and "--output-dir" in r.stderr
    r = run(palettize_bin, "compress", m, "-o", tmp_path / "x.mlpackage", "--jobs", "2")
    assert (r.returncode, r.stderr) == (1, "palettize: --jobs requires --output-dir (see --help)\n")
    r = run(palettize_bin, "compress", m, "--output-dir", tmp_path / "o", "--jobs", "0")
    assert r.returncode == 1 and "--jobs" in r.stderr
    r = run(palettize_bin, "compress", tmp_path / "nope", "--output-dir", tmp_path / "o")
    assert (r.returncode, r.stderr) == (3, f"palettize: {tmp_path}/nope: no such package or folder\n")
    (tmp_path / "empty").mkdir()
    r = run(palettize_bin, "compress", tmp_path / "empty", "--output-dir", tmp_path / "o")
    assert (r.returncode, r.stderr) == (1, f"palettize: {tmp_path}/empty: no .mlpackage in this folder\n")
    assert not (tmp_path / "x.mlpackage").exists() and not (tmp_path / "o").exists()


def test_help_describes_batch_and_compare(palettize_bin):
    r = run(palettize_bin, "compress", "--help")
    assert r.returncode == 0
    for flag in ("--output-dir", "--jobs", "--threads", "-o,--output"):
        assert flag in r.stdout
    r = run(palettize_bin, "--help")
    assert "compare" in r.stdout and "4 compare: a weight" in r.stdout
