"""The user's model flow through the CLI: pull (Hub faked at the download boundary only),
models, solve from the cache by repo id, models rm, doctor."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from mathsolve.cli import cli
from mathsolve.models import pull as pulling

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_pull_then_models_then_solve_from_cache_then_rm(tiny_qwen3_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MATHSOLVE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MATHSOLVE_MODEL", raising=False)

    def hub(repo, revision, dest, offline, *, before_fetch=None):  # the process boundary
        dest.mkdir(parents=True, exist_ok=True)
        for f in tiny_qwen3_dir.iterdir():
            shutil.copy2(f, dest / f.name)
        return dest, SHA

    monkeypatch.setattr(pulling, "_download", hub)
    runner = CliRunner()
    pulled = runner.invoke(cli, ["pull", "tiny/qwen3", "--quant", "q8_0"], catch_exceptions=False)
    assert pulled.exit_code == 0, pulled.output
    gguf = Path(pulled.stdout.strip().splitlines()[-1])
    assert gguf.is_file() and gguf.name == "q8_0.gguf"
    manifest = json.loads(gguf.with_name("q8_0.manifest.json").read_text())
    assert manifest["revision"] == SHA and manifest["quant"] == "q8_0"

    listed = runner.invoke(cli, ["models"], catch_exceptions=False)
    assert "q8_0" in listed.stdout and str(gguf) in listed.stdout

    env = {**os.environ, "MATHSOLVE_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "mathsolve", "--model", "tiny/qwen3", "--quant",
                           "q8_0", "--json", "--max-tokens", "8", "--seed", "1", "x^2=4"],
                          capture_output=True, env=env, timeout=300)
    row = json.loads(proc.stdout)
    assert row["model"]["path"] == str(gguf) and row["model"]["source"] == "tiny/qwen3"
    assert row["completion_tokens"] > 0

    removed = runner.invoke(cli, ["models", "rm", "tiny/qwen3"], catch_exceptions=False)
    assert removed.exit_code == 0 and not gguf.exists()


def test_doctor_reports_build_threads_and_cache(tmp_path):
    env = {**os.environ, "MATHSOLVE_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "mathsolve", "doctor"], capture_output=True,
                          env=env, timeout=120)
    out = proc.stdout.decode()
    assert proc.returncode == 0
    for key in ("llama_cpp_python: 0.3.36", "gpu_offload:", "backend:", "physical_cores:",
                f"cache_root: {tmp_path}", "free_disk_gb:"):
        assert key in out, out
