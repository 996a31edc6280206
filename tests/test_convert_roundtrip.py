"""GGUF written by our converter, read back with gguf.GGUFReader: KVs, types, tensor bytes."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
import tinymodels

from mathsolve_convert import convert  # noqa: E402
from mathsolve_convert.tensor_map import TENSOR_TABLE, check_table  # noqa: E402

T = gguf.GGUFValueType


def kvs(path: Path) -> dict[str, tuple[list, object]]:
    reader = gguf.GGUFReader(path)
    return {k: (f.types, f.contents()) for k, f in reader.fields.items() if not k.startswith("GGUF.")}


def safetensors_tensors(path: Path) -> dict[str, tuple[str, list[int], bytes]]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    return {k: (v["dtype"], v["shape"], raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in header.items() if k != "__metadata__"}


def test_every_expected_kv_has_reference_value_and_type(tiny_qwen3_gguf: Path, tiny_qwen3_dir: Path) -> None:
    got = kvs(tiny_qwen3_gguf)
    tok = json.loads((tiny_qwen3_dir / "tokenizer.json").read_text())
    ids = {t["content"]: t["id"] for t in tok["added_tokens"]}
    expected = {
        "general.architecture": ([T.STRING], "qwen3"),
        "general.type": ([T.STRING], "model"),
        "general.sampling.top_k": ([T.INT32], 20),
        "general.sampling.top_p": ([T.FLOAT32], pytest.approx(0.95)),
        "general.sampling.temp": ([T.FLOAT32], pytest.approx(0.6)),
        "general.name": ([T.STRING], "Tiny Qwen3"),
        "qwen3.block_count": ([T.UINT32], 2),
        "qwen3.context_length": ([T.UINT32], 4096),
        "qwen3.embedding_length": ([T.UINT32], 64),
        "qwen3.feed_forward_length": ([T.UINT32], 128),
        "qwen3.attention.head_count": ([T.UINT32], 4),
        "qwen3.attention.head_count_kv": ([T.UINT32], 2),
        "qwen3.rope.freq_base": ([T.FLOAT32], 1e6),
        "qwen3.attention.layer_norm_rms_epsilon": ([T.FLOAT32], pytest.approx(1e-6)),
        "qwen3.attention.key_length": ([T.UINT32], 16),
        "qwen3.attention.value_length": ([T.UINT32], 16),
        "general.file_type": ([T.UINT32], 32),
        "general.quantization_version": ([T.UINT32], 2),
        "tokenizer.ggml.model": ([T.STRING], "gpt2"),
        "tokenizer.ggml.pre": ([T.STRING], "qwen2"),
        "tokenizer.ggml.eos_token_id": ([T.UINT32], ids["<|im_end|>"]),
        "tokenizer.ggml.padding_token_id": ([T.UINT32], ids["<|endoftext|>"]),
        "tokenizer.ggml.bos_token_id": ([T.UINT32], ids["<|endoftext|>"]),
        "tokenizer.ggml.add_bos_token": ([T.BOOL], False),
        "tokenizer.ggml.add_eos_token": ([T.BOOL], False),
        "tokenizer.chat_template": ([T.STRING], tinymodels.chat_template_text()),
    }
    for key, (types, value) in expected.items():
        assert key in got, key
        assert got[key][0] == types, key
        assert got[key][1] == value, key
    # the reference's order: general, hyperparameters, quantization version, tokenizer
    keys = list(got)
    assert keys.index("general.file_type") < keys.index("general.quantization_version") < keys.index("tokenizer.ggml.model")


def test_tokens_padded_and_typed_like_the_reference(tiny_qwen3_gguf: Path, tiny_qwen3_dir: Path) -> None:
    got = kvs(tiny_qwen3_gguf)
    tok = json.loads((tiny_qwen3_dir / "tokenizer.json").read_text())
    vocab_size = json.loads((tiny_qwen3_dir / "config.json").read_text())["vocab_size"]
    tokens, types = got["tokenizer.ggml.tokens"][1], got["tokenizer.ggml.token_type"][1]
    assert got["tokenizer.ggml.token_type"][0] == [T.ARRAY, T.INT32]
    assert len(tokens) == len(types) == vocab_size
    for text, i in tok["model"]["vocab"].items():
        assert (tokens[i], types[i]) == (text, 1)
    by_content = {t["content"]: t["id"] for t in tok["added_tokens"]}
    for content, kind in {"<|endoftext|>": 3, "<|im_start|>": 3, "<|im_end|>": 3, "<think>": 4, "</think>": 4}.items():
        assert (tokens[by_content[content]], types[by_content[content]]) == (content, kind)
    first_pad = max(by_content.values()) + 1
    assert tokens[first_pad:] == [f"[PAD{i}]" for i in range(first_pad, vocab_size)]
    assert set(types[first_pad:]) == {5}
    merges = got["tokenizer.ggml.merges"][1]
    assert merges == [" ".join(m) if isinstance(m, list) else m for m in tok["model"]["merges"]]


def test_bf16_tensor_bytes_equal_source_and_norms_are_f32(tiny_qwen3_gguf: Path, tiny_qwen3_dir: Path) -> None:
    src = safetensors_tensors(tiny_qwen3_dir / "model.safetensors")
    reader = gguf.GGUFReader(tiny_qwen3_gguf)
    got = {t.name: t for t in reader.tensors}
    assert "output.weight" not in got  # tied: llama.cpp reuses token_embd
    assert got["token_embd.weight"].tensor_type == gguf.GGMLQuantizationType.BF16
    assert bytes(got["token_embd.weight"].data.tobytes()) == src["model.embed_tokens.weight"][2]
    assert list(got["token_embd.weight"].shape) == list(reversed(src["model.embed_tokens.weight"][1]))
    assert bytes(got["blk.1.ffn_down.weight"].data.tobytes()) == src["model.layers.1.mlp.down_proj.weight"][2]
    norm = got["blk.0.attn_q_norm.weight"]
    assert norm.tensor_type == gguf.GGMLQuantizationType.F32
    widened = (np.frombuffer(src["model.layers.0.self_attn.q_norm.weight"][2], "<u2").astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(norm.data, widened)
    # one GGUF tensor per HF tensor, in the reference's order (sorted HF names)
    assert len(reader.tensors) == len(src)
    assert [t.name for t in reader.tensors][:3] == ["token_embd.weight", "blk.0.attn_norm.weight", "blk.0.ffn_down.weight"]


@pytest.mark.parametrize("outtype,qtype", [("f16", "F16"), ("q8_0", "Q8_0")], ids=["f16", "q8_0"])
def test_f16_and_q8_0_use_gguf_quants_rounding(tiny_qwen3_dir: Path, tmp_path: Path, outtype: str, qtype: str) -> None:
    out = convert(tiny_qwen3_dir, tmp_path / f"m-{outtype}.gguf", outtype)
    src = safetensors_tensors(tiny_qwen3_dir / "model.safetensors")
    f32 = (np.frombuffer(src["model.layers.0.mlp.up_proj.weight"][2], "<u2").astype(np.uint32) << 16).view(np.float32)
    expect = gguf.quants.quantize(f32.reshape(src["model.layers.0.mlp.up_proj.weight"][1]), gguf.GGMLQuantizationType[qtype])
    tensor = next(t for t in gguf.GGUFReader(out).tensors if t.name == "blk.0.ffn_up.weight")
    assert tensor.tensor_type == gguf.GGMLQuantizationType[qtype]
    assert tensor.data.tobytes() == np.asarray(expect).tobytes()
    assert kvs(out)["general.file_type"][1] == {"f16": 1, "q8_0": 7}[outtype]


def test_sharded_checkpoint_converts_to_same_file_as_single(tiny_qwen3_gguf: Path, tmp_path: Path) -> None:
    sharded = tinymodels.make_checkpoint(tmp_path / "tiny-qwen3", shards=3)
    assert (sharded / "model.safetensors.index.json").exists()
    out = convert(sharded, tmp_path / "sharded.gguf")
    single = gguf.GGUFReader(tiny_qwen3_gguf)
    names = sorted(t.name for t in single.tensors)
    got = {t.name: t.data.tobytes() for t in gguf.GGUFReader(out).tensors}
    assert sorted(got) == names
    assert all(got[t.name] == t.data.tobytes() for t in single.tensors)


def test_qwen2_variant_has_biases_and_no_qk_norms(tmp_path: Path) -> None:
    hf = tinymodels.make_checkpoint(tmp_path / "tiny-qwen2", arch="qwen2")
    out = convert(hf, tmp_path / "q2.gguf")
    got = kvs(out)
    assert got["general.architecture"][1] == "qwen2"
    assert "qwen2.attention.key_length" not in got  # Qwen2 configs have no head_dim; the reference writes none
    tensors = {t.name: t for t in gguf.GGUFReader(out).tensors}
    for b in ("attn_q.bias", "attn_k.bias", "attn_v.bias"):
        assert tensors[f"blk.0.{b}"].tensor_type == gguf.GGMLQuantizationType.F32
    assert not any("attn_q_norm" in n for n in tensors)


def test_untied_checkpoint_writes_output_weight(tmp_path: Path) -> None:
    hf = tinymodels.make_checkpoint(tmp_path / "untied", tied=False)
    names = [t.name for t in gguf.GGUFReader(convert(hf, tmp_path / "u.gguf")).tensors]
    assert "output.weight" in names


def test_name_table_maps_no_two_sources_to_one_target() -> None:
    check_table()
    assert len({(src) for src, *_ in TENSOR_TABLE}) == len(TENSOR_TABLE)
