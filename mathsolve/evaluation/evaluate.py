"""Evaluation: datasets, pass@k / maj@k, resumable result files that never lose a line."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mathsolve.answers.vote import VoteGroup
from mathsolve.config import SamplingConfig
from mathsolve.errors import InputError
from mathsolve.solving.inputs import Problem
from mathsolve.solving.loading import ModelInfo
from mathsolve.solving.solve import Result, SampleResult

# ---------------------------------------------------------------- resumable results file

def finished_ids(path: Path) -> set[str]:
    """Ids finished in a results file, which is made ready to append to (see prepare_resume)."""
    return prepare_resume(path)[0]


def prepare_resume(path: Path) -> tuple[set[str], int]:
    """(ids finished, records of errored problems removed) of a results file.

    A torn last line (killed mid-write) is cut off. Records of problems that errored are
    removed, by an atomic rewrite, so a rerun retries them and the file keeps one record per
    problem. Only records without an error count as finished.
    """
    if not path.exists():
        return set(), 0
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end != len(data):
        with open(path, "r+b") as fh:
            fh.truncate(end)
        data = data[:end]
    keep: list[bytes] = []
    done: set[str] = set()
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            rid = str(record["id"])
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{path}: line {n} is not a result record; use another --out") from None
        if not record.get("error"):
            done.add(rid)
            keep.append(line)
    dropped = sum(1 for line in data.splitlines() if line.strip()) - len(keep)
    if dropped:
        _rewrite(path, keep)
    return done, dropped


def _rewrite(path: Path, lines: list[bytes]) -> None:
    """Replace the file with `lines`, atomically: a kill leaves the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(b"".join(line + b"\n" for line in lines))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_records(path: Path) -> list[dict[str, Any]]:
    """One record per id (the last one written wins), in the order ids first appear."""
    if not path.exists():
        return []
    records: dict[str, dict[str, Any]] = {}
    for line in path.read_text("utf-8").split("\n"):  # not splitlines: JSON may hold U+2028
        if line.strip():
            record = json.loads(line)
            records[str(record.get("id"))] = record
    return list(records.values())


class ResultsFile:
    """Appends one JSON line per finished problem, flushed and fsynced before the next starts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8")

    def append(self, record: dict[str, Any]) -> None:
        # One write() of a whole line: a kill leaves either the line or a torn tail that
        # finished_ids() cuts off, never a duplicate.
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


# ---------------------------------------------------------------- one eval record

@dataclass(frozen=True)
class GradedSample:
    """One sample of an eval record: solving's SampleResult, graded against the reference."""

    sample: SampleResult
    correct: bool | None  # False without an answer; None: not comparable in time
    completion: str | None = None  # its text, with --save-completions


@dataclass(frozen=True)
class EvalRecord:
    """One problem of an eval: each sample graded, the vote, tokens, time (one results line,
    output.records.eval_record_json). Resuming reads the lines back as dicts (read_records)."""

    id: str
    problem: str
    reference: str | None
    answer: str | None  # the majority
    correct: bool
    n: int  # samples drawn (those a stop rule cancelled not counted)
    c: int  # of them correct
    no_answer: int
    budget_hits: int
    samples: list[GradedSample]
    votes: list[VoteGroup] | None
    confidence: float | None
    completion_tokens: int
    prompt_tokens: int
    seconds: float
    sampling: SamplingConfig
    model: ModelInfo
    error: str | None


def eval_record(result: Result, k: int, timeout: float, save_completions: bool,
                completions: list[str] | None = None) -> EvalRecord:
    """Per-problem record: each sample's answer and correctness, the vote, tokens, time."""
    from mathsolve.answers.equivalence import equivalent

    samples = result.samples or [SampleResult(
        0, result.sampling.seed, result.answer, result.fallback, result.completion_tokens,
        result.finish_reason, result.budget)]
    verdicts: dict[str, bool | None] = {}
    if result.answer is not None and result.correct is not None:
        verdicts[result.answer] = result.correct  # solve() already compared the majority
    texts: list[str | None] = list(completions) if save_completions and completions else []
    texts += [None] * (len(samples) - len(texts))
    graded = []
    for s, text in zip(samples, texts):
        ans = s.answer
        if ans is not None and ans not in verdicts:  # eval rows all have a reference
            verdicts[ans] = (None if result.reference is None
                             else equivalent(result.reference, ans, timeout=timeout))
        graded.append(GradedSample(s, verdicts.get(ans) if ans is not None else False, text))
    # Samples cancelled by --stop-when-decided were never drawn to the end: they count for
    # neither pass@k nor the no-answer share (the vote they could not change stands).
    drawn = [g for g in graded if g.sample.finish_reason != "cancelled"]
    majority = result.answer
    return EvalRecord(
        id=result.id, problem=result.problem, reference=result.reference, answer=majority,
        correct=(verdicts.get(majority) is True) if majority is not None else False,
        n=len(drawn), c=sum(1 for g in drawn if g.correct is True),
        no_answer=sum(1 for g in drawn if g.sample.answer is None),
        budget_hits=sum(1 for g in drawn if g.sample.budget),
        samples=graded, votes=result.votes, confidence=result.confidence,
        completion_tokens=result.completion_tokens, prompt_tokens=result.prompt_tokens,
        seconds=result.seconds, sampling=result.sampling, model=result.model,
        error=result.error)


# ---------------------------------------------------------------- summary

def subject_of(problem_id: str) -> str | None:
    """MATH ids look like `test/algebra/123.json`."""
    parts = problem_id.split("/")
    return parts[1] if len(parts) == 3 and parts[0] in ("test", "train") else None


@dataclass(frozen=True)
class Summary:
    problems: int
    samples: int
    accuracy: float  # mean over samples = pass@1
    pass_at: dict[int, float]
    maj: float
    no_answer: float
    errors: int
    tokens_per_problem: float
    seconds_per_problem: float
    samples_per_problem: float  # samples drawn (those a stop rule cancelled not counted)
    budget_hit: float  # share of drawn samples steered by --thinking-budget / --time-limit
    subjects: dict[str, tuple[int, float]]  # subject -> (problems, accuracy)


def summarise(records: Iterable[dict[str, Any]]) -> Summary:
    from mathsolve.evaluation.metrics import ks_for, pass_at_k

    records = list(records)
    rows = [r for r in records if not r.get("error")]
    errors = len(records) - len(rows)
    if not rows:
        return Summary(0, 0, 0.0, {}, 0.0, 0.0, errors, 0.0, 0.0, 0.0, 0.0, {})
    n_min = min(r["n"] for r in rows)
    pass_at = {k: sum(pass_at_k(r["n"], r["c"], k) for r in rows) / len(rows)
               for k in ks_for(n_min)}
    per_subject: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        subject = subject_of(str(r["id"]))
        if subject:
            per_subject[subject].append(r["c"] / r["n"])
    return Summary(
        problems=len(rows),
        samples=sum(r["n"] for r in rows),
        accuracy=sum(r["c"] / r["n"] for r in rows) / len(rows),
        pass_at=pass_at,
        maj=sum(1 for r in rows if r["correct"]) / len(rows),
        no_answer=sum(r["no_answer"] for r in rows) / sum(r["n"] for r in rows),
        errors=errors,
        tokens_per_problem=sum(r["completion_tokens"] for r in rows) / len(rows),
        seconds_per_problem=sum(r["seconds"] for r in rows) / len(rows),
        samples_per_problem=sum(r["n"] for r in rows) / len(rows),
        budget_hit=sum(r.get("budget_hits", 0) for r in rows) / max(1, sum(r["n"] for r in rows)),
        subjects={s: (len(v), sum(v) / len(v)) for s, v in sorted(per_subject.items())},
    )


def format_summary(s: Summary, k: int) -> str:
    lines = [f"problems: {s.problems} ({s.samples} samples, {s.errors} errored)",
             f"accuracy (pass@1, mean over samples): {s.accuracy:.2%}"]
    lines += [f"pass@{kk}: {v:.2%}" for kk, v in s.pass_at.items() if kk > 1]
    lines += [f"maj@{k}: {s.maj:.2%}", f"no answer: {s.no_answer:.2%} of samples",
              f"per problem: {s.samples_per_problem:.2f} samples, {s.tokens_per_problem:.0f} tokens, "
              f"{s.seconds_per_problem:.1f} s",
              f"budget hit: {s.budget_hit:.2%} of samples"]
    if s.subjects:
        width = max(len(name) for name in s.subjects)
        lines.append("subject".ljust(width) + "  problems  accuracy")
        lines += [f"{name.ljust(width)}  {n:>8}  {acc:>8.2%}" for name, (n, acc) in s.subjects.items()]
    return "\n".join(lines)


# ---------------------------------------------------------------- what is left to solve

def pending(problems: list[Problem], done: set[str], limit: int | None) -> list[Problem]:
    seen: set[str] = set()
    for p in problems:
        if p.id in seen:
            raise InputError(f"id {p.id!r} appears twice in the data; ids must be unique")
        seen.add(p.id)
    chosen = problems[:limit] if limit else problems
    return [p for p in chosen if p.id not in done]


# ---------------------------------------------------------------- grade

def grade_rows(rows: Iterable[tuple[int, Any]], timeout: float) -> Iterable[dict[str, Any]]:
    """Grade other models' outputs: each row needs `completion` and `reference` (or `answer`);
    an optional `finish_reason` ("length": the text was cut off, so only a box that closed after
    the reasoning counts) says how it ended.

    `reference_used` reports what was compared: the reference, or a solution's final answer.
    """
    from mathsolve.answers.grade import grade

    for n, row in rows:
        if isinstance(row, str):
            yield {"id": str(n), "extracted": None, "correct": None, "error": row}
            continue
        rid = str(row.get("id", n))
        completion, reference = row.get("completion"), row.get("reference", row.get("answer"))
        if not isinstance(completion, str) or reference is None:
            yield {"id": rid, "extracted": None, "correct": None,
                   "error": f"line {n} needs 'completion' (text) and 'reference'"}
            continue
        verdict = grade(completion, str(reference), complete=row.get("finish_reason") != "length",
                        timeout=timeout)
        # No answer at all is a wrong answer here (it counts against accuracy); null is kept
        # for answers that could not be compared in time.
        correct = verdict.correct if verdict.extracted is not None else False
        yield {"id": rid, "extracted": verdict.extracted, "fallback": verdict.fallback,
               "reference_used": verdict.reference, "correct": correct}
