"""Engine: llama.cpp as a library (its environment, its log, loading a model file)."""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from typing import Any

from mathsolve.engine.decode import InterruptibleDecode
from mathsolve.errors import ModelError

GGUF_MAGIC = b"GGUF"
# llama.cpp's CPU threads (GNU OpenMP) spin 300,000 times before they sleep: on a small
# machine the spinning thread takes the core our sampler's second thread needs between two
# decodes. 30,000 keeps llama.cpp's own speed (llama-batched-bench alike) and frees the core
# sooner. Read once, when llama.cpp loads; a value the user set wins.
OPENMP_SPIN = ("GOMP_SPINCOUNT", "30000")


@functools.lru_cache(maxsize=1)
def _silent_log_callback() -> object:
    """The no-op llama.cpp log callback; cached so it lives as long as the process."""
    import llama_cpp

    def _ignore(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        return None

    return llama_cpp.llama_log_callback(_ignore)  # a ctypes CFUNCTYPE instance


def _set_logging(verbose: bool) -> None:
    import llama_cpp
    import llama_cpp._logger as lcpp_logger

    if verbose:
        lcpp_logger.set_verbose(True)
        llama_cpp.llama_log_set(lcpp_logger.llama_log_callback, ctypes.c_void_p(0))
    else:
        llama_cpp.llama_log_set(_silent_log_callback(), ctypes.c_void_p(0))


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


def _load_model(path: Path, *, gpu: bool) -> Any:  # a llama_model pointer (ctypes), or None
    import llama_cpp

    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = -1 if gpu else 0
    with InterruptibleDecode(None):  # Ctrl-C during loading is raised when it ends
        return llama_cpp.llama_model_load_from_file(str(path).encode("utf-8"), params)
