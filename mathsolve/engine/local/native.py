"""Engine: llama.cpp as a library (its environment, its log, loading a model file)."""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from typing import Any

from mathsolve.engine.local.samples import InterruptibleDecode

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


@functools.lru_cache(maxsize=1)
def cpu_has_amx() -> bool:
    """True on CPUs with Intel AMX (Sapphire Rapids and later), read from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return "amx_int8" in line.split() or "amx_tile" in line.split()
    except OSError:
        return False
    return False


def model_params(*, gpu: bool) -> Any:  # llama_cpp.llama_model_params
    """llama.cpp's model parameters as mathsolve loads every model.

    On a CPU with AMX, llama.cpp (the build in llama-cpp-python 0.3.36) repacks quantised
    weights into its AMX buffer and then crashes in ggml_backend_amx_mul_mat on the first
    decode (llama.cpp issue #20824, open; seen on this project's Sapphire Rapids machines with
    Q4_1, Q8_0 and Q4_K files). There the extra buffer types are turned off: the weights stay
    in plain CPU buffers, which decode correctly. MATHSOLVE_EXTRA_BUFTS=1 keeps them on.
    """
    import os

    import llama_cpp

    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = -1 if gpu else 0
    if cpu_has_amx() and os.environ.get("MATHSOLVE_EXTRA_BUFTS") != "1":
        params.use_extra_bufts = False
    return params


_FLAG_CALLBACK: list[Any] = []  # [the callback] once made ([None] where it cannot be)


def flag_abort_callback() -> Any | None:
    """A ggml abort callback that reads a flag byte without calling Python: libc's strlen on a
    2-byte buffer returns 1 once its first byte is set and 0 while it is 0, and the x86-64 and
    AArch64 calling conventions return that size_t where ggml reads its bool. A Python callback
    would cost a call per graph node of every decode step. None where strlen is not found."""
    if not _FLAG_CALLBACK:
        import ctypes
        import os

        import llama_cpp

        callback = None
        if _machine() in ("x86_64", "amd64", "arm64", "aarch64"):
            try:
                libc = ctypes.CDLL(None) if os.name == "posix" else _windows_libc()
                address = ctypes.cast(libc.strlen, ctypes.c_void_p).value
                callback = llama_cpp.ggml_abort_callback(address) if address else None
            except (OSError, AttributeError, TypeError):
                callback = None
        _FLAG_CALLBACK.append(callback)
    return _FLAG_CALLBACK[0]


def _machine() -> str:
    """platform.machine() without importing platform (and subprocess) into the first problem."""
    import os

    if hasattr(os, "uname"):
        return os.uname().machine.lower()
    import platform

    return platform.machine().lower()


def _windows_libc() -> Any:
    import ctypes
    import ctypes.util

    return ctypes.CDLL(ctypes.util.find_library("c") or "msvcrt")


def _load_model(path: Path, *, gpu: bool) -> Any:  # a llama_model pointer (ctypes), or None
    import llama_cpp

    params = model_params(gpu=gpu)
    with InterruptibleDecode(None):  # Ctrl-C during loading is raised when it ends
        return llama_cpp.llama_model_load_from_file(str(path).encode("utf-8"), params)


def patch_llama_defaults() -> None:
    """Make llama-cpp-python's own `Llama` (and its server) load models as mathsolve does
    (see model_params): its constructor starts from llama_model_default_params()."""
    import llama_cpp.llama_cpp as lib

    original = lib.llama_model_default_params
    if getattr(original, "__name__", "") == "mathsolve_model_defaults":  # patched already
        return

    def mathsolve_model_defaults() -> Any:
        params = original()
        params.use_extra_bufts = model_params(gpu=False).use_extra_bufts
        return params

    lib.llama_model_default_params = mathsolve_model_defaults


# `python -c LLAMA_SERVER ARGS...`: llama-cpp-python's OpenAI-compatible server, models loaded
# as mathsolve loads them (tests and benchmarks start it this way).
LLAMA_SERVER = ("import runpy; from mathsolve.engine.local.native import patch_llama_defaults; "
                "patch_llama_defaults(); runpy.run_module('llama_cpp.server', run_name='__main__')")
