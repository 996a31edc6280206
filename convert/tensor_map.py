"""HF -> GGUF tensor names as data, and the shape each tensor must have.

Names follow gguf-py's tensor_mapping.py (the reference's source of truth); shapes are
HF's [out, in] order, checked against config.json before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from .errors import ConversionError

Shape = Callable[[Mapping[str, int]], tuple[int, ...]]

# (HF name, GGUF name, HF shape from hyperparameters, architectures)  -- one row per tensor kind
TENSOR_TABLE: tuple[tuple[str, str, Shape, frozenset[str]], ...] = (
    # MODEL_TENSOR.TOKEN_EMBD: "model.embed_tokens" (llama/qwen family)
    ("model.embed_tokens.weight", "token_embd.weight", lambda h: (h["vocab"], h["hidden"]), frozenset({"qwen2", "qwen3"})),
    # MODEL_TENSOR.OUTPUT_NORM: "model.norm"
    ("model.norm.weight", "output_norm.weight", lambda h: (h["hidden"],), frozenset({"qwen2", "qwen3"})),
    # MODEL_TENSOR.OUTPUT: "lm_head" (absent when tied; written if present even when tied)
    ("lm_head.weight", "output.weight", lambda h: (h["vocab"], h["hidden"]), frozenset({"qwen2", "qwen3"})),
    # MODEL_TENSOR.ATTN_NORM: "model.layers.{bid}.input_layernorm"
    ("model.layers.{bid}.input_layernorm.weight", "blk.{bid}.attn_norm.weight", lambda h: (h["hidden"],), frozenset({"qwen2", "qwen3"})),
    # MODEL_TENSOR.ATTN_Q: "model.layers.{bid}.self_attn.q_proj"
    ("model.layers.{bid}.self_attn.q_proj.weight", "blk.{bid}.attn_q.weight", lambda h: (h["heads"] * h["head_dim"], h["hidden"]), frozenset({"qwen2", "qwen3"})),
    # MODEL_TENSOR.ATTN_K: "model.layers.{bid}.self_attn.k_proj"
    ("model.layers.{bid}.self_attn.k_proj.weight", "blk.{bid}.attn_k.weight", lambda h: (h["kv_heads"] * h["head_dim"], h["hidden"]), frozenset({"qwen2", "qwen3"})),
    # MODEL_TENSOR.ATTN_V: "model.layers.{bid}.self_attn.v_proj"
    ("model.layers.{bid}.self_attn.v_proj.weight", "blk.{bid}.attn_v.weight", lambda h: (h["kv_heads"] * h["head_dim"], h["hidden"]), frozenset({"qwen2", "qwen3"})),
    # MODEL_TENSOR.ATTN_Q bias: Qwen2 has q/k/v biases (".bias" suffix of the same row)
    ("model.layers.{bid}.self_attn.q_proj.bias", "blk.{bid}.attn_q.bias", lambda h: (h["heads"] * h["head_dim"],), frozenset({"qwen2"})),
    # MODEL_TENSOR.ATTN_K bias (Qwen2)
    ("model.layers.{bid}.self_attn.k_proj.bias", "blk.{bid}.attn_k.bias", lambda h: (h["kv_heads"] * h["head_dim"],), frozenset({"qwen2"})),
    # MODEL_TENSOR.ATTN_V bias (Qwen2)
    ("model.layers.{bid}.self_attn.v_proj.bias", "blk.{bid}.attn_v.bias", lambda h: (h["kv_heads"] * h["head_dim"],), frozenset({"qwen2"})),
    # MODEL_TENSOR.ATTN_OUT: "model.layers.{bid}.self_attn.o_proj"
    ("model.layers.{bid}.self_attn.o_proj.weight", "blk.{bid}.attn_output.weight", lambda h: (h["hidden"], h["heads"] * h["head_dim"]), frozenset({"qwen2", "qwen3"})),
    # MODEL_TENSOR.ATTN_Q_NORM: "model.layers.{bid}.self_attn.q_norm" (Qwen3 only)
    ("model.layers.{bid}.self_attn.q_norm.weight", "blk.{bid}.attn_q_norm.weight", lambda h: (h["head_dim"],), frozenset({"qwen3"})),
    # MODEL_TENSOR.ATTN_K_NORM: "model.layers.{bid}.self_attn.k_norm" (Qwen3 only)
    ("model.layers.{bid}.self_attn.k_norm.weight", "blk.{bid}.attn_k_norm.weight", lambda h: (h["head_dim"],), frozenset({"qwen3"})),
    # MODEL_TENSOR.FFN_NORM: "model.layers.{bid}.post_attention_layernorm"
    ("model.layers.{bid}.post_attention_layernorm.weight", "blk.{bid}.ffn_norm.weight", lambda h: (h["hidden"],), frozenset({"qwen2", "qwen3"})),
    # MODEL_TENSOR.FFN_GATE: "model.layers.{bid}.mlp.gate_proj"
    ("model.layers.{bid}.mlp.gate_proj.weight", "blk.{bid}.ffn_gate.weight", lambda h: (h["ffn"], h["hidden"]), frozenset({"qwen2", "qwen3"})),
    # MODEL_TENSOR.FFN_UP: "model.layers.{bid}.mlp.up_proj"
    ("model.layers.{bid}.mlp.up_proj.weight", "blk.{bid}.ffn_up.weight", lambda h: (h["ffn"], h["hidden"]), frozenset({"qwen2", "qwen3"})),
    # MODEL_TENSOR.FFN_DOWN: "model.layers.{bid}.mlp.down_proj"
    ("model.layers.{bid}.mlp.down_proj.weight", "blk.{bid}.ffn_down.weight", lambda h: (h["hidden"], h["ffn"]), frozenset({"qwen2", "qwen3"})),
)

# HF buffers the reference drops silently (non-persistent in current checkpoints, but old ones have them)
IGNORED_SUFFIXES = (".rotary_emb.inv_freq", ".attention.masked_bias", ".attention.bias")


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(template).replace(r"\{bid\}", r"(\d+)") + "$")


def required_sources(arch: str, n_layers: int) -> list[str]:
    """HF names a checkpoint of this architecture must contain (lm_head is optional: tied)."""
    names = []
    for src, _, _, archs in TENSOR_TABLE:
        if arch not in archs or src == "lm_head.weight":
            continue
        names += [src.format(bid=b) for b in range(n_layers)] if "{bid}" in src else [src]
    return names


def map_tensor(arch: str, name: str, hparams: Mapping[str, int]) -> tuple[str, tuple[int, ...]] | None:
    """GGUF name and expected HF shape of `name`; None for ignored buffers; error if unknown."""
    if name.endswith(IGNORED_SUFFIXES):
        return None
    for src, dst, shape, archs in TENSOR_TABLE:
        if arch not in archs:
            continue
        m = _pattern(src).match(name)
        if m is None:
            continue
        if m.groups():
            bid = int(m.group(1))
            if bid >= hparams["layers"]:
                raise ConversionError(f"tensor {name} is for layer {bid} but config.json has {hparams['layers']} layers")
            return dst.format(bid=bid), shape(hparams)
        return dst, shape(hparams)
    raise ConversionError(f"tensor {name} has no GGUF name for architecture {arch}; is this really a plain {arch} checkpoint?")


def check_table() -> None:
    """No two HF names may map to one GGUF name (a test calls this)."""
    seen: dict[tuple[str, str], str] = {}
    for src, dst, _, archs in TENSOR_TABLE:
        for arch in archs:
            if (arch, dst) in seen:
                raise ConversionError(f"{seen[(arch, dst)]} and {src} both map to {dst}")
            seen[(arch, dst)] = src
