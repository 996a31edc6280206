"""The real Qwen3 tokenizer survives conversion: llama.cpp tokenises and templates like HF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mathsolve_convert import convert

SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
EXTRA_TEXTS = [
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    "<|endoftext|><|im_end|><think></think><|vision_start|><tool_call>",
    "Ünïcödé: 数学题 ∑_{k=1}^∞ 1/k² ≈ 1.6449 — ✅ 🚀 😶‍🌫️ café naïve",
    "\\[\\int_0^1 x^2\\,dx = \\frac{1}{3}\\]  \\boxed{\\sqrt{2}}  $\\left( 3, \\frac{\\pi}{2} \\right)$",
    "   leading spaces\n\n\n\ttabs\t\tand 3333333 digits 3.14159 I've they'll WE'RE",
    "",
]


@pytest.fixture(scope="module")
def realtok_gguf(tiny_qwen3_realtok_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert(tiny_qwen3_realtok_dir, tmp_path_factory.mktemp("realtok") / "realtok.gguf")


@pytest.fixture(scope="module")
def vocab_only(realtok_gguf: Path):
    import llama_cpp

    llm = llama_cpp.Llama(str(realtok_gguf), vocab_only=True, verbose=False)
    yield llm
    llm.close()


@pytest.fixture(scope="module")
def gguf_template(realtok_gguf: Path) -> str:
    """The chat template as stored in our GGUF (read once: parsing 151936 tokens is slow)."""
    import gguf

    return gguf.GGUFReader(realtok_gguf).fields["tokenizer.chat_template"].contents()


@pytest.fixture(scope="module")
def hf_tokenizer(tiny_qwen3_realtok_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_qwen3_realtok_dir)


def problems(data_dir: Path) -> list[str]:
    texts = []
    for path in sorted(data_dir.glob("*.jsonl")):
        texts += [json.loads(line)["problem"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return texts


def test_every_problem_tokenises_identically(vocab_only, qwen3_tokenizer_dir: Path, shared_data_dir: Path) -> None:
    from tokenizers import Tokenizer

    hf = Tokenizer.from_file(str(qwen3_tokenizer_dir / "tokenizer.json"))
    texts = problems(shared_data_dir) + EXTRA_TEXTS
    assert len(texts) > 1000
    mismatches = [t for t in texts
                  if vocab_only.tokenize(t.encode(), add_bos=False, special=True)
                  != hf.encode(t, add_special_tokens=False).ids]
    assert mismatches == []


def test_vocab_size_and_special_ids_are_qwen3s(vocab_only) -> None:
    assert vocab_only.n_vocab() == 151936
    assert vocab_only.token_eos() == 151645
    assert vocab_only.tokenize(b"<think></think>", add_bos=False, special=True) == [151667, 151668]


@pytest.mark.parametrize("kwargs", [{}, {"enable_thinking": False}], ids=["default", "no_thinking"])
def test_chat_template_renders_like_transformers(gguf_template: str, hf_tokenizer, qwen3_tokenizer_dir: Path,
                                                 kwargs: dict) -> None:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = gguf_template
    assert template == (qwen3_tokenizer_dir / "chat_template.jinja").read_text(encoding="utf-8")
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is $1+1$?"}]
    ours = Jinja2ChatFormatter(template, eos_token="<|im_end|>", bos_token="", add_generation_prompt=True)(
        messages=messages, **kwargs).prompt
    hf = hf_tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, **kwargs)
    assert ours == hf
    assert ours.endswith("<|im_start|>assistant\n" + ("<think>\n\n</think>\n\n" if kwargs else ""))
