"""K samples decoded as one batch equal K single-sequence runs, and free their KV cells."""

from __future__ import annotations

import pytest

from mathsolve.config import EngineConfig, SamplingConfig
from mathsolve.engine.local.engine import Engine, GenerationInterrupted, TextEvent

PROBLEM = "Write a long story about a dragon."


def _engine_for(request, which: str) -> Engine:
    path = request.getfixturevalue("smollm2_gguf" if which == "smollm2" else "tiny_qwen3_gguf")
    return Engine.load(EngineConfig(str(path), n_ctx=512, gpu=False))


MODELS = ["smollm2", "tiny-qwen3"]


@pytest.fixture(scope="module", params=MODELS, ids=MODELS)
def engine(request) -> Engine:
    e = _engine_for(request, request.param)
    yield e
    e.close()


def _sampled(seed: int, max_tokens: int = 20) -> SamplingConfig:
    return SamplingConfig(temperature=1.0, top_p=1.0, top_k=0, seed=seed, max_tokens=max_tokens)


def test_greedy_batch_of_k_equals_single_sequence_greedy(engine):
    prompt = engine.render(PROBLEM)
    greedy = SamplingConfig(temperature=0.0, max_tokens=20)
    single = engine.generate(prompt, greedy)
    batch = engine.generate_many(prompt, [greedy] * 4)
    assert [c.text for c in batch] == [single.text] * 4
    assert [c.sample for c in batch] == [0, 1, 2, 3]


def test_sample_i_of_a_batch_equals_the_single_run_with_seed_i(engine):
    prompt = engine.render(PROBLEM)
    seeds = [11, 12, 13, 14]
    singles = [engine.generate(prompt, _sampled(s)) for s in seeds]
    batch = engine.generate_many(prompt, [_sampled(s) for s in seeds])
    assert [c.seed for c in batch] == seeds
    for one, many in zip(singles, batch):
        assert many.completion_tokens == one.completion_tokens
        assert many.text == one.text  # >= 16 tokens each unless a stop token came first
    if "SmolLM2" in engine.model_path:  # the tiny random Qwen3 is near-deterministic
        assert len({c.text for c in batch}) > 1  # the seeds really differ


def test_sixteen_mixed_length_samples_complete_and_free_their_kv(engine):
    prompt = engine.render(PROBLEM)
    n_prompt = len(engine.tokenize(prompt))
    lengths = [1 + (3 * i) % 17 for i in range(16)]
    batch = engine.generate_many(prompt, [_sampled(i, n) for i, n in enumerate(lengths)])
    assert len(batch) == 16
    for c, n in zip(batch, lengths):
        assert c.finish_reason in ("stop", "length")
        assert c.completion_tokens <= n
        if c.finish_reason == "length":
            assert c.completion_tokens == n
    cells = engine.kv_sequence_lengths()
    # every slot is free again and keeps only the prompt (less its last token) for reuse
    assert cells == [n_prompt - 1] * 16


def test_events_carry_their_sample_index(engine):
    prompt = engine.render(PROBLEM)
    events: list[TextEvent] = []
    batch = engine.generate_many(prompt, [_sampled(s, 8) for s in range(3)], on_event=events.append)
    for c in batch:
        assert "".join(e.text for e in events if e.sample == c.sample) == c.text


def test_small_kv_budget_runs_the_samples_in_turns_with_a_note(request, smollm2_gguf):
    """--kv-budget for two streams of 256 cells: five samples run two at a time, with the same
    tokens as all five at once, and -v says why."""
    notes: list[str] = []
    full = Engine.load(EngineConfig(str(smollm2_gguf), n_ctx=512, gpu=False))
    budget = 2 * 256 * full.context.kv.bytes_per_cell
    small = Engine.load(EngineConfig(str(smollm2_gguf), n_ctx=512, gpu=False, kv_budget=budget,
                                     verbose=True), warn=notes.append)
    with small, full:
        prompt = full.render(PROBLEM)
        samplings = [_sampled(s, 12) for s in range(5)]
        grouped = small.generate_many(prompt, samplings)
        together = full.generate_many(prompt, samplings)
    assert any("decoding them 2 at a time" in n for n in notes)
    assert any("x 2 " in n and "--kv-budget" in n and "holds 2" in n for n in notes)  # -v: what and why
    assert [c.text for c in grouped] == [c.text for c in together]
    assert [c.sample for c in grouped] == list(range(5))


def test_ctrl_c_in_a_parallel_run_keeps_finished_samples(smollm2_gguf):
    with Engine.load(EngineConfig(str(smollm2_gguf), n_ctx=512, gpu=False)) as e:
        prompt = e.render(PROBLEM)
        count = {"n": 0}

        def interrupt_later(event: TextEvent) -> None:
            count["n"] += 1
            if count["n"] == 30:
                raise KeyboardInterrupt

        samplings = [_sampled(0, 2), _sampled(1, 100), _sampled(2, 100)]
        with pytest.raises(GenerationInterrupted) as info:
            e.generate_many(prompt, samplings, on_event=interrupt_later)
        done = info.value.completions
        assert [c.sample for c in done] == [0, 1, 2]
        assert done[0].finish_reason == "length" and done[0].completion_tokens == 2
        assert [c.finish_reason for c in done[1:]] == ["interrupted", "interrupted"]
        assert all(0 < c.completion_tokens < 100 for c in done[1:])
        n_prompt = len(e.tokenize(prompt))
        assert all(n <= n_prompt - 1 for n in e.kv_sequence_lengths())  # generated KV freed
        # the next run is unaffected
        again = e.generate_many(prompt, samplings[:1])
        assert again[0].text == done[0].text
