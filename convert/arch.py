"""Supported architectures and their hyperparameter KVs, in the reference's order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConversionError

# HF `architectures[0]` -> GGUF architecture name
ARCHITECTURES = {"Qwen3ForCausalLM": "qwen3", "Qwen2ForCausalLM": "qwen2"}


@dataclass(frozen=True)
class Hparams:
    """What the converter needs from config.json, validated."""

    arch: str
    layers: int
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    head_dim: int
    head_dim_in_config: bool
    vocab: int
    context: int | None
    rope_theta: float | None
    rms_eps: float | None
    bos_token_id: int | None

    def shape_vars(self) -> dict[str, int]:
        return {"layers": self.layers, "hidden": self.hidden, "ffn": self.ffn, "heads": self.heads,
                "kv_heads": self.kv_heads, "head_dim": self.head_dim, "vocab": self.vocab}


def _int(config: Mapping[str, Any], key: str) -> int:
    value = config.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConversionError(f"config.json: {key} must be a positive integer, got {value!r}")
    return value


def parse_config(config: Any) -> Hparams:
    if not isinstance(config, dict):
        raise ConversionError("config.json is not a JSON object; re-download it")
    archs = config.get("architectures") or []
    name = archs[0] if isinstance(archs, list) and archs else None
    if name not in ARCHITECTURES:
        supported = ", ".join(ARCHITECTURES)
        raise ConversionError(f"unsupported architecture {name!r}; supported: {supported}")
    if config.get("rope_scaling") or (config.get("rope_parameters") or {}).get("rope_type", "default") != "default":
        raise ConversionError("config.json uses RoPE scaling, which this converter does not support yet")
    hidden, heads = _int(config, "hidden_size"), _int(config, "num_attention_heads")
    in_config = config.get("head_dim") is not None
    head_dim = _int(config, "head_dim") if in_config else hidden // heads
    rope = config.get("rope_theta", (config.get("rope_parameters") or {}).get("rope_theta"))
    return Hparams(
        arch=ARCHITECTURES[name], layers=_int(config, "num_hidden_layers"), hidden=hidden,
        ffn=_int(config, "intermediate_size"), heads=heads,
        kv_heads=_int(config, "num_key_value_heads") if "num_key_value_heads" in config else heads,
        head_dim=head_dim, head_dim_in_config=in_config, vocab=_int(config, "vocab_size"),
        context=config.get("max_position_embeddings"), rope_theta=rope,
        rms_eps=config.get("rms_norm_eps"), bos_token_id=config.get("bos_token_id"),
    )


def add_hparams(writer: Any, hp: Hparams, file_type: int) -> None:
    """The reference's TextModel.set_gguf_parameters for these two architectures, same order."""
    writer.add_block_count(hp.layers)
    if hp.context is not None:
        writer.add_context_length(hp.context)
    writer.add_embedding_length(hp.hidden)
    writer.add_feed_forward_length(hp.ffn)
    writer.add_head_count(hp.heads)
    writer.add_head_count_kv(hp.kv_heads)
    if hp.rope_theta is not None:
        writer.add_rope_freq_base(hp.rope_theta)
    if hp.rms_eps is not None:
        writer.add_layer_norm_rms_eps(hp.rms_eps)
    if hp.head_dim_in_config:  # the reference writes key/value length only when config has head_dim
        writer.add_key_length(hp.head_dim)
        writer.add_value_length(hp.head_dim)
    writer.add_file_type(file_type)
