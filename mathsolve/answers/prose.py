"""Answers: values stated in prose (a solution without a box, an answer given as a sentence).

A dataset reference may be a whole solution with no box and no `####` line ("... so the
stock lost $28\\%$ of its value."); its answer is what its last sentence ends on. A completion's
"Answer: The largest $n$ is 34." states 34. A reference dumped to JSON twice holds `\\\\boxed`
for `\\boxed`. Plain string scanning of the text's tail, linear in its length.
"""

from __future__ import annotations

import re

from mathsolve.answers.forms import equals_signs, is_name

_TAIL_CHARS = 2000  # a solution's last sentences
# Math spans of at most _SPAN_CHARS characters: a bounded look-ahead keeps an unclosed `\(`
# repeated thousands of times linear.
_SPAN_CHARS = 300
_MATH_SPAN = re.compile(
    rf"\$\$(.{{1,{_SPAN_CHARS}}}?)\$\$|(?<!\\)\$(.{{1,{_SPAN_CHARS}}}?)(?<!\\)\$"
    rf"|\\\((.{{1,{_SPAN_CHARS}}}?)\\\)|\\\[(.{{1,{_SPAN_CHARS}}}?)\\\]",
    re.DOTALL,
)
_SENTENCE_CHARS = 600  # a stated answer longer than this is not reduced to a value
_NUMBER = re.compile(r"(?<![\w./])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?(?![\w/])\s*%?")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_WORD = re.compile(r"(?<![\\\w])[A-Za-z]{2,}(?!\w)")
_CLOSINGS = ("i hope it is correct", "<|im_start|>", "<|im_end|>", "<|endoftext|>")
_DOUBLED = re.compile(r"(?<!\\)\\\\(?=[A-Za-z])")
_SINGLE_COMMAND = re.compile(r"(?<!\\)\\([A-Za-z]+)")
# A reference is a solution, not an answer in words ("Player A wins when the number of coins
# is a multiple of 4"), with this many prose words outside math and two sentences or more.
_SOLUTION_WORDS = 15
_MAX_WORDS_AFTER = 6  # "... is $120$ square units." ends on the value; more words do not
_VERB = re.compile(r"\b(?:is|are|was|were|equals)\s+")
_SENTENCE_END = re.compile(r"[.!?:]\s+[A-Z$\\]")
_UNIT_END = re.compile(r"\s*(?:[A-Za-z]+\s*){0,2}[.!]?\s*")  # what may follow a stated value


def undoubled(reference: str) -> str:
    """`\\\\boxed{4}` -> `\\boxed{4}` when every command is escaped twice (literal `\\n` aside)."""
    if not _DOUBLED.search(reference):
        return reference
    if any(not m.group(1).startswith("n") for m in _SINGLE_COMMAND.finditer(reference)):
        return reference  # single commands too: the `\\\\` are line breaks
    return _DOUBLED.sub(lambda _: "\\", reference)


def prose_words(text: str) -> int:
    """Words of two letters or more outside math spans and commands."""
    return len(_WORD.findall(_COMMAND.sub(" ", _MATH_SPAN.sub(" ", text))))


def is_solution(reference: str) -> bool:
    """A whole solution written in sentences, not an answer (`\\text{Evelyn}`, `6 and 8`)."""
    tail = reference[-_TAIL_CHARS:]
    return prose_words(tail) >= _SOLUTION_WORDS and _SENTENCE_END.search(tail) is not None


def _final_part(expression: str) -> str:
    """`5 \\times 6 \\times 4 = 120` -> `120`, `V = 120` -> `120`; `y = 2x + 3` stays: only a
    chain whose earlier parts are arithmetic or names gives its last part."""
    signs = equals_signs(expression)
    if not signs:
        return expression.strip()
    bounds = [-1, *signs, len(expression)]
    parts = [expression[a + 1 : b].strip() for a, b in zip(bounds, bounds[1:])]
    earlier = parts[:-1]
    if parts[-1] and all(p and (is_name(p) or not re.search(r"[A-Za-z]", _COMMAND.sub("", p))) for p in earlier):
        if len(earlier) > 1 or not is_name(earlier[0]):
            return parts[-1]
    return expression.strip()


def _values(text: str) -> list[tuple[int, int, str]]:
    """Math spans and numbers outside them, as (start, end, value), in order."""
    found: list[tuple[int, int, str]] = []
    last = 0
    for m in _MATH_SPAN.finditer(text):
        found.extend((n.start(), n.end(), n.group(0).strip()) for n in _NUMBER.finditer(text, last, m.start()))
        content = next(g for g in m.groups() if g is not None)
        found.append((m.start(), m.end(), content.strip()))
        last = m.end()
    found.extend((n.start(), n.end(), n.group(0).strip()) for n in _NUMBER.finditer(text, last))
    return [v for v in found if v[2]]


def _without_closing(text: str) -> str:
    """The text before its last closing: Minerva's "I hope it is correct", a chat turn's end."""
    lowered = text.lower()
    cut = max(lowered.rfind(c) for c in _CLOSINGS)
    return text[:cut] if cut >= 0 else text


def last_value(solution: str) -> str | None:
    """The value a solution ends on: its last math span or number, when at most a few words
    (a unit, "square units.") follow it; None when it ends on prose."""
    tail = _without_closing(solution[-_TAIL_CHARS:]).rstrip()
    values = _values(tail)
    if not values:
        return None
    start, end, value = values[-1]
    after = tail[end:]
    if re.search(r"(?:[-+*/^]|\\times|\\cdot)\s*$", tail[:start]):  # `3/4 + 1.` ends on an expression
        return None
    if re.search(r"[\d=+*/^<>]", after) or len(after.split()) > _MAX_WORDS_AFTER or "\n" in after.strip():
        return None
    return _final_part(value) or None


def sentence_value(answer: str) -> str:
    """`The largest $n$ is 34` -> `34`; `Jane started it 3 hours ago` -> `3`; otherwise as is.

    Only a stated answer that is a sentence is reduced: to the value right after its last
    "is"/"are", else to its one value; either only when at most two words (a unit) end the
    sentence after it (`is 3/4` is not 3, `3 more than half` is not 3).
    """
    if len(answer) > _SENTENCE_CHARS or prose_words(answer) < 3:
        return answer
    verbs = list(_VERB.finditer(answer))
    if verbs:
        rest = answer[verbs[-1].end() :]
        values = _values(rest)
        if values and not rest[: values[0][0]].strip() and _UNIT_END.fullmatch(rest[values[0][1] :]):
            return _final_part(values[0][2])
    values = _values(answer)
    if len(values) == 1 and _UNIT_END.fullmatch(answer[values[0][1] :]):
        return _final_part(values[0][2])
    return answer
