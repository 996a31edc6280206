"""Answers: check an answer against the problem itself (substitute it, solve with sympy).

Security: problem and answer are untrusted. Nothing here calls eval, sympify or parse_expr
on text: a whitelist tokenizer (numbers, single-letter variables, + - * / ^ ( ) = < >,
\\frac, \\sqrt, \\pi, \\pm) feeds a small recursive-descent parser that builds sympy objects
itself; anything else makes the check `unchecked`. All sympy work runs in the hard-limited
worker (mathsolve.answers.limits), so a hostile problem cannot hang the caller.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mathsolve.answers.latex import drop_commands, group_end
from mathsolve.config import CHECK_TIMEOUT_S

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<cmd>\\[a-zA-Z]+)|(?P<op><=|>=|\*\*|[-+*/^()=<>{}≤≥±·×÷,])"
    r"|(?P<var>[a-zA-Z])(?![a-zA-Z]))"
)
_REL = {"=": "Eq", "<": "Lt", ">": "Gt", "<=": "Le", ">=": "Ge", "≤": "Le", "≥": "Ge",
        "\\le": "Le", "\\leq": "Le", "\\ge": "Ge", "\\geq": "Ge", "\\lt": "Lt", "\\gt": "Gt"}
_FRACS = ("\\frac", "\\dfrac", "\\tfrac")
_MULOPS = {"*", "/", "·", "×", "÷", "\\cdot", "\\times", "\\div"}
_MAX_EXPONENT = 64
_MAX_DIGITS = 40
_MAX_NESTING = 80  # parenthesis / exponent / \frac depth: deep input is a parse error, well
# within Python's recursion limit (about 7 frames a level)
_DECIMAL = re.compile(r"\d\.(\d+)")
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d,])")
# sympy ships no type information: its expressions, relations and symbols are Any here.
Sym = Any
Solution = dict[Sym, Sym]  # {symbol: value}


@dataclass(frozen=True)
class Check:
    status: str  # "verified" | "refuted" | "unchecked"
    reason: str


class _ParseError(ValueError):
    pass


def _tokens(text: str) -> list[str]:
    # Every dropped command leaves a space, so `a\,b` stays two tokens (a product).
    text = drop_commands(text, space=" ").replace("$", " ")
    out, i = [], 0
    text = text.strip()
    while i < len(text):
        m = _TOKEN.match(text, i)
        if not m or m.end() == i or m.lastgroup is None:  # every alternative is a named group
            raise _ParseError(f"unexpected {text[i:i + 10]!r}")
        out.append(m.group(m.lastgroup))
        i = m.end()
        while i < len(text) and text[i].isspace():
            i += 1
    return out


class _Parser:
    """relation := expr (relop expr)* ; expr := term (+|- term)* ; term := unary (op unary)*."""

    def __init__(self, tokens: list[str], pm_sign: int = 1) -> None:
        import sympy

        self.sp = sympy
        self.t = tokens
        self.i = 0
        self.pm = pm_sign
        self.depth = 0  # see _MAX_NESTING

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise _ParseError(f"expected {expected or 'more input'}")
        self.i += 1
        return tok

    def parse(self) -> Sym:
        value = self.relation()
        if self.peek() is not None:
            raise _ParseError(f"unexpected {self.peek()!r}")
        return value

    def relation(self) -> Sym:
        left = self.expr()
        parts = []
        while self.peek() in _REL:
            op = _REL[self.take()]
            right = self.expr()
            parts.append(getattr(self.sp, op)(left, right, evaluate=False))
            left = right
        if not parts:
            return left
        return parts[0] if len(parts) == 1 else self.sp.And(*parts)

    def expr(self) -> Sym:
        value = self.unary()
        while self.peek() in ("+", "-", "±", "\\pm"):
            op = self.take()
            sign = -1 if op == "-" else (self.pm if op in ("±", "\\pm") else 1)
            value = value + sign * self.term()
        return value

    def unary(self) -> Sym:
        if self.peek() in ("-", "+", "±", "\\pm"):
            op = self.take()
            sign = -1 if op == "-" else (self.pm if op in ("±", "\\pm") else 1)
            return sign * self.term()
        return self.term()

    def term(self) -> Sym:
        value = self.power()
        while True:
            tok = self.peek()
            if tok in _MULOPS:
                self.take()
                rhs = self.power()
                value = value / rhs if tok in ("/", "÷", "\\div") else value * rhs
            elif tok is not None and (tok in ("(", "{", "\\frac", "\\dfrac", "\\sqrt", "\\pi") or tok.isalpha()):
                if tok in _FRACS and self.t[self.i - 1][0].isdigit():
                    # `4\dfrac{5}{8}`: MATH writes mixed numbers so, a product elsewhere
                    raise _ParseError("a number right before a fraction: a mixed number or a product?")
                value = value * self.power()
            else:
                return value

    def nested(self, parse: Callable[[], Sym]) -> Sym:
        if self.depth >= _MAX_NESTING:
            raise _ParseError("nested too deeply")
        self.depth += 1
        try:
            return parse()
        finally:
            self.depth -= 1

    def power(self) -> Sym:
        return self.nested(self._power)

    def _power(self) -> Sym:
        base = self.atom()
        if self.peek() in ("^", "**"):
            self.take()
            exponent = self.unary() if self.peek() in ("-", "+") else self.power()
            if not (exponent.is_Rational and abs(exponent) <= _MAX_EXPONENT):
                raise _ParseError("exponent too large or not a number")
            return self.sp.Pow(base, exponent)
        return base

    def argument(self) -> Sym:
        """A command's argument: a group, or one digit of a number (`\\frac23` is 2/3)."""
        tok = self.peek()
        if tok is not None and tok[0].isdigit() and len(tok) > 1:
            if not tok.isdigit():
                raise _ParseError(f"unclear argument {tok!r}")
            self.t[self.i] = tok[1:]
            return self.sp.Rational(tok[0])
        return self.nested(self.atom)

    def atom(self) -> Sym:
        tok = self.take()
        sp = self.sp
        if tok[0].isdigit():
            if len(tok) > _MAX_DIGITS:
                raise _ParseError("number too long")
            return sp.Rational(tok)
        if len(tok) == 1 and tok.isalpha():
            return sp.Symbol(tok)
        if tok in ("(", "{"):
            inner = self.expr()
            self.take(")" if tok == "(" else "}")
            return inner
        if tok in _FRACS:
            numerator = self.argument()
            return numerator / self.argument()
        if tok == "\\sqrt":
            return sp.sqrt(self.argument())
        if tok == "\\pi":
            return sp.pi
        raise _ParseError(f"unsupported {tok!r}")


def _parse(text: str, pm_sign: int = 1) -> Sym:
    return _Parser(_tokens(text), pm_sign).parse()


def _split_top(text: str, separators: tuple[str, ...]) -> list[str]:
    """Split at separators that are outside parentheses and braces."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif depth == 0:
            for sep in separators:
                if text.startswith(sep, i):
                    parts.append(text[start:i])
                    start = i + len(sep)
                    i = start - 1
                    break
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _answer_values(answer: str, symbols: list[Sym]) -> list[Solution] | None:
    """Solutions the answer claims, as dicts {symbol: value}; None when unreadable."""
    import sympy

    text = answer.strip().strip("$")
    for wrapper in ("\\boxed{", "\\text{"):
        if text.startswith(wrapper) and group_end(text, len(wrapper) - 1) == len(text):
            text = text[len(wrapper):-1]
    pieces = _split_top(text, (",", ";", " or ", " and ", "\\text{ or }", "\\text{ and }", "\\quad"))
    names = {s.name: s for s in symbols}
    solutions: list[Solution] = []
    assigned: Solution = {}
    for piece in pieces:
        variants = [1, -1] if ("\\pm" in piece or "±" in piece) else [1]
        for sign in variants:
            value = _parse(piece, sign)
            if isinstance(value, sympy.Eq) and isinstance(value.lhs, sympy.Symbol):
                if value.lhs.name not in names or value.rhs.free_symbols:
                    return None
                sym = names[value.lhs.name]
                if len(symbols) == 1:
                    solutions.append({sym: value.rhs})
                else:
                    if sym in assigned:
                        solutions.append(assigned)
                        assigned = {}
                    assigned[sym] = value.rhs
            elif isinstance(value, sympy.Expr) and not value.free_symbols and len(symbols) == 1:
                solutions.append({symbols[0]: value})
            elif isinstance(value, sympy.Tuple) and len(value) == len(symbols):
                solutions.append(dict(zip(symbols, value)))
            else:
                return None
    if assigned:
        solutions.append(assigned)
    if len(symbols) > 1 and not solutions and len(pieces) == 1 and pieces[0].startswith("("):
        return None
    return solutions


def _answer_tuples(answer: str, symbols: list[Sym]) -> list[Solution] | None:
    """`(2, 1)` or `(2, 1), (0, 3)` for a system in alphabetical variable order."""
    groups = re.findall(r"\(([^()]*)\)", answer)
    if not groups:
        return None
    out = []
    for group in groups:
        values = [_parse(v) for v in _split_top(group, (",",))]
        if len(values) != len(symbols) or any(v.free_symbols for v in values):
            return None
        out.append(dict(zip(symbols, values)))
    return out


def _same(x: Sym, y: Sym) -> bool:
    import sympy

    return bool(sympy.simplify(x - y) == 0)


def _describe(solution: Solution) -> str:
    return ", ".join(f"{k} = {v}" for k, v in sorted(solution.items(), key=lambda kv: kv[0].name))


def _check_equations(answer: str, rels: list[Sym], target: str | None, complete: bool) -> tuple[str, str]:
    import sympy

    if any(not isinstance(r, sympy.Eq) for r in rels):
        return "unchecked", "inequalities are not checked yet"
    symbols = sorted(set().union(*(r.free_symbols for r in rels)), key=lambda s: s.name)
    if not symbols or len(symbols) > len(rels):
        return "unchecked", "the equations do not fix every variable"
    if target is not None and [s.name for s in symbols] != [target]:
        return "unchecked", f"the equation's variables are not the {target} asked for"
    system = ", ".join(str(r.lhs) + " = " + str(r.rhs) for r in rels)
    try:
        claimed = _answer_tuples(answer, symbols) if len(symbols) > 1 and "(" in answer else None
        if claimed is None:
            claimed = _answer_values(answer, symbols)
    except (_ParseError, TypeError, ValueError, ZeroDivisionError) as exc:
        return "unchecked", f"the answer is not in a form that can be checked ({exc})"
    if not claimed or any(set(c) != set(symbols) for c in claimed):
        return "unchecked", "the answer does not give a value for every variable"
    for sol in claimed:
        for rel in rels:
            if not _same(rel.lhs.subs(sol), rel.rhs.subs(sol)):
                if _DECIMAL.search(answer):  # 1.167 for a root of x^5 - x - 1: a rounding, not a claim
                    return "unchecked", "a decimal answer is not checked against exact solutions"
                return "refuted", f"{_describe(sol)} does not satisfy {rel.lhs} = {rel.rhs}"
    solved = sympy.solve([r.lhs - r.rhs for r in rels], symbols, dict=True)
    if not solved:
        return "unchecked", "sympy found no closed-form solutions"
    real = [s for s in solved if all(v.is_real for v in s.values())]
    expected = real or solved
    missing = [s for s in expected if not any(all(_same(s[k], c[k]) for k in symbols) for c in claimed)]
    if missing and complete:
        return "refuted", "misses " + "; ".join(_describe(s) for s in missing)
    if missing:  # "what is the value of x" with two solutions: the question is not about the others
        return "unchecked", "the equation has other solutions too (" + "; ".join(_describe(s) for s in missing) + ")"
    return "verified", f"the answer is the complete solution set of {system}"


def _claimed(answer: str) -> Sym:
    """The value an answer states: "3+4 = 7" states 7; thousands separators dropped."""
    text = _split_top(answer, ("=",))[-1] if "=" in answer else answer
    text = text.strip().strip("$")
    return _parse(_THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), text))


def _check_value(value: Sym, answer: str) -> tuple[str, str]:
    claimed = _claimed(answer)
    if getattr(claimed, "free_symbols", True):
        return "unchecked", "the answer is not a number"
    if _same(value, claimed):
        return "verified", f"evaluates exactly to {value}"
    decimal = _DECIMAL.search(answer)
    if decimal:  # 0.333 for 1/3: a rounding to the places it gives is not called wrong
        places = len(decimal.group(1))
        if abs(float(value - claimed)) <= 0.5 * 10 ** -places + 1e-12:
            return "unchecked", f"the answer is {value} rounded to {places} decimal places"
    return "refuted", f"the expression evaluates to {value}, not {claimed}"


def _check_simplified(expr: Sym, answer: str) -> tuple[str, str]:
    """Simplify/expand/factor with variables: the answer must equal the expression identically."""
    import sympy

    claimed = _claimed(answer)
    if not isinstance(claimed, sympy.Expr) or not claimed.free_symbols <= expr.free_symbols:
        return "unchecked", "the answer is not an expression in the problem's variables"
    if sympy.simplify(expr - claimed) == 0:
        return "verified", f"equals {expr} for every value of {_names(expr)}"
    # Refuted only where the two differ at points where both are defined (positive rationals,
    # so that sqrt(x^2) = x is not called wrong).
    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    for k in range(3):
        point = {s: sympy.Rational(2 + k + 3 * i, 3 + 2 * k + i) for i, s in enumerate(symbols)}
        a, b = expr.subs(point), claimed.subs(point)
        if a.is_finite and b.is_finite and a.is_real and b.is_real and not _same(a, b):
            shown = ", ".join(f"{s} = {v}" for s, v in point.items())
            return "refuted", f"differs from {expr} at {shown}"
    return "unchecked", f"could not decide whether the answer equals {expr}"


def _names(expr: Sym) -> str:
    return ", ".join(sorted(s.name for s in expr.free_symbols))


def check_in_worker(problem: str, answer: str) -> tuple[str, str]:
    """Runs in the worker: what does the problem ask (question.ask), and does the answer give it?"""
    import sympy

    from mathsolve.answers.question import ask

    asked = ask(problem)
    if isinstance(asked, str):
        return "unchecked", asked
    try:
        pieces = ([piece for math in asked.math for piece in _split_top(math, (",", " and ", "\\text{ and }"))]
                  if asked.kind == "solve" else list(asked.math))
        exprs = [_parse(piece) for piece in pieces]
    except (_ParseError, TypeError, ValueError, ZeroDivisionError):
        return "unchecked", "the problem's math uses notation the check does not read"
    if asked.kind == "solve":
        return _check_equations(answer, exprs, asked.target, asked.complete)
    if len(exprs) != 1 or not isinstance(exprs[0], sympy.Expr):
        return "unchecked", "the problem's math is not one expression"
    expr = exprs[0]
    if {s.name for s in expr.free_symbols} & {"i", "e"}:
        return "unchecked", "i and e may be constants here, not variables"
    try:
        if not expr.free_symbols:
            return _check_value(expr, answer)
        if asked.kind == "simplify":
            return _check_simplified(expr, answer)
    except (_ParseError, TypeError, ValueError, ZeroDivisionError):
        return "unchecked", "the answer is not a plain number or expression"
    return "unchecked", "the expression has variables with no values"


def check(problem: str, answer: str, *, timeout: float = CHECK_TIMEOUT_S) -> Check:
    """Is `answer` the complete solution of `problem`? Never `verified` without a real check."""
    from mathsolve.answers.limits import HardTimeout, WorkerError, call_limited

    if not answer or not answer.strip():
        return Check("unchecked", "no answer")
    if len(problem) > 20000 or len(answer) > 2000:
        return Check("unchecked", "too long to check")
    try:
        status, reason = call_limited(check_in_worker, problem, answer, timeout=timeout)
    except HardTimeout:
        return Check("unchecked", f"sympy did not finish within {timeout:g} s")
    except WorkerError as exc:
        return Check("unchecked", f"sympy failed: {exc}")
    return Check(status, reason)
