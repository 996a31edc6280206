"""Command line: `mathsolve mcp`, a Model Context Protocol server on stdio. Light at import.

An MCP client (Claude Desktop, VS Code, an agent built on the SDK) starts `mathsolve mcp` and
calls its tools: `solve`, `grade` and `check` (mathsolve.cli.mcp_tools, which imports the `mcp`
package of the optional extra `mathsolve[mcp]`). stdout carries the protocol and nothing else:
the SDK's stdio transport points fd 1 at stderr while it serves, so llama.cpp's and anyone's
stray output goes to stderr with the notes. EOF on stdin or Ctrl-C ends the server: a running
decode is stopped, the model freed, exit 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from mathsolve.cli.admin import note
from mathsolve.errors import ExitStatus, MathsolveError

if TYPE_CHECKING:
    from mathsolve.config import Settings

MISSING_EXTRA = "mathsolve mcp needs the mcp extra: pip install 'mathsolve[mcp]'"


class MissingExtra(MathsolveError):
    """The optional `mcp` package is not installed."""


def mcp_command(decorate: Callable[[Callable[..., Any]], Callable[..., Any]]) -> click.Command:
    """The mcp command, with cli/__init__.py's model and sampling options (`decorate`) added."""
    @click.command("mcp")
    @decorate
    def mcp_cmd(**opts: Any) -> ExitStatus:
        """Serve solve, grade and check to MCP clients over stdio (one model, loaded once).

        \b
        Client configuration (Claude Desktop, VS Code's mcp.json):
          {"command": "mathsolve", "args": ["mcp"]}
        The model and engine options hold for the server's life; the sampling
        options are the defaults of each `solve` call, which may set its own.
        Solves run one at a time, in the order they arrive.
        """
        from mathsolve.cli.options import settings_from

        seed = opts["seed"]  # None: each solve draws its own (settings_from draws one per run)
        return serve(settings_from(opts, check=True), seed)

    return mcp_cmd


def serve(settings: Settings, default_seed: int | None) -> ExitStatus:
    """Run the server until EOF on stdin or Ctrl-C."""
    try:
        import anyio

        from mathsolve.cli.mcp_tools import build_server
    except ImportError as exc:
        if (exc.name or "").split(".")[0] in ("mcp", "mcp_types", "anyio", "pydantic"):
            raise MissingExtra(MISSING_EXTRA) from None
        raise
    server, _host = build_server(settings, default_seed, note)
    try:
        anyio.run(server.run_stdio_async)
    except KeyboardInterrupt:  # Ctrl-C: the tasks were cancelled and the model freed on the way out
        pass
    return ExitStatus.OK
