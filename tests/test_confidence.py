"""--confidence P: Adaptive-Consistency's Beta rule stops a vote; every vote has a confidence."""

from __future__ import annotations

from pathlib import Path

import pytest

from mathsolve.answers.vote import confidence
from mathsolve.config import EngineConfig, SamplingConfig
from mathsolve.engine.local.engine import Completion, Engine
from mathsolve.output.records import result_json
from mathsolve.solving.inputs import Problem
from mathsolve.solving.loading import ModelInfo
from mathsolve.solving.solve import SolveOptions, finish, stop_rule

MODEL = ModelInfo("model.gguf", "file")


def done(*answers: str | None) -> list[Completion]:
    return [Completion(i, i, f"so \\boxed{{{a}}}" if a is not None else "no idea", "stop", 10, 5,
                       0.1, 0.01) for i, a in enumerate(answers)]


def beta_posterior(a: int, b: int, steps: int = 200_000) -> float:
    """P(x > 1/2) for x ~ Beta(a + 1, b + 1), by the midpoint rule: the formula as written."""
    h = 1.0 / steps
    xs = [(i + 0.5) * h for i in range(steps)]
    f = [x**a * (1 - x) ** b for x in xs]
    return sum(v for x, v in zip(xs, f) if x > 0.5) / sum(f)


@pytest.mark.parametrize(("a", "b"), [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (3, 1), (5, 1),
                                      (6, 1), (2, 2), (7, 3), (12, 4)])
def test_confidence_is_the_beta_posterior(a, b):
    assert confidence(a, b) == pytest.approx(beta_posterior(a, b), abs=1e-6)


def first_stop(answers: list[str | None], k: int, p: float) -> int | None:
    """How many finished samples the rule needed (None: it never held)."""
    rule = stop_rule(SolveOptions(samples=k, confidence=p, check=False))
    assert rule is not None
    for n in range(1, len(answers) + 1):
        if rule(done(*answers[:n])):
            return n
    return None


@pytest.mark.parametrize(("answers", "p", "expected"), [
    (["4"] * 8, 0.95, 4),  # 4-0: 31/32 = 0.969 >= 0.95; 3-0 is 15/16 = 0.9375
    (["4"] * 8, 0.9, 3),  # 3-0 = 0.9375 >= 0.9; 2-0 = 0.875 is not
    (["4", "5", "4", "4", "4", "4", "4", "4"], 0.95, 7),  # 6-1: 0.9648; 5-1: 0.9375
    (["4", "5", "4", "5", "4", "5", "4", "5"], 0.95, None),  # never more than one ahead
    (["4", "5"], 0.8, None),  # 1-0 is 0.75, then a tie is 0.5
    ([None, None, None, "4"], 0.7, None),  # 1 answer vs 3 without: confidence(1, 3) = 0.19
    ([None, "4", "4", "4", "4", "4", "4", "4"], 0.95, 7),  # 4-1 (the no-answer group) 0.89; 6-1 0.965
    (["4", None, None, "5", "4", "4", "4", "4"], 0.9, None),  # the no-answers are runner-up: 5-2 is 0.855
    (["4", "\\frac{8}{2}", "4", "8/2", "5"], 0.95, 4),  # equivalent answers are one group
], ids=["unanimous-095", "unanimous-090", "one-dissent", "alternating", "tie", "mostly-no-answers",
        "one-no-answer", "no-answer-and-dissent", "equivalent-forms"])
def test_the_rule_stops_exactly_where_the_formula_says(answers, p, expected):
    assert first_stop(answers, len(answers), p) == expected


def test_the_stop_rule_extracts_each_sample_once(monkeypatch):
    """Asked after each of 8 samples finishes, the rule reads each sample's text once (it was
    36 extractions, the finished list read again every time)."""
    import mathsolve.solving.solve as solve_module

    calls: list[str] = []
    real = solve_module.extract

    def counting(text: str, complete: bool = True):
        calls.append(text)
        return real(text, complete)

    monkeypatch.setattr(solve_module, "extract", counting)
    rule = stop_rule(SolveOptions(samples=8, confidence=0.99, check=False))
    assert rule is not None
    finished = done("4", "5", "4", "5", "4", "5", "4", "5")
    for n in range(1, 9):
        assert not rule(finished[:n])
    assert len(calls) == 8


def test_one_sample_has_no_rule_and_no_confidence():
    assert stop_rule(SolveOptions(samples=1, confidence=0.95)) is None
    result = finish(Problem("1", "2+2?"), done("4"), SamplingConfig(seed=0),
                    SolveOptions(samples=1, confidence=0.95, check=False), MODEL, 0.0)
    assert result.confidence is None and "confidence" not in result_json(result)


def test_every_voted_result_carries_its_confidence():
    result = finish(Problem("1", "2+2?"), done("4", "4", "5", "4"), SamplingConfig(seed=0),
                    SolveOptions(samples=4, check=False), MODEL, 0.0)
    assert result.confidence == round(confidence(3, 1), 4)
    assert result_json(result)["confidence"] == result.confidence


def test_samples_without_an_answer_count_against_the_confidence():
    """Issue 23's SmolLM2 run: one sample answered 3, three gave no answer: 19%, not 75%."""
    result = finish(Problem("1", "Compute 3+4."), done("3", None, None, None), SamplingConfig(seed=0),
                    SolveOptions(samples=4, check=False), MODEL, 0.0)
    assert result.answer == "3" and result.support == "1/4 samples"
    assert result.confidence == round(confidence(1, 3), 4) == 0.1875
    answered = finish(Problem("1", "Compute 3+4."), done("7", "7", "3", None), SamplingConfig(seed=0),
                      SolveOptions(samples=4, check=False), MODEL, 0.0)
    assert answered.confidence == round(confidence(2, 1), 4)  # the runner-up 3 and the no-answer tie


def test_stop_when_decided_stays_exact_beside_a_confidence():
    # 3-0 of 8: --stop-when-decided alone waits (3 > 0 + 5 is false); with 0.8 it stops
    rule = stop_rule(SolveOptions(samples=8, stop_when_decided=True, check=False))
    assert rule is not None and not rule(done("4", "4", "4"))
    both = stop_rule(SolveOptions(samples=8, stop_when_decided=True, confidence=0.8, check=False))
    assert both is not None and both(done("4", "4", "4"))


def test_samples_are_cancelled_when_the_rule_holds_and_never_vote(smollm2_gguf: Path):
    """Sample 0 answers at once (budget 0); the others reason for long. Its lone answer is 1-0,
    confidence 0.75 >= 0.7: the rest are cancelled while one batch decodes them."""
    options = SolveOptions(samples=6, confidence=0.7, check=False)
    samplings = [SamplingConfig(temperature=1.0, top_k=0, top_p=1.0, seed=9, max_tokens=400,
                                thinking_budget=0)]
    samplings += [SamplingConfig(temperature=1.0, top_k=0, top_p=1.0, seed=9 + i, max_tokens=400)
                  for i in range(1, 6)]
    with Engine.load(EngineConfig(model_path=str(smollm2_gguf), n_ctx=1024, n_threads=2)) as engine:
        prompt = engine.render("Tell me a very long story about a dragon.")
        out = engine.generate_many(prompt, samplings, stop_when=stop_rule(options))
    assert out[0].finish_reason in ("stop", "length") and "\\boxed{" in out[0].text
    cancelled = [c for c in out[1:] if c.finish_reason == "cancelled"]
    assert len(cancelled) >= 4  # all but one that may end by itself in the same step
    assert all(c.completion_tokens < 400 for c in cancelled)
    result = finish(Problem("1", "story"), out, samplings[0], options, MODEL, 0.0)
    voted = {i for group in result.votes for i in group.samples}
    assert not voted & {c.sample for c in cancelled}  # cancelled samples never vote
    assert result.confidence is not None and result.confidence >= 0.7
    assert result.votes and 0 in result.votes[0].samples  # sample 0's answer decided it
