"""Issue 12, commit order and staging (lib/util/staging.h): every output and its report are
assembled beside their targets under random, exclusively created names and renamed into place
together (D4, S3); SIGINT/SIGTERM/SIGHUP remove what a run staged and exit 128 + signal;
concurrent --force runs on one OUTPUT each replace it whole; outputs get 0644 files and 0755
folders less the umask."""
import concurrent.futures
import hashlib
import os
import pathlib
import signal
import stat
import subprocess
import time

import numpy as np
import pytest

import checkpoint_files as ck
from test_faults import tmpfs

TIMEOUT = 120


def digest(path):
    """sha256 of a file, or of every file under a folder by relative path."""
    path = pathlib.Path(path)
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def run(bin_, *args, **kw):
    return subprocess.run([bin_, *map(str, args)], capture_output=True, text=True, timeout=TIMEOUT, **kw)


def beside(out):
    """Names at OUTPUT or beside it (OUTPUT.partial-*, OUTPUT.old-*)."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(out.name))


def one_line(r):
    return r.stderr.count("\n") == 1 and r.stderr.startswith("palettize: ")


def make_checkpoint(path, rows=64, cols=64):
    rng = np.random.default_rng(0)
    ck.write(path, {"encoder.dense.weight": rng.normal(size=(rows, cols)).astype(np.float32),
                    "encoder.dense.bias": rng.normal(size=rows).astype(np.float32)},
             metadata={"format": "pt"})


# D4: a report that cannot be written leaves the previous OUTPUT byte-identical.

def test_D4_force_with_report_on_dev_full_keeps_previous_package(palettize_bin, mnist, tmp_path):
    out = tmp_path / "out.mlpackage"
    assert run(palettize_bin, "compress", mnist, "-o", out, "--nbits", "4").returncode == 0
    old, src = digest(out), digest(mnist)
    r = run(palettize_bin, "compress", mnist, "-o", out, "--force", "--report", "/dev/full")
    assert r.returncode == 3 and r.stderr == "palettize: /dev/full: cannot write report: No space left on device\n"
    assert digest(out) == old and digest(mnist) == src
    assert beside(out) == ["out.mlpackage"]


def test_D4_force_with_report_in_read_only_folder_keeps_previous_package(palettize_bin, mnist, tmp_path):
    out = tmp_path / "out.mlpackage"
    assert run(palettize_bin, "compress", mnist, "-o", out, "--nbits", "4").returncode == 0
    old = digest(out)
    with tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        report = ro / "report.json"
        r = run(palettize_bin, "compress", mnist, "-o", out, "--force", "--report", report)
        assert r.returncode == 3 and r.stderr == f"palettize: {report}: cannot write report: Read-only file system\n"
    assert digest(out) == old and beside(out) == ["out.mlpackage"]


def test_D4_checkpoint_force_with_report_on_dev_full_keeps_previous_file(palettize_bin, tmp_path):
    src = tmp_path / "m.safetensors"
    make_checkpoint(src)
    out = tmp_path / "o.safetensors"
    out.write_bytes(b"previous")
    r = run(palettize_bin, "compress", src, "-o", out, "--force", "--report", "/dev/full")
    assert r.returncode == 3 and r.stderr == "palettize: /dev/full: cannot write report: No space left on device\n"
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "o.safetensors"]


def test_D4_report_and_output_are_committed_together(palettize_bin, mnist, tmp_path):
    """Both replaced by one successful run; the previous report goes with the previous package."""
    out, report = tmp_path / "out.mlpackage", tmp_path / "report.json"
    report.write_text("previous")
    assert run(palettize_bin, "compress", mnist, "-o", out, "--report", report).returncode == 0
    assert report.read_text().startswith("{") and (out / "Manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out.mlpackage", "report.json"]


@pytest.mark.parametrize("redirect", ["pipe", "file"])
def test_report_to_dev_stdout_is_written_in_place(palettize_bin, mnist, tmp_path, redirect):
    """/dev/stdout is a link to /proc/self/fd/1: written through, never staged beside it in /dev."""
    out, log = tmp_path / "out.mlpackage", tmp_path / "log"
    with open(log, "w") as f:
        r = subprocess.run([palettize_bin, "compress", str(mnist), "-o", str(out), "--report", "/dev/stdout", "-q"],
                           stdout=subprocess.PIPE if redirect == "pipe" else f, stderr=subprocess.PIPE, text=True,
                           timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    text = r.stdout if redirect == "pipe" else log.read_text()
    assert text.startswith("{") and '"weights"' in text
    assert os.path.islink("/dev/stdout") and not any(p.startswith("stdout.") for p in os.listdir("/dev"))


# S3: temporaries are created exclusively under unpredictable names; planted links are never
# written through.

def plant_links(folder, names, victim):
    for name in names:
        (folder / name).symlink_to(victim)


def test_S3_links_at_the_old_temporary_names_are_not_followed(palettize_bin, tmp_path):
    src = tmp_path / "m.safetensors"
    make_checkpoint(src)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    out, report = tmp_path / "o.safetensors", tmp_path / "r.json"
    # The old scheme was NAME.partial-<pid>: cover the pids the child may get.
    base = os.getpid()
    pids = range(max(base - 200, 2), base + 2000)
    plant_links(tmp_path, [f"o.safetensors.partial-{p}" for p in pids], victim)
    plant_links(tmp_path, [f"r.json.partial-{p}" for p in pids], victim)
    r = run(palettize_bin, "compress", src, "-o", out, "--report", report)
    assert r.returncode == 0, r.stderr
    assert victim.read_bytes() == b"precious"
    assert ck.read(out)[0] == {"format": "pt"} and report.read_text().startswith("{")
    assert not out.is_symlink() and not report.is_symlink()
    links = [p for p in tmp_path.iterdir() if p.is_symlink()]
    assert len(links) == 2 * len(pids)  # every planted link still there, none replaced


def test_S3_temporary_names_are_random(palettize_bin, mnist, tmp_path):
    """Two runs stage under different, non-pid names: watched while each is being written."""
    seen = set()
    for i in range(2):
        out = tmp_path / f"out{i}.mlpackage"
        p = subprocess.Popen([palettize_bin, "compress", str(mnist), "-o", str(out), "--threads", "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        names = set()
        while p.poll() is None:
            names.update(x.name[len(out.name):] for x in tmp_path.glob(f"{out.name}.partial-*"))
        assert p.wait() == 0
        assert all(n != f".partial-{p.pid}" and len(n) == len(".partial-XXXXXX") for n in names), names
        seen |= names
    assert len(seen) == len(set(seen))


# Signals: what was staged is removed, exit 128 + signal.

@pytest.fixture(scope="module")
def big_checkpoint(tmp_path_factory):
    """A 48 MB float32 checkpoint, slow enough to interrupt mid-write."""
    path = tmp_path_factory.mktemp("bigck") / "big.safetensors"
    rng = np.random.default_rng(1)
    ck.write(path, {f"layer.{i}.dense.weight": rng.normal(size=(2048, 2048)).astype(np.float32) for i in range(3)})
    return path


def interrupt_when_staged(cmd, staged_glob, folder, sig):
    """Starts `cmd`, sends `sig` once a staged file matching `staged_glob` holds data."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    sent = False
    while p.poll() is None and time.monotonic() < deadline:
        files = list(folder.glob(staged_glob))
        if files and files[0].stat().st_size > 0:
            p.send_signal(sig)
            sent = True
            break
        time.sleep(0.002)
    _, err = p.communicate(timeout=60)
    assert sent, "the run ended before it could be interrupted mid-write"
    return p.returncode, err


SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


@pytest.mark.parametrize("sig", SIGNALS, ids=[s.name for s in SIGNALS])
def test_signals_remove_the_staged_package(palettize_bin, big_model, tmp_path, sig):
    before = digest(big_model)
    out = tmp_path / "out.mlpackage"
    rc, err = interrupt_when_staged(
        [palettize_bin, "compress", str(big_model), "-o", str(out), "--threads", "1", "--report", str(tmp_path / "r.json")],
        "out.mlpackage.partial-*/Data/com.apple.CoreML/weights/weight.bin", tmp_path, sig)
    assert rc == 128 + sig, err
    assert err == f"palettize: stopped by {sig.name}; partial outputs removed\n"
    assert list(tmp_path.iterdir()) == []
    assert digest(big_model) == before


@pytest.mark.parametrize("sig", SIGNALS, ids=[s.name for s in SIGNALS])
def test_signals_remove_the_staged_checkpoint(palettize_bin, big_checkpoint, tmp_path, sig):
    before = digest(big_checkpoint)
    out = tmp_path / "o.safetensors"
    out.write_bytes(b"previous")
    rc, err = interrupt_when_staged(
        [palettize_bin, "compress", str(big_checkpoint), "-o", str(out), "--force", "--threads", "1"],
        "o.safetensors.partial-*", tmp_path, sig)
    assert rc == 128 + sig, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.safetensors"]
    assert out.read_bytes() == b"previous"
    assert digest(big_checkpoint) == before


def test_signals_during_a_batch(palettize_bin, big_model, tmp_path):
    out_dir = tmp_path / "out"
    rc, err = interrupt_when_staged(
        [palettize_bin, "compress", str(big_model), "--output-dir", str(out_dir), "--threads", "1"],
        "out/big.mlpackage.partial-*/Data/com.apple.CoreML/weights/weight.bin", tmp_path, signal.SIGTERM)
    assert rc == 128 + signal.SIGTERM, err
    assert list(tmp_path.iterdir()) == []  # the staged package and the OUT folder the run made


def test_signals_at_random_moments_leave_a_whole_output(palettize_bin, mnist, tmp_path):
    """SIGTERM at any moment of a --force run (loading, writing, copying, committing): the run
    ends 0 or 143 (or by the signal, before start-up), OUTPUT is a whole package (the previous or the new one), nothing beside it."""
    out = tmp_path / "out.mlpackage"
    report = tmp_path / "out.mlpackage.json"
    assert run(palettize_bin, "compress", mnist, "-o", out, "--report", report).returncode == 0
    rng = np.random.default_rng(12)
    codes = set()
    for delay in rng.uniform(0, 0.08, size=40):
        p = subprocess.Popen([palettize_bin, "compress", str(mnist), "-o", str(out), "--force", "-q",
                              "--report", str(report)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        codes.add(p.returncode)
        # -SIGTERM: it came before main() took the signals, when nothing was staged yet.
        assert p.returncode in (0, 128 + signal.SIGTERM, -signal.SIGTERM), err
        assert beside(out) == ["out.mlpackage", "out.mlpackage.json"]
        assert run(palettize_bin, "inspect", out).returncode == 0
    assert 128 + signal.SIGTERM in codes


# Concurrent writers on one OUTPUT (item 9): the last rename wins.

def test_concurrent_force_writers(palettize_bin, mnist, tmp_path):
    out = tmp_path / "out.mlpackage"
    settings = [["--nbits", "4", "-q"]] * 3  # the same work, so that the commits meet
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        for _ in range(60):
            runs = list(pool.map(lambda a: run(palettize_bin, "compress", mnist, "-o", out, "--force",
                                               "--threads", "1", *a), settings))
            # Each run replaces OUTPUT whole (an exchange), so none has a reason to fail.
            for r in runs:
                assert r.returncode == 0 and r.stderr == "", r.stderr
            check = run(palettize_bin, "inspect", out)
            assert check.returncode == 0, check.stderr
            assert beside(out) == ["out.mlpackage"]


def test_concurrent_writers_without_force(palettize_bin, mnist, tmp_path):
    """Without --force one run wins; the others fail with one line saying OUTPUT exists."""
    for i in range(10):
        out = tmp_path / f"out{i}.mlpackage"
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            runs = list(pool.map(lambda _: run(palettize_bin, "compress", mnist, "-o", out, "--threads", "1"),
                                 range(3)))
        assert sum(r.returncode == 0 for r in runs) == 1, [r.stderr for r in runs]
        for r in runs:
            assert r.returncode == 0 or (r.returncode == 1 and one_line(r) and "already exists" in r.stderr), r.stderr
        assert run(palettize_bin, "inspect", out).returncode == 0
        assert beside(out) == [out.name]


# Modes: 0644 files, 0755 folders, less the umask; never setuid, setgid or sticky.

def modes(root):
    return {p.relative_to(root.parent).as_posix(): stat.S_IMODE(p.lstat().st_mode)
            for p in [root, *root.rglob("*")]}


@pytest.mark.parametrize("umask,file_mode,folder_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)],
                         ids=["022", "027"])
def test_modes_of_outputs(palettize_bin, mnist, tmp_path, umask, file_mode, folder_mode):
    parent = tmp_path / "setgid"
    parent.mkdir()
    parent.chmod(0o2775)  # folders made inside would inherit the setgid bit
    out, report, ckout = parent / "out.mlpackage", parent / "r.json", parent / "o.safetensors"
    src = tmp_path / "m.safetensors"
    make_checkpoint(src)
    set_umask = lambda: os.umask(umask)  # noqa: E731
    assert run(palettize_bin, "compress", mnist, "-o", out, "--report", report, preexec_fn=set_umask).returncode == 0
    assert run(palettize_bin, "compress", src, "-o", ckout, preexec_fn=set_umask).returncode == 0
    expected = {name: (folder_mode if (parent / name).is_dir() else file_mode) for name in modes(out)}
    assert modes(out) == expected
    assert stat.S_IMODE(report.stat().st_mode) == file_mode
    assert stat.S_IMODE(ckout.stat().st_mode) == file_mode
