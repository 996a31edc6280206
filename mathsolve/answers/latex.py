"""Answers: the one LaTeX scanner (braced groups, wrapper commands) and the commands to drop.

Every module that reads LaTeX answers (extraction, forms, equivalence, verification, the
terminal display in output/) walks braces with these functions, under one escape rule: a
backslash escapes the character after it. So `\\{` and `\\}` are literal braces (a set's
delimiters, `\\{1, 2\\}`), never the start or end of a group, and `\\\\` (a line break)
escapes nothing after it: in `{a\\\\}` the last `}` closes the group.

Plain string scanning in C (one regular expression), linear in the text's length: these run
on untrusted model output, megabytes of it at worst.
"""

from __future__ import annotations

import re

# What a brace scan stops at: an escape (a backslash and the character after it, newline
# included) or a brace. A lone trailing backslash matches neither and is passed over.
_BRACE_OR_ESCAPE = re.compile(r"\\.|[{}]", re.DOTALL)
# A command: a backslash and its letters (`\frac`), or a backslash and one other character
# (`\,`, `\{`, `\\`); for drop_commands(eat_space=True), with one space after it.
_COMMAND = re.compile(r"\\(?:[A-Za-z]+|.)", re.DOTALL)
_COMMAND_AND_SPACE = re.compile(r"(\\(?:[A-Za-z]+|.)) ?", re.DOTALL)

# LaTeX commands that only size or space what is around them: dropped wherever answers are
# read (grading, verification, the terminal display). Each maps to what it leaves behind: a
# word-sized space (`\ `, `\quad`, `\qquad`) leaves a space, so `x = 2 \quad y = 3` keeps its
# parts apart; sizing and thin spaces leave nothing (`\left(`, `1\,000`).
DROP_COMMANDS: dict[str, str] = {
    "\\left": "", "\\right": "", "\\displaystyle": "",
    "\\!": "", "\\,": "", "\\;": "", "\\:": "",
    "\\ ": " ", "\\quad": " ", "\\qquad": " ",
}


def closing_brace(s: str, i: int) -> int:
    """Index of the `}` that closes the `{` at s[i]; -1 when it never closes.

    Escaped braces (`\\{`, `\\}`) are skipped, see the module docstring.
    """
    depth = 0
    for m in _BRACE_OR_ESCAPE.finditer(s, i):
        ch = m.group()
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return m.start()
    return -1


def group_end(s: str, i: int) -> int:
    """Index just after the balanced `{...}` that starts at s[i]; -1 when it never closes."""
    close = closing_brace(s, i)
    return close + 1 if close >= 0 else -1


def command_at(s: str, i: int) -> str:
    """The command at the backslash at s[i]: `\\frac`, `\\,` or `\\{` (its letters, or the one
    character after the backslash); "" for a backslash at the end of `s`."""
    m = _COMMAND.match(s, i)
    return m.group() if m else ""


def argument(s: str, i: int) -> tuple[str, int]:
    """A command's argument starting at s[i] (spaces before it skipped), and the index after it.

    The argument is a braced group's contents, else a command (`\\pi`), else one character;
    a group that never closes holds the rest of `s`.
    """
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return "", i
    if s[i] == "\\":
        command = command_at(s, i)
        if command:
            return command, i + len(command)
    if s[i] != "{":
        return s[i], i + 1
    close = closing_brace(s, i)
    if close < 0:
        return s[i + 1 :], len(s)
    return s[i + 1 : close], close + 1


def unwrap(s: str, command: str) -> str:
    """Replace every `\\command{X}` by `X`; from a group that never closes on, `s` is left alone."""
    out, i = [], 0
    opening = command + "{"
    while True:
        j = s.find(opening, i)
        if j < 0:
            break
        close = closing_brace(s, j + len(command))
        if close < 0:  # unbalanced: leave the rest alone
            break
        out.append(s[i:j])
        out.append(s[j + len(opening) : close])
        i = close + 1
    out.append(s[i:])
    return "".join(out)


def drop_commands(s: str, *, space: str | None = None, eat_space: bool = False) -> str:
    """`s` without the DROP_COMMANDS, each replaced by what the table says it leaves behind.

    Whole commands only: `\\left` goes, `\\leftarrow` stays. `space`, when given, is what
    every dropped command leaves instead; `eat_space` also drops one space right after each.
    """

    def replace(m: re.Match[str]) -> str:
        left = DROP_COMMANDS.get(m.group(m.lastindex or 0))
        if left is None:
            return m.group()
        return left if space is None else space

    if "\\" not in s:
        return s
    return (_COMMAND_AND_SPACE if eat_space else _COMMAND).sub(replace, s)
