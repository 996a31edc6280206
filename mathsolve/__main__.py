"""`python -m mathsolve` is the `mathsolve` command."""

from .cli import main

main()
