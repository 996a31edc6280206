"""Model flow: the cheap first look at a model file (it exists, is readable, says GGUF).

Before llama.cpp (or the deeper checks in gguf_check.py) sees a file, for clear messages.
It lives with the models, below the engine: the cache checks files it never loads, and the
local engine checks the file it is about to load with the same function."""

from __future__ import annotations

from pathlib import Path

from mathsolve.errors import ModelError

GGUF_MAGIC = b"GGUF"


def check_gguf_file(path: Path,
                    fix: str = "pass a .gguf model or re-run `mathsolve pull`") -> None:
    """Cheap checks before llama.cpp sees the file, for clear messages; `fix` says what to do."""
    if not path.exists():
        raise ModelError(f"model file not found: {path}; pass a .gguf path or run `mathsolve pull`")
    if not path.is_file():
        raise ModelError(f"model path is not a file: {path}; pass a .gguf file")
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror}; {fix}") from exc
    if head != GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF file (bad magic {head!r}); {fix}")
