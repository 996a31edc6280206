"""Wiring of `mathsolve solve`: inputs -> model -> engine -> solve -> renderer -> exit status."""

from __future__ import annotations

import random
import sys
from typing import Any, Callable

from .config import EngineConfig, SamplingConfig
from .errors import ExitStatus, MathsolveError, UsageError
from .inputs import Problem, check_text, parse_problems, read_source
from .solve import Result, SolveOptions, error_result, solve


def _stdin_is_tty() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def gather_problems(opts: dict) -> list[Problem] | None:
    """Problems from the argument, --file or piped stdin; None means interactive."""
    words = list(opts["problem"])
    if opts["file"] and words:
        raise UsageError("give either a PROBLEM or --file, not both")
    if words == ["-"]:
        words, opts["file"] = [], "-"
    if words:
        return [Problem("1", check_text(" ".join(words)))]
    if opts["file"]:
        where = "stdin" if opts["file"] == "-" else opts["file"]
        return parse_problems(read_source(opts["file"]), blank_lines=opts["blank_lines"],
                              where=where)
    if not _stdin_is_tty():
        return parse_problems(read_source("-"), blank_lines=opts["blank_lines"], where="stdin")
    return None


def sampling_from(opts: dict) -> SamplingConfig:
    seed = opts["seed"] if opts["seed"] is not None else random.randrange(2**31 - opts["samples"])
    return SamplingConfig(temperature=opts["temperature"], top_p=opts["top_p"],
                          top_k=opts["top_k"], min_p=opts["min_p"], seed=seed,
                          max_tokens=opts["max_tokens"])


def load_model(opts: dict, note: Callable[[str], None]) -> tuple[Any, dict]:
    """Resolve --model to a GGUF (pulling it on a terminal when missing) and load it."""
    if opts.get("server"):
        from .server import ServerEngine

        engine = ServerEngine.connect(opts["server"], api_key=opts.get("api_key"),
                                      concurrency=opts.get("concurrency"), warn=note,
                                      model=opts.get("model"))
        return engine, {"path": None, "source": engine.url, "name": engine.model_name}

    from . import models
    from .engine import Engine
    from .hub import offline_from_env

    offline = opts["offline"] or offline_from_env()  # "0", "false", "no" are not offline
    try:
        resolved = models.resolve(opts["model"], opts["quant"])
    except models.ModelNotCached as missing:
        if offline or not (_stdin_is_tty() and sys.stderr.isatty()):
            raise
        note(f"{missing}; pulling it now")
        resolved = models.pull(missing.repo, opts["quant"], offline=offline, progress=note)
    cfg = EngineConfig(model_path=str(resolved.path), n_ctx=opts["ctx"],
                       n_threads=opts["threads"], gpu=not opts["cpu"], verbose=opts["verbose"],
                       sampler=opts.get("sampler") or "auto", parallel=opts.get("parallel"))
    engine = Engine.load(cfg, warn=note)
    if opts["verbose"]:
        from .sampling import describe_path

        note(f"engine: {'GPU' if engine.gpu_offload else 'CPU'}, {engine.n_threads} threads; "
             f"sampling: {describe_path(engine.choose_path([sampling_probe(opts)]))}")
    quant = None if resolved.source == "file" else resolved.quant  # --quant does not apply to a path
    info = {"path": str(resolved.path), "source": resolved.source, "quant": quant}
    return engine, info


def make_renderer(opts: dict, load_seconds: float = 0.0) -> Any:
    from . import render

    if opts["as_json"]:
        return render.JsonRenderer(show_reasoning=opts["show_reasoning"])
    if sys.stdout.isatty():
        return render.TerminalRenderer(hide_reasoning=opts["hide_reasoning"],
                                       load_seconds=load_seconds)
    return render.PlainRenderer(show_reasoning=opts["show_reasoning"])


def run_solve(opts: dict) -> ExitStatus:
    problems = gather_problems(opts)
    sampling = sampling_from(opts)
    options = SolveOptions(samples=opts["samples"], think=not opts["no_think"],
                           stop_when_decided=opts["stop_when_decided"],
                           check=not opts["no_check"])
    renderer = make_renderer(opts)
    engine, model = load_model(opts, renderer.note)
    if hasattr(renderer, "load_seconds"):
        renderer.load_seconds = engine.load_seconds
    if problems is None:
        from .interactive import loop

        return loop(engine, model, sampling, options, renderer)
    from .render import TerminalRenderer

    if len(problems) > 1 and hasattr(engine, "run") and not isinstance(renderer, TerminalRenderer):
        return batch_status(solve_in_flight(engine, problems, sampling, options, model, renderer))
    results = [solve_one(engine, p, sampling, options, model, renderer) for p in problems]
    return batch_status(results)


def sampling_probe(opts: dict) -> SamplingConfig:
    """The sampling options without a seed: enough to say which sampling path a run takes."""
    return SamplingConfig(temperature=opts["temperature"], top_p=opts["top_p"],
                          top_k=opts["top_k"], min_p=opts["min_p"], max_tokens=opts["max_tokens"])


def solve_in_flight(engine: Any, problems: list[Problem], sampling: SamplingConfig,
                    options: SolveOptions, model: dict, renderer: Any) -> list[Result]:
    """Piped or JSON output of several problems: all in flight in one batch, each printed in
    input order as soon as the ones before it are. On Ctrl-C, JSON records that finished out
    of order (they carry their id) are printed too; plain lines keep the order."""
    from .engine import GenerationInterrupted
    from .render import JsonRenderer
    from .solve import solve_many

    results: dict[int, Result] = {}
    shown = 0

    def on_result(index: int, result: Result) -> None:
        nonlocal shown
        results[index] = result
        while shown in results:
            renderer.end(results[shown])
            shown += 1

    try:
        solve_many(engine, problems, lambda _problem: sampling, options, model, on_result)
    except GenerationInterrupted:
        if isinstance(renderer, JsonRenderer):
            for index in sorted(i for i in results if i >= shown):
                renderer.end(results[index])
        renderer.interrupted()
        raise
    return [results[i] for i in range(len(problems))]


def solve_one(engine: Any, problem: Problem, sampling: SamplingConfig, options: SolveOptions,
              model: dict, renderer: Any) -> Result:
    """One problem, its errors kept in its own record so a batch goes on."""
    from .engine import GenerationInterrupted

    if problem.error:
        result = error_result(problem, problem.error, model, sampling)
        renderer.end(result)
        return result
    renderer.begin(problem, options.samples)
    try:
        result = solve(engine, problem, sampling, options, model, on_event=renderer.event)
    except GenerationInterrupted:
        renderer.interrupted()
        raise
    except MathsolveError as exc:
        result = error_result(problem, str(exc), model, sampling)
    renderer.end(result)
    return result


def batch_status(results: list[Result]) -> ExitStatus:
    if any(r.error for r in results):
        return ExitStatus.ERROR
    if any(r.answer is None for r in results):
        return ExitStatus.NO_ANSWER
    return ExitStatus.OK
