"""Hostile GGUF files (a user's --model path) never kill the process: each is a one-line error
naming the file and the fix, or it loads. The fuzz sample runs the real CLI on mutations of the
tiny Qwen3 GGUF; the table cases pin one message per check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from mathsolve.errors import ModelError
from mathsolve.models import cache as models
from mathsolve.models import gguf_check
from mathsolve.models import pull as pulling

REPO = Path(__file__).resolve().parent.parent
FIX = "re-download or re-convert it"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MATHSOLVE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def probes(monkeypatch) -> list[Path]:
    """Every file the child-process probe loads (a spy: the real probe runs)."""
    seen: list[Path] = []
    real = gguf_check.probe

    def spy(path, timeout=gguf_check.PROBE_TIMEOUT_S):
        seen.append(Path(path))
        return real(path, timeout)

    monkeypatch.setattr(gguf_check, "probe", spy)
    return seen


def _fields(path: Path) -> dict:
    """key -> list of (offset, bytes) of each part of the key/value, from the gguf reader."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    out = {}
    for key, field in reader.fields.items():
        pos, parts = field.offset, []
        for part in field.parts:
            parts.append((pos, int(part.nbytes)))
            pos += int(part.nbytes)
        out[key] = parts
    tensors = []
    for tensor in reader.tensors:
        pos, parts = tensor.field.offset, []
        for part in tensor.field.parts:
            parts.append((pos, int(part.nbytes)))
            pos += int(part.nbytes)
        tensors.append(parts)
    out["tensors"] = tensors
    out["data_offset"] = int(reader.data_offset)
    return out


def _put(data: bytearray, at: tuple[int, int], value: int) -> None:
    offset, size = at
    data[offset:offset + size] = value.to_bytes(size, "little")


def _duplicate_token(data: bytearray, f: dict) -> None:
    """Copy one vocabulary entry over another of the same length (the file keeps its size)."""
    parts = f["tokenizer.ggml.tokens"][5:]  # (length, bytes) parts of each entry
    by_length: dict[int, list[int]] = {}
    for offset, n in (parts[i + 1] for i in range(0, len(parts), 2)):
        by_length.setdefault(n, []).append(offset)
    n, (a, b, *_) = max((n, offs) for n, offs in by_length.items() if len(offs) > 1 and n > 1)
    data[b:b + n] = data[a:a + n]


def _template_syntax_error(data: bytearray, f: dict) -> None:
    offset, size = f["tokenizer.chat_template"][4]
    text = bytes(data[offset:offset + size])
    at = offset + text.index(b"{%")
    data[at:at + 2] = b"{{"


CASES = {
    "duplicated-token": (_duplicate_token, r"vocabulary entry \d+ duplicates entry \d+"),
    "kv-count-huge": (lambda d, f: _put(d, f["GGUF.kv_count"][0], 2**40), "key/values cannot fit"),
    "string-length-huge": (lambda d, f: _put(d, f["general.name"][3], 2**62),
                           "runs past the end of the file"),
    "value-type-unknown": (lambda d, f: _put(d, f["general.name"][2], 99), "unknown value type 99"),
    "tensor-type-unknown": (lambda d, f: _put(d, f["tensors"][0][4], 200), "unknown ggml type 200"),
    "tensor-offset-moved": (lambda d, f: _put(d, f["tensors"][1][5], 1), "starts at offset 1,"),
    "token-type-not-int32": (lambda d, f: _put(d, f["tokenizer.ggml.token_type"][3], 4),
                             "tokenizer.ggml.token_type is not an array of int32"),
    "epsilon-negative": (lambda d, f: _put(d, f["qwen3.attention.layer_norm_rms_epsilon"][3],
                                           0xBF800000), "epsilon' is -1.0, out of range"),
    "truncated-metadata": (lambda d, f: d.__delitem__(slice(f["data_offset"] // 2, None)),
                           "past the end of the file"),
    "truncated-data": (lambda d, f: d.__delitem__(slice(len(d) - 1000, None)),
                       "past the end of the file .* truncated"),
    # Caught by the child-process probe: llama.cpp asserts (abort) or throws on these.
    "block-count-zero": (lambda d, f: _put(d, f["qwen3.block_count"][3], 0),
                         r"llama.cpp crashed loading it \(signal 6: .*GGML_ASSERT"),
    "head-count-wrong": (lambda d, f: _put(d, f["qwen3.attention.head_count"][3], 3),
                         "llama.cpp cannot load it"),
    "chat-template-broken": (_template_syntax_error, "chat template cannot be rendered"),
}


def _mutant(base: Path, tmp: Path, case: str) -> Path:
    data = bytearray(base.read_bytes())
    CASES[case][0](data, _fields(base))
    path = tmp / f"{case}.gguf"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("case", CASES, ids=CASES)
def test_each_check_rejects_its_damage_with_one_line_naming_the_file_and_fix(
        case, tiny_qwen3_gguf, tmp_path, home):
    path = _mutant(tiny_qwen3_gguf, tmp_path, case)
    with pytest.raises(ModelError, match=CASES[case][1]) as info:
        models.resolve(str(path), "q8_0")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path} is not a usable GGUF: ")
    assert message.endswith(models.USER_FILE_FIX) and FIX in message


def test_a_duplicated_token_through_the_cli_is_one_line_not_an_abort(tiny_qwen3_gguf, tmp_path):
    """The case the issue saw: llama.cpp aborts on a duplicated vocabulary entry."""
    path = _mutant(tiny_qwen3_gguf, tmp_path, "duplicated-token")
    env = {**os.environ, "MATHSOLVE_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-m", "mathsolve", "--model", str(path), "1+1",
                           "--max-tokens", "4"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"mathsolve: error: {path} is not a usable GGUF: vocabulary entry")


def test_the_probe_child_prints_no_backtrace_when_llama_cpp_aborts(tiny_qwen3_gguf, tmp_path):
    """GGML_NO_BACKTRACE is set by the child itself: no debugger attaches, nothing but
    llama.cpp's one assert line reaches stderr, even when the caller did not set it."""
    path = _mutant(tiny_qwen3_gguf, tmp_path, "block-count-zero")
    env = {k: v for k, v in os.environ.items() if k != "GGML_NO_BACKTRACE"}
    proc = subprocess.run([sys.executable, "-m", "mathsolve.models.gguf_check", str(path)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == -6  # abort(): the child died, as llama.cpp does on this file
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "GGML_ASSERT" in lines[0], proc.stderr[-2000:]


def test_the_cli_sets_ggml_no_backtrace_before_llama_cpp_loads():
    code = ("import os, sys\nfrom mathsolve import cli\nsys.argv = ['mathsolve', '--version']\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('GGML_NO_BACKTRACE'), 'llama_cpp' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "GGML_NO_BACKTRACE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=60).stdout.split()
    assert out[-2:] == ["1", "False"]


def test_a_good_user_file_is_probed_once_then_remembered_until_it_changes(
        tiny_qwen3_gguf, tmp_path, home, probes):
    path = tmp_path / "user.gguf"
    shutil.copyfile(tiny_qwen3_gguf, path)
    assert models.resolve(str(path), "q8_0").source == "file"
    assert models.resolve(str(path), "q8_0").source == "file"
    assert probes == [path]  # the second resolve used the remembered verdict
    [verdict] = (home / "validated").glob("*.json")
    assert json.loads(verdict.read_text())["inode"] == path.stat().st_ino

    st = path.stat()  # damage it in place, keeping size and mtime: ctime still changes
    data = bytearray(path.read_bytes())
    _duplicate_token(data, _fields(path))
    with open(path, "r+b") as fh:
        fh.write(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(ModelError, match="duplicates entry"):
        models.resolve(str(path), "q8_0")


def test_a_model_our_pull_wrote_is_trusted_without_a_probe(home, probes, tiny_qwen3_dir,
                                                           monkeypatch):
    def hub(repo, revision, dest, offline, *, before_fetch=None):
        shutil.copytree(tiny_qwen3_dir, dest, dirs_exist_ok=True)
        return dest, "f" * 40

    monkeypatch.setattr(pulling, "_download", hub)
    pulling.pull("t/q", "q8_0")
    assert models.resolve("t/q", "q8_0").source == "t/q"
    assert probes == []


def test_fifty_random_mutations_through_the_cli_never_crash_hang_or_traceback(
        tiny_qwen3_gguf, tmp_path):
    """A fixed-seed sample of bench/fuzz_gguf.py (which runs 1,000 for the README)."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import fuzz_gguf
    finally:
        sys.path.remove(str(REPO / "bench"))
    outcomes = fuzz_gguf.fuzz(tiny_qwen3_gguf, 50, seed=0, jobs=2, workdir=tmp_path)
    verdicts = Counter(o.verdict for o in outcomes)
    failures = [(o.index, o.kind, o.verdict, o.stderr[-300:]) for o in outcomes
                if o.verdict not in ("ran", "rejected")]
    assert failures == []
    assert verdicts["rejected"] >= 30 and verdicts["ran"] >= 1, verdicts  # the sample bites


def test_a_probe_that_does_not_finish_in_time_is_killed_and_reported(tiny_qwen3_gguf):
    with pytest.raises(gguf_check._Bad, match="did not finish loading it within 0 s"):
        gguf_check.probe(tiny_qwen3_gguf, timeout=0.01)
