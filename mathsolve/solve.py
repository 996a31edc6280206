"""One problem through the solve flow: prompt -> engine -> extraction -> check -> vote -> Result."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from .config import SamplingConfig
from .inputs import Problem


@dataclass
class SampleResult:
    """One sample of a problem, as recorded in `samples` of a JSON result."""

    sample: int
    seed: int
    answer: str | None
    fallback: bool
    completion_tokens: int
    finish_reason: str


@dataclass
class Result:
    """Everything known about one solved (or failed) problem; one JSON line."""

    id: str
    problem: str
    answer: str | None = None
    completion: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    model: dict = field(default_factory=dict)
    sampling: dict = field(default_factory=dict)
    fallback: bool = False
    check: dict | None = None
    error: str | None = None
    reference: str | None = None
    correct: bool | None = None
    support: str | None = None
    samples: list[dict] | None = None
    votes: list[dict] | None = None
    texts: list[str] = field(default_factory=list)  # every sample's text; not in JSON

    @property
    def answered(self) -> bool:
        return self.error is None and self.answer is not None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["texts"]
        for key in ("samples", "votes", "support", "reference", "correct"):
            if data[key] is None:
                del data[key]
        return data


@dataclass(frozen=True)
class SolveOptions:
    """What the solve flow needs beyond the engine and the sampling."""

    samples: int = 1
    think: bool = True
    check: bool = True
    check_timeout: float = 2.0
    stop_when_decided: bool = False


def error_result(problem: Problem, message: str, model: dict, sampling: SamplingConfig) -> Result:
    return Result(id=problem.id, problem=problem.text, error=message, model=model,
                  sampling=sampling.to_dict(), reference=problem.reference)


def solve(engine: Any, problem: Problem, sampling: SamplingConfig, options: SolveOptions,
          model: dict, on_event: Callable[[Any], None] | None = None) -> Result:
    """Solve one problem: K samples (K >= 1), the answer of each, a vote, a sympy check."""
    from . import answer as answers

    start = time.perf_counter()
    prompt = engine.render(problem.text, think=options.think)
    seeds = [sampling.seed + i for i in range(options.samples)]
    configs = [sampling.with_seed(s) for s in seeds]
    if options.samples == 1:
        completions = [engine.generate(prompt, configs[0], on_event=on_event)]
    elif options.stop_when_decided:
        completions = engine.generate_many(prompt, configs, on_event=on_event,
                                           stop_when=lambda done: decided(done, len(configs)))
    else:
        completions = engine.generate_many(prompt, configs, on_event=on_event)
    extractions = [answers.extract(c.text, complete=c.finish_reason == "stop") for c in completions]
    result = Result(id=problem.id, problem=problem.text, model=model,
                    sampling=sampling.to_dict(), reference=problem.reference)
    result.texts = [c.text for c in completions]
    result.prompt_tokens = completions[0].prompt_tokens
    result.completion_tokens = sum(c.completion_tokens for c in completions)
    if len(completions) == 1:
        only, ext = completions[0], extractions[0]
        result.answer, result.fallback = ext.answer, ext.fallback
        result.completion, result.finish_reason = only.text, only.finish_reason
    else:
        vote = answers.vote([e.answer for e in extractions], timeout=options.check_timeout)
        result.answer = vote.answer
        result.support = f"{vote.count}/{vote.total} samples" if vote.answer is not None else None
        result.samples = [asdict(SampleResult(c.sample, c.seed, e.answer, e.fallback,
                                              c.completion_tokens, c.finish_reason))
                          for c, e in zip(completions, extractions)]
        result.votes = [{"answer": g.answer, "count": g.count, "samples": list(g.samples)}
                        for g in vote.groups]
        winners = vote.groups[0].samples if vote.groups else ()
        best = completions[winners[0]] if winners else completions[0]  # shown for the vote
        result.completion, result.finish_reason = best.text, best.finish_reason
        result.fallback = bool(winners) and all(extractions[i].fallback for i in winners)
    if result.answer is not None and options.check:
        from . import verify

        chk = verify.check(problem.text, result.answer, timeout=options.check_timeout)
        result.check = {"status": chk.status, "reason": chk.reason}
    if problem.reference is not None and result.answer is not None:
        from .equivalence import equivalent

        result.correct = equivalent(problem.reference, result.answer, timeout=options.check_timeout)
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def decided(finished: list, total: int, timeout: float = 2.0) -> bool:
    """Early-stop rule of --stop-when-decided: stop once the leading answer among the finished
    samples has more votes than the runner-up could reach if every unfinished sample joined
    it (leader > runner-up + unfinished). The result is then the same as running all K."""
    from . import answer as answers

    votes = answers.vote([answers.extract(c.text, complete=c.finish_reason == "stop").answer
                          for c in finished if c.finish_reason in ("stop", "length")],
                         timeout=timeout)
    if not votes.groups:
        return False
    runner_up = votes.groups[1].count if len(votes.groups) > 1 else 0
    unfinished = total - sum(1 for c in finished if c.finish_reason in ("stop", "length"))
    return votes.groups[0].count > runner_up + unfinished
