"""Engine: facts of the machine the local engine runs on.

Physical cores, available RAM, the GPU's free memory: read once per question, so the engine
can size its work before asking llama.cpp for it (a failed allocation on a GPU is slow and
noisy)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path


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
