"""Grading other models' output as the field's own tests expect (issue 16, grading).

tests/data/grading_mathverify.jsonl holds cases adapted from huggingface/Math-Verify's own
test suite (Apache-2.0, https://github.com/huggingface/Math-Verify, tests/ at commit
5d148cfaaf99): every parametrized (gold, pred, expected) case of test_numina_cases,
test_open_thoughts, test_boxed, test_yujianll (test_string_extraction), test_strict and
test_all's test_math_extraction_edge_cases, test_math_extraction_additional_cases and
test_latex_notation_math. Each row names its origin in `source`. Adaptation: gold is the
`reference`, verbatim; pred is the `completion`, verbatim when it holds a box or is prose, and
put in a box when it is a bare answer (`$(3,2)$`), since mathsolve grades a completion's
final answer. Two expectations are corrected, each saying why in `source`: `1 - 1/e` is not
`1 + 1/e`, and the strict=False row for `f(x)` against `f(y)` is graded as Math-Verify's
default strict mode. Four predictions state no answer at all (no box, no answer line): rows
marked `known_miss`, which mathsolve does not guess (never a false positive: all expect true).

Below the table: each kind of reference the issue names, with right and wrong answers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cases import cases, without_both_verdicts

from mathsolve.answers.extract import extract, reference_answer
from mathsolve.answers.grade import grade
from mathsolve.answers.vote import vote

TABLE = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "grading_mathverify.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
GRADED = [c for c in TABLE if "known_miss" not in c]


def test_table_is_math_verify_cases_with_their_origin():
    assert len({c["id"] for c in TABLE}) == len(TABLE) == 151
    assert all(isinstance(c["expected"], bool) for c in TABLE)
    assert all(c["source"].startswith("Math-Verify tests/") and "(Apache-2.0)" in c["source"] for c in TABLE)
    corrected = [c["id"] for c in TABLE if "corrected to false" in c["source"]]
    assert sorted(corrected) == ["mv/strict_variable_comparison/1", "mv/string_extraction/9"]
    assert {c["expected"] for c in TABLE} == {True, False}


def test_known_misses_are_predictions_without_a_stated_answer():
    misses = [c for c in TABLE if "known_miss" in c]
    assert [c["id"] for c in misses] == [
        "mv/math_extraction_edge_cases/0", "mv/math_extraction_edge_cases/1",
        "mv/math_extraction_edge_cases/2", "mv/math_extraction_additional_cases/8",
    ]
    assert all(c["expected"] is True for c in misses)  # a miss there can never be a false positive


@pytest.mark.parametrize("case", GRADED, ids=[c["id"] for c in GRADED])
def test_math_verify_case_is_graded_as_its_test_expects(case):
    assert (grade(case["completion"], case["reference"]).correct is True) is case["expected"]


def test_agreement_and_no_false_positives_over_the_table():
    verdicts = [grade(c["completion"], c["reference"]).correct is True for c in TABLE]
    agree = sum(v is c["expected"] for v, c in zip(verdicts, TABLE))
    false_positives = [c["id"] for v, c in zip(verdicts, TABLE) if v and not c["expected"]]
    assert not false_positives
    assert agree >= len(TABLE) - 4  # 147 of 151: only the known misses


def _boxed(answer: str) -> str:
    return f"Putting it together, the answer is $\\boxed{{{answer}}}$."


SUM_SOLUTION = (
    "Maria buys 12 pencils on Monday and 30 more on Tuesday. Adding the two purchases, "
    "the total number of pencils she has is $12 + 30 = 42$."
)
MILES_SOLUTION = (
    "The train covers 60 miles in the first hour and 45 miles in the second hour. So the "
    "distance it travels in the two hours together is 105 miles."
)
CIRCLE_SOLUTION = (
    "We complete the square in both variables and move the constant to the right side of "
    "the equation. The circle we are looking for is therefore $x^2 + y^2 = 25$."
)
MINERVA_SOLUTION = (
    "The stock keeps $90\\%$ of its value on Monday and $80\\%$ of that on Tuesday, so it keeps "
    "$72\\%$ in all. Final Answer: The final answer is $28\\%$. I hope it is correct. Note: the "
    "solution above was checked again and it agrees with the first computation of the loss."
)
IN_WORDS = "Player A wins when the number of coins is a multiple of 4"  # an answer, not a solution
NO_BO = "\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}"
PROSE_SOLUTION = (
    "We count 7 of them in the first row. Each of those has two more neighbours than before, "
    "which is what we wanted to show about the whole arrangement of the chairs."
)

# (id, reference, completion, verdict): each kind of reference issue 16 names, right and wrong.
CATEGORIES = [
    # references that name what they give: a ratio or a length of named segments
    ("named-ratio", "\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}", _boxed("\\frac{1}{\\sqrt{6}}"), True),
    ("named-ratio-rationalised", "\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}", _boxed("\\frac{\\sqrt{6}}{6}"), True),
    ("named-ratio-rationalised-wrong", "\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}", _boxed("\\frac{\\sqrt{6}}{3}"), False),
    ("named-ratio-wrong", "\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}", _boxed("\\sqrt{6}"), False),
    ("named-ratio-named-too", NO_BO, _boxed("\\frac{NO}{BO} = \\frac{\\sqrt6}{6}"), True),
    ("named-ratio-named-too-wrong", NO_BO, _boxed("\\frac{NO}{BO} = \\frac{1}{6}"), False),
    ("named-length", "|AB|=1", _boxed("1"), True),
    ("named-length-wrong", "|AB|=1", _boxed("2"), False),
    ("named-length-in-completion", "\\sqrt{2}", _boxed("|AB| = \\sqrt 2"), True),
    ("named-length-in-completion-wrong", "\\sqrt{2}", _boxed("|AB| = 2"), False),
    ("vector-length", "\\|\\vec{v}\\|=5", _boxed("5"), True),
    ("vector-length-wrong", "\\|\\vec{v}\\|=5", _boxed("25"), False),
    # ... but an absolute value or a ratio of variables is an equation, not a name
    ("absolute-value-equation", "|x|=3", _boxed("|x| = 3"), True),
    ("absolute-value-equation-wrong", "|x|=3", _boxed("3"), False),
    ("variable-ratio-equation", "\\frac{x}{y}=2", _boxed("\\frac{x}{y} = 2"), True),
    ("variable-ratio-equation-wrong", "\\frac{x}{y}=2", _boxed("2"), False),
    # solution sets written as assignments, against tuples, in both directions and orders
    ("assignments-vs-tuples", "p=5,q=2;p=7,q=2", _boxed("(5,2),(7,2)"), True),
    ("assignments-vs-tuples-other-order", "p=5,q=2;p=7,q=2", _boxed("(7, 2), (5, 2)"), True),
    ("assignments-vs-tuples-other-order-wrong", "p=5,q=2;p=7,q=2", _boxed("(7, 2), (5, 3)"), False),
    ("assignments-vs-tuples-wrong", "p=5,q=2;p=7,q=2", _boxed("(2,5),(2,7)"), False),
    ("assignments-vs-tuples-subset", "p=5,q=2;p=7,q=2", _boxed("(5,2)"), False),
    ("tuples-vs-assignments", "(5,2),(7,2)", _boxed("p=5,q=2;p=7,q=2"), True),
    ("tuples-vs-assignments-in-words", "(5,2),(7,2)", _boxed("p=7, q=2 \\text{ and } p=5, q=2"), True),
    ("tuples-vs-assignments-in-words-wrong", "(5,2),(7,2)", _boxed("p=7, q=2 \\text{ and } p=5, q=3"), False),
    ("tuples-vs-assignments-wrong", "(5,2),(7,2)", _boxed("p=5,q=7;p=2,q=2"), False),
    ("assignments-by-name", "p=5,q=2;p=7,q=2", _boxed("q=2,p=7;q=2,p=5"), True),
    ("assignments-by-name-wrong", "p=5,q=2;p=7,q=2", _boxed("p=2,q=5;p=2,q=7"), False),
    ("one-solution-by-name", "x = 2, y = 3", _boxed("y = 3, x = 2"), True),
    ("one-solution-by-name-wrong", "x = 2, y = 3", _boxed("x = 3, y = 2"), False),
    ("subscripted-names", "a_3 = 2, a_{37} = 19", _boxed("a_{37} = 19, \\quad a_3 = 2"), True),
    ("subscripted-names-wrong", "a_3 = 2, a_{37} = 19", _boxed("a_3 = 19, a_{37} = 2"), False),
    ("one-solution-as-values", "x = -5,\\ p = \\frac{14}{3}", _boxed("-5, \\frac{14}{3}"), True),
    ("one-solution-as-values-wrong", "x = -5,\\ p = \\frac{14}{3}", _boxed("-5, \\frac{3}{14}"), False),
    # functions named with another variable: the same function (a name before a value is a
    # label, so the function's letter may differ too); a bare f(x) binds nothing
    ("function-other-argument", "f(x)=2x+1", _boxed("g(t)=2t+1"), True),
    ("function-other-argument-wrong", "f(x)=2x+1", _boxed("g(t)=2t+2"), False),
    ("function-same-name", "f(x)=2x+1", _boxed("f(t)=2t+1"), True),
    ("function-same-name-wrong", "f(x)=2x+1", _boxed("f(t)=t+1"), False),
    ("function-free-letter", "f(x)=2x+1", _boxed("f(x)=2x+1"), True),
    ("function-free-letter-wrong", "f(x)=2x+1", _boxed("g(t)=2x+1"), False),  # constant in t
    ("function-commands-kept", "f(x) = \\sin x + x", _boxed("f(t) = \\sin t + t"), True),
    ("function-commands-kept-wrong", "f(x) = \\sin x + x", _boxed("f(t) = \\cos t + t"), False),
    ("function-two-arguments", "f(x, y) = x - y", _boxed("f(a, b) = a - b"), True),
    ("function-two-arguments-wrong", "f(x, y) = x - y", _boxed("f(a, b) = b - a"), False),
    ("functions-listed", "W(n) = 1 \\text{ and } W(n) = -1", _boxed("W(x)=1orW(x)=-1"), True),
    ("functions-listed-wrong", "W(n) = 1 \\text{ and } W(n) = -1", _boxed("W(x)=1orW(x)=2"), False),
    ("function-body-only", "f(n) = n^2", _boxed("n^2"), True),
    ("function-body-only-wrong", "f(n) = n^2", _boxed("x^2"), False),
    ("bare-application", "f(x)", _boxed("f(x)"), True),
    ("bare-application-wrong", "f(x)", _boxed("f(y)"), False),
    # references with several boxes joined by words or separators
    ("boxes-and", "\\boxed{3} and \\boxed{5}", _boxed("3, 5"), True),
    ("boxes-and-subset", "\\boxed{3} and \\boxed{5}", _boxed("5"), False),
    ("boxes-comma", "\\boxed{3}, \\boxed{5}", _boxed("5, 3"), True),
    ("boxes-comma-wrong", "\\boxed{3}, \\boxed{5}", _boxed("3, 6"), False),
    ("boxes-or-text", "$x=\\boxed{3}$ \\text{ or } $x=\\boxed{5}$", _boxed("x = 5 \\text{ or } x = 3"), True),
    ("boxes-or-text-wrong", "$x=\\boxed{3}$ \\text{ or } $x=\\boxed{5}$", _boxed("x = 5"), False),
    ("boxes-units-and", "\\boxed{1} papers and \\boxed{2} bins", _boxed("1, 2"), True),
    ("boxes-units-and-wrong", "\\boxed{1} papers and \\boxed{2} bins", _boxed("2"), False),
    ("boxes-divider", "$\\boxed{35} ++++++ \\boxed{4}$", _boxed("35, 4"), True),
    ("boxes-divider-wrong", "$\\boxed{35} ++++++ \\boxed{4}$", _boxed("4"), False),
    ("boxes-escaped-twice", "$\\\\boxed{35} ++++++ \\\\boxed{4}$", _boxed("35, 4"), True),
    ("boxes-escaped-twice-wrong", "$\\\\boxed{35} ++++++ \\\\boxed{4}$", _boxed("35, 5"), False),
    ("boxes-in-prose", "\\boxed{1} no no no no no \\boxed{2}", _boxed("2"), True),  # words, no "and": last box
    ("boxes-in-prose-wrong", "\\boxed{1} no no no no no \\boxed{2}", _boxed("1, 2"), False),
    ("completion-boxes-for-parts", "(3, 3), (1, 1)",
     "$$\\boxed{(3, 3)} \\text{ for part (a) and } \\boxed{(1, 1)}$$", True),
    ("completion-boxes-for-parts-wrong", "(3, 3), (1, 1)",
     "$$\\boxed{(3, 3)} \\text{ for part (a) and } \\boxed{(1, 2)}$$", False),
    # a reference that is a whole solution without a box: its stated answer or last value
    ("solution-last-expression", SUM_SOLUTION, _boxed("42"), True),
    ("solution-last-expression-wrong", SUM_SOLUTION, _boxed("30"), False),
    ("solution-last-number", MILES_SOLUTION, _boxed("105"), True),
    ("solution-last-number-wrong", MILES_SOLUTION, _boxed("45"), False),
    ("solution-last-equation", CIRCLE_SOLUTION, _boxed("x^2+y^2=25"), True),
    ("solution-last-equation-wrong", CIRCLE_SOLUTION, _boxed("25"), False),
    ("solution-stated-answer", MINERVA_SOLUTION, _boxed("28\\%"), True),
    ("solution-stated-answer-wrong", MINERVA_SOLUTION, _boxed("72\\%"), False),
    ("solution-ending-in-prose", PROSE_SOLUTION, _boxed(PROSE_SOLUTION), True),  # used as written
    ("solution-ending-in-prose-wrong", PROSE_SOLUTION, _boxed("7"), False),
]


@cases("ref,completion,verdict", CATEGORIES)
def test_each_kind_of_reference_is_graded_right(ref, completion, verdict):
    assert grade(completion, ref).correct is verdict


def test_every_category_case_has_a_right_and_a_wrong_variant():
    assert not without_both_verdicts(CATEGORIES)


@pytest.mark.parametrize("ref,used", [
    (SUM_SOLUTION, "42"),
    (MILES_SOLUTION, "105"),
    (CIRCLE_SOLUTION, "x^2 + y^2 = 25"),
    (MINERVA_SOLUTION, "28\\%"),
    (PROSE_SOLUTION, PROSE_SOLUTION),
    ("\\boxed{1} papers and \\boxed{2} bins", "1, 2"),
    ("$\\\\boxed{35} ++++++ \\\\boxed{4}$", "35, 4"),
    ("\\\\boxed{W(n) = 1 \\\\text{ and } W(n) = -1", "\\boxed{W(n) = 1 \\text{ and } W(n) = -1"),
    (IN_WORDS, IN_WORDS),
], ids=["sum", "miles", "circle", "minerva", "prose", "units-and", "escaped-twice", "unclosed-escaped", "in-words"])
def test_reference_answer_reports_what_a_reference_gives(ref, used):
    assert reference_answer(ref) == used
    assert grade("\\boxed{0}", ref).reference == used


@pytest.mark.parametrize("completion,answer", [
    ("Final Answer: The largest $n$ is 34.", "34"),
    ("So it took three steps.\nAnswer: Jane started growing Sphere 3 hours ago.", "3"),
    ("Answer: The probability is 3/4.", "3/4"),
    ("Answer: It takes 3 more than half of them.", "It takes 3 more than half of them"),
    ("Answer: The answer is not 5 but 6.", "The answer is not 5 but 6"),
])
def test_an_answer_line_written_as_a_sentence_states_its_value(completion, answer):
    assert extract(completion).answer == answer


def test_votes_match_assignments_by_name():
    got = vote(["x = 2, y = 3", "y = 3, x = 2", "x = 3, y = 2"])
    assert [g.samples for g in got.groups] == [(0, 1), (2,)]
