"""Answers: the forms other models and datasets write around a value (names, lists, units).

Lists in words (`6 \\text{ and } 8`, `x = 2 \\quad\\text{or}\\quad x = -5`, `4; 6`), names
before a value (`S_{MBCN}:S=7:32`, `(x, y) = (5, 8)`, `AB=4, CD=5`) and units after it
(`125\\textnormal{ miles}`, `18 \\text{ cm}^2`) are rewritten to the plain list of values, so
the fast path and math-verify see `6, 8` / `7:32` / `125`. Plain string scanning, linear in
the answer's length: these run on untrusted model output.
"""

from __future__ import annotations

import re

from mathsolve.answers.latex import command_at, drop_commands, group_end

# \text-like commands: their braced argument is prose (a unit, a word such as "and").
TEXT_COMMANDS = ("\\textnormal", "\\textrm", "\\textit", "\\textup", "\\text", "\\mbox", "\\mathrm")
_SEPARATOR_WORDS = {"and", "or", ",", ";", "and also", "or also"}
_OPEN, _CLOSE = "([{", ")]}"
# Commands that name something (`\angle ABC`, `\overline{AB}`, `\alpha`) rather than compute.
_NAME_COMMANDS = {
    "angle", "measuredangle", "triangle", "overline", "overrightarrow", "vec", "hat", "bar",
    "widehat", "mathbf", "mathit", "mathcal", "operatorname", "prime", "alpha", "beta", "gamma",
    "delta", "epsilon", "varepsilon", "theta", "lambda", "mu", "rho", "sigma", "tau", "phi",
    "varphi", "omega", "Delta", "Gamma", "Omega", "Theta", "Phi", "left", "right",
} | {c[1:] for c in TEXT_COMMANDS}
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_UNIT_POWERS = ("^2", "^3", "^{2}", "^{3}")
_FUNCTION_START = re.compile(r"[A-Za-z]\(")


def _is_thousands(s: str) -> bool:
    """`10,455`, `11,\\! 111,\\! 100`, `25{,}000`, `\\$1,170`: one number, not a list.

    A plain space after the comma (`1, 234`) makes it a list.
    """
    # Inside a number a spacing command is no space, nor is one space written after it.
    compact = drop_commands(s.strip().strip("$").replace("{,}", ","), space="", eat_space=True)
    if compact.startswith("\\$"):
        compact = compact[2:]
    return _THOUSANDS.fullmatch(compact.strip()) is not None


def _split(s: str, commas: bool) -> list[str]:
    """Split at top-level separators: `;`, `and`/`or` (bare or in \\text{}), and `,` if asked."""
    parts: list[str] = []
    start = depth = i = 0
    n = len(s)
    while i < n:
        ch = s[i]
        if ch == "\\":
            command = command_at(s, i)
            end = i + (len(command) or 1)
            if command in TEXT_COMMANDS and end < n and s[end] == "{":
                close = group_end(s, end)
                if close < 0:  # never closed: the rest is one item
                    break
                if depth == 0 and s[end + 1 : close - 1].strip().lower() in _SEPARATOR_WORDS:
                    parts.append(s[start:i])
                    start = close
                i = close
                continue
            if command == "\\{":  # a set's brace: a bracket for splitting, not a group
                depth += 1
            elif command == "\\}":
                depth = max(depth - 1, 0)
            i = end
            continue
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(depth - 1, 0)
        elif depth == 0 and (ch == ";" or (ch == "," and commas)):
            parts.append(s[start:i])
            start = i + 1
        elif depth == 0 and ch in "ao" and (i == 0 or not s[i - 1].isalpha()):
            word = "and" if s.startswith("and", i) else "or" if s.startswith("or", i) else ""
            after = i + len(word)
            if word and i > 0 and (after == n or not s[after].isalpha() or _glued_function(s, i, after)):
                parts.append(s[start:i])
                start = after
                i = after
                continue
        i += 1
    parts.append(s[start:])
    return parts


def _is_quantity(s: str) -> bool:
    """A name inside a length or a ratio: `AB`, `NO`, `V_1`, `S_{ABC}`, `\\vec{a}` (not a bare `x`)."""
    s = s.strip()
    return is_name(s) and not (len(s) == 1 and s.islower())


def _is_named_ratio_or_length(s: str) -> bool:
    """`\\frac{NO}{BO}`, `|AB|`, `\\|\\vec{v}\\|`: a ratio or a length of named quantities.

    A bare variable is not one (`|x| = 3` and `\\frac{x}{y} = 2` are equations).
    """
    s = s.strip()
    for bar in ("\\|", "|"):
        if len(s) > 2 * len(bar) and s.startswith(bar) and s.endswith(bar):
            return _is_quantity(s[len(bar) : -len(bar)])
    for frac in ("\\frac", "\\dfrac", "\\tfrac"):
        if s.startswith(frac + "{"):
            mid = group_end(s, len(frac))
            if 0 < mid < len(s) and s[mid] == "{" and group_end(s, mid) == len(s):
                return _is_quantity(s[len(frac) + 1 : mid - 1]) and _is_quantity(s[mid + 1 : -1])
    return False


def _glued_function(s: str, start: int, after: int) -> bool:
    """`W(x)=1orW(x)=-1`: `or` glued between a value and the next function's name `W(`."""
    return (s[start - 1].isdigit() or s[start - 1] in ")}") and _FUNCTION_START.match(s, after) is not None


def is_name(s: str) -> bool:
    """Does `s` only name a quantity (`S_{MBCN}:S`, `(x, y)`, `P(x)`, `f(2)`, `\\angle ABC`, `AB`)?"""
    s = s.strip()
    if not s or len(s) > 60:
        return False
    if _is_named_ratio_or_length(s):
        return True
    letters = False
    i, n, depth = 0, len(s), 0
    while i < n:
        ch = s[i]
        if ch.isalpha():
            letters = True
            i += 1
        elif ch in " :/',()" or (ch.isdigit() and depth):  # digits as arguments: f(2), P(1)
            depth = depth + 1 if ch == "(" else max(depth - 1, 0) if ch == ")" else depth
            i += 1
        elif ch == "_":  # subscripts may hold digits: a_1, S_{ABC}, x_{12}
            if i + 1 < n and s[i + 1] == "{":
                end = group_end(s, i + 1)
                if end < 0:
                    return False
                i = end
            elif i + 1 < n and s[i + 1].isalnum():
                i += 2
            else:
                return False
        elif ch == "\\":
            command = command_at(s, i)
            if command[1:] not in _NAME_COMMANDS:
                return False
            letters = True
            i += len(command)
            if i < n and s[i] == "{":
                end = group_end(s, i)
                if end < 0 or not all(c.isalnum() or c in " _\\{}'," for c in s[i + 1 : end - 1]):
                    return False
                i = end
        else:  # digits, operators, '=' ...: an expression or an equation, not a name
            return False
    return letters


def equals_signs(item: str) -> list[int]:
    """Positions of the `=` signs outside brackets."""
    depth, found = 0, []
    for i, ch in enumerate(item):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth = max(depth - 1, 0)
        elif ch == "=" and depth == 0:
            found.append(i)
    return found


def is_equation(value: str) -> bool:
    """`2x = 5`, `x^2 + y^2 = 25`: an equation, which a bare value such as `5` is not."""
    return bool(equals_signs(value))


def strip_name(item: str) -> str:
    """`S_{MBCN}:S=7:32` -> `7:32`; `(x, y) = (5, 8)` -> `(5, 8)`; `2x = 5` stays (not a name)."""
    signs = equals_signs(item)
    if len(signs) != 1:  # no assignment, or a chain a = b = 5: leave it alone
        return item
    eq = signs[0]
    value = item[eq + 1 :].strip()
    return value if value and is_name(item[:eq]) else item


def split_unit(item: str) -> tuple[str, str | None]:
    """(`125`, `miles`) for `125\\textnormal{ miles}`, (`18`, `cm^2`) for `18 \\text{ cm}^2`: a
    unit in words after a number; (item, None) without one."""
    s = item.rstrip(" .")
    power = ""
    for p in _UNIT_POWERS:
        if s.endswith(p):
            s, power = s[: -len(p)].rstrip(), "^" + p.strip("^{}")
            break
    if not s.endswith("}"):
        return item, None
    start = max(s.rfind(cmd + "{") for cmd in TEXT_COMMANDS)
    if start <= 0 or group_end(s, s.index("{", start)) != len(s):  # not a final \text{} group
        return item, None
    unit = s[s.index("{", start) + 1 : -1].strip()
    head = s[:start].rstrip(" ~\\,")
    if not unit or not all(c.isalpha() or c in " ." for c in unit) or not unit[0].isalpha():
        return item, None
    if not any(c.isdigit() for c in head) or re.search(r"\d:\d\d", head):  # 4:30 \text{ p.m.} is a time
        return item, None
    return head, unit + power


def strip_unit(item: str) -> str:
    """`125\\textnormal{ miles}` -> `125`, `18 \\text{ cm}^2` -> `18`: a unit in words after a number."""
    return split_unit(item)[0]


# Units in words that name different amounts: two answers in two of them differ even when the
# numbers agree (`7 \\text{ days}` is not `7 \\text{ weeks}`). Each spelling maps to one name;
# a unit not listed here is only dropped, never compared.
_UNIT_SPELLINGS = {
    "second": "s sec secs second seconds", "minute": "min mins minute minutes",
    "hour": "h hr hrs hour hours", "day": "day days", "week": "week weeks",
    "month": "month months", "year": "yr yrs year years",
    "millimeter": "mm millimeter millimeters millimetre millimetres",
    "centimeter": "cm centimeter centimeters centimetre centimetres",
    "meter": "m meter meters metre metres", "kilometer": "km kilometer kilometers kilometre kilometres",
    "inch": "in inch inches", "foot": "ft foot feet", "yard": "yd yard yards", "mile": "mi mile miles",
    "gram": "g gram grams", "kilogram": "kg kilogram kilograms", "pound": "lb lbs pound pounds",
    "ounce": "oz ounce ounces", "liter": "l liter liters litre litres",
    "milliliter": "ml milliliter milliliters millilitre millilitres", "gallon": "gallon gallons",
    "cent": "cent cents", "dollar": "dollar dollars",
}
_UNIT_NAME = {spelling: name for name, spellings in _UNIT_SPELLINGS.items() for spelling in spellings.split()}


def _known_unit(answer: str) -> str | None:
    unit = split_unit(answer.strip())[1]
    if unit is None:
        return None
    word, caret, power = unit.partition("^")
    name = _UNIT_NAME.get(word.strip(" .").lower())
    return name + caret + power if name else None


def units_differ(a: str, b: str) -> bool:
    """Both answers end in a known unit in words after a number, and not the same one."""
    ua, ub = _known_unit(a), _known_unit(b)
    return ua is not None and ub is not None and ua != ub


def raw_items(answer: str) -> tuple[str, list[str]]:
    """The answer without math delimiters, and its list items as written (names kept).

    A number with thousands separators (`10,455`, `11,\\! 111,\\! 100`) is one item.
    """
    s = answer.strip()
    for opener, closer in (("\\(", "\\)"), ("\\[", "\\]"), ("$$", "$$"), ("$", "$")):
        if len(s) >= 2 * len(opener) and s.startswith(opener) and s.endswith(closer):
            s = s[len(opener) : -len(closer)].strip()
            break
    for space in ("\\quad", "\\qquad"):
        s = s.replace(space, " ")
    items: list[str] = []
    for part in _split(s, commas=False):
        pieces = [part] if _is_thousands(part) else _split(part, commas=True)
        items.extend(p.strip() for p in pieces)
    return s, [item for item in items if item]


def answer_items(answer: str) -> list[str]:
    """The values of an answer: list items split at separators, each without name or unit."""
    s, items = raw_items(answer)
    return [strip_unit(strip_name(item)) for item in items] or [s]
