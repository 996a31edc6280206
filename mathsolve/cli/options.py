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

from mathsolve.config import EngineConfig, ModelSpec, SamplingConfig, Settings, SolveOptions, random_seed

Options = Mapping[str, Any]  # what click passes a command function as **kwargs


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


def settings_from(opts: Options, *, check: bool | None = None) -> Settings:
    """The model, engine, sampling and solve options of solve and eval. A missing --seed is
    drawn here, once per run, so every record of the run carries the same one. `check`
    overrides --no-check (eval never runs the sympy check)."""
    seed = opts["seed"] if opts["seed"] is not None else random_seed(opts["samples"])
    return Settings(
        model=ModelSpec(model=opts["model"], quant=opts["quant"], offline=opts["offline"],
                        server=opts["server"] or None, api_key=opts["api_key"],
                        concurrency=opts["concurrency"]),
        engine=EngineConfig(n_ctx=opts["ctx"], n_threads=opts["threads"], gpu=not opts["cpu"],
                            verbose=opts["verbose"], sampler=opts["sampler"] or "auto",
                            parallel=opts["parallel"], kv_type=opts["kv_type"],
                            kv_budget=int(opts["kv_budget"] * 1e9) if opts["kv_budget"] else None),
        sampling=SamplingConfig(temperature=opts["temperature"], top_p=opts["top_p"],
                                top_k=opts["top_k"], min_p=opts["min_p"], seed=seed,
                                max_tokens=opts["max_tokens"],
                                thinking_budget=opts["thinking_budget"],
                                time_limit=opts["time_limit"]),
        solve=SolveOptions(samples=opts["samples"], think=not opts["no_think"],
                           stop_when_decided=opts["stop_when_decided"],
                           confidence=opts["confidence"],
                           check=not opts["no_check"] if check is None else check))
