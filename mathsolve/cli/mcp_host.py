"""Command line: the engine behind `mathsolve mcp`: one Solver, one solve at a time, cancellable.

One Solver is loaded for the server's life, in a thread as the server starts, so tools/list,
grade and check answer at once and a model that cannot be loaded is each solve's tool error.
Solves run one at a time on it, in arrival order (anyio's Lock hands itself to its waiters
first come, first served), each in a worker thread so the event loop keeps serving. A
cancelled request stops its decode at the next token (the engine ends it as a Ctrl-C) and
holds the engine until the decode has ended, so the next request finds it free.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from mcp.server.mcpserver.exceptions import ToolError

from mathsolve.api import Solver
from mathsolve.config import SamplingConfig, Settings, SolveOptions
from mathsolve.engine.protocol import TextEvent
from mathsolve.errors import EngineError, MathsolveError
from mathsolve.solving.background import Stopped
from mathsolve.solving.inputs import Problem
from mathsolve.solving.solve import Result, solve

PROGRESS_EVERY_S = 0.25  # at most this often a progress notification while a solve decodes
Note = Callable[[str], None]


class Decode:
    """One solve in a worker thread. `stop()` (any thread) ends its decode at once (the local
    engine's llama_decode returns between two graph nodes; a server's requests are cancelled);
    `ended` is set once the engine is free again."""

    def __init__(self, solver: Solver, problem: Problem, sampling: SamplingConfig, options: SolveOptions,
                 progress: Callable[[float, str], None]) -> None:
        self.solver, self.problem, self.sampling, self.options = solver, problem, sampling, options
        self.progress = progress
        self.stopping = threading.Event()
        self.ended = threading.Event()
        self.chars = 0
        self.error: Exception | None = None
        self._last = 0.0

    def on_event(self, event: TextEvent) -> None:
        if self.stopping.is_set():
            raise Stopped()
        self.chars += len(event.text)
        now = time.monotonic()
        if now - self._last >= PROGRESS_EVERY_S:
            self._last = now
            what = "answering" if event.kind == "answer" else "reasoning"
            self.progress(self.chars, f"sample {event.sample + 1} {what}; {self.chars} characters of text so far")

    def work(self) -> Result | None:
        """The Result, or None when stopped or failed (`error`). Raises nothing: the engine's
        GenerationInterrupted is a KeyboardInterrupt, which anyio would take for Ctrl-C, and an
        error would come out of the caller's task group as an ExceptionGroup."""
        try:
            return solve(self.solver.engine, self.problem, self.sampling, self.options,
                         self.solver.model_info, on_event=self.on_event)
        except KeyboardInterrupt:
            if not self.stopping.is_set():
                self.error = EngineError("the solve was interrupted by the engine")
        except Exception as exc:  # noqa: BLE001 - raised again in the caller's task
            self.error = exc
        finally:
            self.ended.set()
        return None

    def stop(self) -> None:
        self.stopping.set()
        self.solver.engine.cancel()  # the decode step, or a server's requests, running now


class EngineHost:
    """The server's one Solver: loaded in a thread at start, freed at the end; solves on it one
    at a time, in the order they arrive."""

    def __init__(self, settings: Settings, note: Note) -> None:
        self.settings = settings
        self._note = note
        self._solver: Solver | None = None
        self._error: str | None = None
        self._ready = threading.Event()
        self._loader = threading.Thread(target=self._load, name="mathsolve-mcp-load", daemon=True)
        self._fifo: anyio.Lock | None = None  # made in the event loop

    def start(self) -> None:
        self._fifo = anyio.Lock()
        self._loader.start()

    def _load(self) -> None:
        try:
            self._solver = Solver.from_settings(self.settings, note=self._note)
            self._note(f"model loaded in {self._solver.load_seconds:.1f} s; serving MCP on stdio")
        except MathsolveError as exc:
            self._error = str(exc)
        except Exception as exc:  # noqa: BLE001 - each solve's tool error, never a crash of the server
            self._error = f"the model could not be loaded ({type(exc).__name__}: {exc})"
        finally:
            if self._error:
                self._note(f"error: {self._error}")
            self._ready.set()

    async def _loaded(self) -> Solver:
        if not self._ready.is_set():
            await anyio.to_thread.run_sync(self._ready.wait, abandon_on_cancel=True)
        if self._solver is None:
            raise ToolError(self._error or "the model is not loaded")
        return self._solver

    async def solve(self, problem: Problem, sampling: SamplingConfig, options: SolveOptions,
                    report: Callable[[float, str], Any]) -> tuple[Result, float]:
        """(Result, seconds waited for the engine). Cancelling the caller stops the decode."""
        if self._fifo is None:
            raise ToolError("the server is not running")
        arrived = time.perf_counter()
        async with self._fifo:
            solver = await self._loaded()
            queued = time.perf_counter() - arrived
            send, receive = anyio.create_memory_object_stream[tuple[float, str]](math.inf)
            token = anyio.lowlevel.current_token()

            def progress(done: float, message: str) -> None:  # in the worker thread
                try:
                    anyio.from_thread.run_sync(send.send_nowait, (done, message), token=token)
                except Exception:  # noqa: BLE001 - the loop is closing or the reader left: no progress then
                    pass

            async def forward() -> None:
                async with receive:
                    async for done, message in receive:
                        try:
                            await report(done, message)
                        except Exception:  # noqa: BLE001 - a progress that cannot be sent never fails the solve
                            pass

            decode = Decode(solver, problem, sampling, options, progress)
            async with anyio.create_task_group() as tg:
                tg.start_soon(forward)
                try:
                    result = await anyio.to_thread.run_sync(decode.work, abandon_on_cancel=True)
                except anyio.get_cancelled_exc_class():
                    decode.stop()
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(decode.ended.wait)
                    raise
                finally:
                    send.close()
        if decode.error is not None:
            raise decode.error
        if result is None:
            raise ToolError("the solve was stopped: the server is shutting down")
        return result, queued

    def close(self) -> None:
        """Wait for a load still running, then free the model (blocking; call from a thread)."""
        if self._loader.is_alive():
            self._loader.join()
        if self._solver is not None:
            self._solver.close()
            self._solver = None
