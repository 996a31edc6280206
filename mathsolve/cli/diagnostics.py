"""Command line: what this machine and llama.cpp build can do, as plain data (`mathsolve doctor`).

The CLI renders the dict; nothing here prints. No shell calls: GPUs are detected by the
presence of `nvidia-smi` on PATH (NVIDIA) or by the platform (Apple Silicon).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

LLAMA_CPP_PYTHON = "0.3.36"  # the pinned version, for the reinstall command
# Backend registry names as llama.cpp prints them ("CUDA : ARCHS = ... | CPU : AVX2 = 1 |").
_BACKENDS = {"CUDA": "CUDA", "MTL": "Metal", "METAL": "Metal", "ROCM": "ROCm", "MUSA": "MUSA",
             "VULKAN": "Vulkan", "SYCL": "SYCL", "OPENCL": "OpenCL", "CANN": "CANN"}


def backend_from_system_info(info: str, gpu_offload: bool) -> str:
    """The GPU backend llama.cpp lists before its features, else CPU."""
    for name in re.findall(r"(?:^|\|)\s*([A-Za-z][A-Za-z0-9_]*) : ", info):
        if name.upper() in _BACKENDS:
            return _BACKENDS[name.upper()]
    return "GPU" if gpu_offload else "CPU"


def gpu_present(which: Callable[[str], str | None] = shutil.which, machine: str | None = None,
                system: str | None = None) -> str | None:
    """"cuda" with an NVIDIA driver on PATH, "metal" on Apple Silicon, else None."""
    machine = machine if machine is not None else platform.machine()
    system = system if system is not None else sys.platform
    if system == "darwin" and machine == "arm64":
        return "metal"
    if which("nvidia-smi"):
        return "cuda"
    return None


def reinstall_command(gpu: str | None, gpu_offload: bool) -> str | None:
    """The exact command that rebuilds llama-cpp-python for a GPU the build does not use."""
    if gpu is None or gpu_offload:
        return None
    flag = {"cuda": "-DGGML_CUDA=on", "metal": "-DGGML_METAL=on"}[gpu]
    return (f'CMAKE_ARGS="{flag}" pip install --force-reinstall --no-cache-dir '
            f"llama-cpp-python=={LLAMA_CPP_PYTHON}")


def kv_policy(gpu_offload: bool) -> str:
    """How a run sizes its KV cache (engine.local.kv.streams_that_fit), with this machine's cap."""
    from mathsolve.engine.local import kv

    usable, rule = kv.kv_memory(gpu_offload)
    cap = "" if usable is None else f" ({usable / 1e9:.1f} GB here)"
    return (f"a stream of --ctx tokens per sample, as many at once as fit in {rule}{cap} or in "
            "--kv-budget; the other samples start as samples finish, none is ever preempted; "
            "-v says what a run chose")


def _free_bytes(path: Path) -> int:
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def collect() -> dict[str, Any]:
    """Everything `doctor` shows; stable keys so the CLI and tests can rely on them."""
    import llama_cpp

    from mathsolve.config import SamplingConfig
    from mathsolve.engine.local.machine import physical_cores
    from mathsolve.engine.local.native import cpu_has_amx
    from mathsolve.engine.local.sampling import choose_path, describe_path
    from mathsolve.models import cache as models

    raw = llama_cpp.llama_print_system_info()
    system_info = (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)).strip()
    gpu_offload = bool(llama_cpp.llama_supports_gpu_offload())
    gpu = gpu_present()
    root = models.cache_root()
    cached = [
        f"{m.name} {m.quant} {m.size / 1e9:.2f} GB {m.path}"
        + ("" if m.status == "ok" else f" [{m.status}]")
        for m in models.list_models()
    ]
    return {
        "llama_cpp_python": getattr(llama_cpp, "__version__", "unknown"),
        "system_info": system_info,
        "gpu_offload": gpu_offload,
        "backend": backend_from_system_info(system_info, gpu_offload),
        "gpu_detected": gpu or "none",
        "sampler": describe_path(choose_path("auto", gpu=gpu_offload, samplings=[SamplingConfig()],
                                             graph_available=hasattr(llama_cpp, "llama_set_sampler"))),
        "kv_cache": kv_policy(gpu_offload),
        "weights_buffers": ("plain CPU buffers (AMX CPU: llama.cpp's extra buffer types crash, "
                            "llama.cpp#20824)" if cpu_has_amx() else "llama.cpp's default"),
        "physical_cores": physical_cores(),
        "logical_cpus": os.cpu_count() or 1,
        "platform": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "cache_root": str(root),
        "free_disk_gb": round(_free_bytes(root) / 1e9, 1),
        "cached_models": cached,
        "reinstall": reinstall_command(gpu, gpu_offload),
    }
