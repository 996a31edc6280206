"""README and docs/ stay true: the help text is generated from the code, CI runs the README's test
command, every link between the pages leads to a page and a heading that exist.

Regenerate the help blocks with: MATHSOLVE_UPDATE_DOCS=1 pytest tests/test_readme.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
CLI_DOCS = REPO / "docs" / "cli.md"
BLOCK = re.compile(r"(<!-- help: (?P<cmd>[a-z ]*) -->\n```text\n)(?P<body>.*?)(```\n)", re.S)


def help_text(cmd: str) -> str:
    args = [*cmd.split(), "--help"] if cmd else ["--help"]
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    proc = subprocess.run([sys.executable, "-m", "mathsolve", *args], capture_output=True,
                          text=True, env=env, timeout=60, check=True)
    return proc.stdout


def test_the_cli_reference_help_blocks_match_the_code():
    from mathsolve.cli import cli

    text = CLI_DOCS.read_text("utf-8")
    blocks = list(BLOCK.finditer(text))
    commands = {name for name, command in cli.commands.items() if not command.hidden}
    assert {m["cmd"] for m in blocks} >= {"", *commands}, "a command without its help block in docs/cli.md"
    updated = BLOCK.sub(lambda m: m.group(1) + help_text(m["cmd"]) + m.group(4), text)
    if os.environ.get("MATHSOLVE_UPDATE_DOCS"):
        CLI_DOCS.write_text(updated, "utf-8")
    assert updated == text, "docs/cli.md help is stale: MATHSOLVE_UPDATE_DOCS=1 pytest tests/test_readme.py"


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_between_the_pages_leads_somewhere():
    pages = [README, *sorted((REPO / "docs").glob("*.md"))]
    assert len(pages) > 8
    linked = set()
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text("utf-8")):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, fragment = target.partition("#")
            goal = (page.parent / path).resolve() if path else page
            assert goal.exists(), f"{page.name} links to {target}, which does not exist"
            linked.add(goal)
            if fragment:
                headings = re.findall(r"^#+ (.*)$", goal.read_text("utf-8"), re.M)
                assert fragment in {anchor(h) for h in headings}, f"{page.name}: no heading for {target}"
    assert set(pages[1:]) <= linked, "a page in docs/ that no page links to"


def test_the_readme_stays_short():
    assert README.read_text("utf-8").count("\n") <= 200


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
