"""--stop-when-decided: the rule, and the engine ending the remaining samples on request."""

from __future__ import annotations

import pytest

from mathsolve.config import EngineConfig, SamplingConfig
from mathsolve.engine.local.engine import Completion, Engine
from mathsolve.solving.solve import SolveOptions, VoteRule


def done(*answers: str | None, reason: str = "stop") -> list[Completion]:
    return [Completion(i, i, f"so \\boxed{{{a}}}" if a is not None else "no idea", reason, 10, 5,
                       0.1, 0.01) for i, a in enumerate(answers)]


@pytest.mark.parametrize(
    ("answers", "total", "expected"),
    [
        (("4", "4", "4", "4", "4"), 8, True),  # 5 > 0 + 3
        (("4", "4", "4", "4"), 8, False),  # 4 > 0 + 4 is false: four more could tie
        (("4", "4", "4", "4", "5"), 8, False),  # 4 > 1 + 3 is false
        (("4", "4", "4", "4", "5", "\\frac{8}{2}"), 8, True),  # 5 (4 = 8/2) > 1 + 2
        ((None, None, None), 4, False),  # no answer never decides
        (("2",), 1, True),
    ],
    ids=["majority-out-of-reach", "could-still-tie", "runner-up-plus-unfinished",
         "equivalent-answers-count-together", "no-answers", "single-sample"],
)
def test_decided_rule(answers, total, expected):
    assert VoteRule(SolveOptions(samples=total, stop_when_decided=True, check=False))(done(*answers)) is expected


def test_engine_cancels_the_remaining_samples_when_told(smollm2_gguf):
    engine = Engine.load(EngineConfig(model_path=str(smollm2_gguf), n_ctx=512, n_threads=2))
    # Sample 0 ends after 4 tokens; the others could run to 200 but are cancelled then.
    samplings = [SamplingConfig(temperature=1.0, top_k=0, top_p=1.0, seed=5, max_tokens=4)]
    samplings += [SamplingConfig(temperature=1.0, top_k=0, top_p=1.0, seed=5 + i, max_tokens=200)
                  for i in range(1, 4)]
    asked: list[int] = []

    def stop_after_first(finished: list[Completion]) -> bool:
        asked.append(len(finished))
        return len(finished) >= 1

    prompt = engine.render("Tell me a long story.")
    out = engine.generate_many(prompt, samplings, stop_when=stop_after_first)
    reasons = [c.finish_reason for c in out]
    assert asked and asked[0] >= 1
    assert reasons[0] in ("stop", "length")
    for c in out[1:]:  # cancelled right after sample 0 ended (or ended by itself before that)
        assert c.finish_reason == "cancelled" or c.completion_tokens <= 4
        assert c.completion_tokens <= 5
    assert [c.sample for c in out] == [0, 1, 2, 3]
    n_prompt = len(engine.tokenize(prompt))
    assert all(n <= n_prompt - 1 for n in engine.kv_sequence_lengths())  # cancelled: KV freed
    engine.close()


def test_samples_that_did_not_finish_add_nothing_to_the_vote_or_the_support():
    from mathsolve.config import SamplingConfig
    from mathsolve.solving.inputs import Problem
    from mathsolve.solving.loading import ModelInfo
    from mathsolve.solving.solve import SolveOptions, finish

    # Two finished samples disagree (4, 5); a cancelled one had already boxed 5 in its text.
    completions = done("4", "5", "5")[:2] + [done("5", "5", "5", reason="cancelled")[2]]
    result = finish(Problem("1", "2+2?"), completions, SamplingConfig(seed=0),
                    SolveOptions(samples=3, check=False), ModelInfo("model.gguf", "file"), 0.0)
    assert result.answer == "4"  # 1-1 between the finished ones: the tie goes to sample 0
    assert result.support == "1/3 samples"
    assert [s.answer for s in result.samples] == ["4", "5", None]
    assert [v.samples for v in result.votes] == [(0,), (1,)]


def test_interactive_problems_never_share_a_seed(smollm2_gguf, monkeypatch):
    from mathsolve.api import Solver
    from mathsolve.cli import interactive
    from mathsolve.output.render import Renderer

    lines = iter(["What is 1+1?", "What is 2+2?", "What is 3+3?"])

    def fake_input(prompt: str) -> str:  # the terminal: three lines, then Ctrl-D
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    class Keep(Renderer):
        results: list = []

        def end(self, result) -> None:  # noqa: ANN001
            self.results.append(result)

    monkeypatch.setattr("builtins.input", fake_input)
    monkeypatch.setattr(interactive, "_setup_readline", lambda: None)
    with Solver(model=str(smollm2_gguf), ctx=512, seed=7, max_tokens=2, samples=3,
                check=False) as solver:
        keep = Keep()
        interactive.loop(solver, keep)
    seeds = [s.seed for r in keep.results for s in r.samples]
    assert len(keep.results) == 3 and len(seeds) == 9
    assert len(set(seeds)) == 9  # no seed drawn twice, so no two problems share a sample
