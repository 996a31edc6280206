"""Engine: how many sequences fit (KV bytes per token, free RAM and GPU memory, cores).

Plain functions of the machine and of a loaded model's shape, so the engine can size its
context before asking llama.cpp for it (a failed allocation on a GPU is slow and noisy).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

from mathsolve.errors import EngineError

KV_PAD = 256  # llama.cpp pads each sequence's KV stream to this many cells
MAX_SEQUENCES = 256  # llama.cpp's LLAMA_MAX_SEQ
CPU_SEQUENCES = 32  # beyond this a CPU gains little per extra sequence and prefills stall more
GPU_RESERVE_BYTES = 1 << 30  # compute buffers and the logits of a large batch


def round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def physical_cores() -> int:
    """Physical cores we may run on: SMT siblings share one core's FPU, so llama.cpp decodes
    no faster (often slower) with them. Linux: distinct (physical id, core id) pairs among
    the CPUs in our affinity mask; elsewhere os.cpu_count()."""
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return max(1, len(allowed))
    cores: set[tuple[str, str]] = set()
    for block in text.strip().split("\n\n"):
        fields = dict(
            (k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in block.splitlines())
        )
        if fields.get("processor", "").isdigit() and int(fields["processor"]) in allowed:
            cores.add((fields.get("physical id", "0"), fields.get("core id", fields["processor"])))
    return max(1, len(cores) or len(allowed))


def available_ram() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def free_gpu_memory() -> int | None:
    """Free bytes on the GPU with the most free memory, from ggml's device registry; None
    when there is no GPU device or the library does not say."""
    lib = _ggml()
    if lib is None:
        return None
    try:
        lib.ggml_backend_dev_count.restype = ctypes.c_size_t
        lib.ggml_backend_dev_get.restype = ctypes.c_void_p
        lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
        lib.ggml_backend_dev_type.restype = ctypes.c_int
        lib.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
        lib.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t),
                                                ctypes.POINTER(ctypes.c_size_t)]
        best = None
        for i in range(lib.ggml_backend_dev_count()):
            dev = lib.ggml_backend_dev_get(i)
            if lib.ggml_backend_dev_type(dev) != 1:  # GGML_BACKEND_DEVICE_TYPE_GPU
                continue
            free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
            lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
            best = max(best or 0, free.value)
        return best
    except (AttributeError, OSError):
        return None


def _ggml() -> ctypes.CDLL | None:
    """The ggml library llama.cpp already loaded (dlopen by soname returns the loaded copy)."""
    import llama_cpp  # noqa: F401 - loads libllama and, with it, libggml

    for name in ("libggml.so", "libggml.so.0", "libggml.dylib", "ggml.dll"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def kv_bytes_per_cell(model: Any, kv_type: str) -> int:
    """Bytes of K and V one token takes in the cache of `model` (a llama_model pointer) when
    the cache is of `kv_type` ("f16", or "q8_0": 34 bytes a block of 32 values)."""
    import llama_cpp

    n_layer: int = llama_cpp.llama_model_n_layer(model)
    n_head = max(1, llama_cpp.llama_model_n_head(model))
    n_head_kv: int = llama_cpp.llama_model_n_head_kv(model)
    n_embd: int = llama_cpp.llama_model_n_embd(model)
    head_dim = _meta_int(model, "attention.key_length") or n_embd // n_head
    values = 2 * n_layer * n_head_kv * head_dim  # K and V
    return values * 34 // 32 if kv_type == "q8_0" else values * 2


def _meta_int(model: Any, suffix: str) -> int | None:
    arch = _meta_str(model, "general.architecture")
    value = _meta_str(model, f"{arch}.{suffix}") if arch else None
    return int(value) if value and value.isdigit() else None


def _meta_str(model: Any, key: str) -> str | None:
    import llama_cpp

    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_model_meta_val_str(model, key.encode(), buf, 256)
    return buf.value.decode("utf-8", "replace") if n >= 0 else None


def kv_memory(gpu: bool) -> tuple[int | None, str]:
    """Bytes the KV cache may take by the memory rule, and the rule in words: half the
    available RAM on a CPU, the GPU's free memory less a reserve for compute buffers. None
    when the machine does not say."""
    free = free_gpu_memory() if gpu else available_ram()
    if free is None:
        return None, "the machine does not say how much memory is free"
    if gpu:
        return max(0, free - GPU_RESERVE_BYTES), f"the GPU's free memory less {GPU_RESERVE_BYTES / 1e9:.0f} GB"
    return free // 2, "half the available RAM"


def streams_that_fit(wanted: int, cells: int, bytes_per_cell: int, *, gpu: bool,
                     budget_bytes: int | None = None) -> tuple[int, str]:
    """How many KV streams of `cells` cells to allocate, at most `wanted`, and why.

    A stream per sample, never a shared pool: a sample that starts can always finish, so
    none is ever preempted, and its attention reads only its own cells (a unified cache
    attends over every used cell of every sample). When the memory rule (kv_memory), or
    `budget_bytes` (--kv-budget) in its place, holds fewer streams than samples, the samples
    run that many at a time, the next starting as one finishes. Raises EngineError when not
    even one stream fits the budget.
    """
    per_stream = max(1, cells * bytes_per_cell)
    if budget_bytes is not None:
        if budget_bytes < per_stream:
            raise EngineError(f"--kv-budget {budget_bytes / 1e9:.3g} GB holds {budget_bytes // max(1, bytes_per_cell)} "
                              f"tokens of KV, one sample needs {cells}; raise it or lower --ctx")
        usable, held = budget_bytes, f"--kv-budget {budget_bytes / 1e9:.3g} GB"
    else:
        memory, rule = kv_memory(gpu)
        if memory is None:
            return max(1, wanted), rule
        usable, held = memory, f"{rule} ({memory / 1e9:.2f} GB)"
    fit = max(1, min(wanted, usable // per_stream))
    if fit == wanted:
        return fit, f"all {wanted} fit in {held}"
    return fit, f"{held} holds {fit}; the others start as samples finish"
