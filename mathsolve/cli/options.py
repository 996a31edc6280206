"""Command line: click's option values -> frozen dataclasses, once, at the edge.

The click command functions hand their keyword arguments here and pass on only what comes
back: a SolveRequest or EvalRequest (what to solve, how to print it) and the Settings a
Solver is made from (ModelSpec, EngineConfig, SamplingConfig, SolveOptions). Nothing past
the command functions sees a dict of options.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mathsolve.config import SETTINGS, Settings
from mathsolve.config import settings_from as config_settings
from mathsolve.errors import UsageError

Options = Mapping[str, Any]  # what click passes a command function as **kwargs

# --card: the model card's protocol (pass@1 = mean over 32 samples at temperature 1.0, no
# top-p or top-k cut). Each value with the option that sets it.
CARD: dict[str, tuple[str, float | int]] = {
    "samples": ("--samples", 32), "temperature": ("--temperature", 1.0),
    "top_p": ("--top-p", 1.0), "top_k": ("--top-k", 0),
}


@dataclass(frozen=True)
class SolveRequest:
    """`mathsolve solve`: the problem words or the file to read, and the output's form."""

    words: tuple[str, ...] = ()
    file: str | None = None  # "-" is stdin
    blank_lines: bool = False
    as_json: bool = False
    show_reasoning: bool = False  # piped: reasoning to stderr
    hide_reasoning: bool = False  # terminal: a spinner instead

    @classmethod
    def from_options(cls, opts: Options) -> SolveRequest:
        return cls(words=tuple(opts["problem"]), file=opts["file"],
                   blank_lines=opts["blank_lines"], as_json=opts["as_json"],
                   show_reasoning=opts["show_reasoning"], hide_reasoning=opts["hide_reasoning"])


@dataclass(frozen=True)
class EvalRequest:
    """`mathsolve eval`: the data, the results file, and what to keep and print."""

    data: str
    out: str
    limit: int | None = None
    save_completions: bool = False
    as_json: bool = False

    @classmethod
    def from_options(cls, opts: Options) -> EvalRequest:
        return cls(data=opts["data"], out=opts["out"], limit=opts["limit"],
                   save_completions=opts["save_completions"], as_json=opts["as_json"])


def given_options() -> frozenset[str]:
    """Options of the running click command given on the command line or by environment."""
    import click
    from click.core import ParameterSource

    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return frozenset()
    return frozenset(name for name in ctx.params
                     if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT))


def with_card(opts: Options, given: frozenset[str]) -> Options:
    """--card's values in place of the defaults; one of them given with another value is a
    usage error (the run would not be the card's protocol, and silently picking one misleads)."""
    if not opts.get("card"):
        return opts
    for name, (flag, value) in CARD.items():
        if name in given and opts[name] != value:
            protocol = " ".join(f"{f} {v}" for f, v in CARD.values())
            raise UsageError(f"--card sets {protocol}; {flag} {opts[name]} contradicts it: drop one of the two")
    return {**opts, **{name: value for name, (_flag, value) in CARD.items()}}


def settings_from(opts: Options, *, check: bool | None = None, given: frozenset[str] | None = None) -> Settings:
    """The model, engine, sampling and solve options of solve and eval (config.settings_from,
    which draws a missing --seed once per run). `check` overrides --no-check (eval never runs
    the sympy check). `given`: the options set on the command line (default: read from the
    running click command), checked against --card."""
    opts = with_card(opts, given_options() if given is None else given)
    values = {name: opts[name] for name in SETTINGS if name in opts}
    values.update(server=opts["server"] or None, gpu=not opts["cpu"], think=not opts["no_think"],
                  check=not opts["no_check"] if check is None else check)
    return config_settings(values)
