"""KV memory by the memory rule (issue 24): a stream per sample, as many at once as fit, none
ever preempted; samples that do not fit run in turns with their full tokens; a q8_0 KV cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mathsolve.config import EngineConfig, SamplingConfig
from mathsolve.engine.local import kv
from mathsolve.engine.local.engine import Engine
from mathsolve.engine.protocol import Job
from mathsolve.errors import EngineError

QWEN3_4B_CELL = 2 * 36 * 8 * 128 * 2  # bytes of f16 K and V per token: 36 layers, 8 KV heads of 128
GB = 10**9
STORY = "Tell me a very long story about a dragon, with many chapters."


def test_every_sample_gets_its_stream_when_k_times_ctx_fits(monkeypatch):
    """24 GB machine, 20 GB available: half of it holds 8 streams of 8192 tokens (9.7 GB)."""
    monkeypatch.setattr(kv, "available_ram", lambda: 20 * GB)
    fit, why = kv.streams_that_fit(8, 8192, QWEN3_4B_CELL, gpu=False)
    assert fit == 8 and "all 8 fit in half the available RAM (10.00 GB)" == why


def test_samples_that_do_not_fit_run_in_turns(monkeypatch):
    """8 GB available: half of it holds 3 streams of 8192 tokens; the rest wait for a slot."""
    monkeypatch.setattr(kv, "available_ram", lambda: 8 * GB)
    fit, why = kv.streams_that_fit(8, 8192, QWEN3_4B_CELL, gpu=False)
    assert fit == 3 and "holds 3" in why and "the others start as samples finish" in why


def test_kv_budget_takes_the_place_of_the_memory_rule(monkeypatch):
    monkeypatch.setattr(kv, "available_ram", lambda: 100 * GB)
    fit, why = kv.streams_that_fit(8, 8192, QWEN3_4B_CELL, gpu=False, budget_bytes=3 * GB)
    assert fit == 3 * GB // (8192 * QWEN3_4B_CELL) == 2 and "--kv-budget 3 GB holds 2" in why
    with pytest.raises(EngineError, match="--kv-budget 0.5 GB holds 3390 tokens of KV, one sample needs 8192"):
        kv.streams_that_fit(8, 8192, QWEN3_4B_CELL, gpu=False, budget_bytes=GB // 2)


@pytest.fixture(scope="module")
def cell_bytes(smollm2_gguf: Path) -> int:
    with Engine.load(EngineConfig(model_path=str(smollm2_gguf), n_ctx=1024, n_threads=2)) as engine:
        return engine.context.kv.bytes_per_cell


def run(gguf: Path, n: int, max_tokens: int, **cfg) -> tuple[list, Engine]:
    engine = Engine.load(EngineConfig(model_path=str(gguf), n_ctx=1024, n_threads=2, **cfg))
    prompt = engine.render(STORY)
    samplings = [SamplingConfig(temperature=1.0, top_k=0, top_p=1.0, seed=40 + i,
                                max_tokens=max_tokens) for i in range(n)]
    return engine.generate_many(prompt, samplings), engine


def test_a_budget_too_small_for_all_samples_gives_each_its_full_tokens_in_turns(smollm2_gguf, cell_bytes):
    """Three samples of 100 tokens, a budget of one 256-cell stream: one at a time, every sample
    its full tokens, the same tokens as three streams at once, the same again on a second run."""
    free, engine = run(smollm2_gguf, 3, 100)
    engine.close()
    turns, engine = run(smollm2_gguf, 3, 100, kv_budget=256 * cell_bytes)
    assert "a stream of 256 tokens per sample x 1" in engine.kv_description()
    engine.close()
    again, engine = run(smollm2_gguf, 3, 100, kv_budget=256 * cell_bytes)
    engine.close()
    for b in turns:
        assert b.finish_reason in ("stop", "length")
        if b.finish_reason == "length":
            assert b.completion_tokens == 100  # its full tokens
    assert [c.tokens for c in turns] == [c.tokens for c in free] == [c.tokens for c in again]
    assert [c.sample for c in turns] == [0, 1, 2]


QUESTIONS = ["Tell me a story about a dragon.", "What is 17 * 23? Explain.", "Write a poem about the sea.",
             "List the planets and describe them."]


def in_flight(gguf: Path, **cfg) -> tuple[list[list[tuple[int, ...]]], Engine]:
    """Four problems of three samples each (of 150, 133 and 116 tokens at most), six in flight."""
    engine = Engine.load(EngineConfig(model_path=str(gguf), n_ctx=1024, n_threads=2, **cfg))
    jobs = [Job(engine.tokenize(engine.render(q)),
                [SamplingConfig(temperature=1.0, top_k=0, top_p=1.0, seed=7 * j + i, max_tokens=150 - 17 * i)
                 for i in range(3)]) for j, q in enumerate(QUESTIONS)]
    engine.run(jobs, parallel=6)
    return [[c.tokens for c in job.completions()] for job in jobs], engine


def test_problems_in_flight_in_a_small_budget_give_the_tokens_of_separate_streams(smollm2_gguf, cell_bytes):
    free, engine = in_flight(smollm2_gguf)
    engine.close()
    fewer, engine = in_flight(smollm2_gguf, kv_budget=2 * 256 * cell_bytes)
    assert "x 2 " in engine.kv_description()
    engine.close()
    assert fewer == free


def test_a_budget_below_one_sample_is_a_clear_error(smollm2_gguf, cell_bytes):
    engine = Engine.load(EngineConfig(model_path=str(smollm2_gguf), n_ctx=1024, n_threads=2,
                                      kv_budget=100 * cell_bytes))
    samplings = [SamplingConfig(seed=i, max_tokens=400) for i in range(3)]
    with pytest.raises(EngineError, match="--kv-budget .* one sample needs 512"):
        engine.generate_many(engine.render(STORY), samplings)
    engine.close()


def test_a_q8_0_kv_cache_takes_about_half_the_bytes(smollm2_gguf):
    out16, e16 = run(smollm2_gguf, 2, 20)
    out8, e8 = run(smollm2_gguf, 2, 20, kv_type="q8_0")
    assert e8.kv_bytes == pytest.approx(e16.kv_bytes * 34 / 64, rel=0.01)
    assert "q8_0" in e8.kv_description()
    e16.close()
    e8.close()
    assert all(c.finish_reason in ("stop", "length") and c.completion_tokens > 0 for c in out8)


def test_verbose_says_what_the_kv_cache_chose(smollm2_gguf):
    proc = subprocess.run([sys.executable, "-m", "mathsolve", "--json", "--model", str(smollm2_gguf),
                           "--threads", "2", "--seed", "1", "--samples", "3", "--max-tokens", "8",
                           "-v", "--kv-type", "q8_0", "What is 1+1?"],
                          capture_output=True, timeout=300)
    assert proc.returncode in (0, 3), proc.stderr.decode()[-2000:]
    # Made while loading (the warm-up), for --max-tokens + a 256-token prompt in 256-cell steps
    # (8 + 256 -> 512), and kept: the problem (prompt + 8 tokens) decodes in it, no other line.
    assert b"KV cache: a stream of 512 tokens per sample x 3" in proc.stderr
    assert b"all 3 fit in half the available RAM" in proc.stderr  # and why
    assert proc.stderr.count(b"KV cache:") == 1
    assert b"q8_0" in proc.stderr
