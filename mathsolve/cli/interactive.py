"""Command line: `mathsolve` on a terminal with no problem, one problem per line, one model load."""

from __future__ import annotations

from pathlib import Path

from mathsolve.api import Solver
from mathsolve.config import seed_for
from mathsolve.errors import ExitStatus, MathsolveError
from mathsolve.output.render import Renderer
from mathsolve.solving.inputs import Problem, check_text

PROMPT = "math> "


def _history_file() -> Path | None:
    try:
        from mathsolve.models.cache import cache_root

        return cache_root() / "history"
    except Exception:  # noqa: BLE001 - history is a convenience, never a failure
        return None


def loop(solver: Solver, renderer: Renderer) -> ExitStatus:
    """Read-solve loop on one loaded model: Ctrl-C cancels the current answer, Ctrl-D exits."""
    sampling, samples = solver.settings.sampling, solver.settings.solve.samples
    history = _setup_readline()
    renderer.note("type a problem and press Enter; Ctrl-C cancels an answer, Ctrl-D quits")
    count = 0
    try:
        while True:
            try:
                line = input(PROMPT)
            except KeyboardInterrupt:
                print()
                continue
            except EOFError:
                print()
                return ExitStatus.OK
            if not line.strip():
                continue
            try:
                text = check_text(line)
            except MathsolveError as exc:
                renderer.note(str(exc))
                continue
            count += 1
            # Problem n's samples take seeds seed + (n-1)K ... seed + nK - 1: no two share one.
            seeded = sampling.with_seed(seed_for(sampling.seed, problem=count - 1, per_problem=samples))
            try:
                solver.solve_rendered(Problem(str(count), text), renderer, sampling=seeded)
            except KeyboardInterrupt:
                continue
    finally:
        _save_history(history)


def _setup_readline() -> Path | None:
    try:
        import readline
    except ImportError:  # Windows without pyreadline: plain input() still works
        return None
    path = _history_file()
    if path is not None and path.exists():
        try:
            readline.read_history_file(path)
        except OSError:
            pass
    return path


def _save_history(path: Path | None) -> None:
    if path is None:
        return
    try:
        import readline

        path.parent.mkdir(parents=True, exist_ok=True)
        readline.set_history_length(1000)
        readline.write_history_file(path)
    except (ImportError, OSError):
        pass
