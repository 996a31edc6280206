"""Answers: the final answer of a completion (its last box or a stated answer) or a reference.

The model was rewarded for the last `\\boxed{...}` anywhere in its output (reasoning
included), so that is the answer; fallbacks exist for other models' outputs in `grade`.
Everything here is plain string scanning, linear in the text length (1 MB comes back fast).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from mathsolve.answers.latex import closing_brace
from mathsolve.answers.prose import is_solution, last_value, sentence_value, undoubled

# A box command (not \boxedfoo, another command), its spaces, and its argument when that
# holds no braces or backslashes (most boxes); other arguments are scanned by latex.closing_brace.
_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z]) *(\{[^{}\\]*\})?")
# What may stand between two boxes of one answer: "$\boxed{2}$ and $\boxed{-2}$",
# "x = \boxed{2} or x = \boxed{-2}", "\boxed{1}, \boxed{3}". Only tried on gaps of at most
# _MAX_GROUP_GAP characters, so its cost per box is bounded.
_CONNECTOR_PARTS = (
    r"\s|\$|\\\(|\\\)|\\quad|\\qquad|[,;]|\band\b|\bor\b"
    r"|\\text\{\s*(?:(?:[\w().']+\s+){0,4}(?:and|or)|,)?\s*\}"  # \text{ and }, \text{ for part (a) and }
    r"|(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?\s*="
)
_CONNECTOR = re.compile(rf"(?:{_CONNECTOR_PARTS})*")
# A reference is written by a dataset's author, so its boxes may also be joined by a few words
# before "and"/"or" ("\boxed{1} papers and \boxed{2} bins") or a divider ("++++", "|||").
_REFERENCE_CONNECTOR = re.compile(
    rf"(?:{_CONNECTOR_PARTS}|(?:[A-Za-z]+\s+){{1,3}}(?:and|or)\b|[+|/&~*#-]{{2,}})*"
)
_MAX_GROUP_GAP = 60
_TOKEN = re.compile(r"[^\s$]*")
_TAIL_CHARS = 20000  # textual fallbacks look at the end of the text only
_FINAL_ANSWER = "final answer is"
_THE_ANSWER = "the answer is"
_MINERVA_CLOSING = "i hope it is correct"  # Minerva / lm-evaluation-harness: "... is $X$. I hope it is correct."


@dataclass(frozen=True)
class Extraction:
    """What was found: `answer` (None when there is none), every box, and how it was found."""

    answer: str | None
    boxes: tuple[str, ...] = ()
    fallback: bool = False  # found by "final answer is", "####" or "Answer:", not a box
    truncated_ok: bool = False  # the output was cut off but a box had already closed


class _Box(NamedTuple):  # a tuple: 100,000 boxes in a megabyte are built fast
    content: str
    start: int
    end: int


def _find_boxes(text: str, complete: bool) -> list[_Box]:
    """Outermost boxes in order; unclosed ones are dropped (and end the scan)."""
    boxes: list[_Box] = []
    i, n = 0, len(text)
    for m in _BOX_COMMAND.finditer(text):
        pos = m.start()
        if pos < i:  # inside a box already taken
            continue
        flat = m.group(1)
        if flat is not None:  # most boxes: no nested braces, no commands
            boxes.append(_Box(flat[1:-1].strip(), pos, m.end()))
            i = m.end()
            continue
        k = m.end()
        if k < n and text[k] == "{":
            j = closing_brace(text, k)
            if j < 0:  # never closed: cut off here
                return boxes
            boxes.append(_Box(text[k + 1 : j].strip(), pos, j + 1))
            i = j + 1
        else:  # `\boxed 5`: one token up to whitespace or `$`
            token_match = _TOKEN.match(text, k)  # never None: the pattern accepts ""
            j = token_match.end() if token_match else k
            if j == n and not complete:  # the token may have been cut off
                return boxes
            token = text[k:j].rstrip(".,;")
            if token:
                boxes.append(_Box(token, pos, j))
            i = max(j, k + 1)
    return boxes


def _last_sentence_group(text: str, boxes: list[_Box], connector: re.Pattern[str] = _CONNECTOR) -> list[str]:
    """The last box plus the boxes right before it in the same sentence, deduplicated."""
    group = [boxes[-1]]
    connects: dict[str, bool] = {}  # a repeated gap is matched once
    for prev in reversed(boxes[:-1]):
        start = group[-1].start
        if start - prev.end > _MAX_GROUP_GAP:
            break
        gap = text[prev.end : start]
        ok = connects.get(gap)
        if ok is None:
            ok = connects[gap] = connector.fullmatch(gap) is not None
        if not ok:
            break
        group.append(prev)
    seen: list[str] = []
    known: set[str] = set()
    for box in reversed(group):
        if box.content and box.content not in known:
            known.add(box.content)
            seen.append(box.content)
    return seen


def _unescaped(s: str, token: str, start: int) -> int:
    """Index of the first `token` at or after start that no backslash escapes (`\\$` is a dollar)."""
    pos = s.find(token, start)
    while pos > 0 and s[pos - 1] == "\\":
        pos = s.find(token, pos + 1)
    return pos


def _clean_fallback(s: str) -> str | None:
    """The answer in a textual statement: its math span (`$X$`, `$$X$$`, `\\(X\\)`), else
    its first sentence; Minerva's closing "I hope it is correct" dropped."""
    s = s.strip().split("\n")[0].strip()
    s = s.strip("*").strip()
    closing = s.lower().find(_MINERVA_CLOSING)
    if closing >= 0:
        s = s[:closing].strip()
    for opener, closer in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(opener):
            end = _unescaped(s, closer, len(opener))
            if end > 0:
                s = s[len(opener) : end]
                break
    else:
        sentence_end = min((p for p in (s.find(". "), s.find(".\t")) if p > 0), default=-1)
        if sentence_end > 0:
            s = s[:sentence_end]
    s = s.rstrip(".").strip().strip("$").strip()
    return s or None


def _after_marker(tail: str, lowered: str, marker: str) -> str | None:
    """The text after the last `marker` (matched case-insensitively) in tail, to its line end."""
    pos = lowered.rfind(marker)
    if pos < 0:
        return None
    rest = tail[pos + len(marker) :].lstrip(": \t\r\n")
    return rest.split("\n", 1)[0]


def _hashes(tail: str) -> str | None:
    """GSM8K's `#### 18`: the last line that starts with `####` (after spaces)."""
    pos = tail.rfind("####")
    while pos >= 0:
        line_start = tail.rfind("\n", 0, pos) + 1
        line_end = tail.find("\n", pos)
        line = tail[line_start : line_end if line_end >= 0 else len(tail)].lstrip(" \t")
        if line.startswith("####"):  # only a line's first #### can start it: one look per line
            return line[4:]
        pos = tail.rfind("####", 0, line_start)
    return None


def _answer_colon(tail: str, lowered: str) -> str | None:
    """`Answer: 73`, `**Answer:** 73`, `answer : 73` (the word `answer`, then a colon)."""
    pos = lowered.rfind("answer")
    while pos >= 0:
        before = lowered[pos - 1] if pos else " "
        k = pos + len("answer")
        while k < len(tail) and tail[k] in " *\t":
            k += 1
        if not before.isalnum() and k < len(tail) and tail[k] == ":":
            return tail[k + 1 :].split("\n", 1)[0]
        pos = lowered.rfind("answer", 0, pos)
    return None


def _looks_like_answer(raw: str, answer: str | None) -> bool:
    """A value, not prose: "$X$", LaTeX or a digit (not "the answer is not obvious")."""
    if not answer:
        return False
    return raw.startswith(("$", "\\")) or any(c.isdigit() for c in answer)


def _textual_answer(text: str) -> str | None:
    """The answer stated in words, in this order: "final answer is X", "#### X", "Answer: X",
    and "The answer is X" (the GSM8K chain-of-thought format) when X looks like a value.

    Only the last _TAIL_CHARS characters are read.
    """
    tail = text[-_TAIL_CHARS:]
    lowered = tail.lower()
    for found in (_after_marker(tail, lowered, _FINAL_ANSWER), _hashes(tail), _answer_colon(tail, lowered)):
        if found is not None:
            answer = _clean_fallback(found.lstrip(":").strip())
            if answer:
                return sentence_value(answer)  # "Answer: The largest $n$ is 34." states 34
    found = _after_marker(tail, lowered, _THE_ANSWER)
    if found is not None:
        answer = _clean_fallback(found)
        if _looks_like_answer(found, answer):
            return answer
    return None


def _stated_after_box(text: str, box_end: int) -> str | None:
    """A "final answer is X" statement after the last box (Minerva's format), when X looks like
    an answer (a digit, LaTeX or `$`), not "I hope the final answer is correct"."""
    tail = text[max(box_end, len(text) - _TAIL_CHARS) :]
    found = _after_marker(tail, tail.lower(), _FINAL_ANSWER)
    if found is None:
        return None
    raw = found.lstrip(": \t*")
    answer = _clean_fallback(raw)
    return answer if _looks_like_answer(raw, answer) else None


def extract(text: str, complete: bool = True) -> Extraction:
    """The final answer of a completion.

    The last `\\boxed{}` (with the boxes of the same sentence before it) is the answer,
    unless a "final answer is X" statement comes after it (the Minerva / lm-evaluation-harness
    format other models are prompted for). Without a box, a stated answer ("final answer is",
    "####", "Answer:"; a sentence there gives the value it states). `complete=False`
    (finish_reason "length"): only boxes that already closed count and the textual fallbacks
    are not used, since a cut-off sentence is not a final answer.
    """
    return _extract(text, complete, _CONNECTOR)


def _extract(text: str, complete: bool, connector: re.Pattern[str]) -> Extraction:
    """extract, with the boxes of one answer joined where `connector` matches their gap."""
    boxes = _find_boxes(text, complete)
    contents = tuple(b.content for b in boxes)
    if boxes:
        if complete:
            stated = _stated_after_box(text, boxes[-1].end)
            if stated:
                return Extraction(stated, contents, True)
        group = _last_sentence_group(text, boxes, connector)
        if group:
            return Extraction(", ".join(group), contents, False, not complete)
    if not complete:
        return Extraction(None, contents)
    answer = _textual_answer(text)
    return Extraction(answer, contents, answer is not None)


def reference_answer(reference: str) -> str:
    """The answer a dataset's reference gives: itself, or a whole solution's final answer.

    A reference holding `\\boxed{}`/`\\fbox{}` (MATH's `solution` field) gives its final box
    with the boxes of its sentence, found as in completions but also joined by a few words or a
    divider ("\\boxed{1} papers and \\boxed{2} bins"); one with a `#### X` line (GSM8K's
    `answer` field) gives X. A whole solution without either gives its stated answer
    ("The final answer is X", "Answer: X") or the value its last sentence ends on. A reference
    escaped twice (`\\\\boxed`) is read once unescaped.
    """
    reference = undoubled(reference)
    if "\\boxed" in reference or "\\fbox" in reference:
        found = _extract(reference, True, _REFERENCE_CONNECTOR)
        if found.answer is not None:
            return found.answer
    if "####" in reference:
        found_line = _hashes(reference[-_TAIL_CHARS:])
        answer = _clean_fallback(found_line) if found_line is not None else None
        if answer:
            return answer
    if is_solution(reference):
        stated = _textual_answer(reference) or last_value(reference)
        if stated:
            return stated
    return reference.strip()
