"""Answers: grade any completion against a dataset reference (an answer or a whole solution)."""

from __future__ import annotations

from dataclasses import dataclass

from mathsolve.answers.equivalence import equivalent
from mathsolve.answers.extract import extract, reference_answer
from mathsolve.config import CHECK_TIMEOUT_S


@dataclass(frozen=True)
class Grade:
    extracted: str | None
    correct: bool | None  # None: no answer, or not comparable within the time limit
    fallback: bool = False  # the answer came from "final answer is ..." etc., not a box
    reference: str | None = None  # what the answer was compared with (see reference_answer)


def grade(completion: str, reference: str, *, complete: bool = True,
          timeout: float = CHECK_TIMEOUT_S) -> Grade:
    """Extract the final answer of `completion` and compare it with `reference`'s answer."""
    ref = reference_answer(reference)
    found = extract(completion, complete)
    if found.answer is None:
        return Grade(None, None, reference=ref)
    return Grade(found.answer, equivalent(ref, found.answer, timeout=timeout), found.fallback, ref)
