"""Long reasoning traces graded right (issue 23): infinity, thinking, final statements, cut-off rows.

Each kind has a right and a wrong (or no-answer) variant, graded by the library and by
`mathsolve grade` end to end with the rows' `finish_reason`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cases import cases

from mathsolve.answers.equivalence import equivalent
from mathsolve.answers.grade import grade
from mathsolve.answers.vote import vote

REASONING = "Let me think. We have $2 + 3 = 5$. " * 20  # a long stretch of reasoning

# (id, reference, completion, finish_reason, extracted, correct)
TRACES = [
    # infinity equals only infinity of the same sign
    ("infinity-vs-one-point-zero", "1.0", "So the limit is $\\boxed{\\infty}$.", "stop", "\\infty", False),
    ("minus-infinity-vs-one-point-zero", "1.0", "So it is $\\boxed{-\\infty}$.", "stop", "-\\infty", False),
    ("infinity-vs-infinity", "\\infty", "So the limit is $\\boxed{\\infty}$.", "stop", "\\infty", True),
    ("infinity-vs-oo", "\\infty", "The sum diverges: \\boxed{oo}", "stop", "oo", True),
    ("infinity-vs-minus-infinity", "\\infty", "So it is $\\boxed{-\\infty}$.", "stop", "-\\infty", False),
    # thinking is not an answer
    ("answer-after-think", "5", REASONING + "</think>\n\nThe answer is $\\boxed{5}$.", "stop", "5", True),
    ("box-only-in-thinking", "5", REASONING + "so \\boxed{5}.\n</think>\n\nI could not decide.", "stop", None,
     False),
    ("stated-only-in-thinking", "5", REASONING + "So the answer is 5.\n</think>\n\nDone.", "stop", None, False),
    ("unclosed-think", "5", "<think>" + REASONING + "so \\boxed{5}", "stop", None, False),
    ("wrong-box-after-think", "5", "<think>\\boxed{5}</think>\n\n$\\boxed{6}$", "stop", "6", False),
    # a fallback statement counts only when it is the final statement
    ("tentative-statement", "5", REASONING + "So, the answer is 5.\n\nBut wait, I think I'm making a mistake. "
     + REASONING, "stop", None, False),
    ("final-statement", "5", REASONING + "So, the answer is 5.", "stop", "5", True),
    ("final-statement-wrong", "5", REASONING + "So, the answer is 6.", "stop", "6", False),
    ("final-answer-minerva", "5", REASONING + "Final Answer: The final answer is $5$. I hope it is correct.", "stop",
     "5", True),
    # a row cut off by length: only a box that closed after the reasoning counts
    ("cut-off-mid-reasoning", "5", REASONING + "So, the answer is 5.", "length", None, False),
    ("cut-off-after-a-closed-box", "5", REASONING + "</think>\n\nThus $\\boxed{5}$ and", "length", "5", True),
    ("cut-off-box-in-thinking", "5", "<think>" + REASONING + "\\boxed{5} hmm", "length", None, False),
    # a loop that ends inside a box: no answer, not an earlier box
    ("loop-inside-a-box", "5", "\\boxed{5} so \\boxed{\\frac{10}{2} = 5 = 5 = 5 = 5 = 5 = 5", "length", None, False),
    ("loop-inside-a-box-stop", "5", "\\boxed{5} so \\boxed{\\frac{10}{2} = 5 = 5 = 5", "stop", None, False),
]


@cases("ref,completion,finish,extracted,correct", TRACES)
def test_traces_are_graded_by_the_rules(ref, completion, finish, extracted, correct):
    got = grade(completion, ref, complete=finish != "length")
    assert got.extracted == extracted
    assert (got.correct is True) is correct


def test_the_grade_command_reads_finish_reason_and_keeps_reference_used(tmp_path):
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps({"id": i, "reference": r, "completion": c, "finish_reason": f}) + "\n"
                           for i, r, c, f, _, _ in TRACES), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "mathsolve", "grade", str(src)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["id"], r["extracted"], r["correct"]) for r in rows] == [(t[0], t[4], t[5]) for t in TRACES]
    assert all(r["reference_used"] == t[1] for r, t in zip(rows, TRACES))  # kept with no answer too


def test_a_length_row_without_finish_reason_is_graded_as_finished(tmp_path):
    """The same cut-off text: with `finish_reason: length` its statement is no answer; without
    the field it is read as a finished text, whose last statement is final."""
    text = REASONING + "So, the answer is 5."
    src = tmp_path / "rows.jsonl"
    src.write_text(json.dumps({"id": "a", "reference": "5", "completion": text, "finish_reason": "length"}) + "\n"
                   + json.dumps({"id": "b", "reference": "5", "completion": text}) + "\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "mathsolve", "grade", str(src)],
                          capture_output=True, text=True, timeout=120)
    assert [json.loads(line)["correct"] for line in proc.stdout.splitlines()] == [False, True]


@pytest.mark.parametrize(("a", "b", "same"), [
    ("1.0", "\\infty", False), ("1", "\\infty", False), ("1.0", "-\\infty", False), ("2.5", "\\infty", False),
    ("\\infty", "oo", True), ("\\infty", "inf", True), ("\\infty", "∞", True), ("\\infty", "+\\infty", True),
    ("-\\infty", "-oo", True), ("\\infty", "\\text{infinity}", True), ("\\infty", "-\\infty", False),
    ("(-\\infty, 3)", "(-\\infty,3)", True), ("(-\\infty, 3)", "(-\\infty, 4)", False),
])
def test_infinity_equals_only_infinity_of_the_same_sign(a, b, same):
    assert equivalent(a, b) is same
    assert equivalent(b, a) is same


def test_the_math_verify_path_gives_infinity_no_tolerance():
    """The worker's numeric guard: oo - 1.0 is oo, which no relative tolerance may accept."""
    from mathsolve.answers.equivalence import math_verify_equal

    assert math_verify_equal("1.0", "\\infty") is False
    assert math_verify_equal("\\infty", "\\infty") is True


def test_the_vote_groups_infinity_by_sign():
    result = vote(["\\infty", "1.0", "-\\infty", "oo", "1"])
    groups = {g.answer: g.samples for g in result.groups}
    assert groups == {"\\infty": (0, 3), "1.0": (1, 4), "-\\infty": (2,)}
