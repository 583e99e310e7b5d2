import os

# numpy's AVX512_ICL 16-bit sort is wrong on some AVX-512 CPUs (scripts/oracle/npcompat.py).
os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", "AVX512_ICL")
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def palettize_bin():
    path = os.environ.get("PALETTIZE_BIN", str(ROOT / "build/apps/palettize/palettize"))
    assert os.access(path, os.X_OK), f"palettize binary not found at {path}"
    return path


@pytest.fixture(scope="session")
def resave_bin():
    path = os.environ.get("RESAVE_BIN", str(ROOT / "build/test/resave"))
    assert os.access(path, os.X_OK), f"resave binary not found at {path}"
    return path


@pytest.fixture
def mnist(tmp_path):
    """A writable copy of ../shared/models/mnist.mlpackage (a real model, fp16 blobs)."""
    shared = pathlib.Path(os.environ.get("SHARED_MODELS", ROOT.parent / "shared/models"))
    dst = tmp_path / "in" / "mnist.mlpackage"
    shutil.copytree(shared / "mnist.mlpackage", dst)
    for p in dst.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    dst.chmod(0o755)
    return dst


@pytest.fixture(scope="session")
def big_model(tmp_path_factory):
    """A 72 MB fp16 package (make_synthetic), slow enough to kill or interrupt mid-write."""
    tool = os.environ.get("MAKE_SYNTHETIC_BIN", str(ROOT / "build/test/make_synthetic"))
    path = tmp_path_factory.mktemp("big") / "big.mlpackage"
    subprocess.run([tool, "--layers", "3", "--hidden", "1024", "--ffn", "4096", "--out", str(path)],
                   check=True, capture_output=True, timeout=300)
    return path
