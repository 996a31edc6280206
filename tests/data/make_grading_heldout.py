"""Writes tests/data/grading_heldout.jsonl: grading cases kept out of the grader's tuning.

    python tests/data/make_grading_heldout.py [--shared DIR] [--out FILE]

Written once, before the issue-12 grader changes, and never edited to make a case pass: a
test regenerates it from this script and compares the bytes with a pinned sha256. The
verdicts (`expected`) are human judgements fixed by the rules below, never by running the
grader. Three parts, all deterministic (no randomness, fixed selections):

1. GSM8K: every 10th problem from row 155 on (rows 0-149 built grading_cases.jsonl), its
   reference in other models' completion styles (Minerva "Final Answer: ...", Llama "The
   final answer is: $\\boxed{}$", DeepSeek "**Final Answer**", Qwen2.5-Math "\\(\\boxed{}\\)",
   "**Answer:**", "The answer is N.", GSM "####"), with thousands separators or a dollar sign
   by position; one equivalent and one wrong (x10 or -1) completion each.
2. MATH-500: every 5th problem from row 2, its verbatim reference in the same styles (the
   grading_cases table used one model-style template only); the wrong answer raises the
   reference's first digit by one (9 becomes 8), or, for references without a digit, is the
   next selected problem's reference. A third of the references (rotating over the styles) are given as a
   MATH-style solution ending in the boxed answer, as MATH's `solution` field is.
3. Hand-written cases in issue 12's categories (solutions as references, names around
   values, lists in words, the Minerva line after a box, units and text, multiple-choice
   letters), written without running the grader on them, each with a wrong twin.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent.parent / "shared" / "data"

# Completion styles of other models (and the trained model's own), {a} is the answer text.
STYLES = (
    ("minerva", "We set up the computation step by step and simplify.\n"
                "Final Answer: The final answer is ${a}$. I hope it is correct."),
    ("llama", "## Step 1: Understand the problem\nWe list what is given.\n\n"
              "## Step 2: Compute\nWe combine the quantities.\n\nThe final answer is: $\\boxed{{{a}}}$"),
    ("deepseek", "<think>\nOkay, let me see. I will compute it carefully.\n</think>\n\n"
                 "The computation gives the result below.\n\n**Final Answer**\n\\[\n\\boxed{{{a}}}\n\\]"),
    ("qwen-math", "Let's compute step by step.\n\nTherefore, the answer is \\(\\boxed{{{a}}}\\)."),
    ("gpt", "Putting it together:\n\n**Answer:** ${a}$"),
    ("plain-box-dollars", "Thus the result is $$\\boxed{{{a}}}.$$"),
)
GSM_STYLES = STYLES + (
    ("gsm-hashes", "Adding it up gives the total.\n#### {a}"),
    ("the-answer-is", "We add the amounts. The answer is {a}."),
)


def thousands(n: int) -> str:
    return f"{n:,}"


def gsm_cases(shared: Path) -> list[dict]:
    rows = [json.loads(x) for x in (shared / "gsm8k_test.jsonl").read_text(encoding="utf-8").splitlines() if x]
    out = []
    for pos, row in enumerate(rows[155::10]):
        value = int(row["answer"])
        style, template = GSM_STYLES[pos % len(GSM_STYLES)]
        form = (pos // len(GSM_STYLES)) % 3
        wrong = value * 10 if pos % 2 == 0 and value else value - 1

        def written(n: int) -> str:
            if form == 1 and style not in ("gsm-hashes", "the-answer-is"):
                return thousands(n).replace(",", "{,}") if style == "deepseek" else thousands(n)
            if form == 2 and "$" in row["problem"] and style != "gsm-hashes":
                return "\\$" + thousands(n) if "$" in template or "\\boxed" in template else "$" + str(n)
            return str(n)

        base = f"heldout/gsm/{row['id']}"
        out.append({"id": base + "/right", "completion": template.format(a=written(value)),
                    "reference": row["answer"], "expected": True,
                    "source": f"heldout gsm8k: {style}, form {form}"})
        out.append({"id": base + "/wrong", "completion": template.format(a=written(wrong)),
                    "reference": row["answer"], "expected": False,
                    "source": f"heldout gsm8k: {style}, form {form}, wrong value"})
    return out


def bump_first_digit(s: str) -> str | None:
    for i, ch in enumerate(s):
        if ch.isdigit():
            return s[:i] + ("8" if ch == "9" else str(int(ch) + 1)) + s[i + 1 :]
    return None


def as_solution(answer: str) -> str:
    """A MATH-style `solution`: reasoning that ends in the boxed final answer."""
    return ("We first simplify the expression given in the problem, then substitute the known "
            f"values. Putting these together, the answer is $\\boxed{{{answer}}}$.")


def math_cases(shared: Path) -> list[dict]:
    rows = [json.loads(x) for x in (shared / "math500_test.jsonl").read_text(encoding="utf-8").splitlines() if x]
    selected = rows[2::5]
    out = []
    for pos, row in enumerate(selected):
        ref = row["answer"]
        style, template = STYLES[pos % len(STYLES)]
        wrong = bump_first_digit(ref)
        if wrong is None:
            wrong = selected[(pos + 1) % len(selected)]["answer"]
        solution = (pos + pos // len(STYLES)) % 3 == 0
        reference = as_solution(ref) if solution else ref
        kind = "solution reference" if solution else "answer reference"
        base = "heldout/math/" + row["id"].removesuffix(".json").removeprefix("test/")
        out.append({"id": base + "/right", "completion": template.format(a=ref), "reference": reference,
                    "expected": True, "source": f"heldout math500: {style}, {kind}"})
        out.append({"id": base + "/wrong", "completion": template.format(a=wrong), "reference": reference,
                    "expected": False, "source": f"heldout math500: {style}, {kind}, wrong answer"})
    return out


# (name, completion, reference, expected); written by hand before the grader saw them.
HAND = [
    # a whole solution as the reference
    ("sol-area", "So the area is $\\boxed{12}$.",
     "The base is 6 and the height is 4, so the area is $\\frac{1}{2}\\cdot 6 \\cdot 4 = \\boxed{12}$ square units.", True),
    ("sol-area-wrong", "So the area is $\\boxed{24}$.",
     "The base is 6 and the height is 4, so the area is $\\frac{1}{2}\\cdot 6 \\cdot 4 = \\boxed{12}$ square units.", False),
    ("sol-fbox", "Final Answer: The final answer is $-7$. I hope it is correct.",
     "Adding the two equations gives $\\fbox{-7}$.", True),
    ("sol-fbox-wrong", "Final Answer: The final answer is $7$. I hope it is correct.",
     "Adding the two equations gives $\\fbox{-7}$.", False),
    ("sol-roots", "The solutions are $x = \\boxed{-1}$ and $x = \\boxed{4}$.",
     "Factoring, $(x+1)(x-4)=0$, so the solutions are $\\boxed{-1, 4}$.", True),
    ("sol-roots-one", "The solution is $x = \\boxed{4}$.",
     "Factoring, $(x+1)(x-4)=0$, so the solutions are $\\boxed{-1, 4}$.", False),
    ("sol-money", "He paid $\\boxed{15.5}$ dollars.",
     "The total is $3 \\cdot 5 + 0.50$, so he paid $\\boxed{\\$15.50}$.", True),
    ("sol-money-wrong", "He paid $\\boxed{15.05}$ dollars.",
     "The total is $3 \\cdot 5 + 0.50$, so he paid $\\boxed{\\$15.50}$.", False),
    ("sol-frac-inverted", "\\boxed{\\frac{5}{3}}",
     "Dividing, the ratio is $\\boxed{\\frac{3}{5}}$.", False),
    ("sol-frac", "\\boxed{0.6}", "Dividing, the ratio is $\\boxed{\\frac{3}{5}}$.", True),
    ("sol-intermediate-box", "So it is \\boxed{9}.",
     "We get $\\boxed{3}$ for the first part; squaring, the answer is $\\boxed{9}$.", True),
    ("sol-intermediate-box-wrong", "So it is \\boxed{3}.",
     "We get $\\boxed{3}$ for the first part; squaring, the answer is $\\boxed{9}$.", False),
    # names and descriptions around a value
    ("name-ref", "\\boxed{7}", "y = 7", True),
    ("name-ref-wrong", "\\boxed{y=8}", "y = 7", False),
    ("name-two-values", "\\boxed{a=3, b=-2}", "3, -2", True),
    ("name-two-values-wrong", "\\boxed{a=3, b=2}", "3, -2", False),
    ("name-two-values-ref", "\\boxed{3, -2}", "a = 3, b = -2", True),
    ("name-two-values-ref-wrong", "\\boxed{3, 2}", "a = 3, b = -2", False),
    ("name-tuple", "\\boxed{(4,9)}", "(m, n) = (4, 9)", True),
    ("name-tuple-wrong", "\\boxed{(9,4)}", "(m, n) = (4, 9)", False),
    ("name-function", "\\boxed{x^2-3x+2}", "P(x) = x^2 - 3x + 2", True),
    ("name-function-wrong", "\\boxed{x^2-3x-2}", "P(x) = x^2 - 3x + 2", False),
    ("name-ratio", "\\boxed{3:5}", "BD:DC = 3:5", True),
    ("name-ratio-wrong", "\\boxed{5:3}", "BD:DC = 3:5", False),
    ("name-roots-words", "\\boxed{-1, \\frac52}", "r = \\frac{5}{2} \\text{ and } r = -1", True),
    ("name-roots-words-wrong", "\\boxed{\\frac52}", "r = \\frac{5}{2} \\text{ and } r = -1", False),
    ("name-triple", "$$\\boxed{(a, b, c) = (1, 2, 3)}$$", "(1,2,3)", True),
    ("name-triple-wrong", "$$\\boxed{(a, b, c) = (1, 2, 3)}$$", "(1,3,2)", False),
    ("name-text", "\\boxed{24}", "\\text{Area} = 24", True),
    ("name-text-wrong", "\\boxed{42}", "\\text{Area} = 24", False),
    # lists written with words
    ("words-or-ref", "\\boxed{2, -3}", "x = -3 \\text{ or } x = 2", True),
    ("words-or-ref-wrong", "\\boxed{2, 3}", "x = -3 \\text{ or } x = 2", False),
    ("words-and", "\\boxed{1 \\text{ and } 7}", "1, 7", True),
    ("words-and-wrong", "\\boxed{1 \\text{ and } 7}", "1, 6", False),
    ("words-quad-or", "\\boxed{x = 2 \\quad \\text{or} \\quad x = -5}", "-5, 2", True),
    ("words-quad-or-wrong", "\\boxed{x = 2 \\quad \\text{or} \\quad x = 5}", "-5, 2", False),
    ("words-semicolon", "\\boxed{4; 6}", "4, 6", True),
    ("words-semicolon-wrong", "\\boxed{4; 6}", "4, 8", False),
    ("words-pairs", "\\boxed{(1, 2) \\text{ and } (2, 1)}", "(1,2),(2,1)", True),
    ("words-pairs-wrong", "\\boxed{(1, 2) \\text{ and } (2, 1)}", "(1,2),(2,3)", False),
    ("words-pairs-named", "\\boxed{(x, y) = (2, 7) \\text{ or } (7, 2)}", "(2, 7), (7, 2)", True),
    ("words-pairs-subset", "\\boxed{(2, 7)}", "(2, 7), (7, 2)", False),
    ("words-two-vs-one", "\\boxed{3 \\text{ or } 4}", "3", False),
    ("words-one-vs-two", "\\boxed{2}", "2 \\text{ and } 3", False),
    ("words-extra-value", "\\boxed{12 \\text{ and } 13}", "12", False),
    # the Minerva line, also after a box in the reasoning
    ("minerva-after-box", "The side is $\\boxed{12}$. The perimeter is $4 \\cdot 12 = 48$.\n"
     "Final Answer: The final answer is $48$. I hope it is correct.", "48", True),
    ("minerva-after-box-wrong", "The side is $\\boxed{12}$. The perimeter is $4 \\cdot 12 = 48$.\n"
     "Final Answer: The final answer is $48$. I hope it is correct.", "12", False),
    ("minerva-thin-space", "Final Answer: The final answer is $1,\\!234$. I hope it is correct.", "1234", True),
    ("minerva-thin-space-wrong", "Final Answer: The final answer is $1,\\!234$. I hope it is correct.", "1243", False),
    ("minerva-frac", "Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "0.75", True),
    ("minerva-frac-wrong", "Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "0.34", False),
    ("minerva-no-dollars", "Final Answer: The final answer is 2,500. I hope it is correct.", "2500", True),
    ("minerva-no-dollars-wrong", "Final Answer: The final answer is 2,500. I hope it is correct.", "250", False),
    ("minerva-braced-comma", "Final Answer: The final answer is $25{,}000$. I hope it is correct.", "25000", True),
    ("minerva-tuple", "Final Answer: The final answer is $(2, 3)$. I hope it is correct.", "(2,3)", True),
    ("minerva-tuple-wrong", "Final Answer: The final answer is $(2, 3)$. I hope it is correct.", "(3,2)", False),
    ("minerva-list", "Final Answer: The final answer is $1, 5$. I hope it is correct.", "1, 5", True),
    ("minerva-list-wrong", "Final Answer: The final answer is $1, 5$. I hope it is correct.", "1, 6", False),
    ("minerva-wrong-after-right-box", "So $x = \\boxed{6}$ at first. Checking again, $x = 7$.\n"
     "Final Answer: The final answer is $7$. I hope it is correct.", "6", False),
    # units and text
    ("unit-meters", "\\boxed{14\\text{ meters}}", "14", True),
    ("unit-meters-wrong", "\\boxed{14\\text{ meters}}", "15", False),
    ("unit-textnormal", "\\boxed{3.5 \\textnormal{ hours}}", "3.5", True),
    ("unit-textnormal-wrong", "\\boxed{5.3 \\textnormal{ hours}}", "3.5", False),
    ("unit-mbox", "\\boxed{60\\mbox{ mph}}", "60", True),
    ("unit-mbox-wrong", "\\boxed{600\\mbox{ mph}}", "60", False),
    ("unit-squared", "\\boxed{18 \\text{ cm}^2}", "18", True),
    ("unit-squared-wrong", "\\boxed{72 \\textnormal{ sq ft}}", "27", False),
    ("unit-ref", "\\boxed{9}", "9\\text{ inches}", True),
    ("unit-ref-wrong", "\\boxed{8}", "9\\text{ inches}", False),
    ("unit-other-unit", "\\boxed{7 \\text{ days}}", "7 \\text{ weeks}", False),
    # multiple-choice letters
    ("choice-textbf", "\\boxed{\\textbf{(B)}}", "B", True),
    ("choice-textbf-wrong", "\\boxed{\\textbf{(B)}}", "\\text{(D)}", False),
    ("choice-paren", "\\boxed{(E)}", "\\text{E}", True),
    ("choice-paren-wrong", "\\boxed{(A)}", "\\text{E}", False),
    ("choice-bare", "\\boxed{D}", "(D)", True),
    ("choice-bare-wrong", "\\boxed{B}", "(D)", False),
    ("choice-ref-textbf", "\\boxed{C}", "\\textbf{(C)}", True),
    ("choice-mathrm", "\\boxed{\\mathrm{(B)}}", "B", True),
    ("choice-mathrm-wrong", "\\boxed{\\mathrm{(B)}}", "A", False),
    ("choice-with-value", "The correct option is \\boxed{\\text{(A) } 24}.", "\\text{(A)}", True),
    ("choice-with-value-wrong", "The correct option is \\boxed{\\text{(B) } 24}.", "\\text{(A)}", False),
    # other models' final lines
    ("deepseek-display", "**Final Answer**\n\\[ \\boxed{\\dfrac{5}{12}} \\]", "\\frac{5}{12}", True),
    ("the-answer-is", "So she has 18 apples left. The answer is 18.", "18", True),
    ("the-answer-is-wrong", "So she has 18 apples left. The answer is 19.", "18", False),
    ("ratio-order", "\\boxed{4:3}", "3:4", False),
    ("minerva-wrong-thousands", "Final Answer: The final answer is $10,456$. I hope it is correct.", "10455", False),
]


def hand_cases() -> list[dict]:
    return [{"id": f"heldout/hand/{name}", "completion": completion, "reference": reference,
             "expected": expected, "source": "heldout hand-written (issue 12 categories)"}
            for name, completion, reference, expected in HAND]


def build(shared: Path) -> list[dict]:
    cases = gsm_cases(shared) + math_cases(shared) + hand_cases()
    ids = [c["id"] for c in cases]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate ids in the held-out set")
    return cases


def render(cases: list[dict]) -> str:
    return "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--out", type=Path, default=HERE / "grading_heldout.jsonl")
    args = parser.parse_args()
    cases = build(args.shared)
    args.out.write_text(render(cases), encoding="utf-8")
    print(f"{len(cases)} cases written to {args.out}")


if __name__ == "__main__":
    main()
