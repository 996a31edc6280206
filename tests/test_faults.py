"""Bad conditions, each with a test: GPU load failure, context overflow, a GGUF changed after
its pull."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

from click.testing import CliRunner

from mathsolve.cli import cli
from mathsolve.config import EngineConfig, SamplingConfig
from mathsolve.engine.local import engine as engine_mod
from mathsolve.models import cache as models
from mathsolve.models import pull as pulling


def test_gpu_load_failure_falls_back_to_cpu_with_a_warning(smollm2_gguf, monkeypatch):
    import llama_cpp

    real_load = engine_mod._load_model
    tried = []

    def load(path, *, gpu):  # forced failure: the GPU load fails as it does when out of memory
        tried.append(gpu)
        return None if gpu else real_load(path, gpu=False)

    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: True)
    monkeypatch.setattr(engine_mod, "_load_model", load)
    warnings: list[str] = []
    eng = engine_mod.Engine.load(EngineConfig(model_path=str(smollm2_gguf), n_ctx=256, n_threads=2),
                                 warn=warnings.append)
    assert tried == [True, False]
    assert eng.gpu_offload is False
    assert len(warnings) == 1 and "GPU failed" in warnings[0] and "CPU" in warnings[0]
    out = eng.generate(eng.render("What is 1+1?"), SamplingConfig(temperature=0, max_tokens=4))
    assert out.completion_tokens >= 1
    eng.close()


def test_context_overflow_mid_generation_is_finish_length_not_a_crash(smollm2_gguf):
    # Greedy SmolLM2 writes this story on well past 256 tokens, so the context (not the
    # model, not --max-tokens) ends it: the run must reach the context's last cell.
    proc = subprocess.run([sys.executable, "-m", "mathsolve", "--model", str(smollm2_gguf),
                           "--ctx", "256", "--max-tokens", "7680", "--temperature", "0",
                           "--json", "Write a very long story about a dragon who loves numbers."],
                          capture_output=True, timeout=300)
    row = json.loads(proc.stdout)
    assert row["finish_reason"] == "length"
    assert row["prompt_tokens"] + row["completion_tokens"] == 256  # every cell of the context
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr.decode()


def test_gguf_changed_after_pull_is_detected_with_the_force_fix(tiny_qwen3_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MATHSOLVE_HOME", str(tmp_path))

    def hub(repo, revision, dest, offline, *, before_fetch=None):
        dest.mkdir(parents=True, exist_ok=True)
        for f in tiny_qwen3_dir.iterdir():
            shutil.copy2(f, dest / f.name)
        return dest, "f" * 40

    monkeypatch.setattr(pulling, "_download", hub)
    runner = CliRunner()
    assert runner.invoke(cli, ["pull", "t/q", "--quant", "q8_0"], catch_exceptions=False).exit_code == 0
    gguf = models.resolve("t/q", "q8_0").path
    time.sleep(0.01)
    with open(gguf, "r+b") as fh:  # flip one byte deep in the tensor data, same size
        fh.seek(os.path.getsize(gguf) - 100)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    env = {**os.environ, "MATHSOLVE_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "mathsolve", "--model", "t/q", "--quant", "q8_0",
                           "--max-tokens", "4", "x+1=2"], capture_output=True, env=env, timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert "does not match the sha256" in err and "mathsolve pull t/q --quant q8_0 --force" in err
    assert len(err.strip().splitlines()) == 1
    repaired = runner.invoke(cli, ["pull", "t/q", "--quant", "q8_0", "--force"], catch_exceptions=False)
    assert repaired.exit_code == 0
    assert models.resolve("t/q", "q8_0", verify=True).path == gguf
