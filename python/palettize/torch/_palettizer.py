"""PostTrainingPalettizer and SKMPalettizer: coremltools.optimize.torch's call signatures, with
each selected weight palettized in-process by palettize's C++ library (palettize._engine, one
call per tensor; exact 1-D k-means, exact weighted k-means with sensitivities, vector k-means for
cluster_dim > 1), exactly as `palettize compress` palettizes the same tensor of a checkpoint.
"""

import copy
import logging
from collections import OrderedDict
from contextlib import contextmanager

import torch

from .. import _engine
from ._config import PostTrainingPalettizerConfig, SKMPalettizerConfig
from ._fields import PalettizationGranularity

_logger = logging.getLogger(__name__)

# The modules palettized, with the type the library's module rule gives their weight (the layout
# [out, in, ...], channel axis 0), as a checkpoint's `palettize compress` names them.
SUPPORTED_MODULES = OrderedDict([
    (torch.nn.Linear, "Linear"),
    (torch.nn.Conv1d, "Conv1d"),
    (torch.nn.Conv2d, "Conv2d"),
    (torch.nn.Embedding, "Embedding"),
])

_DTYPES = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32", torch.float64: "F64"}

# SKMPalettizer's floor of normalised sensitivities (coremltools' _SENSITIVITY_CLIP_THR).
_SENSITIVITY_CLIP = 1e-12


def _module_type(module):
    for cls, name in SUPPORTED_MODULES.items():
        if type(module) is cls:
            return name
    return None


def engine_config(config, weight_threshold=0):
    """A module config as the extension reads it (palettize/config.h's fields). No threshold by
    default: coremltools.optimize.torch's post-training palettizers palettize every size."""
    axis = 0 if config.channel_axis is None else config.channel_axis
    lut = config.lut_dtype
    return {
        "n_bits": config.n_bits,
        "granularity": PalettizationGranularity(config.granularity).value,
        "group_size": config.group_size if config.group_size is not None else 32,
        "channel_axis": axis,
        "cluster_dim": config.cluster_dim or 1,
        "enable_per_channel_scale": bool(config.enable_per_channel_scale),
        "lut_dtype": {torch.int8: "int8", torch.uint8: "uint8"}.get(lut, ""),
        "weight_threshold": weight_threshold,
    }


def palettize_parameter(name, module_type, param, config, sensitivity=None):
    """Palettizes tensor `param` (in place) with module config `config`. Returns None when done,
    else why it was left as it is. `sensitivity`: per-element weights of the k-means objective,
    normalised as SKMPalettizer normalises them."""
    if config.n_bits is None:
        return "n_bits is null"
    dtype = _DTYPES.get(param.dtype)
    if dtype is None:
        return f"dtype {param.dtype} is not palettized (only float16, bfloat16, float32, float64)"
    w = param.detach().cpu().contiguous()
    data = (w.view(torch.int16) if w.dtype == torch.bfloat16 else w).numpy()
    sens = None
    if sensitivity is not None:
        if tuple(sensitivity.shape) != tuple(param.shape):
            raise ValueError(f"{name}: sensitivity of shape {tuple(sensitivity.shape)}, "
                             f"not the weight's {tuple(param.shape)}")
        sens = sensitivity.detach().cpu().to(torch.float32).contiguous().numpy()
    done, reason, decoded, _, _, _ = _engine.palettize_tensor(
        name, module_type, dtype, data, engine_config(config), sens, sensitivity is not None)
    if not done:
        return reason
    values = torch.frombuffer(bytearray(decoded), dtype=w.dtype).reshape(w.shape)
    with torch.no_grad():
        param.copy_(values.to(param.device))
    return None


class _PostTraining:
    """What both palettizers share: the model copy (coremltools' inplace rule), which weights
    each config selects, and the clustering."""

    def __init__(self, model, config):
        self._model = model
        self._config = config
        self._uncompressed_model = None
        self._report = OrderedDict()

    def _model_for_compression(self, inplace):
        # inplace: the caller's model is changed, the uncompressed copy kept; else the opposite.
        self._uncompressed_model = self._model if inplace is False else copy.deepcopy(self._model)
        if not inplace:
            self._model = copy.deepcopy(self._model)
        return self._model

    def _targets(self):
        """(name, module, module type, config) of each module to palettize, in model order."""
        for name, module in self._model.named_modules():
            config = self._config.get_module_config(name, module)
            module_type = _module_type(module)
            if config is None or module_type is None:
                continue
            yield name, module, module_type, config

    def _cluster(self, sensitivities=None):
        self._report = OrderedDict()
        for name, module, module_type, config in self._targets():
            key = f"{name}.weight" if name else "weight"
            sens = None if sensitivities is None else sensitivities[key]
            reason = palettize_parameter(key, module_type, module.weight, config, sens)
            if reason is not None:
                _logger.warning("%s: not palettized: %s", key, reason)
            self._report[key] = reason
        return self._model

    def report(self):
        """For each weight the last compress selected: None when palettized, else why not."""
        return OrderedDict(self._report)


class PostTrainingPalettizer(_PostTraining):
    """Post-training palettization: each selected module's weight is replaced by the values its
    exact k-means tables decode to.

        palettizer = PostTrainingPalettizer(model, PostTrainingPalettizerConfig.from_dict(
            {"global_config": {"n_bits": 4}}))
        palettized = palettizer.compress()
    """

    def __init__(self, model, config=None):
        super().__init__(model, PostTrainingPalettizerConfig() if config is None else config)

    def compress(self, num_kmeans_workers=1, inplace=False):
        """Palettizes a copy of the model (the model itself when `inplace`) and returns it.
        num_kmeans_workers is accepted for compatibility: the library uses every core."""
        self._model_for_compression(inplace)
        return self._cluster()


class SKMPalettizer(_PostTraining):
    """Sensitive k-means (SqueezeLLM, coremltools' SKMPalettizer): sensitivities are the squared
    gradients of the loss summed over calibration_nsamples items of the data loader, normalised
    per tensor; each table then minimises sum_i s_i (w_i - c(w_i))^2 exactly.

        palettizer = SKMPalettizer(model, SKMPalettizerConfig.from_dict(
            {"global_config": {"n_bits": 4}, "calibration_nsamples": 16}))
        palettized = palettizer.compress(dataloader=loader, loss_fn=loss_fn)
    """

    def __init__(self, model, config=None):
        super().__init__(model, SKMPalettizerConfig() if config is None else config)

    @staticmethod
    @contextmanager
    def _grad_square_hooks(model):
        handles = [p.register_hook(torch.square) for p in model.parameters() if p.requires_grad]
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def compute_sensitivity(self, dataloader, loss_fn, sensitivity_path=None, num_sensitivity_workers=1,
                            fsdp_auto_wrap_policy=None):
        """Sensitivities of every trainable parameter, by name: the squared gradients of
        loss_fn(model, item), summed over the first calibration_nsamples items, then normalised as
        coremltools does (all zero -> all one; divided by the maximum; zeros raised to the smallest
        non-zero value; at least 1e-12). Saved to `sensitivity_path` when given. The model's state
        (batch-norm statistics included) is restored afterwards. Only one worker is supported."""
        if num_sensitivity_workers != 1 or fsdp_auto_wrap_policy is not None:
            raise ValueError("num_sensitivity_workers: palettize.torch computes sensitivities in one process")
        model = self._model
        state = copy.deepcopy(model.state_dict())
        model.zero_grad()
        samples = self._config.calibration_nsamples
        with self._grad_square_hooks(model):
            for i, data in enumerate(dataloader):  # the first `samples` items, no more drawn
                loss_fn(model, data).backward()
                if i + 1 == samples:
                    break
        raw = OrderedDict((name, p.grad.detach().cpu().clone()) for name, p in model.named_parameters()
                          if p.requires_grad and p.grad is not None)
        model.zero_grad(set_to_none=True)
        model.load_state_dict(state)
        sensitivities = OrderedDict((name, self._normalise(v)) for name, v in raw.items())
        if sensitivity_path is not None:
            torch.save(sensitivities, sensitivity_path)
        return sensitivities

    @staticmethod
    def _normalise(val):
        val = 100 * val
        if len(val.nonzero()) == 0:
            val[val == 0] = 1.0
        val = val / torch.max(val)
        val[val == 0] = torch.min(val[val != 0])
        val[val < _SENSITIVITY_CLIP] = _SENSITIVITY_CLIP
        return val

    def compress(self, dataloader=None, loss_fn=None, sensitivity_path=None, num_kmeans_workers=1,
                 num_sensitivity_workers=1, inplace=False, fsdp_auto_wrap_policy=None):
        """Computes the sensitivities (or loads them from `sensitivity_path`, a torch.save'd dict
        of parameter name to tensor), then palettizes a copy of the model (the model itself when
        `inplace`) with exact weighted k-means and returns it."""
        self._model_for_compression(inplace)
        if sensitivity_path is None:
            if dataloader is None or loss_fn is None:
                raise ValueError("dataloader and loss_fn are required without sensitivity_path")
            sensitivities = self.compute_sensitivity(dataloader, loss_fn, None, num_sensitivity_workers,
                                                     fsdp_auto_wrap_policy)
        else:
            sensitivities = torch.load(sensitivity_path)
        missing = [f"{n}.weight" if n else "weight" for n, _, _, _ in self._targets()
                   if (f"{n}.weight" if n else "weight") not in sensitivities]
        if missing:
            raise ValueError(f"no sensitivity for {', '.join(missing)} (a frozen parameter?)")
        return self._cluster(sensitivities)
