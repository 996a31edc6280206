"""Deterministic random-weight Qwen3/Qwen2 checkpoints in Hugging Face layout.

Used by the tests (tiny shapes, seconds) and by bench/bench_convert.py (the real 4B shapes):
tensors are generated and written one at a time, in row chunks, so building an 8 GB
checkpoint never holds more than a few tens of MB of weights in memory.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MATHSOLVE_SHARED", REPO.parent / "shared"))

# Qwen2's pre-tokenizer regex (as in Qwen's tokenizer.json); the converter identifies it.
QWEN2_PRETOKENIZER = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Qwen's added tokens, in Qwen's order: (content, special)
ADDED_TOKENS = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<think>", False),
    ("</think>", False),
)
# Used only when ../shared (the real template) is absent: plain ChatML, no thinking logic.
MINIMAL_CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
MATH_TEXT = [
    "Solve for x: 2x + 3 = 11, so x = 4.",
    "The area of a circle of radius r is \\pi r^2; with r = 3 it is 9\\pi.",
    "Let f(x) = x^2 - 5x + 6. Then f(x) = (x-2)(x-3) and the roots are 2 and 3.",
    "What is \\frac{1}{2} + \\frac{1}{3}? The answer is \\boxed{\\frac{5}{6}}.",
    "Natalia sold clips to 48 of her friends in April, and then half as many in May.",
    "Compute \\sqrt{144} = 12 and 7 \\times 8 = 56; therefore the sum is 68.",
    "If a triangle has sides 3, 4 and 5, it is a right triangle with area 6.",
    "Please reason step by step, and put your final answer within \\boxed{}.",
    "The probability of rolling two sixes is \\frac{1}{36}. Über naïve café 数学 ∑ ∫ ≤ ≥.",
]


def chat_template_text() -> str:
    """The real Qwen3 template from ../shared, or minimal ChatML when ../shared is absent."""
    path = SHARED / "qwen3-tokenizer" / "chat_template.jinja"
    return path.read_text(encoding="utf-8") if path.exists() else MINIMAL_CHATML


def _train_tiny_tokenizer(vocab_target: int = 400):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZER), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_target, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[],
    )
    tok.train_from_iterator(MATH_TEXT * 4, trainer=trainer)
    from tokenizers import AddedToken

    for content, special in ADDED_TOKENS:
        added = AddedToken(content, special=special, normalized=False)
        (tok.add_special_tokens if special else tok.add_tokens)([added])
    return tok


def _write_tokenizer(out_dir: Path, tokenizer: str | Path) -> tuple[int, dict[str, int]]:
    """Write tokenizer files; return (tokenizer size, ids of the added tokens)."""
    if tokenizer == "tiny":
        tok = _train_tiny_tokenizer()
        tok.save(str(out_dir / "tokenizer.json"))
        tok_json = json.loads((out_dir / "tokenizer.json").read_text(encoding="utf-8"))
        decoder = {str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in tok_json["added_tokens"]}
        config = {
            "add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": decoder,
            "additional_special_tokens": ["<|im_start|>", "<|im_end|>"], "bos_token": None,
            "chat_template": chat_template_text(), "clean_up_tokenization_spaces": False,
            "eos_token": "<|im_end|>", "errors": "replace", "model_max_length": 131072,
            "pad_token": "<|endoftext|>", "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer", "unk_token": None,
        }
        (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False),
                                                       encoding="utf-8")
    else:
        src = Path(tokenizer)
        for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
            if (src / name).exists():
                shutil.copyfile(src / name, out_dir / name)
        tok_json = json.loads((out_dir / "tokenizer.json").read_text(encoding="utf-8"))
    ids = {t["content"]: t["id"] for t in tok_json["added_tokens"]}
    size = max([*tok_json["model"]["vocab"].values(), *ids.values()]) + 1
    return size, ids


def tensor_specs(arch: str, hidden: int, layers: int, heads: int, kv_heads: int, head_dim: int,
                 ffn: int, vocab: int, tied: bool) -> list[tuple[str, tuple[int, ...], float, float]]:
    """(name, shape, mean, std) of every tensor, HF names, sorted as HF writes them."""
    lin = lambda n_in: (0.0, 1.0 / np.sqrt(n_in))  # noqa: E731
    specs: list[tuple[str, tuple[int, ...], float, float]] = [
        ("model.embed_tokens.weight", (vocab, hidden), 0.0, 1.0),
        ("model.norm.weight", (hidden,), 1.0, 0.1),
    ]
    if not tied:
        specs.append(("lm_head.weight", (vocab, hidden), *lin(hidden)))
    for i in range(layers):
        p = f"model.layers.{i}."
        specs += [
            (p + "input_layernorm.weight", (hidden,), 1.0, 0.1),
            (p + "post_attention_layernorm.weight", (hidden,), 1.0, 0.1),
            (p + "self_attn.q_proj.weight", (heads * head_dim, hidden), *lin(hidden)),
            (p + "self_attn.k_proj.weight", (kv_heads * head_dim, hidden), *lin(hidden)),
            (p + "self_attn.v_proj.weight", (kv_heads * head_dim, hidden), *lin(hidden)),
            (p + "self_attn.o_proj.weight", (hidden, heads * head_dim), *lin(heads * head_dim)),
            (p + "mlp.gate_proj.weight", (ffn, hidden), *lin(hidden)),
            (p + "mlp.up_proj.weight", (ffn, hidden), *lin(hidden)),
            (p + "mlp.down_proj.weight", (hidden, ffn), *lin(ffn)),
        ]
        if arch == "qwen3":
            specs += [(p + "self_attn.q_norm.weight", (head_dim,), 1.0, 0.1),
                      (p + "self_attn.k_norm.weight", (head_dim,), 1.0, 0.1)]
        else:
            specs += [(p + "self_attn.q_proj.bias", (heads * head_dim,), 0.0, 0.1),
                      (p + "self_attn.k_proj.bias", (kv_heads * head_dim,), 0.0, 0.1),
                      (p + "self_attn.v_proj.bias", (kv_heads * head_dim,), 0.0, 0.1)]
    return sorted(specs, key=lambda s: s[0])


def _bf16_chunks(shape: tuple[int, ...], mean: float, std: float, seed: int, index: int) -> Iterator[bytes]:
    """Random bf16 bytes (round-to-nearest-even from f32), a few million values at a time."""
    rng = np.random.default_rng([seed, index])
    rows = shape[0]
    row_len = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    step = max(1, (1 << 22) // row_len)
    for start in range(0, rows, step):
        n = min(step, rows - start) * row_len
        x = rng.standard_normal(n, dtype=np.float32) * np.float32(std) + np.float32(mean)
        u = x.view(np.uint32)
        yield ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()


def _write_safetensors(path: Path, specs: list, seed: int, first_index: int) -> int:
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, _, _ in specs:
        nbytes = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for i, (_, shape, mean, std) in enumerate(specs):
            for chunk in _bf16_chunks(shape, mean, std, seed, first_index + i):
                f.write(chunk)
    return offset


def make_checkpoint(out_dir: str | Path, *, arch: str = "qwen3", hidden: int = 64, layers: int = 2,
                    heads: int = 4, kv_heads: int = 2, head_dim: int = 16, ffn: int = 128,
                    vocab_size: int | None = None, tokenizer: str | Path = "tiny", tied: bool = True,
                    shards: int = 1, seed: int = 0, writer=None) -> Path:  # noqa: ANN001
    """Write a deterministic random-weight checkpoint; vocab_size defaults to the tokenizer padded.

    `writer(path, specs, seed, first_index) -> bytes` writes one safetensors shard (default:
    numpy on the CPU; bench/gpu/make_4b.py passes one that draws the weights on a GPU)."""
    write = writer or _write_safetensors
    if arch not in ("qwen3", "qwen2"):
        raise ValueError(f"arch must be qwen3 or qwen2, not {arch!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok_size, ids = _write_tokenizer(out, tokenizer)
    vocab = vocab_size if vocab_size is not None else tok_size + 64 - tok_size % 64
    if vocab < tok_size:
        raise ValueError(f"vocab_size {vocab} is smaller than the tokenizer ({tok_size})")
    eos, pad = ids["<|im_end|>"], ids["<|endoftext|>"]
    config = {
        "architectures": ["Qwen3ForCausalLM" if arch == "qwen3" else "Qwen2ForCausalLM"],
        "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": pad, "eos_token_id": eos,
        "hidden_act": "silu", "hidden_size": hidden, "initializer_range": 0.02,
        "intermediate_size": ffn, "max_position_embeddings": 4096, "max_window_layers": layers,
        "model_type": arch, "num_attention_heads": heads, "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads, "rms_norm_eps": 1e-06, "rope_scaling": None,
        "rope_theta": 1000000.0, "sliding_window": None, "tie_word_embeddings": tied,
        "torch_dtype": "bfloat16", "use_cache": True, "use_sliding_window": False, "vocab_size": vocab,
    }
    if arch == "qwen3":
        config["head_dim"] = head_dim  # Qwen2 configs carry no head_dim (hidden / heads)
    elif hidden != heads * head_dim:
        raise ValueError("qwen2 needs hidden == heads * head_dim")
    (out / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    gen = {"bos_token_id": pad, "do_sample": True, "eos_token_id": [eos, pad], "pad_token_id": pad,
           "temperature": 0.6, "top_k": 20, "top_p": 0.95}
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2), encoding="utf-8")

    specs = tensor_specs(arch, hidden, layers, heads, kv_heads, head_dim, ffn, vocab, tied)
    if shards <= 1:
        write(out / "model.safetensors", specs, seed, 0)
        return out
    per = -(-len(specs) // shards)
    weight_map: dict[str, str] = {}
    total = 0
    for s in range(shards):
        part = specs[s * per:(s + 1) * per]
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        total += write(out / name, part, seed, s * per)
        weight_map.update({n: name for n, *_ in part})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
    return out
