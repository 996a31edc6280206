"""Final-answer extraction, terminal display of LaTeX answers, and majority voting.

The model was rewarded for the last `\\boxed{...}` anywhere in its output (reasoning
included), so that is the answer; fallbacks exist for other models' outputs in `grade`.
Everything here is plain string scanning, linear in the text length (1 MB comes back fast).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from mathsolve.config import CHECK_TIMEOUT_S
from mathsolve.equivalence import equivalent, normalise

# A box command (not \boxedfoo, another command), its spaces, and its argument when that
# holds no braces or backslashes (most boxes); other arguments are scanned by _closing_brace.
_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z]) *(\{[^{}\\]*\})?")
# What may stand between two boxes of one answer: "$\boxed{2}$ and $\boxed{-2}$",
# "x = \boxed{2} or x = \boxed{-2}", "\boxed{1}, \boxed{3}". Only tried on gaps of at most
# _MAX_GROUP_GAP characters, so its cost per box is bounded.
_CONNECTOR = re.compile(
    r"(?:\s|\$|\\\(|\\\)|\\quad|\\qquad|\\text\{\s*(?:and|or|,)?\s*\}|[,;]|\band\b|\bor\b"
    r"|(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?\s*=)*"
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


def _closing_brace(text: str, k: int) -> int:
    """Index of the `}` that closes the `{` at text[k] (backslash escapes skipped); -1 if none."""
    depth, j, n = 0, k, len(text)
    while j < n:
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    return -1


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
            j = _closing_brace(text, k)
            if j < 0:  # never closed: cut off here
                return boxes
            boxes.append(_Box(text[k + 1 : j].strip(), pos, j + 1))
            i = j + 1
        else:  # `\boxed 5`: one token up to whitespace or `$`
            j = _TOKEN.match(text, k).end()
            if j == n and not complete:  # the token may have been cut off
                return boxes
            token = text[k:j].rstrip(".,;")
            if token:
                boxes.append(_Box(token, pos, j))
            i = max(j, k + 1)
    return boxes


def _last_sentence_group(text: str, boxes: list[_Box]) -> list[str]:
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
            ok = connects[gap] = _CONNECTOR.fullmatch(gap) is not None
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
    return bool(answer) and (raw.startswith(("$", "\\")) or any(c.isdigit() for c in answer))


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
                return answer
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
    format other models are prompted for). `complete=False` (finish_reason "length"): only
    boxes that already closed count and the textual fallbacks are not used, since a cut-off
    sentence is not a final answer.
    """
    boxes = _find_boxes(text, complete)
    contents = tuple(b.content for b in boxes)
    if boxes:
        if complete:
            stated = _stated_after_box(text, boxes[-1].end)
            if stated:
                return Extraction(stated, contents, True)
        group = _last_sentence_group(text, boxes)
        if group:
            return Extraction(", ".join(group), contents, False, not complete)
    if not complete:
        return Extraction(None, contents)
    answer = _textual_answer(text)
    return Extraction(answer, contents, answer is not None)


# ---------------------------------------------------------------- display

_SYMBOLS = {
    "\\pi": "π", "\\infty": "∞", "\\cdot": "·", "\\times": "×", "\\div": "÷", "\\pm": "±",
    "\\mp": "∓", "\\leq": "≤", "\\le": "≤", "\\geq": "≥", "\\ge": "≥", "\\neq": "≠", "\\ne": "≠",
    "\\approx": "≈", "\\cup": "∪", "\\cap": "∩", "\\in": "∈", "\\emptyset": "∅",
    "\\varnothing": "∅", "\\alpha": "α", "\\beta": "β", "\\gamma": "γ", "\\theta": "θ",
    "\\lambda": "λ", "\\mu": "μ", "\\sigma": "σ", "\\phi": "φ", "\\omega": "ω", "\\Delta": "Δ",
    "\\circ": "°", "\\degree": "°", "\\to": "→", "\\rightarrow": "→", "\\ldots": "…",
    "\\dots": "…", "\\cdots": "⋯", "\\sqrt": "√", "\\%": "%", "\\$": "$", "\\{": "{", "\\}": "}",
    "\\&": "&",
}
_DROP_COMMANDS = ("\\left", "\\right", "\\displaystyle", "\\!", "\\,", "\\;", "\\:", "\\quad", "\\qquad")
_TEXT_COMMANDS = ("\\text", "\\textbf", "\\mathrm", "\\mathbf", "\\mbox", "\\operatorname", "\\boxed", "\\fbox")
_SUPERSCRIPTS = str.maketrans("0123456789+-n", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻ⁿ")
_COMMAND_RE = re.compile(r"\\[A-Za-z]+|\\.")
_MAX_DISPLAY_DEPTH = 30  # \frac in \sqrt in ...: deeper than any real answer
_MAX_DISPLAY_CHARS = 10_000  # longer answers are shown as written (bounds the work per level)


def _group(s: str, i: int) -> tuple[str, int]:
    """The `{...}` argument (or single character) starting at s[i], and the index after it."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return "", i
    if s[i] == "\\":
        m = _COMMAND_RE.match(s, i)
        if m:
            return m.group(0), m.end()
    if s[i] != "{":
        return s[i], i + 1
    depth, j = 0, i
    while j < len(s):
        depth += {"{": 1, "}": -1}.get(s[j], 0)
        if depth == 0:
            return s[i + 1 : j], j + 1
        j += 1
    return s[i + 1 :], len(s)


def _atom(s: str) -> str:
    return s if re.fullmatch(r"[\w.√π∞°]+|\(.*\)", s) else f"({s})"


def _display(s: str, depth: int = 0) -> str:
    """Readable text for LaTeX `s`; nesting deeper than _MAX_DISPLAY_DEPTH is shown as written."""
    if depth > _MAX_DISPLAY_DEPTH:
        return s
    out: list[str] = []
    absent: set[str] = set()  # closers known not to occur again: each is searched for once

    def find(token: str, start: int) -> int:
        pos = -1 if token in absent else s.find(token, start)
        if pos < 0:
            absent.add(token)
        return pos

    i = 0
    while i < len(s):
        ch = s[i]
        if s.startswith(("\\frac", "\\dfrac", "\\tfrac"), i):
            i += 5 if s.startswith("\\frac", i) else 6
            num, i = _group(s, i)
            den, i = _group(s, i)
            out.append(f"{_atom(_display(num, depth + 1))}/{_atom(_display(den, depth + 1))}")
        elif s.startswith("\\sqrt", i):
            i += 5
            root = ""
            if i < len(s) and s[i] == "[":
                close = find("]", i)
                if close > 0:  # an unclosed `[` is not a root index
                    root, i = s[i + 1 : close], close + 1
            arg, i = _group(s, i)
            prefix = {"": "√", "3": "∛", "4": "∜"}.get(root, f"{root}√")
            out.append(prefix + _atom(_display(arg, depth + 1)))
        elif s.startswith(("\\begin{", "\\end{"), i):
            opening = s.startswith("\\begin", i)
            start = i + (7 if opening else 5)
            close = find("}", start)
            if close < 0:  # unclosed: drop the command, show the rest
                i = start
                continue
            if s[start:close].endswith("matrix"):
                out.append("[" if opening else "]")
            i = close + 1
        elif ch == "\\" and s.startswith("\\\\", i):
            out.append("; ")
            i += 2
        elif ch == "&":
            out.append(", ")
            i += 1
        elif ch == "\\":
            m = _COMMAND_RE.match(s, i)
            if m is None:  # a lone trailing backslash
                break
            name = m.group(0)
            i = m.end()
            if name in _TEXT_COMMANDS:
                arg, i = _group(s, i)
                out.append(_display(arg, depth + 1) if name not in ("\\text", "\\mbox") else arg)
            elif name in _DROP_COMMANDS:
                out.append(" " if name in ("\\quad", "\\qquad") else "")
            elif name in _SYMBOLS:
                out.append(_SYMBOLS[name])
            else:
                out.append(name[1:])
        elif ch == "^":
            arg, i = _group(s, i + 1)
            shown = _display(arg, depth + 1)
            if shown == "°":
                out.append("°")
            elif re.fullmatch(r"[0-9+\-n]+", shown):
                out.append(shown.translate(_SUPERSCRIPTS))
            else:
                out.append("^" + _atom(shown))
        elif ch == "_":
            arg, i = _group(s, i + 1)
            out.append("_" + _display(arg, depth + 1))
        elif ch == "{" or ch == "}":
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def display(answer: str) -> str:
    """LaTeX made readable in a terminal: `\\frac{1}{2}` -> 1/2, `\\sqrt{2}` -> √2, `\\pi` -> π."""
    text = answer.strip().strip("$")
    shown = _display(text) if len(text) <= _MAX_DISPLAY_CHARS else text  # no one reads more
    return " ".join(shown.split()).replace("( ", "(").replace(" )", ")")


# ---------------------------------------------------------------- voting


@dataclass(frozen=True)
class VoteGroup:
    answer: str  # the answer as the group's first sample wrote it
    count: int
    samples: tuple[int, ...]  # sample indices, ascending


@dataclass(frozen=True)
class Vote:
    answer: str | None  # None when no sample has an answer
    count: int
    total: int
    groups: tuple[VoteGroup, ...]  # largest first; ties in the order of the rule below


def vote(answers: list[str | None], *, timeout: float = CHECK_TIMEOUT_S) -> Vote:
    """Majority answer over samples, clustering answers by equivalence.

    Tie rule: among groups with the same count, the one whose first sample has the lowest
    index wins (with samples indexed in the order they finished, that is the earliest
    finished). Samples without an answer are counted in `total` but never form a group, so
    None never wins. Equivalence that cannot be decided in time counts as different.
    """
    members: list[list[int]] = []
    keys: dict[str, int] = {}
    for index, answer in enumerate(answers):
        if answer is None or not answer.strip():
            continue
        key = normalise(answer) if len(answer) < 2000 else answer
        slot = keys.get(key)
        if slot is None:
            for g, group in enumerate(members):
                if equivalent(answers[group[0]], answer, timeout=timeout):
                    slot = g
                    break
        if slot is None:
            members.append([])
            slot = len(members) - 1
        keys.setdefault(key, slot)
        members[slot].append(index)
    groups = sorted(
        (VoteGroup(answers[m[0]], len(m), tuple(m)) for m in members),
        key=lambda g: (-g.count, g.samples[0]),
    )
    if not groups:
        return Vote(None, 0, len(answers), ())
    return Vote(groups[0].answer, groups[0].count, len(answers), tuple(groups))


@dataclass(frozen=True)
class Grade:
    extracted: str | None
    correct: bool | None  # None: no answer, or not comparable within the time limit
    fallback: bool = False  # the answer came from "final answer is ..." etc., not a box
    reference: str | None = None  # what the answer was compared with (see reference_answer)


def reference_answer(reference: str) -> str:
    """The answer a dataset's reference gives: itself, or a whole solution's final answer.

    A reference holding `\\boxed{}`/`\\fbox{}` (MATH's `solution` field) gives its final box,
    found as in completions; one with a `#### X` line (GSM8K's `answer` field) gives X.
    """
    if "\\boxed" in reference or "\\fbox" in reference:
        found = extract(reference)
        if found.answer is not None:
            return found.answer
    if "####" in reference:
        found_line = _hashes(reference[-_TAIL_CHARS:])
        answer = _clean_fallback(found_line) if found_line is not None else None
        if answer:
            return answer
    return reference.strip()


def grade(completion: str, reference: str, *, complete: bool = True,
          timeout: float = CHECK_TIMEOUT_S) -> Grade:
    """Extract the final answer of `completion` and compare it with `reference`'s answer."""
    ref = reference_answer(reference)
    found = extract(completion, complete)
    if found.answer is None:
        return Grade(None, None, reference=ref)
    return Grade(found.answer, equivalent(ref, found.answer, timeout=timeout), found.fallback, ref)
