"""KV memory by what samples use: a unified pool with preemption, and a q8_0 KV cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mathsolve.config import EngineConfig, SamplingConfig
from mathsolve.engine import sizing
from mathsolve.engine.llama import Engine
from mathsolve.engine.protocol import Job
from mathsolve.errors import EngineError

QWEN3_4B_CELL = 2 * 36 * 8 * 128 * 2  # bytes of f16 K and V per token: 36 layers, 8 KV heads of 128
GB = 10**9
STORY = "Tell me a very long story about a dragon, with many chapters."


def test_the_default_pool_holds_what_samples_use_not_k_times_ctx():
    today = 8 * 8192 * QWEN3_4B_CELL  # a stream of --ctx cells per sample: 9.7 GB
    pool = sizing.kv_plan(8, 8192, QWEN3_4B_CELL, gpu=False)
    assert pool is not None and pool >= 8192  # one sample may still grow to the whole context
    assert pool * QWEN3_4B_CELL <= 0.25 * today
    pool32 = sizing.kv_plan(32, 8192, QWEN3_4B_CELL, gpu=False)
    assert pool32 is not None and pool32 * QWEN3_4B_CELL <= 8 * GB


def test_streams_when_every_sample_fits_whole():
    assert sizing.kv_plan(1, 8192, QWEN3_4B_CELL, gpu=False) is None  # K = 1: its own stream
    assert sizing.kv_plan(8, 512, QWEN3_4B_CELL, gpu=False) is None  # 8 x 512 < 512 + 7 x 1024
    assert sizing.kv_plan(8, 8192, QWEN3_4B_CELL, gpu=False, budget_bytes=10 * GB) is None


def test_a_3_gb_budget_runs_8_samples_of_256_tokens_at_once():
    pool = sizing.kv_plan(8, 8192, QWEN3_4B_CELL, gpu=False, budget_bytes=3 * GB)
    assert pool is not None and pool * QWEN3_4B_CELL <= 3 * GB
    assert pool >= 8 * 256 + 512  # eight samples of 256 tokens and a prompt


@pytest.fixture(scope="module")
def cell_bytes(smollm2_gguf: Path) -> int:
    with Engine.load(EngineConfig(model_path=str(smollm2_gguf), n_ctx=1024, n_threads=2)) as engine:
        return engine.slots.kv_bytes_per_cell()


def run(gguf: Path, n: int, max_tokens: int, **cfg) -> tuple[list, Engine]:
    engine = Engine.load(EngineConfig(model_path=str(gguf), n_ctx=1024, n_threads=2, **cfg))
    prompt = engine.render(STORY)
    samplings = [SamplingConfig(temperature=1.0, top_k=0, top_p=1.0, seed=40 + i,
                                max_tokens=max_tokens) for i in range(n)]
    return engine.generate_many(prompt, samplings), engine


def test_a_pool_too_small_for_all_samples_still_gives_each_its_full_tokens(smollm2_gguf, cell_bytes):
    free, engine = run(smollm2_gguf, 3, 100)
    n_prompt = len(engine.tokenize(engine.render(STORY)))
    engine.close()
    pooled, engine = run(smollm2_gguf, 3, 100, kv_budget=256 * cell_bytes)
    assert "unified pool of 256 tokens" in engine.kv_description()
    restored = engine.last_prefill_tokens - (n_prompt - 1)
    compactions = engine.slots.compactions
    engine.close()
    assert restored > 0  # a sample was preempted and its tokens prefilled again
    assert compactions > 0  # the preempted sample's cells were parked, then freed in order
    for b in pooled:
        assert b.finish_reason in ("stop", "length")
        if b.finish_reason == "length":
            assert b.completion_tokens == 100  # its full tokens, none lost to the preemption
    # On the CPU every sample's tokens are those of separate streams, the preempted one's too
    assert [c.tokens for c in pooled] == [c.tokens for c in free]
    assert [c.sample for c in pooled] == [0, 1, 2]


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


def test_problems_in_flight_in_a_small_pool_give_the_tokens_of_separate_streams(smollm2_gguf, cell_bytes):
    free, engine = in_flight(smollm2_gguf)
    engine.close()
    pooled, engine = in_flight(smollm2_gguf, kv_budget=256 * cell_bytes)
    assert "unified pool of 256 tokens" in engine.kv_description()
    compactions, prompts_dropped = engine.slots.compactions, engine.slots.prompts_dropped
    engine.close()
    assert compactions > 0
    # the pool got so full that the one sample left running needed the waiting samples' prompt
    # cells: their prompts were prefilled again when they came back
    assert prompts_dropped > 0
    assert pooled == free


def test_a_pool_without_preemption_gives_the_tokens_of_separate_streams(smollm2_gguf, cell_bytes):
    free, engine = run(smollm2_gguf, 3, 60)
    engine.close()
    pooled, engine = run(smollm2_gguf, 3, 60, kv_budget=512 * cell_bytes)  # 3 x 256 > 512 > use
    assert "unified pool" in engine.kv_description()
    engine.close()
    assert [c.tokens for c in pooled] == [c.tokens for c in free]


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
    assert proc.stderr.count(b"KV cache:") == 1
    assert b"q8_0" in proc.stderr
