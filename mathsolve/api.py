"""Python API: the public entry point; a Solver holds one loaded model and runs the solve flow.

    from mathsolve import Solver
    with Solver(samples=4) as solver:
        print(solver.solve("solve x^2=4").answer)

A small surface, as simonw/llm (`get_model(...).prompt(...)`) and Math-Verify (`parse`,
`verify`) keep theirs: one class whose keyword arguments are the CLI's options with the
CLI's defaults, three ways to solve (one result, many as they finish, a stream of text
events), and two functions on text (`extract_answer`, `grade`). The CLI is built on it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from mathsolve.answers.grade import Grade
from mathsolve.config import (
    ANSWER_ALLOWANCE,
    CHECK_TIMEOUT_S,
    DEFAULT_CTX,
    DEFAULT_MAX_TOKENS,
    DEFAULT_MIN_P,
    DEFAULT_QUANT,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_K,
    DEFAULT_TOP_P,
    OPTIONS,
    SOLVE_OPTIONS,
    Sampler,
    SamplingConfig,
    Settings,
    settings_from,
)
from mathsolve.engine.protocol import EngineProtocol, GenerationInterrupted, TextEvent
from mathsolve.errors import InputError, MathsolveError, UsageError
from mathsolve.solving.background import Background, Checkpoint, Emit
from mathsolve.solving.inputs import Problem, check_text
from mathsolve.solving.loading import ModelInfo
from mathsolve.solving.solve import Result, error_result, solve, solve_many

if TYPE_CHECKING:
    from mathsolve.models.cache import Stages
    from mathsolve.output.render import Renderer

__all__ = ["Result", "Solver", "extract_answer", "grade"]


Note = Callable[[str], None]
OnResult = Callable[[int, Result], None]
Seeding = Callable[[Problem], SamplingConfig]
API_KEY_ENV = ("MATHSOLVE_API_KEY", "OPENAI_API_KEY")  # as `--api-key` reads them

_log = logging.getLogger("mathsolve")


class Solver:
    """One model, loaded once, that solves problems; `close()` (or `with`) frees it.

    `model`: a .gguf path, a cached model name or a Hugging Face repo id (None:
    MATHSOLVE_MODEL, else the default model); `pull=True` downloads and converts a repo that
    is not cached yet (minutes). `server`: an OpenAI-compatible server URL instead of the
    local engine (`api_key`: else MATHSOLVE_API_KEY / OPENAI_API_KEY). The other keywords are
    `mathsolve solve`'s options with its defaults; `seed=None` draws one seed for this
    Solver (recorded in every result). Notes (a GPU fallback, a pull's steps) go to
    `on_note`, else to the `mathsolve` logger. Bad values raise UsageError, a model that
    cannot be used ModelError (both MathsolveError, one line each).
    """

    def __init__(self, model: str | None = None, *, quant: str = DEFAULT_QUANT,
                 samples: int = 1, temperature: float = DEFAULT_TEMPERATURE,
                 top_p: float = DEFAULT_TOP_P, top_k: int = DEFAULT_TOP_K,
                 min_p: float = DEFAULT_MIN_P, seed: int | None = None,
                 max_tokens: int = DEFAULT_MAX_TOKENS, ctx: int = DEFAULT_CTX,
                 think: bool = True, check: bool = True, stop_when_decided: bool = False,
                 confidence: float | None = None, thinking_budget: int | None = None,
                 time_limit: float | None = None,
                 threads: int | None = None, gpu: bool = True, parallel: int | None = None,
                 kv_type: str = "f16", kv_budget: float | None = None,
                 sampler: Sampler = "auto", server: str | None = None, api_key: str | None = None,
                 concurrency: int | None = None, offline: bool = False, pull: bool = False,
                 verbose: bool = False, on_note: Note | None = None) -> None:
        if server and api_key is None:
            api_key = next((os.environ[v] for v in API_KEY_ENV if os.environ.get(v)), None)
        settings = settings_from(dict(
            model=model, quant=quant, offline=offline, server=server, api_key=api_key, concurrency=concurrency,
            ctx=ctx, threads=threads, gpu=gpu, verbose=verbose, sampler=sampler, parallel=parallel,
            kv_type=kv_type, kv_budget=kv_budget, temperature=temperature, top_p=top_p, top_k=top_k,
            min_p=min_p, max_tokens=max_tokens, thinking_budget=thinking_budget, time_limit=time_limit,
            seed=seed, samples=samples, think=think, check=check, stop_when_decided=stop_when_decided,
            confidence=confidence))
        self._start(settings, note=on_note, pull=pull, stages=None)

    @classmethod
    def from_settings(cls, settings: Settings, *, note: Note | None = None, pull: bool = False,
                      stages: Stages | None = None) -> Solver:
        """A Solver from settings built elsewhere (the CLI's options); `stages` shows the
        conversion phases of a pull on a terminal."""
        solver = cls.__new__(cls)
        solver._start(settings, note=note, pull=pull, stages=stages)
        return solver

    def _start(self, settings: Settings, *, note: Note | None, pull: bool,
               stages: Stages | None) -> None:
        from mathsolve.solving.loading import open_engine

        validate(settings)
        self._settings = settings
        self._lock = threading.Lock()  # one solve at a time on the engine
        self._running: set[Background[Any]] = set()
        self._engine: EngineProtocol[Any] | None = None
        self._model: ModelInfo
        self._note: Note = note or _log.info
        worker = None
        if settings.solve.check or settings.solve.samples > 1:
            # The sympy/math-verify worker imports while the model loads (1-2 s on a 2-core
            # machine), so the first checked record does not hold it.
            from mathsolve.answers.limits import shared_worker

            worker = shared_worker()
            worker.start()
        self._engine, info = open_engine(settings.model, settings.engine, note=self._note,
                                         pull=pull, probe=settings.sampling, stages=stages,
                                         samples=settings.solve.samples)
        if worker is not None:
            worker.wait_ready()  # before the first decode, which it would slow down
        self._model = info

    # ---- what was loaded -------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def engine(self) -> EngineProtocol[Any]:
        """The engine (engine.local.engine.Engine or engine.remote.server.ServerEngine): the
        EngineProtocol every caller drives, whichever it is."""
        if self._engine is None:
            raise UsageError("this Solver is closed; make a new one")
        return self._engine

    @property
    def model_info(self) -> ModelInfo:
        """What every Result records as `model`: path, source and quant (or the server's)."""
        return self._model

    @property
    def load_seconds(self) -> float:
        return self.engine.load_seconds

    # ---- solving ---------------------------------------------------------------------------

    def solve(self, problem: str | Problem, *, seed: int | None = None,
              on_event: Callable[[TextEvent], None] | None = None) -> Result:
        """Solve one problem on this thread (Ctrl-C raises engine.GenerationInterrupted);
        `on_event` sees the text as it is drawn. Errors raise MathsolveError."""
        item = _problem(problem, 1, strict=True)
        engine = self.engine
        with self._lock:
            return solve(engine, item, self._sampling(seed), self._settings.solve, self._model,
                         on_event=on_event)

    def solve_rendered(self, problem: Problem, renderer: Renderer, *,
                       sampling: SamplingConfig | None = None) -> Result:
        """One problem solved while `renderer` shows it live, its errors kept in its own record
        so a batch goes on (solve -f on a terminal or a server, the interactive loop). Ctrl-C
        raises engine.GenerationInterrupted once the renderer has closed what it showed."""
        sampling = sampling or self._settings.sampling
        if problem.error:
            result = error_result(problem, problem.error, self._model, sampling)
            renderer.end(result)
            return result
        engine = self.engine
        renderer.begin(problem, self._settings.solve.samples)
        try:
            with self._lock:
                result = solve(engine, problem, sampling, self._settings.solve, self._model,
                               on_event=renderer.event)
        except GenerationInterrupted:
            renderer.interrupted()
            raise
        except MathsolveError as exc:
            result = error_result(problem, str(exc), self._model, sampling)
        renderer.end(result)
        return result

    def solve_many(self, problems: Iterable[str | Problem], *,
                   seed: int | None = None) -> Iterator[Result]:
        """Results as the problems finish (ids "1", "2", ... for strings); every problem
        draws with the same seed, as `mathsolve -f` does. A problem that cannot be solved
        gives a Result with `error` set, so the rest go on. Closing the iterator early (or
        Ctrl-C) stops the work."""
        items = [_problem(p, i, strict=False) for i, p in enumerate(problems, 1)]
        sampling = self._sampling(seed)

        def work(emit: Emit[Result], checkpoint: Checkpoint) -> None:
            self._solve_all(items, lambda _i, result: emit(result), lambda _p: sampling,
                            on_event=lambda _i, _event: checkpoint())

        return self._background(work)

    def stream(self, problem: str | Problem, *,
               seed: int | None = None) -> Iterator[TextEvent | Result]:
        """The text as it is drawn (TextEvent: kind "reasoning", "answer" or "tag", and the
        sample it belongs to), then the Result. Closing the iterator early stops the work."""
        item = _problem(problem, 1, strict=True)
        sampling = self._sampling(seed)
        engine = self.engine

        def work(emit: Emit[TextEvent | Result], _checkpoint: Checkpoint) -> None:
            emit(solve(engine, item, sampling, self._settings.solve, self._model, on_event=emit))

        return self._background(work)

    def solve_all(self, problems: list[Problem], on_result: OnResult, *,
                  seeding: Seeding | None = None) -> None:
        """solve_many's callback form, on this thread: on_result(i, result) for problems[i]
        as each finishes. The local engine keeps the problems in flight in one batch (Ctrl-C
        stops it even inside a long prompt); a server gets several problems at once."""
        with self._lock:
            self._solve_all(problems, on_result, seeding or (lambda _p: self._settings.sampling))

    def _solve_all(self, problems: list[Problem], on_result: OnResult, seeding: Seeding, *,
                   on_event: Callable[[int, TextEvent], None] | None = None) -> None:
        solve_many(self.engine, problems, seeding, self._settings.solve, self._model, on_result,
                   parallel=self._settings.engine.parallel, on_event=on_event)

    # ---- helpers ---------------------------------------------------------------------------

    def _sampling(self, seed: int | None) -> SamplingConfig:
        if seed is None:
            return self._settings.sampling
        _check("seed", seed)
        return self._settings.sampling.with_seed(seed)

    def _background(self, work: Callable[[Emit[Any], Checkpoint], None]) -> Iterator[Any]:
        job: Background[Any] = Background(work, self._lock, cancel=self.engine.cancel)

        def run() -> Iterator[Any]:
            self._running.add(job)
            try:
                yield from job.items()
            finally:
                self._running.discard(job)

        return run()

    def close(self) -> None:
        """Stop what runs in the background, then free the model (idempotent)."""
        for job in list(self._running):
            job.stop()
        with self._lock:
            if self._engine is not None:
                self._engine.close()
                self._engine = None

    def __enter__(self) -> Solver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self._model.path or self._model.source
        return f"Solver({where!r}, samples={self._settings.solve.samples})"


def _problem(item: str | Problem, index: int, *, strict: bool) -> Problem:
    """A Problem from the caller's text; a bad text raises (strict) or is the Problem's error."""
    if isinstance(item, Problem):
        return item
    if not isinstance(item, str):
        raise TypeError(f"a problem is a str or a mathsolve.Problem, not {type(item).__name__}")
    try:
        return Problem(str(index), check_text(item))
    except InputError as exc:
        if strict:
            raise
        return Problem(str(index), item, error=str(exc))


def _check(name: str, value: Any) -> None:
    """A UsageError when `value` is out of config.OPTIONS[name]'s range or choices."""
    problem = OPTIONS[name].problem(value)
    if problem:
        raise UsageError(problem)


def validate(settings: Settings) -> None:
    """The ranges and choices `mathsolve solve` enforces on its options (config.SOLVE_OPTIONS),
    for settings made in Python."""
    for option in SOLVE_OPTIONS:
        section, field = option.setting.split(".")
        _check(option.name, getattr(getattr(settings, section), field))
    s, e = settings.sampling, settings.engine
    if s.thinking_budget is not None and s.thinking_budget + ANSWER_ALLOWANCE >= e.n_ctx:
        raise UsageError(f"thinking budget {s.thinking_budget} leaves no room for the answer in a "
                         f"context of {e.n_ctx} tokens; lower it or raise --ctx")


def extract_answer(text: str) -> str | None:
    """The final answer of a completion: its last \\boxed{} (with the boxes of the same
    sentence), else a "final answer is X", "#### X" or "Answer: X" line; None if none."""
    from mathsolve.answers.extract import extract

    return extract(text).answer


def grade(completion: str, reference: str, *, timeout: float = CHECK_TIMEOUT_S) -> Grade:
    """Extract `completion`'s answer and compare it with `reference` (an answer, or a whole
    MATH/GSM8K solution); `.correct` is None when not comparable within `timeout` s."""
    from mathsolve.answers.grade import grade as grade_answer

    return grade_answer(completion, reference, timeout=timeout)
