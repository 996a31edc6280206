"""Checking answers against the problem: verified / refuted / unchecked, limits, injection."""

from __future__ import annotations

import time

import pytest

from mathsolve.answers.verify import check

CHECKS = [
    ("plain-equation-both-roots", "x^2=4", "2, -2", "verified"),
    ("plain-equation-misses-root", "x^2=4", "2", "refuted"),
    ("solve-phrasing-assignments", "Solve x^2=4", "x=2, x=-2", "verified"),
    ("latex-pm", "Solve $x^2 = 4$.", "\\pm 2", "verified"),
    ("latex-frac", "Solve $\\frac{x}{2}=3$", "6", "verified"),
    ("quadratic", "Solve x^2 - 5x + 6 = 0", "2, 3", "verified"),
    ("quadratic-subset", "Solve x^2 - 5x + 6 = 0", "3", "refuted"),
    ("quadratic-wrong-value", "Solve x^2 - 5x + 6 = 0", "2, 4", "refuted"),
    ("system-tuple", "2x+3y=7, x-y=1", "(2, 1)", "verified"),
    ("system-assignments", "2x+3y=7, x-y=1", "x=2, y=1", "verified"),
    ("system-swapped", "2x+3y=7, x-y=1", "x=1, y=2", "refuted"),
    ("arithmetic", "What is 12*7?", "84", "verified"),
    ("arithmetic-wrong", "what is 12*7", "85", "refuted"),
    ("arithmetic-answer-restates-the-sum", "Compute 3+4.", "3+4 = 7", "verified"),
    ("arithmetic-answer-restates-a-wrong-sum", "Compute 3+4.", "3+7 = 10", "refuted"),
    ("arithmetic-fraction", "Compute $\\frac{3}{4} + \\frac{1}{4} \\cdot 2$.", "\\frac{5}{4}", "verified"),
    ("equations-without-solve-intent", "If $x+y=10$ and $x-y=2$, what is $xy$?", "24", "unchecked"),
    ("function-definition", "Let f(x)=2x+1. Find f(3).", "7", "unchecked"),
    ("word-problem", "Janet has 3 apples and buys 2 more. How many now?", "5", "unchecked"),
    ("underdetermined", "Solve x+y=5", "x=2, y=3", "unchecked"),
    ("inequality", "Solve x > 2", "x>2", "unchecked"),
    ("unparseable-answer", "Solve x^2=4", "\\text{two roots}", "unchecked"),
]


@pytest.mark.parametrize("problem,answer,status", [c[1:] for c in CHECKS], ids=[c[0] for c in CHECKS])
def test_check_against_the_problem(problem, answer, status):
    result = check(problem, answer)
    assert result.status == status, result.reason
    assert result.reason


def test_refutation_says_which_solution_is_missing():
    assert "x = -2" in check("x^2=4", "2").reason


@pytest.mark.parametrize(
    "problem,answer",
    [("Solve $x^{9^{9^9}}=1$", "1"), ("What is $99999^{99999}$?", "1"), ("Solve " + "(" * 5000 + "x=1", "1")],
    ids=["power-tower", "big-power", "deep-parens"],
)
def test_hostile_problems_come_back_within_the_limit(problem, answer):
    start = time.monotonic()
    result = check(problem, answer, timeout=1.0)
    assert time.monotonic() - start < 3.0
    assert result.status == "unchecked"


INJECTION = "__import__('os').system('touch {path}')"


@pytest.mark.parametrize(
    "problem,answer",
    [
        ("Solve x^2=4", INJECTION),
        ("Solve x^2=4", "\\boxed{" + INJECTION + "}"),
        ("Solve " + INJECTION + " = 4", "2"),
        ("What is " + INJECTION + "?", "0"),
        ("Solve $x = " + INJECTION + "$", "x=" + INJECTION),
    ],
    ids=["answer", "boxed-answer", "problem-equation", "problem-arithmetic", "both"],
)
def test_injection_strings_are_never_executed(problem, answer, tmp_path):
    target = tmp_path / "pwned"
    fill = lambda s: s.replace("{path}", str(target))  # noqa: E731
    result = check(fill(problem), fill(answer))
    assert result.status != "verified"
    assert not target.exists()
