"""palettize.torch.dkm: differentiable k-means (issue 17 item 3). Run from the repo root:
    PYTHONPATH=python .venv-torch/bin/python -m pytest test/python/test_dkm.py"""

import copy
import itertools
import os

os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", "AVX512_ICL")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

torch = pytest.importorskip("torch", reason="torch is not installed (scripts/setup-torch)")
# One thread: on a shared machine torch's spinning thread pool makes these small steps 20x slower.
torch.set_num_threads(1)
from palettize.torch.dkm import DKMPalettizer, init_centroids  # noqa: E402
from palettize.torch.dkm.soft_kmeans import soft_assign  # noqa: E402


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.fc1 = torch.nn.Linear(16 * 4 * 4, 64)
        self.fc2 = torch.nn.Linear(64, 4)

    def forward(self, x):
        h = torch.relu(self.conv(x)).flatten(1)
        return self.fc2(torch.relu(self.fc1(h)))


def data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, 4, 4, generator=g)
    y = (x[:, :4].mean(dim=(2, 3)) > 0).long() @ torch.tensor([1, 2, 0, 0]) % 4
    return x, y


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k.endswith("weight")}


CFG4 = {"global_config": {"n_bits": 4, "weight_threshold": 1000}}


def test_init_centroids_is_the_exact_optimum():
    rng = np.random.default_rng(3)
    for _ in range(100):
        n, k = int(rng.integers(2, 9)), int(rng.integers(1, 5))
        x = np.sort(rng.choice(40, n, replace=False) + rng.random())
        w = rng.integers(1, 6, n).astype(float)
        c = init_centroids(x, w, k)[:, 0]
        sse = (w * (x - c[np.abs(x[:, None] - c[None]).argmin(1)]) ** 2).sum()
        best = np.inf
        for cuts in itertools.combinations(range(1, n), min(k, n) - 1):
            b = [0, *cuts, n]
            best = min(best, sum((w[a:e] * (x[a:e] - np.average(x[a:e], weights=w[a:e])) ** 2).sum()
                                 for a, e in zip(b[:-1], b[1:])))
        assert sse == pytest.approx(best, abs=1e-9)
        assert c.shape == (k,)


def train_through_milestone_10(prepared, palettizer, module):
    """12 SGD steps with step() after each; before the 11th step() (10 calls made) `module`'s
    weight is used as it is."""
    opt = torch.optim.SGD(prepared.parameters(), lr=0.01)
    x, y = data()
    for step in range(12):
        same = torch.equal(module.weight, module.parametrizations.weight.original)
        assert same == (step <= 10), step
        loss = torch.nn.functional.cross_entropy(prepared(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        palettizer.step()


def test_milestone_leaves_weights_untouched_then_finalize_leaves_16_values():
    torch.manual_seed(0)
    model = Net()
    cfg = {"global_config": {"n_bits": 4, "weight_threshold": 1000, "milestone": 10}}
    pal = DKMPalettizer(model, cfg)
    prepared = pal.prepare()
    train_through_milestone_10(prepared, pal, prepared.conv)
    final = pal.finalize()
    for name in ("conv.weight", "fc1.weight"):
        w = final.state_dict()[name]
        assert torch.unique(w).numel() <= 16, name
        assert torch.unique(w).numel() >= 8, name  # the tables really hold several entries
    # fc2 has 256 <= 1000 elements: below weight_threshold, not palettized
    assert torch.unique(final.fc2.weight).numel() == 256


def test_finalize_holds_exactly_the_learned_centroids():
    torch.manual_seed(1)
    pal = DKMPalettizer(Net(), CFG4)
    m = pal.prepare()
    m(data()[0])
    centroids = m.fc1.parametrizations.weight[0].centroids[0, :, 0].clone()
    final = pal.finalize()
    values = set(torch.unique(final.fc1.weight).tolist())
    assert values <= set(centroids.tolist())


def test_finalize_copy_leaves_the_prepared_model_and_its_copies_usable():
    # finalize() with inplace=False used to delete `weight` from the class torch shares between
    # the prepared model and its deep copies (AttributeError on the next read).
    torch.manual_seed(2)
    pal = DKMPalettizer(Net(), CFG4)
    m = pal.prepare()
    x = data()[0]
    m(x)
    twin = copy.deepcopy(m)
    final = pal.finalize()
    assert torch.unique(final.fc1.weight).numel() <= 16
    for model in (m, twin):  # still parametrized: soft weights, many distinct values
        assert model.fc1.weight.shape == (64, 256)
        assert torch.unique(model.fc1.weight.detach()).numel() > 16
        model(x)
    assert torch.unique(pal.finalize().fc1.weight).numel() <= 16


def train(model, pal, steps, lr=0.05):
    x, y = data()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        pal.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("cfg,learns", [
    (CFG4, True),
    ({"global_config": {"n_bits": 2, "weight_threshold": 1000, "granularity": "per_grouped_channel",
                        "group_size": 4, "palett_tau": 1e-3}}, True),
    ({"global_config": {"n_bits": 4, "weight_threshold": 1000, "cluster_dim": 2}}, True),
    ({"global_config": {"n_bits": 4, "weight_threshold": 1000, "quantize_activations": True}}, True),
    # With the weights divided by their per-column maxima, the default temperature makes the
    # attention nearly hard on this tiny task: checked for its tables, not for learning.
    ({"global_config": {"n_bits": 4, "weight_threshold": 1000, "enable_per_channel_scale": True}}, False),
], ids=["4bit", "grouped", "cluster_dim2", "actq", "scale"])
def test_training_reduces_loss_and_tables_hold(cfg, learns):
    torch.manual_seed(2)
    pal = DKMPalettizer(Net(), cfg)
    model = pal.prepare()
    losses = train(model, pal, 40)
    assert np.isfinite(losses).all()
    if learns:
        assert np.mean(losses[-5:]) < 0.85 * np.mean(losses[:5]), losses
    final = pal.finalize()
    g = cfg["global_config"]
    K = 2 ** g["n_bits"]
    for name in ("conv", "fc1"):
        w = getattr(final, name).weight.detach()
        tab = getattr(final, name)._palettize_table
        if g.get("enable_per_channel_scale"):
            w = w / tab["scale"]
            assert torch.unique(w.round(decimals=5)).numel() <= K
        elif g.get("cluster_dim", 1) > 1:
            D = g["cluster_dim"]
            vec = w.reshape(w.shape[0] // D, D, -1).permute(0, 2, 1).reshape(-1, D)
            assert torch.unique(vec, dim=0).shape[0] <= K
        elif g.get("granularity") == "per_grouped_channel":
            G = g["group_size"]
            for t in range(w.shape[0] // G):
                assert torch.unique(w[t * G:(t + 1) * G]).numel() <= K
            assert torch.unique(w).numel() > K  # separate tables per group
        else:
            assert torch.unique(w).numel() <= K


def test_unique_path_gradients_equal_the_naive_ones():
    torch.manual_seed(4)
    for D in (1, 2):
        base = torch.randn(50, D).half().float()
        x = base[torch.randint(0, 50, (800,))].clone().requires_grad_(True)
        c = torch.randn(8, D) * 0.5
        upstream = torch.randn(800, D)
        grads = []
        for efficient in (True, False):
            out, _ = soft_assign(x, c, 0.2, 3, efficient)
            (out * upstream).sum().backward()
            grads.append(x.grad.clone())
            x.grad = None
        assert torch.allclose(grads[0], grads[1], atol=1e-4, rtol=1e-4)


def saved_bytes(efficient, n, k):
    """Bytes autograd keeps for backward of one soft assignment of n points to k centroids."""
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    x = (torch.randn(n, 1) * 0.05).requires_grad_(True)
    c = torch.linspace(-0.1, 0.1, k)[:, None]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out, _ = soft_assign(x, c, 1e-4, 3, efficient)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    return total[0]


def test_memory_does_not_grow_with_the_table_size():
    n, k = 1 << 20, 16
    naive_bound = n * k * 4  # one float32 attention map
    efficient = saved_bytes(True, n, k)
    naive = saved_bytes(False, n, k)
    # The naive path keeps several n x k maps; ours keeps the distinct values (at most 65536
    # half-precision ones) and the n-entry index map.
    assert naive > naive_bound
    assert efficient < naive_bound / 4
    # ... and does not grow with k.
    assert saved_bytes(True, n, 256) < efficient * 1.05


def test_unknown_key_is_an_error_naming_it():
    with pytest.raises(ValueError, match="n_bitz"):
        DKMPalettizer(Net(), {"global_config": {"n_bitz": 4, "weight_threshold": 10}}).prepare()


def test_config_object_and_null_entries():
    class Cfg:
        global_config = {"n_bits": 2, "weight_threshold": 1000}
        module_type_configs = {}
        module_name_configs = {"conv": None}

    pal = DKMPalettizer(Net(), Cfg())
    pal.prepare()
    final = pal.finalize()
    assert torch.unique(final.conv.weight).numel() == final.conv.weight.numel()
    assert torch.unique(final.fc1.weight).numel() <= 4


def test_seed_example_through_the_package_and_its_config_class():
    # The seed's DKM example with only the import changed: the config class of palettize.torch
    # (coremltools' schema), DKMPalettizer from the package's top level, milestone 10.
    from palettize.torch import DKMPalettizer as TopLevelDKM
    from palettize.torch import DKMPalettizerConfig

    torch.manual_seed(3)
    model = Net()
    config = DKMPalettizerConfig.from_dict(
        {"global_config": {"n_bits": 4, "weight_threshold": 1000, "milestone": 10}})
    before = weights(model)
    palettizer = TopLevelDKM(model, config)
    prepared = palettizer.prepare()
    train_through_milestone_10(prepared, palettizer, prepared.fc1)
    final = palettizer.finalize()
    for name in ("conv.weight", "fc1.weight"):
        assert 8 <= torch.unique(final.state_dict()[name]).numel() <= 16, name
        assert not torch.equal(final.state_dict()[name], before[name]), name
    assert torch.unique(final.fc2.weight).numel() == 256  # 256 elements: below weight_threshold
