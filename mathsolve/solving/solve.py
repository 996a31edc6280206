"""Solve flow: one problem, prompt -> engine -> extraction -> check -> vote -> Result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from mathsolve.answers.equivalence import equivalent
from mathsolve.answers.extract import Extraction, extract
from mathsolve.answers.verify import Check
from mathsolve.answers.vote import Vote, VoteGroup, confidence, vote_confidence
from mathsolve.answers.vote import vote as vote_answers
from mathsolve.config import SamplingConfig, SolveOptions
from mathsolve.engine.protocol import BudgetHit, Completion, EngineProtocol, FinishReason, TextEvent
from mathsolve.solving.inputs import Problem
from mathsolve.solving.loading import ModelInfo

__all__ = ["FINISHED", "BudgetHit", "Check", "ModelInfo", "Result", "SampleResult", "SolveOptions",
           "VoteGroup", "error_result", "finish", "solve", "solve_many"]

PromptT = TypeVar("PromptT")
OnProblemEvent = Callable[[int, TextEvent], None]

FINISHED: tuple[FinishReason, ...] = ("stop", "length")  # samples that ran to their end; only they vote


@dataclass(frozen=True)
class SampleResult:
    """One sample of a problem (`samples` of a result with K > 1)."""

    sample: int
    seed: int
    answer: str | None
    fallback: bool
    completion_tokens: int
    finish_reason: FinishReason | None  # None only in an eval record of a problem that errored
    budget: BudgetHit | None = None  # where the budget was hit (None: it was not)


@dataclass
class Result:
    """Everything known about one solved (or failed) problem: typed parts; its JSON record is
    `to_json()` (output.records.result_json, the one place JSON is made).
    `votes` are the vote's groups with `samples` numbered among all K samples.
    """

    id: str
    problem: str
    answer: str | None = None
    completion: str | None = None
    finish_reason: FinishReason | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    model: ModelInfo = field(kw_only=True)
    sampling: SamplingConfig = field(kw_only=True)
    fallback: bool = False
    check: Check | None = None
    error: str | None = None
    reference: str | None = None
    correct: bool | None = None
    support: str | None = None
    confidence: float | None = None  # the vote's posterior that its leader is the majority
    budget: BudgetHit | None = None  # the shown sample's budget hit (None: not hit)
    samples: list[SampleResult] | None = None
    votes: list[VoteGroup] | None = None
    texts: list[str] = field(default_factory=list)  # every sample's text; not in JSON

    @property
    def answered(self) -> bool:
        return self.error is None and self.answer is not None

    def to_json(self) -> dict[str, Any]:
        """The record `mathsolve --json` prints for the same options and seed (made by
        output.records.result_json, where every JSON line mathsolve writes is made)."""
        from mathsolve.output.records import result_json

        return result_json(self)


def error_result(problem: Problem, message: str, model: ModelInfo,
                 sampling: SamplingConfig) -> Result:
    return Result(id=problem.id, problem=problem.text, error=message, model=model,
                  sampling=sampling, reference=problem.reference)


def sample_seeds(sampling: SamplingConfig, options: SolveOptions) -> list[SamplingConfig]:
    """Sample i draws with seed + i."""
    return [sampling.with_seed(sampling.seed + i) for i in range(options.samples)]


class VoteRule:
    """--stop-when-decided (the vote can no longer change) and/or --confidence P (the vote's
    confidence over the finished samples >= P) for one problem's K samples.

    `rule(finished)` says whether the samples still running may end now. `wanted(finished)` is
    the schedule: how many of the K samples should have started by now, the fewest that could
    make the rule hold if every one not finished yet agreed with the leading answer. So a vote
    at --confidence 0.95 starts 4 samples (4 agreeing answers reach 0.97) and starts more only
    once an answer disagrees; it depends on the finished answers alone, never on time. Each
    finished sample's answer is extracted once."""

    def __init__(self, options: SolveOptions) -> None:
        self.samples = options.samples
        self.exact = options.stop_when_decided
        self.threshold = options.confidence
        self.timeout = options.check_timeout
        self._answers: dict[int, str | None] = {}

    def _vote(self, done: list[Completion]) -> Vote:
        for c in done:
            if c.sample not in self._answers and c.finish_reason in FINISHED:
                self._answers[c.sample] = extract(c.text, complete=c.finish_reason == "stop").answer
        return vote_answers([self._answers[c.sample] for c in done if c.finish_reason in FINISHED],
                            timeout=self.timeout)

    def __call__(self, done: list[Completion]) -> bool:
        votes = self._vote(done)
        if self.exact and _decided(votes, done, self.samples):
            return True
        conf = vote_confidence(votes) if self.threshold is not None else None
        return conf is not None and self.threshold is not None and conf >= self.threshold

    def wanted(self, done: list[Completion]) -> int:
        votes = self._vote(done)
        finished = votes.total
        leader = votes.groups[0].count if votes.groups else 0
        runner_up = votes.groups[1].count if len(votes.groups) > 1 else 0
        left = self.samples - finished
        more = [left]
        if self.exact:  # leader + m > runner_up + (left - m): m more agreeing samples decide it
            more.append(max(0, (runner_up + left - leader) // 2 + 1))
        if self.threshold is not None:
            against = max(runner_up, finished - sum(g.count for g in votes.groups))
            more.append(next((m for m in range(left + 1) if confidence(leader + m, against) >= self.threshold),
                             left))
        return min(self.samples, finished + min(more))


def stop_rule(options: SolveOptions) -> VoteRule | None:
    """The problem's vote rule (VoteRule), or None where no rule applies (K = 1, or neither
    --stop-when-decided nor --confidence)."""
    if options.samples == 1 or not (options.stop_when_decided or options.confidence is not None):
        return None
    return VoteRule(options)


def solve(engine: EngineProtocol[PromptT], problem: Problem, sampling: SamplingConfig,
          options: SolveOptions, model: ModelInfo,
          on_event: Callable[[TextEvent], None] | None = None) -> Result:
    """Solve one problem: K samples (K >= 1), the answer of each, a vote, a sympy check."""
    start = time.perf_counter()
    prompt = engine.render(problem.text, think=options.think)
    configs = sample_seeds(sampling, options)
    rule = stop_rule(options)
    if options.samples == 1:
        completions = [engine.generate(prompt, configs[0], on_event=on_event)]
    elif rule is not None:
        completions = engine.generate_many(prompt, configs, on_event=on_event, stop_when=rule,
                                           wanted=rule.wanted)
    else:
        completions = engine.generate_many(prompt, configs, on_event=on_event)
    return finish(problem, completions, sampling, options, model, start)


def solve_many(engine: EngineProtocol[PromptT], problems: list[Problem],
               seeding: Callable[[Problem], SamplingConfig], options: SolveOptions,
               model: ModelInfo, on_result: Callable[[int, Result], None], *,
               parallel: int | None = None, on_event: OnProblemEvent | None = None) -> None:
    """Several problems in flight (the local engine: their samples in one batch; a server:
    several problems' requests at once): on_result(i, result) for problems[i] as soon as it is
    finished, in the order they finish. A problem that cannot start (its prompt does not fit,
    say) or that the server fails gets its error Result, and the rest go on.
    `on_event(i, event)` sees problems[i]'s text as it is drawn (the API stops a batch from
    there: an exception it raises ends the run as Ctrl-C does)."""
    from mathsolve.engine.protocol import Job
    from mathsolve.errors import MathsolveError

    jobs = []
    for index, problem in enumerate(problems):
        sampling = seeding(problem)
        if problem.error:
            on_result(index, error_result(problem, problem.error, model, sampling))
            continue
        rule = stop_rule(options)
        try:
            jobs.append(engine.job(engine.render(problem.text, think=options.think), sample_seeds(sampling, options),
                                   on_event=_for_problem(on_event, index), stop_when=rule,
                                   wanted=rule.wanted if rule else None, tag=(index, sampling)))
        except MathsolveError as exc:
            on_result(index, error_result(problem, str(exc), model, sampling))

    def done(job: Job) -> None:
        index, sampling = cast("tuple[int, SamplingConfig]", job.tag)  # the tag set above
        if job.error is not None:
            on_result(index, error_result(problems[index], job.error, model, sampling))
            return
        # seconds count from its first sample's admission
        on_result(index, finish(problems[index], job.completions(), sampling, options, model,
                                job.start))

    engine.run(jobs, done, parallel=parallel)


def _for_problem(on_event: OnProblemEvent | None,
                 index: int) -> Callable[[TextEvent], None] | None:
    if on_event is None:
        return None
    return lambda event: on_event(index, event)


def finish(problem: Problem, completions: list[Completion], sampling: SamplingConfig,
           options: SolveOptions, model: ModelInfo, start: float) -> Result:
    """Completions -> Result: every sample's answer, the vote of the finished ones, the check.

    Samples that did not finish (cancelled by --stop-when-decided, interrupted) have no
    answer: they vote for nothing and count in no support.
    """
    extractions = [extract(c.text, complete=c.finish_reason == "stop")
                   if c.finish_reason in FINISHED else Extraction(None)
                   for c in completions]
    result = Result(id=problem.id, problem=problem.text, model=model, sampling=sampling,
                    reference=problem.reference)
    result.texts = [c.text for c in completions]
    result.prompt_tokens = completions[0].prompt_tokens
    result.completion_tokens = sum(c.completion_tokens for c in completions)
    if len(completions) == 1:
        only, ext = completions[0], extractions[0]
        result.answer, result.fallback = ext.answer, ext.fallback
        result.completion, result.finish_reason = only.text, only.finish_reason
        result.budget = only.budget
    else:
        voters = [i for i, c in enumerate(completions) if c.finish_reason in FINISHED]
        vote = vote_answers([extractions[i].answer for i in voters], timeout=options.check_timeout)
        result.answer = vote.answer
        if vote.answer is not None:  # of the K samples asked for; unfinished ones never agree
            result.support = f"{vote.count}/{len(completions)} samples"
            result.confidence = round(vote_confidence(vote) or 0.0, 4)
        result.samples = [SampleResult(c.sample, c.seed, e.answer, e.fallback, c.completion_tokens,
                                       c.finish_reason, c.budget)
                          for c, e in zip(completions, extractions)]
        # the groups' samples renumbered from the voters' order to the K samples'
        result.votes = [VoteGroup(g.answer, g.count, tuple(voters[i] for i in g.samples))
                        for g in vote.groups]
        winners = [voters[i] for i in vote.groups[0].samples] if vote.groups else []
        best = completions[winners[0]] if winners else completions[0]  # shown for the vote
        result.completion, result.finish_reason = best.text, best.finish_reason
        result.budget = best.budget
        result.fallback = bool(winners) and all(extractions[i].fallback for i in winners)
    if result.answer is not None and options.check:
        from mathsolve.answers import verify

        result.check = verify.check(problem.text, result.answer, timeout=options.check_timeout)
    if problem.reference is not None and result.answer is not None:
        result.correct = equivalent(problem.reference, result.answer, timeout=options.check_timeout)
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def _decided(votes: Vote, finished: list[Completion], total: int) -> bool:
    """--stop-when-decided: the leading answer among the finished samples has more votes than
    the runner-up could reach if every unfinished sample joined it (leader > runner-up +
    unfinished); the result is then the one all K would give."""
    if not votes.groups:
        return False
    runner_up = votes.groups[1].count if len(votes.groups) > 1 else 0
    unfinished = total - sum(1 for c in finished if c.finish_reason in FINISHED)
    return votes.groups[0].count > runner_up + unfinished
