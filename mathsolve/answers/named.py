"""Answers: answers that name what they give (solution sets as assignments, function definitions).

`p=5,q=2;p=7,q=2` is the solution set `(5, 2), (7, 2)`, written with the unknowns' names;
`x = 2, y = 3` and `y = 3, x = 2` are one answer and `x = 3, y = 2` another, so values are
matched by name when both sides name them. `f(x) = 2x + 1` and `g(t) = 2t + 1` are one
function written with another argument name (a bare `f(x)` against `f(y)` is not: nothing
binds the letter there). `align` rewrites a pair of answers into the forms the value
comparison (equivalence.py) already decides. Plain string scanning, linear in the length.
"""

from __future__ import annotations

import re

from mathsolve.answers.forms import TEXT_COMMANDS, equals_signs, raw_items
from mathsolve.answers.latex import command_at, group_end

_NAME = re.compile(r"(?:[A-Za-z]|\\(?:alpha|beta|gamma|delta|theta|lambda|mu|phi|varphi|psi|omega))"
                   r"(?:_\{?[A-Za-z0-9]+\}?)?'*")
_FUNCTION = re.compile(r"([A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?)\s*\(\s*([A-Za-z](?:\s*,\s*[A-Za-z])*)\s*\)")
# Letter runs that are function words, not products of one-letter variables (`sin t`, `log n`).
_WORDS = {"sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "lg", "exp", "max", "min", "gcd",
          "lcm", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "mod", "det", "deg"}
_MAX_SOLUTIONS = 64
_FRESH = "uvwstpqrmnkjhgcbazyx"  # argument names for renamed definitions, the first unused

Solution = list[tuple[str, str]]


def _assignment(item: str) -> tuple[str, str] | None:
    """`a_{37} = 19` -> ("a_37", "19"); None unless the left side is one unknown's name."""
    signs = equals_signs(item)
    if len(signs) != 1:
        return None
    name, value = item[: signs[0]].strip(), item[signs[0] + 1 :].strip()
    if not value or not _NAME.fullmatch(name):
        return None
    return name.replace("{", "").replace("}", ""), value


def assignment_sets(answer: str) -> list[Solution] | None:
    """The solutions of an answer written as assignments of two unknowns or more, else None.

    `p=5,q=2;p=7,q=2` -> [[(p, 5), (q, 2)], [(p, 7), (q, 2)]]: a name seen again starts the
    next solution, and every solution names the same unknowns.
    """
    if "=" not in answer:
        return None
    _, items = raw_items(answer)
    solutions: list[Solution] = []
    current: Solution = []
    for item in items:
        pair = _assignment(item)
        if pair is None:
            return None
        if any(name == pair[0] for name, _ in current):
            solutions.append(current)
            current = []
        current.append(pair)
    if current:
        solutions.append(current)
    names = {name for name, _ in solutions[0]} if solutions else set()
    if len(names) < 2 or len(solutions) > _MAX_SOLUTIONS:
        return None
    if any({name for name, _ in s} != names or len(s) != len(names) for s in solutions):
        return None
    return solutions


def _tuples(solutions: list[Solution], order: list[str] | None = None) -> str:
    """`(5, 2), (7, 2)`: each solution's values in `order` (default: as written)."""
    rendered = []
    for solution in solutions:
        values = dict(solution)
        names = order or [name for name, _ in solution]
        rendered.append("(" + ", ".join(values[name] for name in names) + ")")
    return ", ".join(rendered)


def canonical_assignments(answer: str) -> list[str] | None:
    """A name-aware key: `x = 2, y = 3` and `y = 3, x = 2` -> ["(x=2,y=3)"]; `x = 3, y = 2` differs."""
    solutions = assignment_sets(answer)
    if solutions is None:
        return None
    keys = {"(" + ",".join(f"{n}={''.join(v.split())}" for n, v in sorted(s)) + ")" for s in solutions}
    return sorted(keys)


def _letters(body: str, mapping: dict[str, str] | None = None) -> tuple[set[str], str]:
    """The one-letter variables of `body` (commands and their \\text arguments skipped), and
    `body` with them renamed by `mapping`."""
    out: list[str] = []
    seen: set[str] = set()
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch == "\\":
            j = i + (len(command_at(body, i)) or 1)
            if body[i:j] in TEXT_COMMANDS and j < n and body[j] == "{":
                end = group_end(body, j)
                j = end if end > 0 else n
            out.append(body[i:j])
            i = j
            continue
        if ch.isalpha():
            j = i
            while j < n and body[j].isalpha():
                j += 1
            run = body[i:j]
            if run in _WORDS:
                out.append(run)
            else:
                seen.update(run)
                out.extend((mapping or {}).get(c, c) for c in run)
            i = j
            continue
        out.append(ch)
        i += 1
    return seen, "".join(out)


def _definition(item: str) -> tuple[str, list[str], str] | None:
    """`f(x, y) = x + y` -> ("f", ["x", "y"], "x + y"); None for `f(2) = 5` or `f(x) > 0`."""
    signs = equals_signs(item)
    if len(signs) != 1:
        return None
    m = _FUNCTION.fullmatch(item[: signs[0]].strip())
    body = item[signs[0] + 1 :].strip()
    if m is None or not body:
        return None
    args = [a.strip() for a in m.group(2).split(",")]
    return (m.group(1), args, body) if len(set(args)) == len(args) else None


def _renamed_functions(reference: str, candidate: str) -> tuple[str, str] | None:
    """Both answers' function definitions with their arguments renamed to the same fresh
    letters, when both answers are definitions of one arity: `f(x) = 2x + 1` and `g(t) = 2t + 1`
    both become `f(u) = 2u + 1`-like, while `g(t) = 2x + 1` (its `x` is free) keeps its `x`."""
    if "(" not in reference or "(" not in candidate or "=" not in reference or "=" not in candidate:
        return None
    sides = []
    for answer in (reference, candidate):
        defs = [_definition(item) for item in raw_items(answer)[1]]
        if not defs or None in defs:
            return None
        sides.append([d for d in defs if d is not None])
    arity = {len(args) for side in sides for _, args, _ in side}
    if len(arity) != 1:
        return None
    used = set().union(*(_letters(body)[0] | set(args) for side in sides for _, args, body in side))
    fresh = [c for c in _FRESH if c not in used][: arity.pop()]
    if len(fresh) < len(sides[0][0][1]):
        return None
    rendered = []
    for side in sides:
        items = []
        for name, args, body in side:
            items.append(f"{name}({', '.join(fresh)}) = {_letters(body, dict(zip(args, fresh)))[1]}")
        rendered.append(", ".join(items))
    return rendered[0], rendered[1]


def align(reference: str, candidate: str) -> tuple[str, str]:
    """Both answers rewritten so that comparing their values compares what they name.

    Assignment sets on both sides are matched by unknown (written in the reference's order of
    names when both name the same unknowns); against a plain answer, an assignment set is its
    tuples (`(5, 2), (7, 2)`), or its values for one solution (`x = -5, p = 14/3` -> `-5, 14/3`).
    Function definitions on both sides get the same fresh argument names.
    """
    ref_sets, cand_sets = assignment_sets(reference), assignment_sets(candidate)
    if ref_sets and cand_sets:
        same = {n for n, _ in ref_sets[0]} == {n for n, _ in cand_sets[0]}
        order = [n for n, _ in ref_sets[0]] if same else None
        return _tuples(ref_sets, order), _tuples(cand_sets, order)
    if ref_sets or cand_sets:
        def plain(solutions: list[Solution]) -> str:
            return _tuples(solutions) if len(solutions) > 1 else ", ".join(v for _, v in solutions[0])
        return (plain(ref_sets) if ref_sets else reference), (plain(cand_sets) if cand_sets else candidate)
    renamed = _renamed_functions(reference, candidate)
    return renamed if renamed is not None else (reference, candidate)
