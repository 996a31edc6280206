"""Final-answer extraction, terminal display of LaTeX answers, and majority voting.

The model was rewarded for the last `\\boxed{...}` anywhere in its output (reasoning
included), so that is the answer; fallbacks exist for other models' outputs in `grade`.
Everything here is plain string scanning, linear in the text length (1 MB comes back fast).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mathsolve.equivalence import equivalent, normalise

_BOX_COMMANDS = ("\\boxed", "\\fbox")
# What may stand between two boxes of one answer: "$\boxed{2}$ and $\boxed{-2}$",
# "x = \boxed{2} or x = \boxed{-2}", "\boxed{1}, \boxed{3}".
_CONNECTOR = re.compile(
    r"(?:\s|\$|\\\(|\\\)|\\quad|\\qquad|\\text\{\s*(?:and|or|,)?\s*\}|[,;]|\band\b|\bor\b"
    r"|(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?\s*=)*"
)
_MAX_GROUP_GAP = 60
_FALLBACKS = (
    re.compile(r"final answer is[:\s]*(.+)", re.IGNORECASE),
    re.compile(r"^\s*####\s*(.+)", re.MULTILINE),
    re.compile(r"\banswer\s*(?:\*\*)?\s*:\s*(?:\*\*)?\s*(.+)", re.IGNORECASE),
)


@dataclass(frozen=True)
class Extraction:
    """What was found: `answer` (None when there is none), every box, and how it was found."""

    answer: str | None
    boxes: tuple[str, ...] = ()
    fallback: bool = False  # found by "final answer is", "####" or "Answer:", not a box
    truncated_ok: bool = False  # the output was cut off but a box had already closed


@dataclass(frozen=True)
class _Box:
    content: str
    start: int
    end: int


def _find_boxes(text: str, complete: bool) -> list[_Box]:
    """Outermost boxes in order; unclosed ones are dropped (and end the scan)."""
    boxes: list[_Box] = []
    i, n = 0, len(text)
    while True:
        hits = [(text.find(c, i), c) for c in _BOX_COMMANDS]
        hits = [(pos, c) for pos, c in hits if pos >= 0]
        if not hits:
            return boxes
        pos, cmd = min(hits)
        k = pos + len(cmd)
        if k < n and (text[k].isalpha()):  # \boxedfoo is another command
            i = k
            continue
        while k < n and text[k] == " ":
            k += 1
        if k < n and text[k] == "{":
            depth, j = 0, k
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
                        break
                j += 1
            if j >= n:  # never closed: cut off here
                return boxes
            boxes.append(_Box(text[k + 1 : j].strip(), pos, j + 1))
            i = j + 1
        else:  # `\boxed 5`: one token up to whitespace or `$`
            j = k
            while j < n and not text[j].isspace() and text[j] != "$":
                j += 1
            if j == n and not complete:  # the token may have been cut off
                return boxes
            token = text[k:j].rstrip(".,;")
            if token:
                boxes.append(_Box(token, pos, j))
            i = max(j, k + 1)


def _last_sentence_group(text: str, boxes: list[_Box]) -> list[str]:
    """The last box plus the boxes right before it in the same sentence, deduplicated."""
    group = [boxes[-1]]
    for prev in reversed(boxes[:-1]):
        gap = text[prev.end : group[0].start]
        if len(gap) > _MAX_GROUP_GAP or not _CONNECTOR.fullmatch(gap):
            break
        group.insert(0, prev)
    seen: list[str] = []
    for box in group:
        if box.content and box.content not in seen:
            seen.append(box.content)
    return seen


def _clean_fallback(s: str) -> str | None:
    s = s.strip().split("\n")[0].strip()
    s = s.strip("*").strip()
    if s.startswith("$") and s.count("$") >= 2:
        s = s[1 : s.index("$", 1)]
    s = s.rstrip(".").strip().strip("$").strip()
    return s or None


def extract(text: str, complete: bool = True) -> Extraction:
    """The final answer of a completion.

    `complete=False` (finish_reason "length"): only boxes that already closed count and the
    textual fallbacks are not used, since a cut-off sentence is not a final answer.
    """
    boxes = _find_boxes(text, complete)
    contents = tuple(b.content for b in boxes)
    if boxes:
        group = _last_sentence_group(text, boxes)
        if group:
            return Extraction(", ".join(group), contents, False, not complete)
    if not complete:
        return Extraction(None, contents)
    tail = text[-20000:]
    for pattern in _FALLBACKS:
        matches = list(pattern.finditer(tail))
        if matches:
            answer = _clean_fallback(matches[-1].group(1))
            if answer:
                return Extraction(answer, contents, True)
    return Extraction(None, contents)


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


def _display(s: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(s):
        ch = s[i]
        if s.startswith(("\\frac", "\\dfrac", "\\tfrac"), i):
            i += 5 if s.startswith("\\frac", i) else 6
            num, i = _group(s, i)
            den, i = _group(s, i)
            out.append(f"{_atom(_display(num))}/{_atom(_display(den))}")
        elif s.startswith("\\sqrt", i):
            i += 5
            root = ""
            if i < len(s) and s[i] == "[":
                close = s.find("]", i)
                root, i = s[i + 1 : close], close + 1
            arg, i = _group(s, i)
            prefix = {"": "√", "3": "∛", "4": "∜"}.get(root, f"{root}√")
            out.append(prefix + _atom(_display(arg)))
        elif s.startswith(("\\begin{", "\\end{"), i):
            close = s.find("}", i)
            env = s[s.find("{", i) + 1 : close]
            opening = s.startswith("\\begin", i)
            if env.endswith("matrix"):
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
                out.append(_display(arg) if name not in ("\\text", "\\mbox") else arg)
            elif name in _DROP_COMMANDS:
                out.append(" " if name in ("\\quad", "\\qquad") else "")
            elif name in _SYMBOLS:
                out.append(_SYMBOLS[name])
            else:
                out.append(name[1:])
        elif ch == "^":
            arg, i = _group(s, i + 1)
            shown = _display(arg)
            if shown == "°":
                out.append("°")
            elif re.fullmatch(r"[0-9+\-n]+", shown):
                out.append(shown.translate(_SUPERSCRIPTS))
            else:
                out.append("^" + _atom(shown))
        elif ch == "_":
            arg, i = _group(s, i + 1)
            out.append("_" + _display(arg))
        elif ch == "{" or ch == "}":
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def display(answer: str) -> str:
    """LaTeX made readable in a terminal: `\\frac{1}{2}` -> 1/2, `\\sqrt{2}` -> √2, `\\pi` -> π."""
    shown = _display(answer.strip().strip("$"))
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


def vote(answers: list[str | None], *, timeout: float = 2.0) -> Vote:
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


def grade(completion: str, reference: str, *, complete: bool = True, timeout: float = 2.0) -> Grade:
    """Extract the final answer of `completion` and compare it with `reference`."""
    found = extract(completion, complete)
    if found.answer is None:
        return Grade(None, None)
    return Grade(found.answer, equivalent(reference, found.answer, timeout=timeout), found.fallback)
