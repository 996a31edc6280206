"""Tokenizer export: tokens, token types, merges, special ids and chat template.

Read from tokenizer.json / tokenizer_config.json directly (no transformers), assigning token
types as the reference's get_vocab_base does. The pre-tokenizer name is decided from the
tokenizer's own pre-tokenizer, not by hashing a probe encoding as the reference does: a
synthetic tokenizer never matches a known hash, and we need no tokenizer library for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoint import read_json
from .errors import ConversionError

# token types, as gguf.TokenType
NORMAL, CONTROL, USER_DEFINED, UNUSED = 1, 3, 4, 5

# Qwen2's pre-tokenizer split regex (what the reference's hash identifies as "qwen2")
QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


@dataclass(frozen=True)
class Vocab:
    tokens: list[str]
    toktypes: list[int]
    pre: str


def _looks_special(token: str) -> bool:
    """The reference's does_token_look_special, for the cases that can occur in Qwen vocabularies."""
    return (token in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
            or (token.startswith("<|") and token.endswith("|>"))
            or (token.startswith("<｜") and token.endswith("｜>"))
            or (token.startswith("<unused") and token.endswith(">")))


def identify_pre(tok: dict[str, Any]) -> str:
    """The llama.cpp pre-tokenizer name, or an error for anything that is not Qwen2's."""
    pre = tok.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [s.get("type") for s in steps]
    split = next((s for s in steps if s.get("type") == "Split"), None)
    regex = (split or {}).get("pattern", {}).get("Regex")
    if split is not None and kinds == ["Split", "ByteLevel"] and regex == QWEN2_REGEX \
            and split.get("behavior") == "Isolated" and not steps[1].get("add_prefix_space", False):
        return "qwen2"
    raise ConversionError(f"tokenizer.json: pre-tokenizer {kinds} is not Qwen2's; "
                          "only Qwen2/Qwen3 tokenizers are supported")


def load_vocab(hf_dir: Path, vocab_size: int) -> Vocab:
    tok = read_json(hf_dir / "tokenizer.json", "copy the model's tokenizer files into the directory")
    read_json(hf_dir / "tokenizer_config.json", "copy the model's tokenizer files into the directory")
    model = tok.get("model") if isinstance(tok, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise ConversionError("tokenizer.json: expected a byte-level BPE model with a vocab; is this a Qwen tokenizer?")
    pre = identify_pre(tok)
    by_id: dict[int, str] = {}
    for text, i in model["vocab"].items():
        by_id[i] = text
    added: dict[int, dict[str, Any]] = {}
    for entry in tok.get("added_tokens", []):
        by_id[entry["id"]] = entry["content"]
        added[entry["id"]] = entry
    if not by_id:
        raise ConversionError("tokenizer.json has an empty vocabulary")
    top = max(by_id)
    if top >= vocab_size:
        raise ConversionError(f"tokenizer has token id {top} but config.json vocab_size is {vocab_size}; "
                              "tokenizer and config disagree")
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(UNUSED)
        elif i in added:
            token = by_id[i]
            if added[i].get("special") or _looks_special(token):
                types.append(CONTROL)
            else:
                token = token.replace("\u2581", " ")  # the reference pre-normalises user-defined spaces
                types.append(USER_DEFINED)
            tokens.append(token)
        else:
            tokens.append(by_id[i])
            types.append(NORMAL)
    return Vocab(tokens, types, pre)


def add_special_vocab(writer: Any, hf_dir: Path, tokens: list[str]) -> None:
    """Merges, special ids, add_bos/add_eos and chat template, as the reference writes them.

    gguf 0.19.0's SpecialVocab omits add_eos_token for a ByteLevel post-processor, which the
    vendored gguf-py sets (bos and eos both False, before tokenizer_config's flags): redo that.
    """
    import gguf

    special = gguf.SpecialVocab(hf_dir, load_merges=True)
    if not special.merges:
        raise ConversionError("tokenizer.json has no merges; the BPE tokenizer is incomplete")
    tok = read_json(hf_dir / "tokenizer.json", "tokenizer")
    if (tok.get("post_processor") or {}).get("type") == "ByteLevel":
        flags = {"bos": False, "eos": False}
        for key, value in special.add_special_token.items():
            flags.setdefault(key, value)
        special.add_special_token = flags
    config = read_json(hf_dir / "tokenizer_config.json", "tokenizer config")
    for key in ("eos_token", "pad_token", "bos_token"):
        value = config.get(key)
        text = value.get("content") if isinstance(value, dict) else value
        if isinstance(text, str) and text not in tokens:
            raise ConversionError(f"tokenizer_config.json: {key} {text!r} is not in tokenizer.json; "
                                  "tokenizer files disagree")
    for typ, tid in special.special_token_ids.items():
        if tid >= len(tokens):
            raise ConversionError(f"special token {typ} id {tid} is outside the vocabulary ({len(tokens)}); "
                                  "tokenizer and config disagree")
    special.add_to_gguf(writer, quiet=True)
