"""llama.cpp runs what we write: every outtype loads and generates; logits match transformers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tinymodels

from mathsolve_convert import convert

PROMPT = "<|im_start|>user\nSolve for x: 2x + 3 = 11. What is \\frac{1}{2}?<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def hf_reference(tiny_qwen3_dir: Path):
    """transformers in float32 on the same checkpoint, and the prompt's token ids."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_qwen3_dir, dtype=torch.float32).eval()
    ids = AutoTokenizer.from_pretrained(tiny_qwen3_dir).encode(PROMPT, add_special_tokens=False)
    return model, ids


def hf_logits_and_greedy(model, ids: list[int], n: int) -> tuple[np.ndarray, list[int]]:
    import torch

    seq = list(ids)
    with torch.no_grad():
        first = model(torch.tensor([seq])).logits[0, -1].numpy().copy()
        for _ in range(n):
            seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
    return first, seq[len(ids):]


def llama_logits_and_greedy(path: Path, ids: list[int], n: int) -> tuple[np.ndarray, list[int]]:
    import llama_cpp

    llm = llama_cpp.Llama(str(path), n_ctx=256, n_threads=2, logits_all=True, verbose=False)
    llm.eval(ids)
    first = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
    out = []
    for _ in range(n):
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        out.append(tok)
        llm.eval([tok])
    llm.close()
    return first, out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("outtype,min_cos,greedy", [
    ("bf16", 0.9999, True), ("f16", 0.9999, True), ("q8_0", 0.999, False),
], ids=["bf16", "f16", "q8_0"])
def test_llama_cpp_logits_match_transformers(tiny_qwen3_dir: Path, tmp_path: Path, hf_reference,
                                             outtype: str, min_cos: float, greedy: bool) -> None:
    model, ids = hf_reference
    gguf_path = convert(tiny_qwen3_dir, tmp_path / f"m-{outtype}.gguf", outtype)
    ref_first, ref_tokens = hf_logits_and_greedy(model, ids, 16)
    got_first, got_tokens = llama_logits_and_greedy(gguf_path, ids, 16)
    vocab = ref_first.shape[0]
    assert got_first.shape[0] == vocab
    assert cosine(ref_first, got_first) >= min_cos
    if greedy:
        assert got_tokens == ref_tokens


@pytest.mark.parametrize("outtype", ["q4_k_m", "q5_k_m", "q6_k"])
def test_k_quants_load_and_generate(tmp_path: Path, outtype: str) -> None:
    """hidden 256 and ffn 512 so every row is a whole number of 256-wide k-quant blocks."""
    import llama_cpp

    hf = tinymodels.make_checkpoint(tmp_path / "kq", hidden=256, heads=4, kv_heads=2, head_dim=64, ffn=512, layers=1)
    out = convert(hf, tmp_path / f"m-{outtype}.gguf", outtype)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []
    llm = llama_cpp.Llama(str(out), n_ctx=128, n_threads=2, verbose=False)
    text = llm.create_completion("2x + 3 = 11", max_tokens=8, temperature=0.0)["choices"][0]["text"]
    assert llm.n_tokens > 4 and isinstance(text, str)
    ftype = {"q4_k_m": 15, "q5_k_m": 17, "q6_k": 18}[outtype]
    import gguf

    assert gguf.GGUFReader(out).fields["general.file_type"].contents() == ftype
    llm.close()


def test_q8_0_fixture_loads_and_generates(tiny_qwen3_q8_gguf: Path) -> None:
    import llama_cpp

    llm = llama_cpp.Llama(str(tiny_qwen3_q8_gguf), n_ctx=128, n_threads=2, verbose=False)
    out = llm.create_completion("x = ", max_tokens=4, temperature=0.0)
    assert out["usage"]["completion_tokens"] >= 1
    llm.close()
