"""Grading other models' completions against references as datasets give them (issue 12).

Each rule has an equivalent and a non-equivalent example; the issue's table is graded by the
library function and by `mathsolve grade` end to end.
"""

from __future__ import annotations

import json
import subprocess
import sys

from cases import cases, without_both_verdicts

from mathsolve.answers.equivalence import equivalent, normalise
from mathsolve.answers.extract import extract, reference_answer
from mathsolve.answers.grade import grade

MATH_SOLUTION = (
    "The first year loses $20\\%$, leaving $80\\%$; the second loses $10\\%$ of that, leaving "
    "$0.8 \\cdot 0.9 = 0.72$ of the original, so a total loss of $\\boxed{28\\%}$."
)

# (id, reference, completion, verdict): issue 12's table, verbatim.
ISSUE_TABLE = [
    ("solution-reference", MATH_SOLUTION, "... a total loss of $\\boxed{28\\%}$.", True),
    ("named-ratio", "S_{MBCN}:S=7:32", "$\\boxed{7:32}$", True),
    ("pairs-in-words", "(5, 8), (8, 5)",
     "$$\\boxed{(x, y) = (5, 8) \\quad \\text{and} \\quad (8, 5)}$$", True),
    ("minerva-after-box", "10455",
     "... = \\boxed{255}$ So ... $10,455. Final Answer: The final answer is $10,455$. I hope it is correct.", True),
    ("and-list", "6 \\text{ and } 8", "$\\boxed{6,8}$", True),
    ("boxed-choice-reference", "\\(\\boxed{\\text{C}}\\).", "$\\boxed{\\text{(C)}}.$", True),
    ("textnormal-unit", "125", "$\\boxed{125\\textnormal{ miles}}.$", True),
]


def test_issue_table_is_graded_right_by_the_grade_command(tmp_path):
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps({"id": i, "reference": r, "completion": c}) + "\n"
                           for i, r, c, _ in ISSUE_TABLE), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "mathsolve", "grade", str(src)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["id"], r["correct"]) for r in rows] == [(i, v) for i, _, _, v in ISSUE_TABLE]
    used = {r["id"]: r["reference_used"] for r in rows}
    assert used["solution-reference"] == "28\\%"  # the solution's final box, reported
    assert used["boxed-choice-reference"] == "\\text{C}"
    assert used["named-ratio"] == "S_{MBCN}:S=7:32"  # an answer reference is used as given
    assert [r["extracted"] for r in rows][3] == "10,455"
    assert "accuracy: 7/7 = 100.00%" in proc.stderr


# (id, reference, completion, equivalent completion?) one rule per pair of rows.
RULES = [
    # a reference that is a whole solution: its final box (or \fbox, or GSM8K's #### line)
    ("solution-box", MATH_SOLUTION, "\\boxed{28\\%}", True),
    ("solution-box-wrong", MATH_SOLUTION, "\\boxed{72\\%}", False),
    ("solution-fbox", "Adding, we get $\\fbox{-3}$.", "\\boxed{-3}", True),
    ("solution-fbox-wrong", "Adding, we get $\\fbox{-3}$.", "\\boxed{3}", False),
    ("solution-hashes", "She sold 48/2 = <<48/2=24>>24 in May.\n#### 72", "\\boxed{72}", True),
    ("solution-hashes-wrong", "She sold 48/2 = <<48/2=24>>24 in May.\n#### 72", "\\boxed{24}", False),
    # names and descriptions before a value, on either side
    ("name-ratio", "S_{ABC}:S=3:8", "\\boxed{3:8}", True),
    ("name-ratio-wrong", "S_{ABC}:S=3:8", "\\boxed{3:7}", False),
    ("name-in-completion", "3:8", "\\boxed{S_{ABC}:S = 3:8}", True),
    ("name-in-completion-wrong", "3:8", "\\boxed{S_{ABC}:S = 8:3}", False),
    ("names-two-values", "4, 5", "\\boxed{AB=4, CD=5}", True),
    ("names-two-values-wrong", "4, 5", "\\boxed{AB=4, CD=6}", False),
    ("name-tuple", "(2, -1)", "\\boxed{(a, b) = (2, -1)}", True),
    ("name-tuple-wrong", "(2, -1)", "\\boxed{(a, b) = (-1, 2)}", False),
    ("name-function", "x^2+1", "\\boxed{f(x) = x^2 + 1}", True),
    ("name-function-wrong", "x^2+1", "\\boxed{f(x) = x^2 - 1}", False),
    ("name-angle", "40^\\circ", "\\boxed{\\angle PQR = 40^\\circ}", True),
    ("name-angle-wrong", "40^\\circ", "\\boxed{\\angle PQR = 50^\\circ}", False),
    ("name-argument", "5", "\\boxed{f(2) = 5}", True),
    ("name-argument-wrong", "2", "\\boxed{f(2) = 5}", False),
    ("names-matched-by-name", "x = 2, y = 3", "\\boxed{y = 3, x = 2}", True),
    ("names-matched-by-name-wrong", "x = 2, y = 3", "\\boxed{x = 3, y = 2}", False),  # was a false positive
    ("name-length", "|AB|=1", "\\boxed{1}", True),
    ("name-length-wrong", "|AB|=1", "\\boxed{-1}", False),
    # an equation is not a name: `2x = 5` is not the value 5
    ("equation", "x^2+y^2=25", "\\boxed{x^2 + y^2 = 25}", True),
    ("equation-wrong", "25", "\\boxed{x^2 + y^2 = 25}", False),
    ("linear-equation", "\\frac{5}{2}", "\\boxed{x = 2.5}", True),
    ("linear-equation-wrong", "5", "\\boxed{2x = 5}", False),
    # lists written with words, `;` or \quad as lists
    ("words-and-ref", "p = -1 \\text{ and } p = 15/8", "\\boxed{-1, \\frac{15}{8}}", True),
    ("words-and-ref-wrong", "p = -1 \\text{ and } p = 15/8", "\\boxed{-1, \\frac{8}{15}}", False),
    ("words-or", "-2, 3", "\\boxed{x = 3 \\text{ or } x = -2}", True),
    ("words-or-wrong", "-2, 3", "\\boxed{x = 3 \\text{ or } x = 2}", False),
    ("bare-or", "1, 9", "\\boxed{1 or 9}", True),
    ("bare-or-subset", "1, 9", "\\boxed{9}", False),
    ("semicolon", "1, 9", "\\boxed{1; 9}", True),
    ("semicolon-wrong", "1, 9", "\\boxed{1; 8}", False),
    ("quad-pairs", "(1, 3), (3, 1)", "\\boxed{(1, 3) \\quad \\text{and} \\quad (3, 1)}", True),
    ("quad-pairs-subset", "(1, 3), (3, 1)", "\\boxed{(1, 3)}", False),
    ("words-inside-text-stay", "\\text{Evelyn and Briana}", "\\boxed{\\text{Evelyn and Briana}}", True),
    ("words-inside-text-stay-wrong", "\\text{Evelyn and Briana}", "\\boxed{\\text{Evelyn}}", False),
    # thousands separators are one number, a comma and a space a list
    ("thousands-thin-space", "11111100", "\\boxed{11,\\! 111,\\! 100}", True),
    ("thousands-thin-space-wrong", "11111100", "\\boxed{11,\\! 111,\\! 101}", False),
    ("comma-space-list", "234, 1", "\\boxed{1, 234}", True),
    ("comma-space-list-wrong", "1234", "\\boxed{1, 234}", False),
    # the Minerva / lm-evaluation-harness final line, after the last box
    ("minerva-after-box", "48", "so \\boxed{12} is the side.\nFinal Answer: The final answer is $48$. I hope it is correct.", True),
    ("minerva-after-box-wrong", "12", "so \\boxed{12} is the side.\nFinal Answer: The final answer is $48$. I hope it is correct.", False),
    ("minerva-thousands-no-dollars", "2500", "Final Answer: The final answer is 2,500. I hope it is correct.", True),
    ("minerva-thousands-no-dollars-wrong", "2501", "Final Answer: The final answer is 2,500. I hope it is correct.", False),
    ("words-after-box-are-not-an-answer", "7", "So \\boxed{7}. I think the final answer is correct.", True),
    ("words-after-box-are-not-an-answer-wrong", "8", "So \\boxed{7}. I think the final answer is correct.", False),
    # textual answers: a `\\$` inside `$...$`, GSM8K's "The answer is X."
    ("escaped-dollar", "25", "Final Answer: The final answer is $\\$25$. I hope it is correct.", True),
    ("escaped-dollar-wrong", "52", "Final Answer: The final answer is $\\$25$. I hope it is correct.", False),
    ("the-answer-is", "42", "Adding gives 42 pens. The answer is 42.", True),
    ("the-answer-is-wrong", "24", "Adding gives 42 pens. The answer is 42.", False),
    # units and text after a value
    ("textnormal-unit", "60", "\\boxed{60\\textnormal{ km}}", True),
    ("textnormal-unit-wrong", "61", "\\boxed{60\\textnormal{ km}}", False),
    ("mbox-unit-squared", "864", "\\boxed{864 \\mbox{ inches}^2}", True),
    ("mbox-unit-squared-wrong", "846", "\\boxed{864 \\mbox{ inches}^2}", False),
    ("text-unit-reference", "5 \\text{ cm}", "\\boxed{5}", True),
    ("text-unit-reference-wrong", "5 \\text{ cm}", "\\boxed{6}", False),
    # multiple-choice letters with or without parentheses or \text
    ("choice-text-paren", "\\text{(B)}", "\\boxed{B}", True),
    ("choice-text-paren-wrong", "\\text{(B)}", "\\boxed{D}", False),
    ("choice-paren-text", "(E)", "\\boxed{\\text{E}}", True),
    ("choice-paren-text-wrong", "(E)", "\\boxed{\\text{(A)}}", False),
    ("labelled-choice", "\\text{(D)}", "\\boxed{\\textbf{(D)}\\ 17}", True),
    ("labelled-choice-wrong", "\\text{(D)}", "\\boxed{\\textbf{(C)}\\ 17}", False),
]


@cases("ref,completion,verdict", ISSUE_TABLE + RULES)
def test_the_issue_table_and_each_rule_grade_equivalent_and_wrong_forms(ref, completion, verdict):
    assert grade(completion, ref).correct is verdict


def test_every_rule_has_an_equivalent_and_a_non_equivalent_example():
    assert not without_both_verdicts(RULES)


REFERENCES = [
    ("plain-answer", "  \\frac{1}{2} ", "\\frac{1}{2}"),
    ("last-box-of-a-solution", "First $\\boxed{3}$ fails; so $\\boxed{5}$.", "5"),
    ("boxes-of-one-sentence", "The roots are $\\boxed{2}$ and $\\boxed{-2}$.", "2, -2"),
    ("gsm8k-solution", "He has 3+4=<<3+4=7>>7.\n#### 7", "7"),
    ("unclosed-box-is-an-answer", "\\boxed{3", "\\boxed{3"),
    ("escaped-twice", "$\\\\boxed{4}$ and $\\\\boxed{5}$", "4, 5"),
    ("solution-without-a-box", "Each of the 6 rows holds 7 chairs, and we count them all once. "
     "Multiplying, the hall holds $6 \\cdot 7 = 42$ chairs.", "42"),
]


@cases("ref,used", REFERENCES)
def test_reference_answer_reports_what_is_compared(ref, used):
    assert reference_answer(ref) == used
    assert grade("\\boxed{0}", ref).reference == used


def test_lists_in_words_normalise_like_comma_lists():
    assert normalise("6 \\text{ and } 8") == normalise("6,8") == "6,8"
    assert normalise("x = 2 \\quad \\text{or} \\quad x = -5") == "2,-5"
    assert normalise("S_{MBCN}:S=7:32") == "7:32"
    assert equivalent("(5, 8), (8, 5)", "(8, 5) \\text{ and } (5, 8)") is True


def test_minerva_line_after_the_last_box_is_a_textual_answer():
    got = extract("so $\\boxed{255}$ cents.\nFinal Answer: The final answer is $10,455$. I hope it is correct.")
    assert (got.answer, got.fallback, got.boxes) == ("10,455", True, ("255",))
    got = extract("Final Answer: The final answer is $\\boxed{5}$. I hope it is correct.")
    assert (got.answer, got.fallback) == ("5", False)


def test_units_in_words_are_dropped_but_two_known_units_must_agree():
    assert equivalent("7 \\text{ weeks}", "7 \\text{ days}") is False
    assert equivalent("7 \\text{ weeks}", "8 \\text{ weeks}") is False
    assert equivalent("7 \\text{ weeks}", "7 \\text{ week}") is True  # spellings of one unit
    assert equivalent("5 \\text{ cm}", "5 \\text{ centimeters}") is True
    assert equivalent("18 \\text{ cm}^2", "18 \\text{ cm}") is False  # an area is not a length
    assert equivalent("7 \\text{ days}", "7") is True  # a unit on one side only is dropped
    assert equivalent("3 \\text{ apples}", "3 \\text{ pears}") is True  # units not listed: only dropped
