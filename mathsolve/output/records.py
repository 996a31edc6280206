"""Output: the JSON form of typed records; every JSON line mathsolve writes is made here.

A solve's Result (`mathsolve --json`, `Result.to_json()`), an eval record (the results file)
and an eval summary (`eval --json`) are dataclasses of the layers below; this module is the
one place that turns them into JSON objects, with the keys in the order of the records
mathsolve has always written (a resumed eval reads the old lines back as they are).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the record types, for annotations: solving's Result.to_json() imports this module
    from mathsolve.answers.verify import Check
    from mathsolve.answers.vote import VoteGroup
    from mathsolve.config import SamplingConfig
    from mathsolve.engine.protocol import BudgetHit
    from mathsolve.evaluation.evaluate import EvalRecord, GradedSample, Summary
    from mathsolve.solving.loading import ModelInfo
    from mathsolve.solving.solve import Result, SampleResult

# Keys of a Result left out of its JSON when None (K = 1 has no samples, votes, support).
_OPTIONAL = ("samples", "votes", "support", "confidence", "reference", "correct")


def model_json(info: ModelInfo) -> dict[str, Any]:
    """{"path", "source", "name"} for a server, {"path", "source", "quant"} for a GGUF."""
    if info.server:
        return {"path": info.path, "source": info.source, "name": info.name}
    return {"path": info.path, "source": info.source, "quant": info.quant}


def sampling_json(sampling: SamplingConfig) -> dict[str, Any]:
    """Every sampling setting, in SamplingConfig's field order."""
    return asdict(sampling)


def check_json(check: Check | None) -> dict[str, Any] | None:
    return None if check is None else {"status": check.status, "reason": check.reason}


def budget_json(hit: BudgetHit | None) -> dict[str, Any] | None:
    return None if hit is None else {"hit": hit.hit, "at": hit.at, "in_think": hit.in_think}


def sample_json(sample: SampleResult) -> dict[str, Any]:
    return {"sample": sample.sample, "seed": sample.seed, "answer": sample.answer,
            "fallback": sample.fallback, "completion_tokens": sample.completion_tokens,
            "finish_reason": sample.finish_reason, "budget": budget_json(sample.budget)}


def votes_json(votes: list[VoteGroup] | None) -> list[dict[str, Any]] | None:
    if votes is None:
        return None
    return [{"answer": g.answer, "count": g.count, "samples": list(g.samples)} for g in votes]


def result_json(result: Result) -> dict[str, Any]:
    """One solved problem's JSON record; `texts` (every sample's text) is not in it."""
    data: dict[str, Any] = {
        "id": result.id, "problem": result.problem, "answer": result.answer,
        "completion": result.completion, "finish_reason": result.finish_reason,
        "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
        "seconds": result.seconds, "model": model_json(result.model),
        "sampling": sampling_json(result.sampling), "fallback": result.fallback,
        "check": check_json(result.check), "error": result.error,
        "reference": result.reference, "correct": result.correct, "support": result.support,
        "confidence": result.confidence, "budget": budget_json(result.budget),
        "samples": None if result.samples is None else [sample_json(s) for s in result.samples],
        "votes": votes_json(result.votes),
    }
    for key in _OPTIONAL:
        if data[key] is None:
            del data[key]
    return data


def graded_sample_json(sample: GradedSample) -> dict[str, Any]:
    data = {**sample_json(sample.sample), "correct": sample.correct}
    if sample.completion is not None:  # --save-completions
        data["completion"] = sample.completion
    return data


def eval_record_json(record: EvalRecord) -> dict[str, Any]:
    """One line of an eval results file (evaluate.read_records reads it back as a dict)."""
    return {
        "id": record.id, "problem": record.problem, "reference": record.reference,
        "answer": record.answer, "correct": record.correct, "n": record.n, "c": record.c,
        "no_answer": record.no_answer, "budget_hits": record.budget_hits,
        "samples": [graded_sample_json(s) for s in record.samples],
        "votes": votes_json(record.votes), "confidence": record.confidence,
        "completion_tokens": record.completion_tokens, "prompt_tokens": record.prompt_tokens,
        "seconds": record.seconds, "sampling": sampling_json(record.sampling),
        "model": model_json(record.model), "error": record.error,
    }


def summary_json(summary: Summary) -> dict[str, Any]:
    """`mathsolve eval --json`: the summary, pass@k keyed by k as text."""
    return {**summary.__dict__, "pass_at": {str(k): v for k, v in summary.pass_at.items()},
            "subjects": {s: {"problems": n, "accuracy": a}
                         for s, (n, a) in summary.subjects.items()}}
