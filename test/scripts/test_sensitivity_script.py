"""scripts/sensitivity.py: squared-gradient sensitivities from a PyTorch model, for palettize.

Needs torch (the venv scripts/setup-torch creates); CTest runs this file in .venv-torch and reports
it skipped, saying why, when that venv is absent. Run from the repo root:
    PALETTIZE_BIN=build/apps/palettize/palettize .venv-torch/bin/python -m pytest test/scripts

What is checked:
  - the sums of squared gradients equal a hand computation of a two-layer MLP's gradients
    (numpy, float64), per example and per batch; exactly num_samples items are drawn;
  - the model is left as it was (values, requires_grad, .grad, train mode); errors for a short
    loader and a non-finite gradient;
  - the file's layout, read with an independent parser and with the safetensors package: X in its
    own dtype (bit-exact, F32/F16/BF16) beside X.sensitivity (F32, >= 0), nothing else;
  - the command line, with a recipe file;
  - palettize compress --sensitivity takes the file: on an .mlpackage built from the model's
    weights (matched by value) and on a safetensors checkpoint of the model (matched by name), and
    its weighted tables have a smaller sensitivity-weighted error than the plain ones.
"""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

# numpy's AVX512_ICL 16-bit sort is wrong on some AVX-512 CPUs (scripts/oracle/npcompat.py).
os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", "AVX512_ICL")
import numpy as np  # noqa: E402
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (scripts/setup-torch)")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import sensitivity  # noqa: E402

TIMEOUT = 300


# ------------------------------------------------------------------------------------------------
# A two-layer MLP, its loss, and its gradients by hand
# ------------------------------------------------------------------------------------------------

class MLP(torch.nn.Module):
    def __init__(self, n_in=64, n_hidden=96, n_out=48):
        super().__init__()
        self.fc1 = torch.nn.Linear(n_in, n_hidden)  # weight 96x64: 6144 elements, palettized
        self.fc2 = torch.nn.Linear(n_hidden, n_out)  # weight 48x96: 4608 elements, palettized

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def mse_loss(model, item):
    x, t = item
    return 0.5 * ((model(x) - t) ** 2).sum()


def make_model(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return MLP().to(dtype)


def make_data(count, seed=1, batch=None):
    g = torch.Generator().manual_seed(seed)
    shape = (count,) if batch is None else (count, batch)
    xs = torch.randn(*shape, 64, generator=g)
    ts = torch.randn(*shape, 48, generator=g)
    return list(zip(xs, ts))


def hand_gradients(model, x, t):
    """d/dparams of 0.5 ||fc2(relu(fc1 x)) - t||^2, summed over the rows of x, in float64."""
    w1 = model.fc1.weight.detach().double().numpy()
    b1 = model.fc1.bias.detach().double().numpy()
    w2 = model.fc2.weight.detach().double().numpy()
    b2 = model.fc2.bias.detach().double().numpy()
    x = np.atleast_2d(x.double().numpy())
    t = np.atleast_2d(t.double().numpy())
    pre = x @ w1.T + b1
    h = np.maximum(pre, 0)
    r = h @ w2.T + b2 - t            # d loss / d y
    d_pre = (r @ w2) * (pre > 0)     # d loss / d pre-activation
    return {"fc1.weight": d_pre.T @ x, "fc1.bias": d_pre.sum(0),
            "fc2.weight": r.T @ h, "fc2.bias": r.sum(0)}


def hand_sensitivities(model, data):
    sums = {}
    for x, t in data:
        for name, g in hand_gradients(model, x, t).items():
            sums[name] = sums.get(name, 0) + g * g
    return sums


def assert_close(got, want, what):
    got = got.double().numpy()
    assert got.shape == want.shape, what
    scale = np.max(np.abs(want))
    assert scale > 0, f"{what}: the hand computation is all zero"
    err = np.max(np.abs(got - want)) / scale
    assert err < 1e-5, f"{what}: max relative error {err:.3g}"


# ------------------------------------------------------------------------------------------------
# Sums of squared gradients
# ------------------------------------------------------------------------------------------------

def test_squared_gradient_sums_match_hand_computation():
    model = make_model()
    data = make_data(12)
    drawn = []

    def loader():
        for i, item in enumerate(data):
            drawn.append(i)
            yield item

    got = sensitivity.compute_sensitivities(model, loader(), mse_loss, num_samples=9)
    assert drawn == list(range(9)), "exactly num_samples items are drawn from the loader"
    assert sorted(got) == ["fc1.weight", "fc2.weight"], "by default only weights of rank >= 2"
    want = hand_sensitivities(model, data[:9])
    for name in got:
        assert got[name].dtype == torch.float32
        assert bool((got[name] >= 0).all())
        assert_close(got[name], want[name], name)
    # Nine squared gradients summed, not the square of the summed gradient.
    summed = sum(hand_gradients(model, x, t)["fc2.weight"] for x, t in data[:9])
    assert np.max(np.abs(got["fc2.weight"].double().numpy() - summed ** 2)) > 1e-3 * np.max(summed ** 2)


def test_batches_give_squared_batch_gradients_and_select_takes_biases():
    model = make_model(seed=3)
    data = make_data(5, seed=4, batch=4)  # five batches of four examples
    got = sensitivity.compute_sensitivities(model, data, mse_loss, num_samples=None,
                                            select=lambda name, p: True)
    assert sorted(got) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]
    want = hand_sensitivities(model, data)  # per batch: (sum over its rows of the gradient)^2
    for name in got:
        assert_close(got[name], want[name], name)


def test_model_is_left_as_it_was():
    model = make_model(seed=5)
    model.train()
    model.fc2.eval()  # mixed modes come back as they were
    model.fc2.bias.requires_grad_(False)
    marker = torch.full_like(model.fc1.bias, 7.0)
    model.fc1.bias.grad = marker
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    sensitivity.compute_sensitivities(model, make_data(3), mse_loss, num_samples=3)
    assert model.training and model.fc1.training and not model.fc2.training
    assert not model.fc2.bias.requires_grad and model.fc1.weight.requires_grad
    assert model.fc1.bias.grad is marker and model.fc1.weight.grad is None
    for n, p in model.named_parameters():
        assert torch.equal(p.detach(), before[n]), n


def test_eval_mode_by_default_train_mode_on_request():
    class Probe(MLP):
        modes = []

        def forward(self, x):
            self.modes.append(self.training)
            return super().forward(x)

    torch.manual_seed(0)
    model = Probe()
    sensitivity.compute_sensitivities(model, make_data(2), mse_loss, num_samples=2)
    sensitivity.compute_sensitivities(model, make_data(2), mse_loss, num_samples=2, train_mode=True)
    assert Probe.modes == [False, False, True, True]


def test_errors(tmp_path):
    model = make_model()
    with pytest.raises(ValueError, match="the loader gave 3 samples, 5 asked for"):
        sensitivity.compute_sensitivities(model, make_data(3), mse_loss, num_samples=5)

    def nan_loss(model, item):
        return mse_loss(model, item) * float("nan")

    with pytest.raises(ValueError, match=r"^compute_sensitivities: sample 0: the loss is nan$"):
        sensitivity.compute_sensitivities(model, make_data(2), nan_loss, num_samples=2)

    def nan_gradient(model, item):  # a finite loss (0) whose gradient is 0 * inf = nan
        return mse_loss(model, item) + torch.sqrt(model.fc2.weight[0, 0] * 0)

    with pytest.raises(ValueError, match=r"the sum for 'fc2.weight' is not finite"):
        sensitivity.compute_sensitivities(model, make_data(2), nan_gradient, num_samples=2,
                                          path=str(tmp_path / "s.safetensors"))
    assert list(tmp_path.iterdir()) == [], "nothing written"
    with pytest.raises(ValueError, match="no parameter selected"):
        sensitivity.compute_sensitivities(model, make_data(2), mse_loss, 2, select=lambda n, p: False)


def test_params_give_the_names_written():
    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = make_model()

        def forward(self, x):
            return self.body(x)

    wrapper = Wrapper()
    got = sensitivity.compute_sensitivities(wrapper, make_data(2), mse_loss, 2, params=wrapper.body)
    assert sorted(got) == ["fc1.weight", "fc2.weight"]
    got = sensitivity.compute_sensitivities(wrapper, make_data(2), mse_loss, 2)
    assert sorted(got) == ["body.fc1.weight", "body.fc2.weight"]


def test_sparse_embedding_gradients_sum_as_dense_ones():
    def run(sparse):
        torch.manual_seed(12)
        emb = torch.nn.Embedding(100, 32, sparse=sparse)
        head = torch.nn.Linear(32, 1)
        model = torch.nn.Sequential(emb, head)
        g = torch.Generator().manual_seed(13)
        data = [torch.randint(0, 100, (6,), generator=g) for _ in range(5)]
        return sensitivity.compute_sensitivities(model, data, lambda m, ids: m(ids).pow(2).sum(), 5)

    dense, sparse = run(False), run(True)
    assert sorted(dense) == ["0.weight", "1.weight"]
    assert bool((dense["0.weight"] > 0).any()) and bool((dense["0.weight"] == 0).any())
    for n in dense:
        assert torch.allclose(sparse[n], dense[n], rtol=1e-6, atol=0), n


# ------------------------------------------------------------------------------------------------
# The file
# ------------------------------------------------------------------------------------------------

ST_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64}


def read_safetensors(path):
    """An independent reader: {name: (dtype name, shape, raw bytes)}, metadata."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0, "header padded to a multiple of 8"
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    spans = sorted((h["data_offsets"][0], h["data_offsets"][1]) for h in header.values())
    assert spans[0][0] == 0 and spans[-1][1] == len(data), "the data covers the rest of the file"
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), "no gaps or overlaps"
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        out[name] = (h["dtype"], tuple(h["shape"]), data[b:e])
    return out, meta


@pytest.mark.parametrize("dtype,st_dtype", [(torch.float32, "F32"), (torch.float16, "F16"),
                                            (torch.bfloat16, "BF16")])
def test_file_layout(tmp_path, dtype, st_dtype):
    model = make_model(seed=6, dtype=dtype)
    data = [(x.to(dtype), t.to(dtype)) for x, t in make_data(4, seed=7)]
    path = tmp_path / "s.safetensors"
    got = sensitivity.compute_sensitivities(model, data, mse_loss, 4, str(path))
    tensors, meta = read_safetensors(path)
    assert sorted(tensors) == ["fc1.weight", "fc1.weight.sensitivity", "fc2.weight",
                               "fc2.weight.sensitivity"]
    assert meta["samples"] == "4"
    for name in ["fc1.weight", "fc2.weight"]:
        p = getattr(getattr(model, name.split(".")[0]), "weight").detach()
        kind, shape, raw = tensors[name]
        assert (kind, shape) == (st_dtype, tuple(p.shape))
        bits = p.contiguous().view(-1).view(torch.uint8).numpy().tobytes()
        assert raw == bits, f"{name} is written bit for bit"
        kind, shape, raw = tensors[name + ".sensitivity"]
        assert (kind, shape) == ("F32", tuple(p.shape))
        s = np.frombuffer(raw, dtype="<f4").reshape(shape)
        assert np.array_equal(s, got[name].numpy())
        assert np.all(s >= 0) and np.all(np.isfinite(s)) and np.any(s > 0)
    assert not list(tmp_path.glob("*.partial-*"))

    try:
        from safetensors.torch import load_file
    except ImportError:
        return
    loaded = load_file(str(path))
    assert loaded["fc1.weight"].dtype == dtype
    assert torch.equal(loaded["fc2.weight"], model.fc2.weight.detach())
    assert torch.equal(loaded["fc2.weight.sensitivity"], got["fc2.weight"])


def test_no_weights(tmp_path):
    path = tmp_path / "s.safetensors"
    sensitivity.compute_sensitivities(make_model(), make_data(2), mse_loss, 2, str(path),
                                      write_weights=False)
    tensors, _ = read_safetensors(path)
    assert sorted(tensors) == ["fc1.weight.sensitivity", "fc2.weight.sensitivity"]


RECIPE = '''
import torch
import sys
sys.path.insert(0, {tests!r})
import test_sensitivity_script as t

def model():
    return t.make_model(seed=8)

def loader():
    return t.make_data(20, seed=9)

loss_fn = t.mse_loss
'''


def test_command_line(tmp_path):
    recipe = tmp_path / "recipe.py"
    recipe.write_text(RECIPE.format(tests=str(Path(__file__).parent)))
    out = tmp_path / "s.safetensors"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts/sensitivity.py"), str(recipe),
                           "-o", str(out), "-n", "6"], capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}: 2 tensors, 10752 elements" in proc.stderr
    tensors, meta = read_safetensors(out)
    assert meta["samples"] == "6"
    want = hand_sensitivities(make_model(seed=8), make_data(20, seed=9)[:6])
    s = np.frombuffer(tensors["fc1.weight.sensitivity"][2], dtype="<f4").reshape(96, 64)
    assert_close(torch.from_numpy(s.copy()), want["fc1.weight"], "fc1.weight")

    proc = subprocess.run([sys.executable, str(ROOT / "scripts/sensitivity.py"), str(recipe),
                           "-o", str(tmp_path / "t.safetensors"), "-n", "50"],
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith("the loader gave 20 samples, 50 asked for")
    assert not (tmp_path / "t.safetensors").exists()


# ------------------------------------------------------------------------------------------------
# palettize takes the file
# ------------------------------------------------------------------------------------------------

def palettize_bin():
    path = os.environ.get("PALETTIZE_BIN", str(ROOT / "build/apps/palettize/palettize"))
    assert os.access(path, os.X_OK), f"palettize binary not found at {path}"
    return path


def run_palettize(*args):
    proc = subprocess.run([palettize_bin(), *map(str, args)], capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, f"palettize {' '.join(map(str, args))}: exit {proc.returncode}\n{proc.stderr}"
    return proc


def calibrated(tmp_path):
    """The MLP and its sensitivities over 32 examples, written to s.safetensors."""
    model = make_model(seed=10)
    path = tmp_path / "s.safetensors"
    sens = sensitivity.compute_sensitivities(model, make_data(32, seed=11), mse_loss, 32, str(path))
    return model, path, {n: s.double().numpy() for n, s in sens.items()}


def weighted_error(original, decoded, s):
    return float(np.sum(s * (original.astype(np.float64) - decoded.astype(np.float64)) ** 2))


def test_palettize_takes_it_for_an_mlpackage(tmp_path):
    ct = pytest.importorskip("coremltools", reason="coremltools is not installed")
    from coremltools.converters.mil import Builder as mb
    import coremltools.optimize.coreml as cto

    model, spath, sens = calibrated(tmp_path)
    w = {n: p.detach().numpy() for n, p in model.named_parameters()}

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 64))], opset_version=ct.target.iOS16)
    def prog(x):
        h = mb.relu(x=mb.linear(x=x, weight=w["fc1.weight"], bias=w["fc1.bias"]))
        return mb.linear(x=h, weight=w["fc2.weight"], bias=w["fc2.bias"])

    pkg = tmp_path / "mlp.mlpackage"
    ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
               compute_precision=ct.precision.FLOAT16, skip_model_load=True).save(str(pkg))

    def dense_weights(path):
        m = cto.decompress_weights(ct.models.MLModel(str(path), skip_model_load=True))
        meta = cto.get_weights_metadata(m, weight_threshold=2048)
        by_shape = {tuple(v.val.shape): v.val for v in meta.values()}
        return {n: by_shape[w[n].shape] for n in sens}

    original = dense_weights(pkg)  # the fp16 consts: the weights rounded to float16
    errors = {}
    for kind, extra in [("weighted", ["--sensitivity", spath]), ("plain", [])]:
        out, rep = tmp_path / f"{kind}.mlpackage", tmp_path / f"{kind}.json"
        run_palettize("compress", pkg, "-o", out, "--nbits", "3", "--report", rep, *extra)
        report = json.loads(rep.read_text())
        decoded = dense_weights(out)
        errors[kind] = {n: weighted_error(original[n], decoded[n], sens[n]) for n in sens}
        if kind == "weighted":
            assert report["sensitivity"]["unused"] == []
            applied = {r["sensitivity"]["tensor"]: r for r in report["weights"]
                       if r["status"] == "palettized"}
            assert sorted(applied) == ["fc1.weight.sensitivity", "fc2.weight.sensitivity"]
            for n in sens:
                r = applied[n + ".sensitivity"]
                assert r["sensitivity"]["match"] == "values" and r["sensitivity"]["note"] == ""
                assert r["sensitivity"]["weighted_sse"] == pytest.approx(errors[kind][n], rel=1e-6)
    for n in sens:
        assert errors["weighted"][n] < errors["plain"][n], (n, errors)


def test_palettize_takes_it_for_a_checkpoint(tmp_path):
    model, spath, sens = calibrated(tmp_path)
    ckpt = tmp_path / "mlp.safetensors"
    sensitivity.write_safetensors(str(ckpt), model.state_dict())
    errors = {}
    for kind, extra in [("weighted", ["--sensitivity", spath]), ("plain", [])]:
        out, rep = tmp_path / f"{kind}.safetensors", tmp_path / f"{kind}.json"
        run_palettize("compress", ckpt, "-o", out, "--nbits", "3", "--report", rep, *extra)
        report = json.loads(rep.read_text())
        tensors, _ = read_safetensors(out)
        rows = {r["name"]: r for r in report["weights"]}
        errors[kind] = {}
        for n in sens:
            kind_, shape, raw = tensors[n]
            assert (kind_, shape) == ("F32", tuple(sens[n].shape))
            decoded = np.frombuffer(raw, dtype="<f4").reshape(shape)
            assert len(np.unique(decoded)) <= 8, f"{n}: a 3-bit table"
            errors[kind][n] = weighted_error(model.state_dict()[n].numpy(), decoded, sens[n])
            assert rows[n]["status"] == "palettized"
            if kind == "weighted":
                assert rows[n]["sensitivity"]["match"] == "name"
                assert rows[n]["sensitivity"]["weighted_sse"] == pytest.approx(errors[kind][n], rel=1e-6)
        for n in ["fc1.bias", "fc2.bias"]:  # below the 2048-element threshold: unchanged
            assert tensors[n][2] == model.state_dict()[n].numpy().tobytes()
    for n in sens:
        assert errors["weighted"][n] < errors["plain"][n], (n, errors)
