"""CLI behaviour that needs no model: start-up imports, help, usage errors, bad input."""

from __future__ import annotations

import subprocess
import sys
from functools import partial

import pytest
from conftest import run_mathsolve

HEAVY = ("llama_cpp", "sympy", "numpy", "gguf", "math_verify", "torch", "huggingface_hub")


run_cli = partial(run_mathsolve, timeout=120)


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["solve", "--help"]],
                         ids=["help", "version", "solve-help"])
def test_help_and_version_import_no_heavy_library(args):
    code = (
        "import sys\nfrom mathsolve.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit as e:\n    code = e.code\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY', heavy, code, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY [] 0" in proc.stderr, proc.stderr


@pytest.mark.parametrize("statement", [
    "import mathsolve",
    "from mathsolve import Solver, Result, TextEvent, extract_answer, grade, ModelError",
], ids=["import-mathsolve", "from-mathsolve-import-solver"])
def test_importing_the_python_api_loads_no_heavy_library(statement):
    code = (f"import sys\n{statement}\n"
            f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stderr, proc.stderr


def test_help_documents_exit_codes_and_defaults():
    proc = run_cli("solve", "--help")
    out = proc.stdout.decode()
    assert proc.returncode == 0
    for text in ("130", "without a final answer", "[default: 0.6", "[default: 8192", "--samples"):
        assert text in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["solve", "--temperature", "-1", "x"], "--temperature"),
        (["solve", "--max-tokens", "0", "x"], "--max-tokens"),
        (["solve", "--top-p", "0", "x"], "--top-p"),
        (["--quant", "q3", "x"], "--quant"),
        (["-f", "p.txt", "1+1"], "either a PROBLEM or --file"),
    ],
    ids=["negative-temperature", "zero-tokens", "zero-top-p", "unknown-quant", "problem-and-file"],
)
def test_usage_errors_are_one_line_exit_2(args, message):
    proc = run_cli(*args)
    err = proc.stderr.decode()
    assert proc.returncode == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert proc.stdout == b""


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["   "], b"", "problem is empty"),
        (["-f", "-"], b"", "stdin is empty"),
        (["-f", "-"], b"1+1\n\xff\n", "line 2 is not valid UTF-8"),
        (["-f", "/nonexistent/problems.txt"], b"", "no such file"),
        (["--model", "/nonexistent/model.gguf", "1+1"], b"", "/nonexistent/model.gguf"),
    ],
    ids=["empty-problem", "empty-stdin", "non-utf8-file", "missing-file", "missing-model-path"],
)
def test_bad_input_is_one_line_error_nonzero_no_traceback(args, stdin, message):
    proc = run_cli(*args, stdin=stdin)
    err = proc.stderr.decode()
    assert proc.returncode == 1
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_convert_outtypes_in_the_cli_are_the_converters():
    import mathsolve_convert
    from mathsolve.cli.admin import CONVERT_OUTTYPES

    assert CONVERT_OUTTYPES == mathsolve_convert.OUTTYPES
