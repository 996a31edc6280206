"""Answers: what a problem asks, read off its wording, for the sympy check (verify.py).

The check may say `verified` or `refuted` only where the question itself asks for the value of
one expression ("Compute $99^2+99+1$.", "What is $513^2 - 487^2$?"), for an expression in a
simpler form ("Simplify $(u+4)(u-1) - (u-3)(u+6)$.") or for the solutions of an equation
("Solve for $x$: ...", "Find all values of $x$ that satisfy ...", "If $\\sqrt{3x-5}=2$, find
all possible values of $x$."). A problem with any other words around its math (context before
the question, "the positive square root of", "when $a = 4$, what is $b$", "smallest $n$ such
that ...", a rounding) asks something the expression alone does not decide, so it is
`unchecked`: an expression or equation that merely appears in a problem is not the answer's
claim. Whole-problem templates, nothing looser: the check covers few problems, and is right
about those.

Plain string work (regular expressions on the problem with its math masked): no sympy here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_LATEX_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\[(.+?)\\\]|\\\((.+?)\\\)", re.DOTALL)
# Math in a problem written without `$`: numbers, lone letters and operators ("solve x^2=4").
_PLAIN_RUN = re.compile(
    r"(?:\d+(?:\.\d+)?|(?<![A-Za-z])[A-Za-z](?![A-Za-z])|\*\*|<=|>=|[-+*/^()=<>≤≥]|[ \t])+"
)
_RELATION = re.compile(r"=|<|>|≤|≥|\\[lg]eq?\b|\\[lg]t\b|\\neq?\b")
# What may follow the math without changing what is asked: the form the value is written in.
_FORM = (r"(?:expressed |written )?(?:as (?:an? )?(?:common fraction|fraction|decimal|mixed number|integer"
         r"|improper fraction)|in (?:simplest radical form|simplest form|lowest terms|radical form))")
_FORM_SENTENCE = re.compile(
    rf"(?:^|(?<=[.?!:]))\s*(?:express|give|write|enter|leave) (?:your|the) answer {_FORM}"
    r"(?: in (?:simplest|lowest) (?:form|terms))?\s*\.?\s*$", re.IGNORECASE
)
# "... and write the final answer as \boxed{answer}", "Put your final answer within \boxed{}."
_BOX_INSTRUCTION = re.compile(
    r"\s*(?:[,.]\s*|\s)(?:and )?(?:please )?(?:write|put|give|place|present) (?:the|your) (?:final )?answer "
    r"(?:as|in|inside|within) (?:a )?(?:\\boxed(?:\{[^{}]*\})?|box)\s*\.?\s*$", re.IGNORECASE
)
_IN_YOUR_HEAD = re.compile(r"\s+in your head\b", re.IGNORECASE)

M = r"(?P<m>§\d+)"  # the math asked about
E = r"(?P<m>§\d+(?:(?:,| and|, and) §\d+)*)"  # equations (a system: several)
V = r"(?P<v>§\d+|[a-z])"  # the variable asked for
END = r"\s*[.?!]?"
_VALUE = [re.compile(p + END) for p in (
    rf"(?P<verb>compute|evaluate|calculate|find|simplify|expand|factor)(?: the value of)?"
    rf"(?: the following(?: expression)?(?: in {V})?)?:? {M}",
    rf"what(?: is|'s)(?: the value of)? {M}(?: {_FORM})?",
    rf"{M}(?: ?= ?\?)?",
)]
_KINDS = r"(?P<n>values?|solutions?|roots?)"
_THAT = r"(?:that |which )?(?:satisf(?:y|ies)|such that|for which|if|when|where|given that|so that)(?: the equation)?"
_ASKS = r"(?:find|what (?:is|are)|determine|compute)(?P<all> all)?(?: the)?(?: possible| real)?"
_SOLVE = [re.compile(p + END) for p in (
    rf"(?P<all>solve)(?: the following equation| the equation)?(?: for {V})?:? {E}",
    rf"(?P<all>solve) {E}(?: for {V})?",
    rf"{E}[.,]? (?P<all>solve) for {V}",
    rf"{_ASKS} {_KINDS} (?:of|for) {V},? {_THAT} {E}",
    rf"(?:find|solve for)(?P<all> all)?(?: real)? {V},? (?:such that|for which|satisfying|that satisf(?:y|ies)"
    rf"|if|where) {E}",
    rf"(?:if|when|given that|suppose) {E},? {_ASKS} {_KINDS} (?:of|for) {V}",
    rf"(?:if|when|given that|suppose) {E},? (?:find|what is|compute|determine) {V}",
    rf"what is {V},? (?:if|when|given that) {E}",
    rf"(?P<all>){E}",  # only equations: solve them
)]


@dataclass(frozen=True)
class Ask:
    """What the problem asks for: the `value` of an expression (`simplify`: maybe with
    variables, as an identity), or the `solve`-tions of its equations for `target` (None: every
    variable); `complete`: the answer must hold every solution ("solve", "all values"), not
    one ("the value of x")."""

    kind: Literal["value", "simplify", "solve"]
    math: tuple[str, ...]
    target: str | None = None
    complete: bool = True


def _masked(problem: str) -> tuple[str, list[str]]:
    """The problem with each math segment replaced by `§i`, and the segments."""
    segments: list[str] = []

    def mask(text: str) -> str:
        segments.append(text.strip().rstrip(".,;:").strip())
        return f" §{len(segments) - 1} "

    masked = _LATEX_MATH.sub(lambda m: mask(next(g for g in m.groups() if g is not None)), problem)
    if not segments:
        masked = _PLAIN_RUN.sub(lambda m: mask(m.group(0)) if m.group(0).strip() else m.group(0), problem)
    masked = " ".join(masked.split())
    masked = re.sub(r" ([.,?!:;])", r"\1", masked)
    return masked, segments


def ask(problem: str) -> Ask | str:
    """What `problem` asks the check to decide, or why it asks nothing the check can decide."""
    masked, segments = _masked(problem)
    if not segments:
        return "no expression or equation in the problem"
    text = _IN_YOUR_HEAD.sub("", masked)
    text = _BOX_INSTRUCTION.sub("", text)
    while True:
        shorter = _FORM_SENTENCE.sub("", text).strip()
        if shorter == text:
            break
        text = shorter
    text = text.lower()
    reason = "the question asks for something other than the value of its expression or the solutions of its equation"
    for pattern in _SOLVE:
        m = pattern.fullmatch(text)
        if m:
            found = _solve_ask(m, segments)
            if isinstance(found, Ask):
                return found
            reason = found
    for pattern in _VALUE:
        m = pattern.fullmatch(text)
        if m:
            math = segments[int(m.group("m")[1:])]
            if _RELATION.search(math):
                return "the question does not ask for the solutions of its equation"
            verb = m.groupdict().get("verb")
            return Ask("simplify" if verb in ("simplify", "expand", "factor") else "value", (math,))
    return reason


def _solve_ask(m: re.Match[str], segments: list[str]) -> Ask | str:
    math = tuple(segments[int(k)] for k in re.findall(r"§(\d+)", m.group("m")))
    target = m.groupdict().get("v")
    if target is not None and target.startswith("§"):
        target = segments[int(target[1:])].strip()
        if not re.fullmatch(r"[A-Za-z]", target):
            return "the question asks for something other than one variable"
    if target is not None and len(math) > 1:
        return "the question asks for one variable of a system"
    if not all(_RELATION.search(s) for s in math):
        return "the question does not give an equation to solve"
    plural = (m.groupdict().get("n") or "").endswith("s")
    return Ask("solve", math, target, complete=m.groupdict().get("all") is not None or plural)
