"""Command line: `python -m mathsolve` is the `mathsolve` command."""

from mathsolve.cli import main

main()
