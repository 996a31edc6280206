"""Extraction, terminal display and voting."""

from __future__ import annotations

import time

from cases import cases

from mathsolve.answers.extract import extract
from mathsolve.answers.vote import vote
from mathsolve.output.display import display

EXTRACT = [
    ("last-box", "first \\boxed{3}. Then.\n\nFinally \\boxed{4}", "4", False),
    ("nested-braces", "$\\boxed{\\frac{1}{\\sqrt{2}}}$", "\\frac{1}{\\sqrt{2}}", False),
    ("boxed-space", "the answer is \\boxed 5", "5", False),
    ("fbox", "answer \\fbox{7}.", "7", False),
    ("inside-think-is-no-answer", "<think>so \\boxed{7}</think>", None, False),
    ("after-think", "<think>so \\boxed{7}</think>It is \\boxed{7}.", "7", False),
    ("thinking-opened-by-the-prompt", "so \\boxed{7}, hmm\n</think>\n\nThe answer is $\\boxed{8}$.", "8", False),
    ("unclosed-think-is-reasoning", "<think>so the answer is \\boxed{7}", None, False),
    ("no-box-after-think-no-answer", "<think>The final answer is 7.</think>\n\nI am done.", None, False),
    ("stated-after-think", "<think>hmm 6?</think>\n\nThe final answer is $7$.", "7", True),
    ("two-boxes-one-sentence", "The solutions are $\\boxed{2}$ and $\\boxed{-2}$.", "2, -2", False),
    ("two-boxes-assign", "x = \\boxed{2} or x = \\boxed{-2}", "2, -2", False),
    ("boxes-in-different-sentences", "I got \\boxed{1}.\n\nSo it is \\boxed{2}", "2", False),
    ("think-box-then-final-box", "<think>\\boxed{3}</think> The answer is \\boxed{5}", "5", False),
    ("duplicate-boxes", "\\boxed{5} and \\boxed{5}", "5", False),
    ("final-answer-is", "The final answer is $42$. I hope it is correct.", "42", True),
    ("hashes", "work\n#### 1,000", "1,000", True),
    ("answer-colon-bold", "**Answer:** 73", "73", True),
    ("the-answer-is", "She has 5 left. The answer is 5.", "5", True),
    ("the-answer-is-prose-is-no-answer", "I think the answer is not obvious", None, False),
    ("escaped-dollar-in-math", "**Answer:** $\\$16$", "\\$16", True),
    ("double-dollar", "The final answer is $$\\frac{1}{2}$$", "\\frac{1}{2}", True),
    ("first-sentence-then-closing", "The final answer is 12. I hope it is correct.", "12", True),
    ("reasoning-after-the-statement", "The final answer is 12. Then I check it.", None, False),
    ("but-wait-after-the-statement", "So, the answer is 5.\n\nBut wait, I think I'm making a mistake. 5 + 2",
     None, False),
    ("answer-colon-then-more-work", "Answer: 5\n\nLet me verify: 2 + 3 = 5, yes.", None, False),
    ("hashes-then-more-work", "#### 18\nWait, 3 * 7 = 21.", None, False),
    ("statement-then-polite-closing", "The answer is 18.\n\nThank you for the question!", "18", True),
    ("last-statement-final", "The answer is 5. But wait, 2 + 4 = 6. So the answer is 6.", "6", True),
    ("loop-ending-inside-an-open-box", "\\boxed{4} then = 5} = 5} \\boxed{\\frac{1}{2", None, False),
    ("none", "I could not finish", None, False),
    ("empty-box", "\\boxed{}", None, False),
]


@cases("text,answer,fallback", EXTRACT)
def test_extract_finds_the_final_answer(text, answer, fallback):
    got = extract(text)
    assert got.answer == answer
    assert got.fallback is fallback


TRUNCATED = [
    ("closed-box-counts", "so \\boxed{12} and then I wonder", "12"),
    ("open-box-does-not", "so \\boxed{\\frac{1}{2", None),
    ("cut-boxed-token-does-not", "so \\boxed 12", None),
    ("fallback-not-used", "The final answer is 4", None),
    ("earlier-closed-box-before-open-one-is-no-answer", "\\boxed{3} then \\boxed{4", None),
    ("closed-box-after-think", "<think>\\boxed{3}</think> so \\boxed{4} and then I", "4"),
    ("closed-box-in-unclosed-think", "<think> so \\boxed{4} and then I", None),
]


@cases("text,answer", TRUNCATED)
def test_cut_off_output_only_counts_closed_boxes(text, answer):
    got = extract(text, complete=False)
    assert got.answer == answer
    assert got.truncated_ok is (answer is not None)
    assert not got.fallback


def test_extract_is_fast_on_a_megabyte_and_deep_nesting():
    big = "x " * 500_000 + "\\boxed{" * 20_000 + "1" + "}" * 20_000
    start = time.perf_counter()
    got = extract(big)
    assert time.perf_counter() - start < 2.0
    assert got.answer is not None and got.answer.endswith("1" + "}" * 19_999)
    start = time.perf_counter()
    assert extract("\\boxed{" * 50_000 + "1").answer is None  # never closed
    assert time.perf_counter() - start < 2.0


DISPLAY = [
    ("frac", "\\frac{1}{2}", "1/2"),
    ("dfrac-compound", "\\dfrac{x+1}{3}", "(x+1)/3"),
    ("sqrt", "\\sqrt{2}", "√2"),
    ("sqrt-compound", "2\\sqrt{x+1}", "2√(x+1)"),
    ("cube-root", "\\sqrt[3]{5}", "∛5"),
    ("pi", "2\\pi", "2π"),
    ("text", "\\text{Evelyn}", "Evelyn"),
    ("units", "5 \\text{ cm}", "5 cm"),
    ("tuple", "\\left( 3, \\frac{\\pi}{2} \\right)", "(3, π/2)"),
    ("degrees", "30^\\circ", "30°"),
    ("square", "x^2+1", "x²+1"),
    ("pm", "\\pm 2", "± 2"),
    ("interval", "(-\\infty, 3]", "(-∞, 3]"),
    ("matrix", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", "[1; 2]"),
    ("dollar", "\\$18", "$18"),
    ("trailing-backslash", "5\\", "5"),
]


@cases("latex,shown", DISPLAY)
def test_display_makes_latex_readable(latex, shown):
    assert display(latex) == shown


def test_vote_clusters_equivalent_answers_and_reports_support():
    result = vote(["2", "x=2", None, "3", "3", "\\frac{4}{2}"])
    assert (result.answer, result.count, result.total) == ("2", 3, 6)
    assert result.groups[0].samples == (0, 1, 5)
    assert result.groups[1].answer == "3" and result.groups[1].samples == (3, 4)


def test_vote_tie_goes_to_the_group_with_the_lowest_first_sample():
    result = vote(["7", "5", "5", "7"])
    assert result.answer == "7" and result.count == 2


def test_vote_none_never_wins():
    result = vote([None, None, "4"])
    assert result.answer == "4" and result.count == 1 and result.total == 3
    assert vote([None, None]).answer is None
