#!/usr/bin/env python3
"""Sensitivities for `palettize compress --sensitivity`: squared gradients over calibration data.

For a PyTorch model, calibration data and a loss, the sensitivity of a weight element is the sum,
over N samples, of the squared gradient of the loss with respect to it: the diagonal of the
empirical Fisher information, which SqueezeLLM and coremltools' SKMPalettizer use to weight their
k-means. Each item the loader yields is one sample: the loss is computed and back-propagated once
per item, and the squares of that item's gradients are added up. A loader of batches therefore
gives squared batch gradients (as SKMPalettizer does); yield one example at a time for the
per-example Fisher diagonal.

The file written is safetensors: for every selected parameter X (by default every floating-point
parameter with ndim >= 2, the weights palettize palettizes), the original tensor `X` in its own
dtype and `X.sensitivity`, float32 of X's shape, >= 0. That is the layout palettize matches by
name (a checkpoint's tensor X) and by value (an .mlpackage const equal to X rounded to its dtype):
README "Sensitivity-weighted k-means". The values are written raw; `--sensitivity-normalize` on
palettize's side applies SKMPalettizer's normalisation.

As a library:

    from sensitivity import compute_sensitivities
    compute_sensitivities(model, loader, loss_fn, num_samples=128, path="s.safetensors")

As a command, with a recipe file defining model(), loader() and loss_fn(model, item) (and
optionally params(model) and select(name, param)):

    python scripts/sensitivity.py my_recipe.py -o s.safetensors -n 128

Needs only torch (writes safetensors itself). Never a dependency of palettize.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Union

import torch

# safetensors dtype names (fixed by the format).
_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def default_select(name: str, param: torch.Tensor) -> bool:
    """The weights palettize would palettize: floating point, rank >= 2."""
    del name
    return param.is_floating_point() and param.ndim >= 2


def write_safetensors(path: str, tensors: Mapping[str, torch.Tensor],
                      metadata: Optional[Mapping[str, str]] = None) -> None:
    """Writes `tensors` as a safetensors file, atomically (beside `path`, then renamed).

    Layout: u64 little-endian header size N, N bytes of JSON ({name: {dtype, shape,
    data_offsets: [begin, end]}}, offsets into the data that follows, plus an optional
    "__metadata__" of strings), padded with spaces to a multiple of 8, then the data of every
    tensor, row-major, little-endian, in the header's order.
    """
    if sys.byteorder != "little":
        raise RuntimeError("write_safetensors: only little-endian hosts are supported")
    header: Dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        if t.dtype not in _DTYPES:
            raise ValueError(f"write_safetensors: tensor '{name}': dtype {t.dtype} not supported")
        nbytes = t.numel() * t.element_size()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + nbytes]}
        blobs.append(t)
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    partial = f"{path}.partial-{os.getpid()}"
    try:
        with open(partial, "wb") as f:
            f.write(len(text).to_bytes(8, "little"))
            f.write(text)
            for t in blobs:
                if t.numel():
                    f.write(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise


def _named_params(model: torch.nn.Module,
                  params: Union[None, torch.nn.Module, Mapping[str, torch.nn.Parameter]]):
    if params is None:
        return dict(model.named_parameters())
    if isinstance(params, torch.nn.Module):
        return dict(params.named_parameters())
    return dict(params)


def compute_sensitivities(
    model: torch.nn.Module,
    loader: Iterable[Any],
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    num_samples: Optional[int],
    path: Optional[str] = None,
    *,
    params: Union[None, torch.nn.Module, Mapping[str, torch.nn.Parameter]] = None,
    select: Callable[[str, torch.Tensor], bool] = default_select,
    train_mode: bool = False,
    write_weights: bool = True,
    progress: Optional[Callable[[int, int], None]] = None,
) -> Dict[str, torch.Tensor]:
    """Sums squared gradients of `loss_fn(model, item)` over the first `num_samples` items.

    model: the torch module; its parameters are left as they were (values, requires_grad,
        .grad, train/eval mode).
    loader: any iterable; each item is passed whole to loss_fn and counts as one sample.
    loss_fn: (model, item) -> a scalar tensor.
    num_samples: how many items to use; the loader must yield at least that many (ValueError
        otherwise). None: every item.
    path: where to write the safetensors file (None: write nothing).
    params: whose names to write. None: model.named_parameters(); a module (e.g. the submodule
        a checkpoint was saved from, so names match the checkpoint's): its named_parameters(); or a
        mapping name -> parameter.
    select: which of those get sensitivities (default: floating point and ndim >= 2).
    train_mode: run the model in train mode (dropout on, batch-norm statistics updated); by
        default it runs in eval mode, so the sensitivities are those of the deployed model.
    write_weights: also write each tensor X itself beside X.sensitivity (needed for palettize to
        match .mlpackage consts by value; not for checkpoints, which match by name).
    progress: called as progress(done, total) after each sample.

    Returns {name: float32 sensitivity tensor on the CPU}. Raises ValueError for a non-finite
    loss (naming the sample) or a non-finite sum (naming the parameter); nothing is written then.
    Memory: the model, a float32 sum per selected parameter, and the gradients autograd holds
    while one backward pass runs (each is squared into its sum and dropped once complete).
    """
    named = _named_params(model, params)
    chosen = {n: p for n, p in named.items() if select(n, p)}
    if not chosen:
        raise ValueError("compute_sensitivities: no parameter selected")
    chosen_ids = {id(p) for p in chosen.values()}
    if len(chosen_ids) != len(chosen):
        raise ValueError("compute_sensitivities: a parameter is selected under two names")

    everything = list(model.parameters())
    saved_requires_grad = [p.requires_grad for p in everything]
    saved_grads = [p.grad for p in everything]
    modes = [(m, m.training) for m in model.modules()]
    # Only the chosen parameters need gradients; the rest are frozen while we run.
    for p in everything:
        p.requires_grad_(id(p) in chosen_ids)
        p.grad = None
    for p in chosen.values():
        p.requires_grad_(True)
    model.train(train_mode)

    sums = {n: torch.zeros(p.shape, dtype=torch.float32, device=p.device)
            for n, p in chosen.items()}

    # Each gradient is squared into its sum as soon as autograd has it, and dropped: memory holds
    # the model, the sums and the gradients in flight, not every gradient at once.
    def square_into(name):
        def hook(p):
            g = p.grad if p.grad.dtype == torch.float32 else p.grad.to(torch.float32)
            if g.is_sparse:  # nn.Embedding(sparse=True): only the rows looked up
                g = g.coalesce()
                sums[name].add_(g * g)
            else:
                sums[name].addcmul_(g, g)
            p.grad = None
        return hook

    handles = []
    done = 0
    try:
        if num_samples is not None and num_samples <= 0:
            raise ValueError(f"compute_sensitivities: num_samples must be > 0, got {num_samples}")
        handles = [p.register_post_accumulate_grad_hook(square_into(n)) for n, p in chosen.items()]
        for item in loader:
            loss = loss_fn(model, item)
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise ValueError("compute_sensitivities: loss_fn must return a scalar tensor")
            if not bool(torch.isfinite(loss.detach()).all()):
                raise ValueError(f"compute_sensitivities: sample {done}: the loss is {loss.item()}")
            loss.backward()
            done += 1
            if progress is not None:
                progress(done, num_samples if num_samples is not None else -1)
            if done == num_samples:
                break  # before asking the loader for one more item
        if num_samples is not None and done < num_samples:
            raise ValueError(
                f"compute_sensitivities: the loader gave {done} samples, {num_samples} asked for")
        if done == 0:
            raise ValueError("compute_sensitivities: the loader gave no sample")
    finally:
        for h in handles:
            h.remove()
        for p, rg, g in zip(everything, saved_requires_grad, saved_grads):
            p.requires_grad_(rg)
            p.grad = g
        for m, training in modes:
            m.training = training

    result = {n: s.cpu() for n, s in sums.items()}
    for n, s in result.items():
        # A non-finite gradient (or an overflow of the float32 sum) leaves a non-finite sum.
        if not bool(torch.isfinite(s).all()):
            raise ValueError(f"compute_sensitivities: the sum for '{n}' is not finite (a gradient "
                             "was not finite, or the sum overflowed float32)")
    if path is not None:
        tensors: Dict[str, torch.Tensor] = {}
        for n, s in result.items():
            tensors[f"{n}.sensitivity"] = s
            if write_weights:
                tensors[n] = chosen[n].detach()
        write_safetensors(path, tensors, metadata={
            "format": "palettize-sensitivity",
            "samples": str(done),
            "what": "sum over samples of the squared gradient of the loss",
        })
    return result


def _load_recipe(path: str):
    spec = importlib.util.spec_from_file_location("palettize_sensitivity_recipe", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"sensitivity: {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    for name in ("model", "loader", "loss_fn"):
        if not callable(getattr(module, name, None)):
            raise SystemExit(f"sensitivity: {path}: defines no function {name}()")
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Sum squared gradients of a loss over calibration samples and write weights "
        "and sensitivities (X, X.sensitivity) to safetensors for palettize --sensitivity.",
        epilog="The recipe is a Python file defining model() -> torch.nn.Module, loader() -> an "
        "iterable of samples, loss_fn(model, sample) -> scalar tensor, and optionally "
        "params(model) -> the module or {name: parameter} whose names to write (default: "
        "model.named_parameters()) and select(name, param) -> bool (default: floating point, "
        "ndim >= 2). Example: scripts/bench_sensitivity_minilm.py.")
    parser.add_argument("recipe", help="Python file defining model(), loader(), loss_fn()")
    parser.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    parser.add_argument("-n", "--num-samples", type=int, default=128,
                        help="how many loader items to use (default 128, as SKMPalettizer)")
    parser.add_argument("--seed", type=int, default=0,
                        help="torch.manual_seed before anything runs (default 0)")
    parser.add_argument("--train-mode", action="store_true",
                        help="run the model in train mode (default: eval mode)")
    parser.add_argument("--no-weights", action="store_true",
                        help="write only X.sensitivity, not X (enough for checkpoints)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    recipe = _load_recipe(args.recipe)
    model = recipe.model()
    params = recipe.params(model) if callable(getattr(recipe, "params", None)) else None
    select = getattr(recipe, "select", default_select)

    def progress(done, total):
        if not args.quiet and (done == total or done % 16 == 0):
            print(f"sensitivity: {done}/{total} samples", file=sys.stderr, flush=True)

    try:
        result = compute_sensitivities(
            model, recipe.loader(), recipe.loss_fn, args.num_samples, args.output,
            params=params, select=select, train_mode=args.train_mode,
            write_weights=not args.no_weights, progress=progress)
    except ValueError as e:
        print(f"sensitivity: {e}", file=sys.stderr)
        return 1
    if not args.quiet:
        elements = sum(t.numel() for t in result.values())
        zero = [n for n, t in result.items() if not bool(t.any())]
        print(f"sensitivity: wrote {args.output}: {len(result)} tensors, {elements} elements"
              + (f"; all-zero (no gradient reached them): {', '.join(zero)}" if zero else ""),
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
