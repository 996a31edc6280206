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
from mathsolve.config import THINK_CLOSE, THINK_OPEN

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
_FULL_STOP = re.compile(r"\.(?=\s|$)")
# What may follow a final statement: a short closing without math or more reasoning.
_CLOSINGS = (_MINERVA_CLOSING, "<|im_end|>", "<|endoftext|>", "<|im_start|>")
_MAX_CLOSING_CHARS = 200
_GOES_ON = re.compile(
    r"[\d=$\\]|\b(?:wait|but|however|hmm+|let me|let's|let us|actually|check|recheck|verify|mistake|wrong"
    r"|again|alternatively|instead|reconsider|recalculate|so|therefore|thus|then)\b"
)


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


class _Boxes(NamedTuple):
    found: list[_Box]
    cut: bool  # the text ends inside a box that never closes


def _find_boxes(text: str, complete: bool) -> _Boxes:
    """Outermost boxes in order; an unclosed one ends the scan (`cut`)."""
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
                return _Boxes(boxes, True)
            boxes.append(_Box(text[k + 1 : j].strip(), pos, j + 1))
            i = j + 1
        else:  # `\boxed 5`: one token up to whitespace or `$`
            token_match = _TOKEN.match(text, k)  # never None: the pattern accepts ""
            j = token_match.end() if token_match else k
            if j == n and not complete:  # the token may have been cut off
                return _Boxes(boxes, True)
            token = text[k:j].rstrip(".,;")
            if token:
                boxes.append(_Box(token, pos, j))
            i = max(j, k + 1)
    return _Boxes(boxes, False)


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


class _Statement(NamedTuple):
    line: str  # the statement, from after its marker to its line end
    start: int  # where it starts in the text searched


def _after_marker(tail: str, lowered: str, marker: str) -> _Statement | None:
    """The text after the last `marker` (matched case-insensitively) in tail, to its line end."""
    pos = lowered.rfind(marker)
    if pos < 0:
        return None
    start = pos + len(marker)
    while start < len(tail) and tail[start] in ": \t\r\n":
        start += 1
    return _Statement(tail[start:].split("\n", 1)[0], start)


def _hashes(tail: str) -> _Statement | None:
    """GSM8K's `#### 18`: the last line that starts with `####` (after spaces)."""
    pos = tail.rfind("####")
    while pos >= 0:
        line_start = tail.rfind("\n", 0, pos) + 1
        line_end = tail.find("\n", pos)
        line = tail[line_start : line_end if line_end >= 0 else len(tail)].lstrip(" \t")
        if line.startswith("####"):  # only a line's first #### can start it: one look per line
            return _Statement(line[4:], pos + 4)
        pos = tail.rfind("####", 0, line_start)
    return None


def _answer_colon(tail: str, lowered: str) -> _Statement | None:
    """`Answer: 73`, `**Answer:** 73`, `answer : 73` (the word `answer`, then a colon)."""
    pos = lowered.rfind("answer")
    while pos >= 0:
        before = lowered[pos - 1] if pos else " "
        k = pos + len("answer")
        while k < len(tail) and tail[k] in " *\t":
            k += 1
        if not before.isalnum() and k < len(tail) and tail[k] == ":":
            return _Statement(tail[k + 1 :].split("\n", 1)[0], k + 1)
        pos = lowered.rfind("answer", 0, pos)
    return None


def _statement_end(text: str, start: int) -> int:
    """Where the statement starting at text[start] ends: after its math span (`$X$`), else at
    its first full stop before a space, else at its line's end."""
    k = start
    while k < len(text) and text[k] in " \t*:":
        k += 1
    for opener, closer in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if text.startswith(opener, k):
            end = _unescaped(text, closer, k + len(opener))
            if end > 0:
                return end + len(closer)
            break
    line_end = text.find("\n", k)
    line_end = len(text) if line_end < 0 else line_end
    stop = _FULL_STOP.search(text, k, line_end)
    return stop.end() if stop else line_end


def _is_final(text: str, start: int) -> bool:
    """Nothing but a closing follows the statement at text[start]: reasoning that goes on
    ("But wait, ...", another computation) means it was not the final answer. Minerva's
    "I hope it is correct." ends its answer, whatever notes come after it."""
    rest = text[_statement_end(text, start) :]
    lowered = rest.lower()
    if lowered.lstrip(" \t\r\n*.,;!").startswith(_MINERVA_CLOSING):  # Minerva's format ends there, notes may follow
        return True
    for closing in _CLOSINGS:
        lowered = lowered.replace(closing, " ")
    rest = lowered.strip(" \t\r\n*#_-.!)]}>")
    return not rest or (len(rest) <= _MAX_CLOSING_CHARS and not _GOES_ON.search(rest))


def _looks_like_answer(raw: str, answer: str | None) -> bool:
    """A value, not prose: "$X$", LaTeX or a digit (not "the answer is not obvious")."""
    if not answer:
        return False
    return raw.startswith(("$", "\\")) or any(c.isdigit() for c in answer)


def _textual_answer(text: str, final: bool = True) -> str | None:
    """The answer stated in words, in this order: "final answer is X", "#### X", "Answer: X",
    and "The answer is X" (the GSM8K chain-of-thought format) when X looks like a value.
    `final`: only a statement that ends the text counts (a completion; a reference solution
    may go on after its answer).

    Only the last _TAIL_CHARS characters are read.
    """
    tail = text[-_TAIL_CHARS:]
    lowered = tail.lower()
    for found in (_after_marker(tail, lowered, _FINAL_ANSWER), _hashes(tail), _answer_colon(tail, lowered)):
        if found is not None and (not final or _is_final(tail, found.start)):
            answer = _clean_fallback(found.line.lstrip(":").strip())
            if answer:
                return sentence_value(answer)  # "Answer: The largest $n$ is 34." states 34
    found = _after_marker(tail, lowered, _THE_ANSWER)
    if found is not None and (not final or _is_final(tail, found.start)):
        answer = _clean_fallback(found.line)
        if _looks_like_answer(found.line, answer):
            return answer
    return None


def _stated_after_box(text: str, box_end: int) -> str | None:
    """A final "final answer is X" statement after the last box (Minerva's format), when X looks
    like an answer (a digit, LaTeX or `$`), not "I hope the final answer is correct"."""
    tail = text[max(box_end, len(text) - _TAIL_CHARS) :]
    found = _after_marker(tail, tail.lower(), _FINAL_ANSWER)
    if found is None or not _is_final(tail, found.start):
        return None
    raw = found.line.lstrip(": \t*")
    answer = _clean_fallback(raw)
    return answer if _looks_like_answer(raw, answer) else None


def answer_part(text: str) -> str:
    """The text after the reasoning: what follows the last `</think>`, up to a `<think>` that
    opens after it and never closes (without `</think>`, the text before an opening `<think>`).
    A model's thinking is not its answer, however confident a line of it sounds."""
    close = text.rfind(THINK_CLOSE)
    rest = text[close + len(THINK_CLOSE) :] if close >= 0 else text
    opened = rest.find(THINK_OPEN)
    return rest if opened < 0 else rest[:opened]


def extract(text: str, complete: bool = True) -> Extraction:
    """The final answer of a completion, read from its answer part (answer_part: reasoning in
    `<think>...</think>` is not read).

    The last `\\boxed{}` (with the boxes of the same sentence before it) is the answer,
    unless a final "final answer is X" statement comes after it (the Minerva / lm-evaluation-harness
    format other models are prompted for). A text that ends inside a box that never closes has
    no answer (a looping or cut-off sample; an earlier box was not its final answer). Without
    a box, a stated answer ("final answer is", "####", "Answer:"; a sentence there gives the
    value it states), only when it is the final statement of the text: reasoning that goes on
    after it ("But wait, ...") means it was not. `complete=False` (finish_reason "length"): only
    boxes that already closed count and the textual fallbacks are not used, since a cut-off
    sentence is not a final answer.
    """
    text = answer_part(text)
    boxes, cut = _find_boxes(text, complete)
    contents = tuple(b.content for b in boxes)
    if cut:
        return Extraction(None, contents)
    return _extract(text, boxes, complete, _CONNECTOR)


def _extract(text: str, boxes: list[_Box], complete: bool, connector: re.Pattern[str],
             final: bool = True) -> Extraction:
    """The answer of `text` with its `boxes` found, the boxes of one answer joined where
    `connector` matches their gap; `final`: see _textual_answer."""
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
    answer = _textual_answer(text, final)
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
        found = _extract(reference, _find_boxes(reference, True).found, True, _REFERENCE_CONNECTOR, final=False)
        if found.answer is not None:
            return found.answer
    if "####" in reference:
        statement = _hashes(reference[-_TAIL_CHARS:])
        answer = _clean_fallback(statement.line) if statement is not None else None
        if answer:
            return answer
    if is_solution(reference):
        stated = _textual_answer(reference, final=False) or last_value(reference)
        if stated:
            return stated
    return reference.strip()
