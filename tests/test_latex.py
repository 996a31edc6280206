"""The one LaTeX scanner (issue 17): one escape rule for braces, one table of commands to drop."""

from __future__ import annotations

import pytest

from mathsolve.answers.latex import (
    DROP_COMMANDS,
    argument,
    closing_brace,
    command_at,
    drop_commands,
    group_end,
    unwrap,
)


@pytest.mark.parametrize(("text", "close"), [
    ("{a}", 2),
    ("{a{b}c}", 6),
    ("{\\{1, 2\\}}", 9),  # a set's escaped braces are no group delimiters
    ("{\\}}", 3),
    ("{a\\\\}", 4),  # a line break escapes nothing after it
    ("{a", -1),
    ("{\\}", -1),
    ("{a\\", -1),  # a lone trailing backslash
])
def test_closing_brace_skips_escaped_braces(text: str, close: int) -> None:
    assert closing_brace(text, 0) == close
    assert group_end(text, 0) == (close + 1 if close >= 0 else -1)


def test_command_at_reads_a_word_or_one_symbol() -> None:
    assert command_at("\\frac{1}{2}", 0) == "\\frac"
    assert command_at("1\\,000", 1) == "\\,"
    assert command_at("\\{", 0) == "\\{"
    assert command_at("x\\", 1) == ""


def test_argument_is_a_group_a_command_or_a_character() -> None:
    assert argument("\\frac {1}{2}", 5) == ("1", 9)
    assert argument("\\sqrt\\pi", 5) == ("\\pi", 8)
    assert argument("^2x", 1) == ("2", 2)
    assert argument("_{a", 1) == ("a", 3)  # never closed: the rest


def test_unwrap_replaces_every_balanced_group() -> None:
    assert unwrap("\\text{a} + \\text{\\{b\\}}", "\\text") == "a + \\{b\\}"
    assert unwrap("\\text{a} \\text{b", "\\text") == "a \\text{b"


def test_drop_commands_drops_whole_commands_only() -> None:
    assert drop_commands("\\left( 1\\,000 \\right)") == "( 1000 )"
    assert drop_commands("x \\quad y") == "x   y"
    assert drop_commands("x \\rightarrow 3") == "x \\rightarrow 3"
    assert drop_commands("a\\,b", space=" ") == "a b"
    assert drop_commands("11,\\! 111", space="", eat_space=True) == "11,111"
    assert set(DROP_COMMANDS) >= {"\\left", "\\right", "\\displaystyle", "\\!", "\\,", "\\quad"}
