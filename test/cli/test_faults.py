"""Faults while writing: an unwritable output folder, a full disk, a failing report, and the
process killed mid-write. Every case: the input package is byte-identical afterwards, a clean
failure exits 3 with one line naming the path, and nothing is left at the output path or beside
it (a killed run cannot clean up: it leaves OUTPUT.partial-XXXXXX, never a package at OUTPUT)."""
import contextlib
import hashlib
import resource
import signal
import subprocess
import time

import pytest



def digest(folder):
    """sha256 of every file under `folder`, by relative path."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def compress(bin_, src, out, *args, **kw):
    return subprocess.run([bin_, "compress", str(src), "-o", str(out), *map(str, args)],
                          capture_output=True, text=True, timeout=120, **kw)


def beside(out):
    """Everything at OUTPUT or beside it (OUTPUT.partial-*, OUTPUT.old-*)."""
    if not out.parent.is_dir():
        return []
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(out.name))


def refused(bin_, src, out, *args, **kw):
    """Runs compress, expecting a clean failure: exit 3, one line, the input unchanged, nothing at
    OUTPUT or beside it. Returns the run."""
    before = digest(src)
    r = compress(bin_, src, out, *args, **kw)
    assert r.returncode == 3, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("palettize: "), r.stderr
    assert digest(src) == before
    assert beside(out) == [], f"left behind: {beside(out)}"
    return r


@contextlib.contextmanager
def tmpfs(path, options):
    """A tmpfs mounted at `path` for the block, or a skip where mounting is not allowed."""
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_output_under_a_file(palettize_bin, mnist, tmp_path):
    """As root no permission bit stops a write; a file where a folder should be always does."""
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "out.mlpackage"
    r = refused(palettize_bin, mnist, out)
    assert r.stderr == f"palettize: {out}: cannot create folder: Not a directory\n"
    assert (tmp_path / "file").read_text() == "x"


def test_output_folder_immutable(palettize_bin, mnist, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    try:
        out = folder / "out.mlpackage"
        r = refused(palettize_bin, mnist, out)
        assert r.stderr == f"palettize: {out}: cannot create folder: Operation not permitted\n"
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=False)


def test_output_on_read_only_mount(palettize_bin, mnist, tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        out = ro / "out.mlpackage"
        r = refused(palettize_bin, mnist, out)
        assert r.stderr == f"palettize: {out}: cannot create folder: Read-only file system\n"


def limit_file_size(limit):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


@pytest.mark.parametrize("limit", [0, 100_000])
def test_file_size_limit(palettize_bin, mnist, tmp_path, limit):
    """RLIMIT_FSIZE: the writes fail as on a full disk (EFBIG), in the header (0) or mid-blob."""
    out = tmp_path / "out.mlpackage"
    r = refused(palettize_bin, mnist, out, preexec_fn=limit_file_size(limit))
    assert r.stderr.startswith(f"palettize: {out}.partial-"), r.stderr
    assert "/Data/com.apple.CoreML/weights/weight.bin: cannot write: File too large" in r.stderr


def test_full_disk(palettize_bin, mnist, tmp_path):
    with tmpfs(tmp_path / "small", "size=256k") as small:
        out = small / "out.mlpackage"
        r = refused(palettize_bin, mnist, out)
        assert "weight.bin: cannot write: No space left on device" in r.stderr, r.stderr
        assert list(small.iterdir()) == []


def test_failed_write_keeps_the_previous_output(palettize_bin, mnist, tmp_path):
    """--force over an existing package: a write that fails leaves the old package as it was."""
    out = tmp_path / "out.mlpackage"
    assert compress(palettize_bin, mnist, out, "--nbits", "4").returncode == 0
    old, before = digest(out), digest(mnist)
    r = compress(palettize_bin, mnist, out, "--force", preexec_fn=limit_file_size(100_000))
    assert r.returncode == 3 and r.stderr.count("\n") == 1, r.stderr
    assert digest(out) == old and digest(mnist) == before
    assert beside(out) == ["out.mlpackage"]


def test_report_on_a_full_device(palettize_bin, mnist, tmp_path):
    """--report to a full device (a /dev/full node of our own): exit 3, and the package written
    for it is removed, so the failed run leaves nothing at OUTPUT; the device stays a device."""
    full = tmp_path / "full"
    if subprocess.run(["mknod", str(full), "c", "1", "7"], capture_output=True).returncode != 0:
        pytest.skip("cannot make a device node here")
    r = refused(palettize_bin, mnist, tmp_path / "out.mlpackage", "--report", full)
    assert r.stderr == f"palettize: {full}: cannot write report: No space left on device\n"
    assert full.is_char_device()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("full")] == ["full"]


def test_report_to_a_folder(palettize_bin, mnist, tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    # Refused before any work by the path rules (exit 1), as every path the run may not write.
    r = compress(palettize_bin, mnist, tmp_path / "out.mlpackage", "--report", report)
    assert (r.returncode, r.stderr) == (1, f"palettize: {report}: the report is a folder; name a file\n")
    assert list(report.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["in", "report"]


def test_killed_mid_write(palettize_bin, big_model, tmp_path):
    before = digest(big_model)
    out = tmp_path / "out.mlpackage"
    p = subprocess.Popen([palettize_bin, "compress", str(big_model), "-o", str(out), "--threads", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while p.poll() is None and time.monotonic() < deadline:
        staged = list(tmp_path.glob("out.mlpackage.partial-*/Data/com.apple.CoreML/weights/weight.bin"))
        if staged and staged[0].stat().st_size > 0:
            p.send_signal(signal.SIGKILL)
            partial = staged[0].parents[3]
            break
        time.sleep(0.002)
    p.wait(timeout=60)
    p.stderr.close()
    assert p.returncode == -signal.SIGKILL, "compress ended before it could be killed mid-write"
    assert not out.exists()
    assert beside(out) == [partial.name]  # the documented leftover of a killed run
    assert digest(big_model) == before
    # A later run is not disturbed by it, and succeeds.
    r = compress(palettize_bin, big_model, out, "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert beside(out) == sorted(["out.mlpackage", partial.name])
    assert digest(big_model) == before
