"""Every bad input is a one-line ConversionError (exit 1 from the CLI) and leaves no file."""

from __future__ import annotations

import json
import resource
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import tinymodels
from cases import cases
from conftest import run_mathsolve

from mathsolve_convert import ConversionError, check_free_space, convert

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tinymodels.make_checkpoint(tmp_path_factory.mktemp("pristine") / "tiny-qwen3")


def edit_json(path: Path, fn: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def rewrite_header(path: Path, fn: Callable[[dict], None]) -> None:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    fn(header)
    new = json.dumps(header, separators=(",", ":")).encode()
    new += b" " * (-len(new) % 8)
    if len(new) > n:
        raise ValueError("test header grew")
    new += b" " * (n - len(new))
    path.write_bytes(raw[:8] + new + raw[8 + n:])


def truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 1000)


def drop_tensor(h: dict) -> None:
    del h["model.layers.1.mlp.up_proj.weight"]


CASES = [
    ("missing_config", lambda d: (d / "config.json").unlink(), r"config\.json is missing"),
    ("missing_weights", lambda d: (d / "model.safetensors").unlink(), r"no model\.safetensors"),
    ("missing_tokenizer", lambda d: (d / "tokenizer.json").unlink(), r"tokenizer\.json is missing"),
    ("missing_tokenizer_config", lambda d: (d / "tokenizer_config.json").unlink(), r"tokenizer_config\.json is missing"),
    ("unsupported_architecture", lambda d: edit_json(d / "config.json", lambda c: c.update(architectures=["LlamaForCausalLM"])),
     r"unsupported architecture 'LlamaForCausalLM'; supported: Qwen3ForCausalLM, Qwen2ForCausalLM"),
    ("unsupported_dtype", lambda d: rewrite_header(d / "model.safetensors", lambda h: h["model.norm.weight"].update(dtype="I16")),
     r"model\.norm\.weight has dtype I16; only BF16, F16 and F32"),
    ("missing_tensor", lambda d: rewrite_header(d / "model.safetensors", drop_tensor),
     r"tensor model\.layers\.1\.mlp\.up_proj\.weight is missing"),
    ("shape_mismatch", lambda d: edit_json(d / "config.json", lambda c: c.update(intermediate_size=96)),
     r"down_proj\.weight has shape \[64, 128\] but config\.json implies \[64, 96\]"),
    ("truncated_safetensors", lambda d: truncate(d / "model.safetensors"), r"is truncated: .* ends past the end of the file"),
    ("header_lies_about_offsets", lambda d: rewrite_header(
        d / "model.safetensors", lambda h: h["model.norm.weight"].update(data_offsets=[0, 10])),
     r"corrupt: offsets of model\.norm\.weight disagree with its shape"),
    ("garbage_header", lambda d: (d / "model.safetensors").write_bytes(struct.pack("<Q", 1 << 40) + b"x" * 64),
     r"header length .* exceeds the file"),
    ("tokenizer_larger_than_config_vocab", lambda d: edit_json(d / "tokenizer.json", lambda t: t["added_tokens"].append(
        {"id": 5000, "content": "<|extra|>", "special": True, "normalized": False})),
     r"tokenizer has token id 5000 but config\.json vocab_size is 448; tokenizer and config disagree"),
    ("eos_token_not_in_tokenizer", lambda d: edit_json(d / "tokenizer_config.json", lambda c: c.update(eos_token="<|nope|>")),
     r"eos_token '<\|nope\|>' is not in tokenizer\.json"),
    ("not_a_qwen_pretokenizer", lambda d: edit_json(d / "tokenizer.json", lambda t: t.update(
        pre_tokenizer={"type": "Whitespace"})), r"pre-tokenizer \['Whitespace'\] is not Qwen2's"),
]


@cases("break_it,message", CASES)
def test_bad_input_is_one_line_error_and_leaves_no_file(pristine: Path, tmp_path: Path, break_it, message: str) -> None:
    hf = tmp_path / "model"
    shutil.copytree(pristine, hf)
    break_it(hf)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(ConversionError, match=message) as info:
        convert(hf, out_dir / "m.gguf", "q8_0")
    assert "\n" not in str(info.value)
    assert list(out_dir.iterdir()) == []


def test_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match=r"model directory .*nowhere does not exist"):
        convert(tmp_path / "nowhere", tmp_path / "m.gguf")
    assert list(tmp_path.iterdir()) == []


def test_unknown_outtype_lists_choices(pristine: Path, tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match=r"unknown output type 'q3'; choose one of bf16, f16, q8_0, q4_k_m, q5_k_m, q6_k"):
        convert(pristine, tmp_path / "m.gguf", "q3")


def test_existing_output_is_kept_without_force(pristine: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.gguf"
    out.write_bytes(b"precious")
    with pytest.raises(ConversionError, match=r"already exists; pass --force"):
        convert(pristine, out)
    assert out.read_bytes() == b"precious"
    convert(pristine, out, force=True)
    assert out.read_bytes()[:4] == b"GGUF"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gguf"]


def test_free_space_check_refuses_when_short(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match=r"not enough disk space in .*: need 1\.00 GB, 0\.50 GB free"):
        check_free_space(tmp_path, 10**9, free=5 * 10**8)
    check_free_space(tmp_path, 10**6, free=10**9)


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def run_cli(*args: str, limit: bool = False) -> subprocess.CompletedProcess:
    return run_mathsolve(*args, module="mathsolve_convert", text=True, cwd=REPO,
                         preexec_fn=_limit_file_size if limit else None, timeout=120)


def test_disk_full_while_writing_removes_the_partial_file(pristine: Path, tmp_path: Path) -> None:
    """A real write failure (RLIMIT_FSIZE in the child: EFBIG) is a disk-space error, no leftovers."""
    r = run_cli(str(pristine), "-o", str(tmp_path / "m.gguf"), "--outtype", "f16", limit=True)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("error: not enough disk space writing")
    assert list(tmp_path.iterdir()) == []


def test_cli_success_prints_path_on_stdout(pristine: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.gguf"
    r = run_cli(str(pristine), "-o", str(out), "--outtype", "bf16")
    assert (r.returncode, r.stdout.strip()) == (0, str(out))
    assert "writing" in r.stderr


def test_cli_error_is_one_line_exit_1(tmp_path: Path) -> None:
    r = run_cli(str(tmp_path / "nowhere"), "-o", str(tmp_path / "m.gguf"))
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: model directory")


def test_cli_usage_error_exits_2(tmp_path: Path) -> None:
    r = run_cli(str(tmp_path), "--outtype", "q3", "-o", "x.gguf")
    assert r.returncode == 2
    assert "invalid choice: 'q3'" in r.stderr


def test_source_tree_entry_point_works(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "convert", "--help"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and "--outtype" in r.stdout
