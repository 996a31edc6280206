"""Named case tables: rows of (name, *values), run as one parametrized test each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest


def cases(argnames: str, table: Sequence[tuple[Any, ...]]) -> pytest.MarkDecorator:
    """`@cases("ref,completion,verdict", TABLE)`: one test per row, the row's name as its id."""
    rows = [row[1] if len(row) == 2 else row[1:] for row in table]
    return pytest.mark.parametrize(argnames, rows, ids=[row[0] for row in table])


def without_both_verdicts(table: Sequence[tuple[Any, ...]]) -> list[str]:
    """Grading rows (name, reference, completion, verdict) whose case lacks a right or a wrong
    variant: a `NAME-wrong` (or `NAME-subset`) row is the wrong variant of `NAME`."""
    verdicts: dict[str, set[bool]] = {}
    for name, *_, verdict in table:
        verdicts.setdefault(name.removesuffix("-wrong").removesuffix("-subset"), set()).add(verdict)
    return [name for name, seen in verdicts.items() if seen != {True, False}]
