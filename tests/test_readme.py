"""README stays true: the help text is generated from the code, CI runs the README's test command.

Regenerate the help blocks with: MATHSOLVE_UPDATE_README=1 pytest tests/test_readme.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
BLOCK = re.compile(r"(<!-- help: (?P<cmd>[a-z ]*) -->\n```text\n)(?P<body>.*?)(```\n)", re.S)


def help_text(cmd: str) -> str:
    args = [*cmd.split(), "--help"] if cmd else ["--help"]
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    proc = subprocess.run([sys.executable, "-m", "mathsolve", *args], capture_output=True,
                          text=True, env=env, timeout=60, check=True)
    return proc.stdout


def test_readme_help_blocks_match_the_code():
    text = README.read_text("utf-8")
    blocks = list(BLOCK.finditer(text))
    assert {m["cmd"] for m in blocks} >= {"", "solve", "pull", "eval", "grade"}
    updated = BLOCK.sub(lambda m: m.group(1) + help_text(m["cmd"]) + m.group(4), text)
    if os.environ.get("MATHSOLVE_UPDATE_README"):
        README.write_text(updated, "utf-8")
    assert updated == text, "README help is stale: MATHSOLVE_UPDATE_README=1 pytest tests/test_readme.py"


def test_ci_runs_exactly_the_readme_test_command():
    readme_commands = re.findall(r"```sh\n(.*?)\n```", README.read_text("utf-8"), re.S)
    test_command = next(c for c in readme_commands if "pytest" in c)
    ci = (REPO / ".ci" / "run").read_text("utf-8")
    assert test_command.strip() in ci.splitlines()


def test_readme_documents_every_exit_code():
    from mathsolve.errors import ExitStatus

    text = README.read_text("utf-8")
    for status in ExitStatus:
        assert re.search(rf"^\|\s*{int(status)}\s*\|", text, re.M), status
