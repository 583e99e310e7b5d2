"""Issue 12, "Inside a package", and the other inputs palettize reads (README "What palettize
reads"): no link inside a package is followed or copied (S1, R1); only regular files and folders
are read, special files are refused without being opened (R2); whole-file reads are bounded (R2,
C2); copies carry no mode bits (S2); one blob file has one writer however the model spells it
(D5). A refusal is one stderr line and an exit code, with the input tree unchanged and nothing
written."""
import functools
import hashlib
import json
import os
import resource
import subprocess

import pytest
from coremltools.proto import Model_pb2

MODEL = "Data/com.apple.CoreML/model.mlmodel"
WEIGHTS_DIR = "Data/com.apple.CoreML/weights"
WEIGHTS = WEIGHTS_DIR + "/weight.bin"
LINK = "is a symbolic link; links inside a package are not followed"
QUICK = 10  # seconds: every refusal here comes before any real work
MEMORY = 1 << 30  # address space for a refusal: a few MB are used; an unbounded read needs GBs


def tree(root):
    """Every entry under `root` (included) without following links: a file's sha256 (or its size
    and mtime when large and sparse), a link's target, a folder's or special file's type, and
    every entry's mode."""
    out = {}
    for dirpath, dirs, files in os.walk(root, followlinks=False):
        for name in ["."] + dirs + files:
            p = os.path.normpath(os.path.join(dirpath, name))
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isfile(p) and st.st_size < 64 << 20:
                with open(p, "rb") as f:
                    out[rel] = ("file", st.st_mode, hashlib.sha256(f.read()).hexdigest())
            elif os.path.isfile(p):
                out[rel] = ("file", st.st_mode, st.st_size, st.st_mtime_ns)
            else:
                out[rel] = ("other", st.st_mode)
    return out


@functools.lru_cache(maxsize=None)
def is_asan_build(bin_):
    """An AddressSanitizer binary reserves terabytes of address space for its shadow memory, so an
    address-space cap stops it before main(); its own resident-memory cap is used instead."""
    with open(bin_, "rb") as f:
        return b"__asan_init" in f.read()


def run(bin_, *args, timeout=QUICK, umask=None, memory=None):
    """Runs palettize: (returncode, stdout, stderr). A run past `timeout` fails the test (a FIFO
    opened for reading would block forever); `memory` caps its memory (the address space; under
    ASan, its resident size: hard_rss_limit_mb), so that a read without limit fails instead of
    filling the machine."""
    env = None
    asan = memory is not None and is_asan_build(bin_)
    if asan:
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS", ""),
                                                     f"hard_rss_limit_mb={memory >> 20}"]))

    def preexec():
        if umask is not None:
            os.umask(umask)
        if memory is not None and not asan:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    try:
        r = subprocess.run([bin_, *map(str, args)], capture_output=True, text=True, errors="replace",
                           timeout=timeout, preexec_fn=preexec, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"palettize {' '.join(map(str, args))}: still running after {timeout} s")
    return r.returncode, r.stdout, r.stderr


def refused(bin_, args, inputs, code, message, written=()):
    """`palettize ARGS` exits `code` with the one line `message`, quickly and in bounded memory;
    every path in `inputs` is unchanged and nothing exists at the paths in `written` or beside
    them."""
    before = {str(p): tree(p) for p in inputs}
    rc, _, err = run(bin_, *args, memory=MEMORY)
    assert rc == code, err
    assert err == f"palettize: {message}\n"
    assert {str(p): tree(p) for p in inputs} == before
    for w in written:
        assert [q.name for q in w.parent.iterdir() if q.name.startswith(w.name)] == []
    return err


def every_command(bin_, pkg, tmp_path, code, message):
    """inspect, compress, decompress and compare all refuse `pkg` the same way."""
    out = tmp_path / "out.mlpackage"
    for args in (["inspect", pkg], ["compress", pkg, "-o", out], ["decompress", pkg, "-o", out],
                 ["compare", pkg, pkg]):
        err = refused(bin_, args, [pkg], code, message, written=[out])
    return err


# --- S1: links inside a package -------------------------------------------------------------

def test_S1_link_in_an_item_to_an_outside_file(palettize_bin, mnist, tmp_path):
    (mnist / WEIGHTS_DIR / "extra.bin").symlink_to("/etc/passwd")
    every_command(palettize_bin, mnist, tmp_path, 2, f"{mnist}/{WEIGHTS_DIR}/extra.bin: {LINK}")


def test_S1_link_in_an_item_to_an_outside_folder(palettize_bin, mnist, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    (mnist / WEIGHTS_DIR / "more").symlink_to(outside)
    every_command(palettize_bin, mnist, tmp_path, 2, f"{mnist}/{WEIGHTS_DIR}/more: {LINK}")


def test_S1_linked_parent_folder(palettize_bin, mnist, tmp_path):
    """weights/ itself is a link to a copy outside: caught at the folder, not only at files."""
    outside = tmp_path / "weights-outside"
    (mnist / WEIGHTS_DIR).rename(outside)
    (mnist / WEIGHTS_DIR).symlink_to(outside)
    every_command(palettize_bin, mnist, tmp_path, 2, f"{mnist}/{WEIGHTS_DIR}: {LINK}")


@pytest.mark.parametrize("rel", [WEIGHTS, MODEL, "Manifest.json"])
def test_S1_package_file_linked_to_etc_passwd(palettize_bin, mnist, tmp_path, rel):
    (mnist / rel).unlink()
    (mnist / rel).symlink_to("/etc/passwd")
    err = every_command(palettize_bin, mnist, tmp_path, 2, f"{mnist}/{rel}: {LINK}")
    assert "root:" not in err and ":0:0:" not in err and "version" not in err  # no byte of the target


@pytest.mark.parametrize("rel", [WEIGHTS, MODEL])
def test_S1_package_file_linked_to_a_valid_outside_copy(palettize_bin, mnist, tmp_path, rel):
    """Even a link to the very bytes the package should hold is refused."""
    copy = tmp_path / "copy"
    copy.write_bytes((mnist / rel).read_bytes())
    (mnist / rel).unlink()
    (mnist / rel).symlink_to(copy)
    every_command(palettize_bin, mnist, tmp_path, 2, f"{mnist}/{rel}: {LINK}")


def test_S1_package_named_through_a_link_is_read(palettize_bin, mnist, tmp_path):
    """The package root named by the user may be a link: that is the user's choice."""
    link = tmp_path / "link.mlpackage"
    link.symlink_to(mnist)
    out = tmp_path / "out.mlpackage"
    rc, _, err = run(palettize_bin, "compress", link, "-o", out, "--nbits", "4")
    assert rc == 0, err
    assert not any(os.path.islink(os.path.join(d, f)) for d, ds, fs in os.walk(out) for f in ds + fs)


# --- S2: modes ------------------------------------------------------------------------------

def add_item(pkg, item_id, author, path):
    manifest = json.loads((pkg / "Manifest.json").read_text())
    manifest["itemInfoEntries"][item_id] = {"author": author, "description": "", "name": path, "path": path}
    (pkg / "Manifest.json").write_text(json.dumps(manifest, indent=4))


@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_S2_modes_are_not_copied(palettize_bin, mnist, tmp_path, command):
    tool = mnist / "Data/com.example.tool"
    (tool / "sub").mkdir(parents=True)
    (tool / "notes.txt").write_text("notes\n")
    (tool / "sub/run.sh").write_text("#!/bin/sh\n")
    (mnist / WEIGHTS_DIR / "extra.bin").write_bytes(b"\0" * 100)
    add_item(mnist, "X", "com.example.tool", "com.example.tool")
    modes = {tool: 0o1777, tool / "sub": 0o3777, tool / "notes.txt": 0o6777, tool / "sub/run.sh": 0o4755,
             mnist / WEIGHTS_DIR: 0o2777, mnist / WEIGHTS_DIR / "extra.bin": 0o6755, mnist / WEIGHTS: 0o4777,
             mnist / MODEL: 0o6777}
    for p, m in modes.items():
        os.chmod(p, m)
    before = tree(mnist)
    out = tmp_path / "out.mlpackage"
    rc, _, err = run(palettize_bin, command, mnist, "-o", out, umask=0o022)
    assert rc == 0, err
    assert tree(mnist) == before
    copied = {"Data/com.example.tool/notes.txt", "Data/com.example.tool/sub/run.sh", WEIGHTS_DIR + "/extra.bin"}
    seen = set()
    for dirpath, dirs, files in os.walk(out):
        for d in dirs + ["."]:
            p = os.path.normpath(os.path.join(dirpath, d))
            assert oct(os.lstat(p).st_mode & 0o7777) == oct(0o755), p
        for f in files:
            p = os.path.join(dirpath, f)
            assert oct(os.lstat(p).st_mode & 0o7777) == oct(0o644), p
            seen.add(os.path.relpath(p, out))
    assert copied <= seen
    assert (out / "Data/com.example.tool/notes.txt").read_text() == "notes\n"


# --- R1: links to "." ------------------------------------------------------------------------

def test_R1_two_links_to_the_folder_itself(palettize_bin, mnist, tmp_path):
    (mnist / WEIGHTS_DIR / "a").symlink_to(".")
    (mnist / WEIGHTS_DIR / "b").symlink_to(".")
    every_command(palettize_bin, mnist, tmp_path, 2, f"{mnist}/{WEIGHTS_DIR}/a: {LINK}")


@pytest.mark.parametrize("target", [".", "..", "loop"])
def test_R1_one_self_link(palettize_bin, mnist, tmp_path, target):
    (mnist / WEIGHTS_DIR / "loop").symlink_to(target)
    every_command(palettize_bin, mnist, tmp_path, 2, f"{mnist}/{WEIGHTS_DIR}/loop: {LINK}")


# --- R2: special files and sizes -------------------------------------------------------------

@pytest.mark.parametrize("rel", ["Manifest.json", MODEL])
def test_R2_package_file_linked_to_dev_zero(palettize_bin, mnist, tmp_path, rel):
    (mnist / rel).unlink()
    (mnist / rel).symlink_to("/dev/zero")
    every_command(palettize_bin, mnist, tmp_path, 2, f"{mnist}/{rel}: {LINK}")


@pytest.mark.parametrize("rel", ["Manifest.json", MODEL, WEIGHTS])
def test_R2_fifo_in_the_package(palettize_bin, mnist, tmp_path, rel):
    (mnist / rel).unlink()
    os.mkfifo(mnist / rel)
    every_command(palettize_bin, mnist, tmp_path, 2,
                  f"{mnist}/{rel}: is a FIFO; only regular files and folders are read inside a package")


def test_R2_fifo_elsewhere_in_the_package(palettize_bin, mnist, tmp_path):
    """Not named by the manifest, but under the package: refused all the same."""
    os.mkfifo(mnist / "Data/pipe")
    every_command(palettize_bin, mnist, tmp_path, 2,
                  f"{mnist}/Data/pipe: is a FIFO; only regular files and folders are read inside a package")


def test_R2_oversize_manifest(palettize_bin, mnist, tmp_path):
    text = (mnist / "Manifest.json").read_text()
    (mnist / "Manifest.json").write_text(text + " " * ((1 << 20) + 1 - len(text)))
    every_command(palettize_bin, mnist, tmp_path, 2,
                  f"{mnist}/Manifest.json: 1048577 bytes; a Manifest.json may have at most 1048576 (1 MiB)")


def test_R2_oversize_model(palettize_bin, mnist, tmp_path):
    os.truncate(mnist / MODEL, 1 << 31)  # sparse: refused from its size, never read
    every_command(palettize_bin, mnist, tmp_path, 2,
                  f"{mnist}/{MODEL}: 2147483648 bytes; a model.mlmodel may have at most 2147483647")


def test_R2_fifo_as_checkpoint_input(palettize_bin, tmp_path):
    src = tmp_path / "in.safetensors"
    os.mkfifo(src)
    out = tmp_path / "out.safetensors"
    refused(palettize_bin, ["compress", src, "-o", out], [tmp_path], 3,
            f"{src}: is a FIFO, not a regular file")


@pytest.mark.parametrize("flag", ["--config", "--sensitivity"])
@pytest.mark.parametrize("kind", ["fifo", "dev_zero"])
def test_R2_special_file_as_config_or_sensitivity(palettize_bin, mnist, tmp_path, flag, kind):
    if kind == "fifo":
        path = tmp_path / "named.pipe"
        os.mkfifo(path)
        what = "a FIFO"
    else:
        path, what = "/dev/zero", "a character device"
    out = tmp_path / "out.mlpackage"
    refused(palettize_bin, ["compress", mnist, "-o", out, flag, path], [mnist], 3,
            f"{path}: is {what}, not a regular file", written=[out])


def test_R2_oversize_config(palettize_bin, mnist, tmp_path):
    cfg = tmp_path / "big.yaml"
    cfg.write_text("global_config: {mode: kmeans, nbits: 4}\n")
    os.truncate(cfg, (16 << 20) + 1)
    out = tmp_path / "out.mlpackage"
    refused(palettize_bin, ["compress", mnist, "-o", out, "--config", cfg], [mnist, cfg], 1,
            f"{cfg}: 16777217 bytes; a config may have at most 16777216 (16 MiB)", written=[out])


def test_C2_config_is_a_folder(palettize_bin, mnist, tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    out = tmp_path / "out.mlpackage"
    refused(palettize_bin, ["compress", mnist, "-o", out, "--config", folder], [mnist, folder], 3,
            f"{folder}: is a folder, expected a file", written=[out])


# --- D5: two spellings of one blob file -------------------------------------------------------

SPELLINGS = ["@model_path/weights/./weight.bin", "@model_path/weights//weight.bin", "@model_path//weights/weight.bin"]


def blob_values(spec):
    """Every blobFileValue of the model's programs."""
    found = []

    def walk_ops(ops):
        for op in ops:
            for v in op.attributes.values():
                if v.HasField("blobFileValue"):
                    found.append(v.blobFileValue)
            for arg in op.inputs.values():
                for b in arg.arguments:
                    if b.HasField("value") and b.value.HasField("blobFileValue"):
                        found.append(b.value.blobFileValue)
            for blk in op.blocks:
                walk_ops(blk.operations)

    for f in spec.mlProgram.functions.values():
        for blk in f.block_specializations.values():
            walk_ops(blk.operations)
    return found


def respell(pkg):
    """Names the package's weight file in three spellings, in turn over its blob values."""
    spec = Model_pb2.Model()
    spec.ParseFromString((pkg / MODEL).read_bytes())
    values = blob_values(spec)
    assert len(values) >= len(SPELLINGS)
    for i, v in enumerate(values):
        v.fileName = SPELLINGS[i % len(SPELLINGS)]
    (pkg / MODEL).write_bytes(spec.SerializeToString())


def check_output(bin_, out, expected):
    """`out` is a package inspect accepts, coremltools loads, that spells its weight file one way
    and holds exactly the weights of `expected`."""
    import contextlib
    import io

    import coremltools as ct

    rc, _, err = run(bin_, "inspect", out)
    assert rc == 0, err
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        spec = ct.models.MLModel(str(out), skip_model_load=True).get_spec()
    assert {v.fileName for v in blob_values(spec)} == {"@model_path/weights/weight.bin"}
    rc, stdout, err = run(bin_, "compare", expected, out, "--min-snr", "300")  # equal weights: inf dB
    assert rc == 0, stdout + err


def ok(bin_, *args):
    """Runs palettize, expecting success."""
    rc, _, err = run(bin_, *args, timeout=120)
    assert rc == 0, err


def respelled_run(bin_, pkg, out, *args):
    """Runs `palettize ARGS[0] pkg -o out ARGS[1:]` on `pkg` with its weight file respelled,
    checking the input is left unchanged."""
    respell(pkg)
    before = tree(pkg)
    ok(bin_, args[0], pkg, "-o", out, *args[1:])
    assert tree(pkg) == before


def test_D5_compress_two_spellings_of_one_weight_file(palettize_bin, mnist, tmp_path):
    ref, out = tmp_path / "ref.mlpackage", tmp_path / "out.mlpackage"
    ok(palettize_bin, "compress", mnist, "-o", ref, "--nbits", "4")
    respelled_run(palettize_bin, mnist, out, "compress", "--nbits", "4")
    check_output(palettize_bin, out, ref)


def test_D5_decompress_two_spellings_of_one_weight_file(palettize_bin, mnist, tmp_path):
    packed, out = tmp_path / "packed.mlpackage", tmp_path / "out.mlpackage"
    ok(palettize_bin, "compress", mnist, "-o", packed, "--nbits", "4")
    respelled_run(palettize_bin, packed, out, "decompress")
    check_output(palettize_bin, out, packed)


# --- the batch's folder search ------------------------------------------------------------------

def test_batch_search_follows_no_link(palettize_bin, mnist, tmp_path):
    """A folder searched by `--output-dir` runs is searched without following links: a linked
    package and a linked folder holding one are passed over; a linked package named on the
    command line is compressed (README, the batch section)."""
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.rename(mnist, elsewhere / "far.mlpackage")
    subprocess.run(["cp", "-r", str(elsewhere / "far.mlpackage"), str(zoo / "near.mlpackage")], check=True)
    (zoo / "linked.mlpackage").symlink_to(elsewhere / "far.mlpackage")
    (zoo / "linked-folder").symlink_to(elsewhere)
    before = tree(zoo), tree(elsewhere)
    out = tmp_path / "out"
    rc, _, err = run(palettize_bin, "compress", zoo, "--output-dir", out, "--nbits", "4", timeout=120)
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["near.mlpackage"]
    rc, _, err = run(palettize_bin, "compress", zoo / "linked.mlpackage", "--output-dir", out / "named", timeout=120)
    assert rc == 0, err
    assert sorted(p.name for p in (out / "named").iterdir()) == ["linked.mlpackage"]
    assert (tree(zoo), tree(elsewhere)) == before


def share_blob(pkg, spelling):
    """Adds a second const reading Dense2's weight blob through `spelling`, and a second linear
    consuming it: one blob, two consts, two names for its file."""
    spec = Model_pb2.Model()
    spec.ParseFromString((pkg / MODEL).read_bytes())
    ops = spec.mlProgram.functions["main"].block_specializations["CoreML5"].operations
    const = next(i for i, op in enumerate(ops) if op.outputs[0].name == "model_Dense2_weight_to_fp16")
    linear = next(i for i, op in enumerate(ops) if op.type == "linear" and
                  op.inputs["weight"].arguments[0].name == "model_Dense2_weight_to_fp16")
    c, lin = type(ops[const])(), type(ops[linear])()
    c.CopyFrom(ops[const])
    lin.CopyFrom(ops[linear])
    c.outputs[0].name = "shared_copy"
    c.attributes["name"].immediateValue.tensor.strings.values[0] = "shared_copy"
    c.attributes["val"].blobFileValue.fileName = spelling
    lin.outputs[0].name = "linear_copy"
    lin.attributes["name"].immediateValue.tensor.strings.values[0] = "linear_copy"
    lin.inputs["weight"].arguments[0].name = "shared_copy"
    ops.insert(linear + 1, lin)
    ops.insert(const + 1, c)
    (pkg / MODEL).write_bytes(spec.SerializeToString())


def test_D5_one_blob_two_spellings_is_one_blob(palettize_bin, mnist, tmp_path):
    """A blob reached through two spellings is counted once by inspect, palettized once and
    written once by compress: the same as when both consts spell its file the same way."""
    canonical = tmp_path / "canonical.mlpackage"
    subprocess.run(["cp", "-r", str(mnist), str(canonical)], check=True)
    share_blob(canonical, "@model_path/weights/weight.bin")
    share_blob(mnist, "@model_path/weights/./weight.bin")
    totals = []
    for pkg in (canonical, mnist):
        rc, stdout, err = run(palettize_bin, "inspect", "--json", pkg)
        assert rc == 0, err
        totals.append(json.loads(stdout)["model"]["total_weight_bytes"])
    assert totals[0] == totals[1]
    outs = [tmp_path / "c.mlpackage", tmp_path / "r.mlpackage"]
    for pkg, out in zip((canonical, mnist), outs):
        ok(palettize_bin, "compress", pkg, "-o", out, "--nbits", "4")
    assert (outs[0] / WEIGHTS).read_bytes() == (outs[1] / WEIGHTS).read_bytes()
    check_output(palettize_bin, outs[1], outs[0])
