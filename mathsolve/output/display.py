"""Output: a LaTeX answer as a terminal shows it (\\frac{1}{2} -> 1/2, \\sqrt{2} -> √2)."""

from __future__ import annotations

import re

from mathsolve.answers.latex import DROP_COMMANDS, argument, command_at

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
_TEXT_COMMANDS = ("\\text", "\\textbf", "\\mathrm", "\\mathbf", "\\mbox", "\\operatorname", "\\boxed", "\\fbox")
_SUPERSCRIPTS = str.maketrans("0123456789+-n", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻ⁿ")
_MAX_DISPLAY_DEPTH = 30  # \frac in \sqrt in ...: deeper than any real answer
_MAX_DISPLAY_CHARS = 10_000  # longer answers are shown as written (bounds the work per level)


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
            num, i = argument(s, i)
            den, i = argument(s, i)
            out.append(f"{_atom(_display(num, depth + 1))}/{_atom(_display(den, depth + 1))}")
        elif s.startswith("\\sqrt", i):
            i += 5
            root = ""
            if i < len(s) and s[i] == "[":
                close = find("]", i)
                if close > 0:  # an unclosed `[` is not a root index
                    root, i = s[i + 1 : close], close + 1
            arg, i = argument(s, i)
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
            name = command_at(s, i)
            if not name:  # a lone trailing backslash
                break
            i += len(name)
            if name in _TEXT_COMMANDS:
                arg, i = argument(s, i)
                out.append(_display(arg, depth + 1) if name not in ("\\text", "\\mbox") else arg)
            elif name in DROP_COMMANDS:
                out.append(DROP_COMMANDS[name])
            elif name in _SYMBOLS:
                out.append(_SYMBOLS[name])
            else:
                out.append(name[1:])
        elif ch == "^":
            arg, i = argument(s, i + 1)
            shown = _display(arg, depth + 1)
            if shown == "°":
                out.append("°")
            elif re.fullmatch(r"[0-9+\-n]+", shown):
                out.append(shown.translate(_SUPERSCRIPTS))
            else:
                out.append("^" + _atom(shown))
        elif ch == "_":
            arg, i = argument(s, i + 1)
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
