"""Solve flow: problems from arguments, files and pipes (lines, blank-line blocks, JSON lines)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mathsolve.errors import InputError

MAX_PROBLEM_CHARS = 100_000  # far beyond any context; stops a stray binary file early


@dataclass(frozen=True)
class Problem:
    """One problem to solve; `error` set when the record itself is unusable."""

    id: str
    text: str
    error: str | None = None
    reference: str | None = None  # eval data carries the expected answer


def check_text(text: str, where: str = "problem") -> str:
    """Reject what can never be a problem, with a one-line reason."""
    if "\ufffd" in text or _has_surrogates(text):
        raise InputError(f"{where} is not valid UTF-8 text: save it as UTF-8 and retry")
    if not text.strip():
        raise InputError(f"{where} is empty: give the problem text")
    if len(text) > MAX_PROBLEM_CHARS:
        raise InputError(f"{where} has {len(text):,} characters (limit {MAX_PROBLEM_CHARS:,})")
    return text.strip()


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def decode(data: bytes, where: str) -> str:
    """Decode UTF-8 strictly (a BOM is allowed): a problem file in another encoding is an error."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{where}: line {line} is not valid UTF-8; save the file as UTF-8") from None


def read_source(path: str) -> str:
    """The UTF-8 text of a file, or of stdin for "-"; a missing file is a one-line error."""
    if path == "-":
        return decode(sys.stdin.buffer.read(), "stdin")
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file")
    return decode(p.read_bytes(), path)


def split_lines(text: str) -> list[str]:
    """Lines end at \\n, \\r\\n or \\r only, as editors and `wc -l` count them.

    str.splitlines also splits at U+2028, U+0085, form feeds and more, which JSON strings may
    hold raw (json.dumps(ensure_ascii=False) writes them): that broke valid JSON lines apart.
    """
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def parse_problems(text: str, *, blank_lines: bool = False, where: str = "input") -> list[Problem]:
    """Split input into problems. JSON lines are detected from the first non-empty line."""
    lines = split_lines(text)
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise InputError(f"{where} is empty: it holds no problem")
    if first.lstrip().startswith("{"):
        return list(_json_lines(lines))
    if blank_lines:
        return list(_blocks(lines))
    return [Problem(str(n), line.strip()) for n, line in enumerate(lines, 1) if line.strip()]


def _blocks(lines: list[str]) -> Iterator[Problem]:
    block: list[str] = []
    start = 0
    for n, line in enumerate(lines + [""], 1):
        if line.strip():
            if not block:
                start = n
            block.append(line.rstrip())
        elif block:
            yield Problem(str(start), "\n".join(block).strip())
            block = []


def json_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, object) per non-blank JSON line; a bad line comes back as its error."""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield n, f"line {n} is not valid JSON ({exc.msg})"
            continue
        except RecursionError:
            yield n, f"line {n} is not usable JSON (nested too deeply)"
            continue
        except ValueError as exc:  # e.g. an integer of more than 4,300 digits
            yield n, f"line {n} is not usable JSON ({str(exc).split(';')[0]})"
            continue
        yield (n, row) if isinstance(row, dict) else (n, f"line {n} is not a JSON object")


def _json_lines(lines: Iterable[str]) -> Iterator[Problem]:
    for n, row in json_rows(lines):
        if isinstance(row, str):
            yield Problem(str(n), "", error=row)
            continue
        pid = str(row["id"]) if row.get("id") is not None else str(n)
        text = row.get("problem", row.get("question"))
        reference = row.get("answer", row.get("reference"))
        if not isinstance(text, str) or not text.strip():
            yield Problem(pid, "", error=f"line {n} has no 'problem' (or 'question') text field")
            continue
        if _has_surrogates(text):  # "\\ud800" escapes: not text the tokenizer can encode
            yield Problem(pid, "", error=f"line {n}: the problem holds an unpaired surrogate (\\ud800-\\udfff)")
            continue
        ref = None if reference is None else str(reference)
        yield Problem(pid, text.strip(), reference=ref)
