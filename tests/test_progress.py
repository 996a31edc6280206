"""Progress of `convert` and `pull`, for real on the tiny checkpoint (quantised to q4_k_m by
llama.cpp): on a terminal one live display per phase (bytes, rate and time left; tensors
counted from the quantiser's log); piped or with NO_COLOR a line per phase and per 10 %."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import pty_chunks

from mathsolve_convert.quantize import parse_tensor_line, quantize_file
from mathsolve_convert.tensors import QUANTISED_TYPES

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")

_PULL = r"""
import shutil, sys
from pathlib import Path
from mathsolve.models import cache as models
from mathsolve.models import pull as pulling
from mathsolve.cli import main
src = Path(sys.argv[1])
def fake_hub(repo, revision, dest, offline, *, before_fetch=None):  # the Hub: a local copy
    dest.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        shutil.copy2(f, dest / f.name)
    return dest, "0123456789abcdef0123456789abcdef01234567"
pulling._download = fake_hub
main(["pull", "tiny/qwen3", "--quant", "q4_k_m"])
"""


def tensor_count(gguf_path: Path) -> int:
    import gguf

    return len(gguf.GGUFReader(str(gguf_path)).tensors)


def run(args: list[str], env: dict[str, str], *, terminal: bool) -> tuple[int, str, bytes]:
    """(exit code, stdout, stderr) of a child whose stderr is a pty (terminal) or a pipe."""
    if not terminal:
        proc = subprocess.run(args, env=env, capture_output=True, timeout=300,
                              stdin=subprocess.DEVNULL)
        return proc.returncode, proc.stdout.decode(), proc.stderr
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=follower)
    os.close(follower)
    screen = bytearray()

    def read() -> None:  # all the time, so a full pty buffer never blocks the child
        for chunk in pty_chunks(leader):
            screen.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    out, _ = proc.communicate(timeout=300)
    reader.join(30)
    os.close(leader)
    return proc.returncode, out.decode(), bytes(screen)


def child_env(home: Path, no_color: bool) -> dict[str, str]:
    env = {**os.environ, "MATHSOLVE_HOME": str(home), "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    if no_color:
        env["NO_COLOR"] = "1"
    return env


# ---------------------------------------------------------------- the quantiser's log


@pytest.mark.parametrize(("line", "expected"), [
    (b"[  12/ 398]                  blk.0.attn_q.weight - [ 2560,  4096], type =   bf16, "
     b"converting to q4_K .. size =    20.00 MiB ->     5.62 MiB\n", (12, 398)),
    (b"[   1/   3]                   output_norm.weight - [   64], type =    f32, size = 0.000 MiB\n",
     (1, 3)),
    (b"llama_model_quantize_impl: model size  =     0.19 MiB (16.00 BPW)\n", None),
    (b"converting to q4_K .. [1/2] inside a line\n", None),
], ids=["tensor", "f32-tensor", "summary", "not-at-line-start"])
def test_a_quantiser_log_line_gives_the_tensor_number_and_count(line, expected):
    assert parse_tensor_line(line) == expected


def test_quantize_reports_every_tensor_of_the_file_in_order(tiny_qwen3_gguf, tmp_path):
    seen: list[tuple[int, int]] = []
    total = quantize_file(tiny_qwen3_gguf, tmp_path / "q4.gguf", QUANTISED_TYPES["q4_k_m"],
                          progress=lambda done, count: seen.append((done, count)))
    n = tensor_count(tiny_qwen3_gguf)
    assert total == n and seen == [(i, n) for i in range(1, n + 1)]
    assert (tmp_path / "q4.gguf").read_bytes()[:4] == b"GGUF"


# ---------------------------------------------------------------- convert


def test_convert_on_a_terminal_shows_a_live_display_per_phase(tiny_qwen3_dir, tiny_qwen3_gguf,
                                                              tmp_path):
    out = tmp_path / "q4.gguf"
    code, stdout, screen = run([sys.executable, "-m", "mathsolve", "convert", str(tiny_qwen3_dir),
                                "-o", str(out), "--outtype", "q4_k_m"],
                               child_env(tmp_path / "home", no_color=False), terminal=True)
    assert code == 0 and stdout.strip() == str(out), screen[-2000:]
    text = ANSI.sub(b"", screen).decode(errors="replace")
    n = tensor_count(tiny_qwen3_gguf)  # the bf16 file the quantiser reads has the same tensors
    for phase in ("read checkpoint", "write GGUF", "quantise (llama.cpp)"):
        assert phase in text, text[-2000:]
    assert f"{n}/{n} tensors" in text and "MB" in text  # tensor count; bytes written
    assert b"\x1b[" in screen and "mathsolve: quantize:" not in text
    assert out.read_bytes()[:4] == b"GGUF"


def test_convert_piped_prints_a_line_per_phase(tiny_qwen3_dir, tiny_qwen3_gguf, tmp_path):
    out = tmp_path / "q4.gguf"
    code, stdout, err = run([sys.executable, "-m", "mathsolve", "convert", str(tiny_qwen3_dir),
                             "-o", str(out), "--outtype", "q4_k_m"],
                            child_env(tmp_path / "home", no_color=False), terminal=False)
    assert code == 0 and stdout.strip() == str(out)
    lines = err.decode().splitlines()
    n = tensor_count(tiny_qwen3_gguf)
    assert lines[:2] == ["mathsolve: read: 0/1", "mathsolve: read: 1/1"]
    assert "mathsolve: quantize: 0/1" in lines and lines[-1] == f"mathsolve: quantize: {n}/{n}"
    assert b"\x1b[" not in err


# ---------------------------------------------------------------- pull


@pytest.mark.parametrize("how", ["terminal", "terminal-NO_COLOR", "piped"])
def test_pull_progress_is_live_on_a_terminal_and_lines_otherwise(tiny_qwen3_dir, tiny_qwen3_gguf,
                                                                 tmp_path, how):
    env = child_env(tmp_path / "home", no_color=how == "terminal-NO_COLOR")
    code, stdout, screen = run([sys.executable, "-c", _PULL, str(tiny_qwen3_dir)], env,
                               terminal=how != "piped")
    text = ANSI.sub(b"", screen).decode(errors="replace")
    assert code == 0, text[-2000:]
    assert stdout.strip().endswith("q4_k_m.gguf") and Path(stdout.strip()).is_file()
    n = tensor_count(tiny_qwen3_gguf)
    if how == "terminal":
        assert b"\x1b[" in screen
        for phase in ("write GGUF", "quantise (llama.cpp)", "sha256"):
            assert phase in text, text[-2000:]
        assert f"{n}/{n} tensors" in text and "write: 10%" not in text
    else:  # a line per phase and per 10 %, no escape codes
        assert b"\x1b[" not in screen
        lines = [line.strip() for line in text.splitlines()]
        writes = [int(m[1]) for m in map(re.compile(r"mathsolve: write: (\d+)%$").match, lines) if m]
        assert writes[-1] == 100 and writes == sorted(set(writes)) and len(writes) >= 2, lines
        assert "mathsolve: quantising with llama.cpp (minutes for a 4B model; Ctrl-C stops it)" in lines
        for step in range(10, 100, 10):  # the tiny model has more than 10 tensors
            assert f"mathsolve: quantize: {step}%" in lines
        assert "mathsolve: quantised" in lines
