"""DKMPalettizer: coremltools.optimize.torch's training-time palettizer (prepare, step,
finalize) on the memory-efficient soft k-means of soft_kmeans.py.

Behaviour kept from coremltools: a module's palettization starts at the step() call made when
`milestone` calls have already been made (milestone 0: at prepare), so its weights are used as
they are for the first `milestone` steps; centroids start from k-means of the weights and follow
the soft k-means of every forward; activations (module outputs) are fake-quantized from prepare
on when `quantize_activations` is set, with a moving-average min/max observer, to
[quant_min, quant_max] (dtype float32: not quantized). finalize() replaces each weight by its
hard assignment (each point to its nearest entry), so each table holds at most 2^n_bits values,
exactly the learned centroids (rounded to lut_dtype/cluster_dtype; with lut_dtype "i8" quantized
to int8 with one scale per table, here rather than at every step), and drops the wrappers and
the activation fake quantization."""

import copy

import torch
from torch.nn.utils import parametrize

from .config import resolve
from .dkm_weight import DKMWeight


def _own_class(module):
    """Give a deep-copied parametrized module a class of its own. torch's deepcopy of a
    parametrized module keeps the class torch made at prepare (Parametrized<Cls>), shared with
    the prepared model and every other copy; remove_parametrizations deletes the `weight`
    property from that class, which would leave the prepared model without its weight."""
    cls = module.__class__
    module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))


class _ActivationFakeQuant:
    """Forward hook: moving-average min/max of the output, then per-tensor fake quantization."""

    def __init__(self, cfg):
        self.qmin, self.qmax = cfg["quant_min"], cfg["quant_max"]
        self.lo = self.hi = None

    def __call__(self, module, inputs, output):
        if not isinstance(output, torch.Tensor):
            return output
        if module.training or self.lo is None:
            with torch.no_grad():
                lo, hi = float(output.min()), float(output.max())
            if self.lo is None:
                self.lo, self.hi = lo, hi
            else:
                self.lo += 0.01 * (lo - self.lo)
                self.hi += 0.01 * (hi - self.hi)
        lo, hi = min(self.lo, 0.0), max(self.hi, 0.0)
        scale = max((hi - lo) / (self.qmax - self.qmin), 1e-12)
        zero = int(min(max(round(self.qmin - lo / scale), self.qmin), self.qmax))
        return torch.fake_quantize_per_tensor_affine(output, scale, zero, self.qmin, self.qmax)


class DKMPalettizer:
    """DKMPalettizer(model, config): config is a DKMPalettizerConfig-like object or a dict in its
    schema (config.py)."""

    def __init__(self, model, config=None, efficient=True):
        self._source = model
        self._config = config
        self._efficient = efficient
        self._model = None
        self._milestones = {}
        self._hooks = {}
        self._step_count = 0

    def prepare(self, inplace=False):
        model = self._source if inplace else copy.deepcopy(self._source)
        plans = [(name, m, resolve(self._config, name, m)) for name, m in model.named_modules()]
        for name, module, cfg in plans:
            if cfg is None:
                continue
            wrapper = DKMWeight(cfg, tuple(module.weight.shape), self._efficient).to(module.weight.device)
            parametrize.register_parametrization(module, "weight", wrapper)
            self._milestones[name] = cfg["milestone"]
            if cfg["quantize_activations"] and cfg["dtype"] != torch.float32:
                self._hooks[name] = module.register_forward_hook(_ActivationFakeQuant(cfg))
            if cfg["milestone"] == 0:
                wrapper.enabled.fill_(True)
        model.train()
        self._model = model
        return model

    def _wrapper(self, name):
        return self._model.get_submodule(name).parametrizations.weight[0]

    def step(self):
        for name, milestone in self._milestones.items():
            if self._step_count == milestone:
                self._wrapper(name).enabled.fill_(True)
        self._step_count += 1

    def finalize(self, model=None, inplace=False):
        src = model if model is not None else self._model
        out = src if inplace else copy.deepcopy(src)
        out.eval()
        for name in self._milestones:
            module = out.get_submodule(name)
            wrapper = module.parametrizations.weight[0]
            original = module.parametrizations.weight.original
            weight, luts, indices, scale, quantized = wrapper.hard_assign(original.detach())
            if not inplace:
                _own_class(module)
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
            with torch.no_grad():
                module.weight.copy_(weight)
            module._palettize_table = {
                "lut": luts.clone(), "indices": indices, "scale": None if scale is None else scale.clone(),
                "n_bits": wrapper.n_bits, "group_size": wrapper.G, "cluster_dim": wrapper.D,
                "int8": None if quantized is None else tuple(x.clone() for x in quantized),
            }
            if name in self._hooks:
                module._forward_hooks.pop(self._hooks[name].id, None)
        if model is None and inplace:
            self._model = out
        return out
