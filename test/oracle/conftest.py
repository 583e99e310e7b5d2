"""Shared setup for the coremltools oracle tests.

Run from the repo root:
    PALETTIZE_BIN=build/apps/palettize RESAVE_BIN=build/test/resave FIXTURES_DIR=/tmp/fixtures \\
        .venv/bin/python -m pytest test/oracle

Environment:
    PALETTIZE_BIN   the palettize CLI (required by the inspect tests; missing -> FAIL, not skip)
    RESAVE_BIN      the `resave IN OUT` test tool (required by the round-trip tests)
    FIXTURES_DIR    where scripts/oracle/make_fixtures.py output lives; built once if
                    FIXTURES_DIR/fixtures.json is missing (default: $TMPDIR/palettize-oracle-fixtures)
    SHARED_MODELS   directory of *.mlpackage models (default: <repo>/../shared/models); never
                    written to, every model is copied to a tmp dir first.

Models under test: every *.mlpackage in SHARED_MODELS + every fixture of make_fixtures.py,
with ids "shared/<stem>" and "fixture/<name>".
"""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ORACLE_SCRIPTS = REPO_ROOT / "scripts" / "oracle"
if str(ORACLE_SCRIPTS) not in sys.path:
    sys.path.insert(0, str(ORACLE_SCRIPTS))

import npcompat  # noqa: E402,F401  (before numpy: NPY_DISABLE_CPU_FEATURES)
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import dump_weights  # noqa: E402
import make_fixtures  # noqa: E402

# Test modules import the helpers below as `oracle_conftest`, which stays unambiguous when
# pytest also collects other directories with their own conftest.py (e.g. test/cli).
sys.modules["oracle_conftest"] = sys.modules[__name__]

CANDIDATE_DTYPES = {"float16", "float32", "uint8", "int8"}
DEFAULT_THRESHOLD = 2048
SUBPROCESS_TIMEOUT = 300


# --------------------------------------------------------------------------------------
# Model discovery (at collection time)
# --------------------------------------------------------------------------------------


def shared_models_dir():
    env = os.environ.get("SHARED_MODELS")
    return Path(env) if env else (REPO_ROOT / ".." / "shared" / "models").resolve()


def fixtures_dir():
    env = os.environ.get("FIXTURES_DIR")
    if env:
        return Path(env)
    return Path(tempfile.gettempdir()) / f"palettize-oracle-fixtures-{os.getuid()}"


def _shared_model_ids():
    d = shared_models_dir()
    if not d.is_dir():
        return []
    return [f"shared/{p.stem}" for p in sorted(d.glob("*.mlpackage"))]


FIXTURE_IDS = [f"fixture/{n}" for n in make_fixtures.FIXTURE_NAMES]
MODEL_IDS = _shared_model_ids() + FIXTURE_IDS


def pytest_generate_tests(metafunc):
    if "model_id" in metafunc.fixturenames and not any(
        m.name == "parametrize" and "model_id" in str(m.args[0]) for m in metafunc.definition.iter_markers()
    ):
        metafunc.parametrize("model_id", MODEL_IDS)


# --------------------------------------------------------------------------------------
# Fixture building: lock-free (build in a private dir, rename into place, index last)
# --------------------------------------------------------------------------------------


def _ensure_fixtures():
    out = fixtures_dir()
    index_path = out / "fixtures.json"
    if not index_path.exists():
        out.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=out))
        try:
            index = make_fixtures.build_all(str(work))
            for e in index:
                try:
                    os.rename(work / e["path"], out / e["path"])
                except OSError:
                    # Someone else (a concurrent run) already put an identical one there.
                    if not (out / e["path"]).is_dir():
                        raise
            os.replace(work / "fixtures.json", index_path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    with open(index_path) as f:
        index = json.load(f)
    return {e["name"]: (index_path.parent / e["path"]) for e in index}


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _make_writable(root):
    for dirpath, _dirs, files in os.walk(root):
        os.chmod(dirpath, os.stat(dirpath).st_mode | stat.S_IWUSR | stat.S_IRUSR | stat.S_IXUSR)
        for f in files:
            p = os.path.join(dirpath, f)
            os.chmod(p, os.stat(p).st_mode | stat.S_IWUSR | stat.S_IRUSR)


def hash_tree(root):
    """relative path -> sha256 for every file, plus "dir:" entries for directories."""
    root = Path(root)
    res = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_dir():
            res["dir:" + rel] = None
        else:
            res[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return res


def weight_key(rec):
    return (rec["program"], rec["function"], rec["name"])


def fmt_key(key):
    program, function, name = key
    return f"{program + '/' if program else ''}{function}/{name}"


def expected_candidate(rec, threshold=DEFAULT_THRESHOLD):
    """The palettize candidate rule, recomputed from coremltools' view of the const."""
    return (
        rec["dtype"] in CANDIDATE_DTYPES
        and rec["elements"] >= 10
        and len(rec["shape"]) >= 2
        and rec["elements"] > threshold
        and len(rec["consumers"]) >= 1
        and not any(c["op_type"].startswith("constexpr_") for c in rec["consumers"])
    )


def consumer_set(rec):
    return {(c["op_type"], c["op_name"], c["input"]) for c in rec["consumers"]}


def read_manifest(pkg):
    with open(Path(pkg) / "Manifest.json") as f:
        return json.load(f)


def load_mlmodel(path):
    import contextlib
    import io

    import coremltools as ct

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return ct.models.MLModel(str(path), skip_model_load=True)


class Oracle:
    def __init__(self, tmp_factory):
        self._tmp_factory = tmp_factory
        self._fixtures = None
        self._session_copies = {}
        self._dumps = {}

    # ---- models ----
    def source_path(self, model_id):
        kind, name = model_id.split("/", 1)
        if kind == "shared":
            return shared_models_dir() / f"{name}.mlpackage"
        if self._fixtures is None:
            self._fixtures = _ensure_fixtures()
        return self._fixtures[name]

    def copy_model(self, model_id, dest_dir):
        """Copy the model into dest_dir (created) and return the new package path."""
        src = self.source_path(model_id)
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        dst = dest_dir / src.name
        shutil.copytree(src, dst)
        _make_writable(dst)
        return dst

    def session_copy(self, model_id):
        if model_id not in self._session_copies:
            d = self._tmp_factory.mktemp(model_id.replace("/", "_"))
            self._session_copies[model_id] = self.copy_model(model_id, d)
        return self._session_copies[model_id]

    def dump(self, model_id):
        """Cached dump_weights result for the (copied) model."""
        if model_id not in self._dumps:
            self._dumps[model_id] = dump_weights.dump(self.session_copy(model_id))
        return self._dumps[model_id]

    def is_single_function_program(self, model_id):
        d = self.dump(model_id)["model"]
        return (
            d["type"] == "mlProgram"
            and len(d["programs"]) == 1
            and len(d["programs"][0]["functions"]) == 1
        )

    # ---- binaries ----
    @staticmethod
    def _bin(var):
        path = os.environ.get(var)
        if not path:
            pytest.fail(f"{var} is not set; it must point at the built binary")
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            pytest.fail(f"{var}={path} does not exist or is not executable")
        return path

    def run(self, var, args, what):
        exe = self._bin(var)
        cmd = [exe] + [str(a) for a in args]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=SUBPROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{what}: timed out after {SUBPROCESS_TIMEOUT}s: {' '.join(cmd)}")
        if proc.returncode != 0:
            pytest.fail(
                f"{what}: exit code {proc.returncode}: {' '.join(cmd)}\n"
                f"stdout:\n{proc.stdout.decode(errors='replace')[-4000:]}\n"
                f"stderr:\n{proc.stderr.decode(errors='replace')[-4000:]}"
            )
        return proc

    def inspect(self, pkg, extra=(), what="inspect"):
        proc = self.run("PALETTIZE_BIN", ["inspect", pkg, "--json", *extra], what)
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError as e:
            pytest.fail(f"{what}: stdout is not JSON ({e}):\n{proc.stdout.decode(errors='replace')[:4000]}")

    def resave(self, src, dst, what="resave"):
        return self.run("RESAVE_BIN", [src, dst], what)


@pytest.fixture(scope="session")
def oracle(tmp_path_factory):
    return Oracle(tmp_path_factory)


@pytest.fixture
def npz_roundtrip(tmp_path):
    """Write values with dump_weights' npz writer and read them back (exercises the --out format)."""

    def _rt(values, name):
        p = tmp_path / f"{name}.npz"
        dump_weights.write_npz(values, p)
        with np.load(p) as z:
            return {k: z[k] for k in z.files}

    return _rt


def new_uuid(seed):
    return str(uuid.UUID(int=seed)).upper()
