"""The vote's schedule (issue 24): on a CPU, samples start only while the stop rule has not held.

VoteRule.wanted(finished) is the number of samples that should have started: the fewest that
could make the rule hold if every unfinished one agreed with the leading answer. The engine on
a CPU starts no more than that; the tokens of every sample stay those it draws unscheduled.
"""

from __future__ import annotations

import pytest

from mathsolve.config import EngineConfig, SamplingConfig, SolveOptions
from mathsolve.engine.local.engine import Completion, Engine
from mathsolve.solving.solve import VoteRule, stop_rule


def done(*answers: str | None) -> list[Completion]:
    return [Completion(i, i, f"so \\boxed{{{a}}}" if a is not None else "no idea", "stop", 10, 5, 0.1, 0.01)
            for i, a in enumerate(answers)]


def by_the_rule(options: SolveOptions, answers: tuple[str | None, ...]) -> int:
    """The schedule's answer found with the stop rule itself: the fewest samples in all such that
    the rule holds once the unfinished ones answer as the current leader does."""
    from mathsolve.answers.vote import vote

    finished = list(answers)
    leader = vote([a for a in finished]).answer or "leader"
    for extra in range(options.samples - len(finished) + 1):
        rule = VoteRule(options)
        if rule(done(*finished, *[leader] * extra)):
            return len(finished) + extra
    return options.samples


TABLES = [
    ((), 0.95, False, 4),  # 4 agreeing answers reach 0.97
    (("4",), 0.95, False, 4),
    (("4", "5"), 0.95, False, 7),  # a disagreement: 6-1 is needed, so 5 more
    (("4", "5", "5"), 0.95, False, 7),
    ((None,), 0.95, False, 7),  # no answer is a runner-up too
    (("4", "4", "4", "4"), 0.95, False, 4),  # the rule holds: nothing more
    (("4", "5", "4", "5", "4", "5", "4"), 0.95, False, 8),  # it cannot hold: all of them
    ((), None, True, 5),  # --stop-when-decided: 5 of 8 agreeing decide it
    (("4", "5"), None, True, 6),
    (("4", "5"), 0.8, True, 4),  # both rules: whichever needs fewer (3-1 reaches 0.81; exact needs 6)
]


@pytest.mark.parametrize(("answers", "p", "exact", "expected"), TABLES,
                         ids=[f"{'-'.join(str(a) for a in t[0]) or 'none'}-{t[1]}-{t[2]}" for t in TABLES])
def test_the_schedule_is_the_rule_applied_ahead(answers, p, exact, expected):
    options = SolveOptions(samples=8, confidence=p, stop_when_decided=exact, check=False)
    rule = stop_rule(options)
    assert rule is not None
    assert rule.wanted(done(*answers)) == expected == by_the_rule(options, answers)


def test_on_a_cpu_no_more_samples_start_than_the_schedule_wants(smollm2_gguf):
    """A schedule of two samples, one more as each finishes: never more than two rows in a step,
    and every sample's tokens are those it draws with all five started at once."""
    samplings = [SamplingConfig(temperature=1.0, top_k=0, top_p=1.0, seed=3 + i, max_tokens=10 + 5 * i)
                 for i in range(5)]
    widths: list[int] = []
    with Engine.load(EngineConfig(str(smollm2_gguf), n_ctx=512, n_threads=2, gpu=False)) as engine:
        prompt = engine.render("Tell me a long story about a dragon.")
        free = engine.generate_many(prompt, samplings)
        inner = engine.context.decode_rows

        def counted(rows: list) -> None:
            widths.append(len(rows))
            inner(rows)

        engine.context.decode_rows = counted  # type: ignore[method-assign]
        scheduled = engine.generate_many(prompt, samplings, wanted=lambda finished: min(5, 2 + len(finished)))
    assert max(widths) == 2
    assert [c.tokens for c in scheduled] == [c.tokens for c in free]
    assert [c.finish_reason for c in scheduled] == [c.finish_reason for c in free]


def test_a_confident_vote_on_a_cpu_starts_no_sample_it_does_not_need(smollm2_gguf):
    """--confidence 0.7, K = 6: one answer already reads 0.75, so the schedule starts one sample;
    it answers (a thinking budget of 0 cues the box at once), the rule holds, and the other five
    never start (all six started together before issue 24)."""
    from mathsolve.solving.inputs import Problem
    from mathsolve.solving.loading import ModelInfo
    from mathsolve.solving.solve import solve

    options = SolveOptions(samples=6, confidence=0.7, check=False)
    sampling = SamplingConfig(temperature=1.0, top_k=0, top_p=1.0, seed=9, max_tokens=24, thinking_budget=0)
    with Engine.load(EngineConfig(str(smollm2_gguf), n_ctx=512, n_threads=2, gpu=False)) as engine:
        result = solve(engine, Problem("1", "What is 2 + 2?"), sampling, options, ModelInfo("m.gguf", "file"))
    assert result.samples is not None and result.samples[0].answer is not None
    assert result.support == "1/6 samples" and result.confidence == 0.75
    assert [(s.completion_tokens, s.finish_reason) for s in result.samples[1:]] == [(0, "cancelled")] * 5
