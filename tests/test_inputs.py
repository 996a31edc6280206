"""Problems from text: plain lines, blank-line blocks, JSON lines with per-record errors."""

from __future__ import annotations

import pytest

from mathsolve.errors import InputError
from mathsolve.solving.inputs import check_text, decode, parse_problems


@pytest.mark.parametrize(
    ("text", "blank", "expected"),
    [
        ("x^2=4\n\nwhat is 12*7\n", False, [("1", "x^2=4"), ("3", "what is 12*7")]),
        ("Let x be\n  a number.\n\nSecond\nproblem\n", True,
         [("1", "Let x be\n  a number."), ("4", "Second\nproblem")]),
        ('{"problem": "1+1", "id": "a"}\n{"question": "2+2"}\n', False, [("a", "1+1"), ("2", "2+2")]),
    ],
    ids=["plain-lines-ids-are-line-numbers", "blank-line-blocks", "jsonl-problem-or-question"],
)
def test_parse_problems_formats(text, blank, expected):
    problems = parse_problems(text, blank_lines=blank)
    assert [(p.id, p.text) for p in problems] == expected
    assert all(p.error is None for p in problems)


def test_jsonl_bad_records_error_alone_and_the_rest_run():
    text = '{"problem": "1+1"}\nnot json\n{"id": 7}\n[1, 2]\n{"problem": "3+3", "answer": 6}\n'
    problems = parse_problems(text)
    assert [p.id for p in problems] == ["1", "2", "7", "4", "5"]
    assert problems[0].error is None and problems[4].error is None
    assert problems[4].reference == "6"
    assert "line 2 is not valid JSON" in problems[1].error
    assert "no 'problem'" in problems[2].error
    assert "not a JSON object" in problems[3].error


@pytest.mark.parametrize("text", ["", "   \n\n"], ids=["empty", "only-blank"])
def test_empty_input_is_an_error(text):
    with pytest.raises(InputError, match="empty"):
        parse_problems(text, where="problems.txt")


def test_non_utf8_bytes_name_the_line():
    with pytest.raises(InputError, match="line 2 is not valid UTF-8"):
        decode(b"1+1\n\xff\xfe2+2\n", "f.txt")


@pytest.mark.parametrize("text", ["", "  ", "x\udcff"], ids=["empty", "spaces", "surrogate-from-argv"])
def test_check_text_rejects_unusable_problems(text):
    with pytest.raises(InputError):
        check_text(text)


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85"], ids=["u2028", "u2029", "nel"])
def test_json_strings_keep_raw_unicode_line_separators(sep):
    # json.dumps(ensure_ascii=False) writes these raw; str.splitlines() broke such a line in two.
    text = f'{{"problem": "a{sep}b"}}\n{{"problem": "c"}}\n'
    assert [(p.id, p.text, p.error) for p in parse_problems(text)] == [("1", f"a{sep}b", None), ("2", "c", None)]


@pytest.mark.parametrize("sep", ["\u2028", "\x85", "\x0c", "\x1e"], ids=["u2028", "nel", "form-feed", "record-sep"])
def test_plain_lines_end_only_at_newlines(sep):
    assert [(p.id, p.text) for p in parse_problems(f"x{sep}y\r\nz\rw\n")] == [("1", f"x{sep}y"), ("2", "z"), ("3", "w")]
