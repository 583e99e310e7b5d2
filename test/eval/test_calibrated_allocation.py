"""Allocation by measured output error (issue 15 item 5) on a ct.convert-ed torch model where the
weights' SSE misleads: an MLP whose first layer's weights are scaled up 30x and whose second
layer's are scaled down 30x (the function is the same up to the ReLU's positive homogeneity). The
first layer's SSE is ~900x larger per relative error, so the SSE allocation gives it the bits; the
output does not care which layer's relative error it is. At equal bytes the measured-cost
allocation's output error must be no worse than the SSE allocation's, on the calibration samples
and on held-out ones; measured costs are >= 0 and fall as bits rise.

Needs torch (scripts/setup-torch); CTest runs it in .venv-torch and reports it skipped otherwise."""

import json
import os
import subprocess
from pathlib import Path

os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", "AVX512_ICL")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

torch = pytest.importorskip("torch", reason="torch is not installed (scripts/setup-torch)")
ct = pytest.importorskip("coremltools", reason="coremltools is not installed (scripts/setup-torch)")

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 600


class Skewed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(64, 128)
        self.b = torch.nn.Linear(128, 128)
        self.c = torch.nn.Linear(128, 32)
        with torch.no_grad():
            self.a.weight.mul_(30)
            self.a.bias.mul_(30)
            self.b.weight.div_(30)

    def forward(self, x):
        return self.c(torch.relu(self.b(torch.relu(self.a(x)))))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("calibtorch")
    torch.manual_seed(15)
    model = Skewed().eval()
    x = np.random.default_rng(15).standard_normal((4, 64)).astype(np.float32)
    traced = torch.jit.trace(model, torch.from_numpy(x))
    ml = ct.convert(traced, inputs=[ct.TensorType(name="x", shape=x.shape, dtype=np.float32)],
                    convert_to="mlprogram", compute_precision=ct.precision.FLOAT32, skip_model_load=True)
    ml.save(str(d / "skewed.mlpackage"))
    rng = np.random.default_rng(16)
    for folder, n in (("calib", 4), ("held", 8)):
        (d / folder).mkdir()
        for k in range(n):
            np.savez(d / folder / f"s{k}.npz", x=rng.standard_normal((4, 64)).astype(np.float32))
    return d


@pytest.fixture(scope="module")
def palettize_bin():
    path = os.environ.get("PALETTIZE_BIN", str(ROOT / "build/apps/palettize/palettize"))
    assert os.access(path, os.X_OK), f"palettize binary not found at {path}"
    return path


def run(*args):
    return subprocess.run([*map(str, args)], capture_output=True, text=True, timeout=TIMEOUT)


def compress(bin_, d, name, *flags):
    r = run(bin_, "compress", d / "skewed.mlpackage", "-o", d / f"{name}.mlpackage", "--report",
            d / f"{name}.json", "--force", *flags)
    assert r.returncode == 0, r.stderr
    return json.loads((d / f"{name}.json").read_text())["allocation"]


def mean_psnr(bin_, d, name, folder):
    """-10 log10 of the pairs' mean mse / peak^2, as the report's mean PSNR."""
    r = run(bin_, "compare", d / "skewed.mlpackage", d / f"{name}.mlpackage", "--json", "--inputs", d / folder)
    assert r.returncode == 0, r.stderr
    errs = [c["mse"] / c["peak"] ** 2 for c in json.loads(r.stdout)["outputs"]["per_sample"]]
    return -10 * np.log10(np.mean(errs))


@pytest.mark.parametrize("bpw", [2, 3])
def test_measured_beats_sse_where_sse_misleads(palettize_bin, setup, bpw):
    d = setup
    m = compress(palettize_bin, d, f"m{bpw}", "--target-bpw", bpw, "--calibration", d / "calib")
    s = compress(palettize_bin, d, f"s{bpw}", "--target-bpw", bpw)
    assert m["bpw"] <= bpw and s["bpw"] <= bpw
    for w in m["weights"]:
        pal = [c["cost"] for c in w["candidates"] if c["nbits"] is not None]
        assert all(c >= 0 for c in pal)
        assert all(wide <= narrow for narrow, wide in zip(pal, pal[1:])), (w["name"], pal)
    bits = {w["name"]: (w["candidates"][w["chosen"]]["nbits"], s_w["candidates"][s_w["chosen"]]["nbits"])
            for w, s_w in zip(m["weights"], s["weights"])}
    results = {f: (mean_psnr(palettize_bin, d, f"m{bpw}", f), mean_psnr(palettize_bin, d, f"s{bpw}", f))
               for f in ("calib", "held")}
    print(f"\n{bpw} bpw: nbits (measured, sse) {bits}; mean output PSNR measured/sse: "
          f"calibration {results['calib'][0]:.2f}/{results['calib'][1]:.2f} dB, "
          f"held-out {results['held'][0]:.2f}/{results['held'][1]:.2f} dB")
    assert m["outputs"]["measured_mean_psnr_db"] == pytest.approx(results["calib"][0], abs=0.01)
    for f in ("calib", "held"):
        assert results[f][0] >= results[f][1], (f, results[f])
