"""Answers: are two answers equal? A string fast path, then math-verify in a time-limited worker.

Why two layers: most grading pairs are identical after normalisation or plain numbers, and
deciding those with string and Fraction arithmetic keeps grading under a couple of ms. The
rest goes to math-verify (LaTeX -> sympy), run in a worker process that is killed after
`timeout` seconds, with guards for the false results math-verify is known to give.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from mathsolve.answers.forms import answer_items, is_equation, units_differ
from mathsolve.answers.latex import drop_commands, group_end, unwrap
from mathsolve.answers.named import align, canonical_assignments
from mathsolve.config import CHECK_TIMEOUT_S

MAX_ANSWER_CHARS = 2000  # longer "answers" are not comparable (no sympy on megabytes)
MAX_NUMBER_DIGITS = 400

_WRAPPERS = (
    "\\boxed", "\\fbox", "\\text", "\\textbf", "\\mathbf", "\\mathrm", "\\mbox", "\\textrm",
    "\\textnormal", "\\textit", "\\textup",
)
# Dropped from a value after latex.DROP_COMMANDS: money, markdown, degree and percent marks.
_MARKERS = ("\\$", "$", "**", "^{\\circ}", "^\\circ", "°", "\\%", "%")
_NUM = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_FRAC = re.compile(r"(-?)(\d+)?\\frac\{(\d+)\}\{(\d+)\}")
_SLASH = re.compile(r"(-?\d+)/(\d+)")
_ASSIGN = re.compile(r"^(?:[a-zA-Z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?\s*=\s*([^=]+)$")
_NUMBER_HEAD = re.compile(r"-?[\d.,/]+")
_TIME = re.compile(
    r"^(\d{1,2}):(\d{2})\s*(?:\\text\{\s*|\\mathrm\{\s*)?([ap])?\.?\s*(?:\\text\{\s*)?m?\.?\}?$",
    re.IGNORECASE,
)
_CHOICE = re.compile(r"^\(?([A-Ea-e])\)?$")
_LABELLED_CHOICE = re.compile(r"^\(([A-E])\)\S")  # a choice's letter, then its value
_COMMAND = re.compile(r"\\(?:begin|end)\{\w*\*?\}|\\[a-zA-Z]+")
_WORD = re.compile(r"[A-Za-z]{3,}")
_INFINITY = re.compile(r"([+-]?)(?:\\infty|\\infin|oo|inf|infinity|∞)")


def _unbox(s: str) -> str:
    """`\\boxed{X}` (or `\\fbox`) around the whole answer -> `X`, so its list and units show.

    A box that never closes (`\\boxed{W(n) = 1`, a reference's typo) holds the rest."""
    s = s.strip()
    while s.startswith(("\\boxed{", "\\fbox{")):
        brace = s.index("{")
        end = group_end(s, brace)
        if end < 0:
            return s[brace + 1 :].strip()
        if end != len(s):
            break
        s = s[brace + 1 : -1].strip()
    return s


def _normalise_value(s: str) -> str:
    """One value's canonical string: wrappers, spacing, unit markers and separators removed."""
    for cmd in _WRAPPERS:
        if cmd + "{" in s:
            s = unwrap(s, cmd)
    s = s.replace("bmatrix}", "pmatrix}").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("{,}", ",")
    s = drop_commands(s)
    for token in _MARKERS:
        s = s.replace(token, "")
    s = s.replace("\\le ", "\\leq ").replace("\\ge ", "\\geq ").replace("−", "-")
    s = " ".join(s.split()).strip(" .")
    m = _ASSIGN.match(s)
    if m and "," not in m.group(1):
        s = m.group(1).strip()
    if _THOUSANDS.fullmatch(s.replace(" ", "")):
        s = s.replace(",", "").replace(" ", "")
    head = _NUMBER_HEAD.match(s)
    if head and head.end() < len(s) and _is_unit_words(s[head.end() :]):
        if _as_number(head.group(0).replace(",", "")) is not None:
            s = head.group(0).replace(",", "")
    return s.replace(" ", "")


def _is_unit_words(tail: str) -> bool:
    """`cm`, ` sq ft`, `dollars.`, `inches^2`: words of two letters or more after a number."""
    tail = tail.strip()
    for power in ("^2", "^3", "^{2}", "^{3}"):
        tail = tail.removesuffix(power)
    words = tail.split()
    return bool(words) and all(len(w.rstrip(".")) >= 2 and w.rstrip(".").isalpha() for w in words)


def answer_values(answer: str) -> list[str]:
    """The canonical values of an answer: one for `7`, several for `6 \\text{ and } 8`."""
    if len(answer) > MAX_ANSWER_CHARS:  # not parsed: no scanning of megabytes on every call
        return [answer.strip()]
    unboxed = _unbox(answer)
    named = canonical_assignments(unboxed)  # `x = 2, y = 3`: values by name, not a list
    if named:
        return named
    values = [_normalise_value(item) for item in answer_items(unboxed)]
    return [v for v in values if v]


def normalise(answer: str) -> str:
    """A canonical string form: names, wrappers, spacing, units and separators removed."""
    return ",".join(answer_values(answer))


def _as_number(s: str) -> Fraction | None:
    """Exact value of a plain number (integer, decimal, a/b, \\frac{a}{b}, 1\\frac{1}{10})."""
    if not s or len(s) > MAX_NUMBER_DIGITS:
        return None
    if _NUM.fullmatch(s):
        return Fraction(s)
    m = _SLASH.fullmatch(s)
    if m and m.group(2) != "0" and int(m.group(2)):
        return Fraction(int(m.group(1)), int(m.group(2)))
    m = _FRAC.fullmatch(s)
    if m and int(m.group(4)):
        sign = -1 if m.group(1) else 1
        whole = int(m.group(2)) if m.group(2) else 0
        return sign * (whole + Fraction(int(m.group(3)), int(m.group(4))))
    return None


def _time_of_day(s: str) -> int | None:
    """Minutes after midnight for `4:30 p.m.`, `16:30`, `4:30\\text{ pm}`; else None."""
    m = _TIME.match(s.replace("\\text{", "").replace("}", "").replace("\\", "").strip())
    if not m:
        return None
    hour, minute = int(m.group(1)), int(m.group(2))
    if m.group(3):
        hour = hour % 12 + (12 if m.group(3).lower() == "p" else 0)
    return hour * 60 + minute


def _text_key(s: str) -> str | None:
    """Comparison key for answers in words (`Evelyn`, `\\text{(C)}`, `no solution`)."""
    m = _CHOICE.match(s)
    if m:
        return "choice:" + m.group(1).upper()
    if not _WORD.search(_COMMAND.sub(" ", s)):
        return None
    return "text:" + " ".join(re.sub(r"[^a-z0-9]+", " ", s.lower()).split())


def infinity_sign(answer: str) -> int | None:
    """+1 or -1 when the whole answer is infinity (`\\infty`, `-\\infty`, `oo`, `inf`, `∞`,
    `infinity`), else None."""
    m = _INFINITY.fullmatch(_normalise_value(_unbox(answer)).lower())
    if m is None:
        return None
    return -1 if m.group(1) == "-" else 1


def fast_equivalent(a: str, b: str) -> bool | None:
    """Decide without sympy when that is safe; None means 'ask math-verify'."""
    ia, ib = infinity_sign(a), infinity_sign(b)
    if ia is not None or ib is not None:  # infinity equals only infinity of the same sign
        return ia == ib
    va, vb = answer_values(a), answer_values(b)
    na, nb = ",".join(va), ",".join(vb)
    if not na or not nb:
        return False
    if na == nb:
        return True
    if any(map(is_equation, va)) != any(map(is_equation, vb)):  # `2x = 5` is not the value 5
        return False
    x, y = _as_number(na), _as_number(nb)
    if x is not None and y is not None:
        return x == y
    if len(va) > 1 or len(vb) > 1:  # lists of plain numbers: the same values, in any order
        xs = [n for n in map(_as_number, va) if n is not None]
        ys = [n for n in map(_as_number, vb) if n is not None]
        if len(xs) == len(va) and len(ys) == len(vb):
            return sorted(xs) == sorted(ys)
    ta, tb = _time_of_day(na), _time_of_day(nb)
    if ta is not None or tb is not None:
        return ta is not None and ta == tb
    ka, kb = _text_key(na), _text_key(nb)
    for key, other in ((ka, nb), (kb, na)):  # `(A) 24` (a letter, then its value) against `A`
        labelled = _LABELLED_CHOICE.match(other)
        if key and key.startswith("choice:") and labelled:
            return "choice:" + labelled.group(1) == key
    if ka is not None or kb is not None:
        return ka == kb
    return None


def equivalent(a: str, b: str, *, timeout: float = CHECK_TIMEOUT_S) -> bool | None:
    """Is candidate `b` the same answer as reference `a`? None: not comparable in time.

    `a` is the reference (math-verify is asymmetric for assignments such as `x=5`).
    """
    from mathsolve.answers.limits import HardTimeout, WorkerError, call_limited

    if a is None or b is None:
        return None
    if len(a) > MAX_ANSWER_CHARS or len(b) > MAX_ANSWER_CHARS:
        return None
    a, b = align(_unbox(a), _unbox(b))  # names: assignment sets, function arguments
    if units_differ(a, b):  # 7 days is not 7 weeks
        return False
    fast = fast_equivalent(a, b)
    if fast is not None:
        return fast
    try:
        same: bool = call_limited(math_verify_equal, normalise_for_parse(a), normalise_for_parse(b), timeout=timeout)
        return same
    except (HardTimeout, WorkerError):
        return None


def normalise_for_parse(s: str) -> str:
    """Clean-up before math-verify: markdown bold, `\\fbox`, separators; lists in words and
    names before values (forms.answer_items) become a plain comma list of values."""
    s = s.strip().replace("**", "").replace("\\fbox{", "\\boxed{").replace("{,}", ",")
    items = answer_items(_unbox(s)) if len(s) <= MAX_ANSWER_CHARS else [s]
    items = [i.replace(",", "") if _THOUSANDS.fullmatch(i.replace(" ", "")) else i for i in items]
    return ", ".join(i.strip("$ ") for i in items)


def _numeric_value(expr: Any) -> Any:  # sympy objects: sympy ships no type information
    """The expression if it is a plain number without free symbols, else None."""
    import sympy

    if isinstance(expr, sympy.Expr) and not expr.free_symbols and not expr.has(sympy.Symbol):
        return expr
    return None


def _numbers_equal(x: Any, y: Any) -> bool | None:
    """Exact comparison for exact numbers, relative tolerance 1e-6 once a float is involved.

    math-verify rounds to 6 decimals, so 1/2004! and 1/2006! both become 0 and compare equal.
    """
    import sympy

    infinities = (sympy.oo, -sympy.oo, sympy.zoo, sympy.nan)
    if x.has(*infinities) or y.has(*infinities):  # oo - 1.0 is oo: no tolerance applies
        return bool(x == y)
    if x.has(sympy.Float) or y.has(sympy.Float):
        xv, yv = sympy.N(x, 30), sympy.N(y, 30)
        if not (xv.is_number and yv.is_number):
            return None
        scale = max(abs(xv), abs(yv))
        if scale == 0:
            return True
        return bool(abs(xv - yv) <= scale * sympy.Float("1e-6"))
    diff = sympy.simplify(x - y)
    if diff == 0:
        return True
    value = sympy.N(diff, 50)
    if value.is_number and value != 0:
        return False
    return None


def math_verify_equal(a: str, b: str) -> bool:
    """Runs in the worker: math-verify parse + verify with the numeric guard."""
    from math_verify import LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig(boxed_match_priority=0)]
    gold = parse("\\boxed{" + a + "}", extraction_config=config, parsing_timeout=None)
    pred = parse("\\boxed{" + b + "}", extraction_config=config, parsing_timeout=None)
    if not gold or not pred:
        return False
    x, y = _numeric_value(gold[0]), _numeric_value(pred[0])
    if x is not None and y is not None:
        exact = _numbers_equal(x, y)
        if exact is not None:
            return exact
    return bool(verify(gold, pred, timeout_seconds=None))
