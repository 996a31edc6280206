"""Command line: `mathsolve solve`, inputs -> Solver (the Python API) -> renderer -> exit status."""

from __future__ import annotations

import sys

from mathsolve.api import Solver
from mathsolve.cli.options import SolveRequest
from mathsolve.config import Settings
from mathsolve.errors import ExitStatus, UsageError
from mathsolve.output.render import Renderer
from mathsolve.solving.inputs import Problem, check_text, parse_problems, read_source
from mathsolve.solving.solve import Result


def _stdin_is_tty() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def can_pull() -> bool:
    """A model that is not cached is pulled first only on a terminal, where the user sees it."""
    return _stdin_is_tty() and sys.stderr.isatty()


def gather_problems(request: SolveRequest) -> list[Problem] | None:
    """Problems from the argument, --file or piped stdin; None means interactive."""
    words, source = list(request.words), request.file
    if source and words:
        raise UsageError("give either a PROBLEM or --file, not both")
    if words == ["-"]:
        words, source = [], "-"
    if words:
        return [Problem("1", check_text(" ".join(words)))]
    if source:
        where = "stdin" if source == "-" else source
        return parse_problems(read_source(source), blank_lines=request.blank_lines, where=where)
    if not _stdin_is_tty():
        return parse_problems(read_source("-"), blank_lines=request.blank_lines, where="stdin")
    return None


def make_renderer(request: SolveRequest) -> Renderer:
    from mathsolve.output import render

    if request.as_json:
        return render.JsonRenderer(show_reasoning=request.show_reasoning)
    if sys.stdout.isatty():
        return render.TerminalRenderer(hide_reasoning=request.hide_reasoning)
    return render.PlainRenderer(show_reasoning=request.show_reasoning)


def run_solve(request: SolveRequest, settings: Settings) -> ExitStatus:
    from mathsolve.output.progress import live_stages
    from mathsolve.output.render import TerminalRenderer

    problems = gather_problems(request)
    renderer = make_renderer(request)
    with live_stages() as stages:
        solver = Solver.from_settings(settings, note=renderer.note, pull=can_pull(), stages=stages)
    with solver:
        terminal = isinstance(renderer, TerminalRenderer)
        if isinstance(renderer, TerminalRenderer):
            renderer.load_seconds = solver.load_seconds
        if problems is None:
            from mathsolve.cli.interactive import loop

            return loop(solver, renderer)
        if len(problems) > 1 and not terminal:
            return batch_status(solve_in_flight(solver, problems, renderer))
        return batch_status([solver.solve_rendered(p, renderer) for p in problems])


def solve_in_flight(solver: Solver, problems: list[Problem], renderer: Renderer) -> list[Result]:
    """Piped or JSON output of several problems: all in flight (one batch on the local engine,
    requests at once on a server), each printed in input order as soon as the ones before
    it are. On Ctrl-C, JSON records that finished out
    of order (they carry their id) are printed too; plain lines keep the order."""
    from mathsolve.engine.local.samples import InterruptibleDecode
    from mathsolve.engine.protocol import GenerationInterrupted
    from mathsolve.output.render import JsonRenderer

    results: dict[int, Result] = {}
    shown = 0

    def on_result(index: int, result: Result) -> None:
        nonlocal shown
        results[index] = result
        while shown in results:  # a Ctrl-C waits until the record is printed and counted:
            with InterruptibleDecode(None):  # it is neither lost nor printed again below
                renderer.end(results[shown])
                shown += 1

    try:
        solver.solve_all(problems, on_result)
    except GenerationInterrupted:
        if isinstance(renderer, JsonRenderer):
            for index in sorted(i for i in results if i >= shown):
                renderer.end(results[index])
        renderer.interrupted()
        raise
    return [results[i] for i in range(len(problems))]


def batch_status(results: list[Result]) -> ExitStatus:
    if any(r.error for r in results):
        return ExitStatus.ERROR
    if any(r.answer is None for r in results):
        return ExitStatus.NO_ANSWER
    return ExitStatus.OK
