"""`doctor`: facts about the real llama.cpp build, and the reinstall advice table."""

from __future__ import annotations

import pytest

from mathsolve.cli import diagnostics as doctor

# How llama.cpp's system info names each GPU backend ("CUDA : ARCHS = ... | CPU : ...").
GPU_REGISTRY_NAMES = {"CUDA": ("CUDA",), "Metal": ("MTL", "METAL"), "ROCm": ("ROCm", "ROCM"),
                      "Vulkan": ("Vulkan",), "SYCL": ("SYCL",), "OpenCL": ("OpenCL", "OPENCL"),
                      "MUSA": ("MUSA",), "CANN": ("CANN",)}
KEYS = {
    "llama_cpp_python", "system_info", "gpu_offload", "backend", "gpu_detected",
    "physical_cores", "logical_cpus", "platform", "cache_root", "free_disk_gb",
    "cached_models", "reinstall", "sampler", "kv_cache", "weights_buffers",
}


def test_collect_reports_the_installed_build_and_cache(tmp_path, monkeypatch):
    import llama_cpp

    monkeypatch.setenv("MATHSOLVE_HOME", str(tmp_path / "cache"))
    info = doctor.collect()
    assert set(info) == KEYS
    assert info["llama_cpp_python"] == llama_cpp.__version__
    assert "CPU" in info["system_info"]  # llama.cpp always lists its CPU features
    assert info["gpu_offload"] == bool(llama_cpp.llama_supports_gpu_offload())
    # A CPU build says CPU; a GPU build names a GPU backend that llama.cpp itself lists.
    listed = [name for name, registry in GPU_REGISTRY_NAMES.items()
              if any(f"{r} :" in info["system_info"] for r in registry)]
    assert info["backend"] in (listed if info["gpu_offload"] else ["CPU"])
    assert 1 <= info["physical_cores"] <= info["logical_cpus"]
    # the sampling path a default run takes: in the graph on a GPU, vectorised on a CPU
    assert info["sampler"].startswith("graph" if info["gpu_offload"] else "vector")
    assert info["cache_root"] == str(tmp_path / "cache")
    assert info["free_disk_gb"] > 0 and info["cached_models"] == []
    rule = "the GPU's free memory" if info["gpu_offload"] else "half the available RAM"
    kv = info["kv_cache"]
    assert rule in kv and "--kv-budget" in kv and "none is ever preempted" in kv
    from mathsolve.engine.local.native import cpu_has_amx

    assert ("llama.cpp#20824" in info["weights_buffers"]) is cpu_has_amx()


def test_collect_lists_cached_models_with_their_problems(tmp_path, monkeypatch):
    mdir = tmp_path / "models" / "tiny--qwen3"
    mdir.mkdir(parents=True)
    (mdir / "q8_0.gguf").write_bytes(b"GGUF" + b"\0" * 60)  # no manifest: unfinished pull
    monkeypatch.setenv("MATHSOLVE_HOME", str(tmp_path))
    [line] = doctor.collect()["cached_models"]
    assert line.startswith("tiny--qwen3 q8_0") and "unfinished pull" in line


@pytest.mark.parametrize(
    "system,machine,has_smi,offload,expected",
    [
        ("linux", "x86_64", True, False, 'CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall '
                                         "--no-cache-dir llama-cpp-python==0.3.36"),
        ("darwin", "arm64", False, False, 'CMAKE_ARGS="-DGGML_METAL=on" pip install --force-reinstall '
                                          "--no-cache-dir llama-cpp-python==0.3.36"),
        ("linux", "x86_64", True, True, None),
        ("linux", "x86_64", False, False, None),
        ("darwin", "x86_64", False, False, None),
    ],
    ids=["nvidia-cpu-build", "apple-silicon-cpu-build", "nvidia-cuda-build", "no-gpu", "intel-mac"],
)
def test_reinstall_command_only_when_a_gpu_goes_unused(system, machine, has_smi, offload, expected):
    which = lambda name: "/usr/bin/nvidia-smi" if has_smi and name == "nvidia-smi" else None  # noqa: E731
    gpu = doctor.gpu_present(which=which, machine=machine, system=system)
    assert doctor.reinstall_command(gpu, offload) == expected


@pytest.mark.parametrize(
    "info,offload,expected",
    [
        ("CPU : SSE3 = 1 | AVX2 = 1 |", False, "CPU"),
        ("CUDA : ARCHS = 890 | USE_GRAPHS = 1 | CPU : AVX2 = 1 |", True, "CUDA"),
        ("MTL : EMBED_LIBRARY = 1 | CPU : NEON = 1 | ARM_FMA = 1 |", True, "Metal"),
        ("CPU : SSE3 = 1 | CUDA_FEATURE_LIKE = 1 |", False, "CPU"),
    ],
    ids=["cpu", "cuda", "metal", "feature-name-is-not-a-backend"],
)
def test_backend_is_read_from_llama_cpp_system_info(info, offload, expected):
    assert doctor.backend_from_system_info(info, offload) == expected


def test_pinned_version_matches_the_project_dependency():
    from pathlib import Path

    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert f'"llama-cpp-python=={doctor.LLAMA_CPP_PYTHON}"' in pyproject


def test_llama_cpp_pythons_own_loader_gets_mathsolves_weights_buffers():
    """conftest patches llama-cpp-python's defaults (its Llama and server load as mathsolve
    does); on an AMX CPU that keeps llama.cpp out of its crashing AMX kernel."""
    import llama_cpp.llama_cpp as lib

    from mathsolve.engine.local.native import cpu_has_amx, model_params, patch_llama_defaults

    patch_llama_defaults()  # again: a second call changes nothing
    assert lib.llama_model_default_params().use_extra_bufts is (not cpu_has_amx())
    assert model_params(gpu=False).use_extra_bufts is (not cpu_has_amx())
