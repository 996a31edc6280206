"""Answers: hard time limits, a function run in a worker process that is killed on timeout.

Why: math-verify's and sympy's own timeouts use `signal.alarm`, which cannot interrupt one
long C-level big-number operation (`9^{9^{9^9}}` ran for minutes). Only killing the process
stops it. The worker is started once (spawn, so it is safe next to llama.cpp's threads),
imports sympy/math-verify once, and answers jobs over a pipe; a job over its limit kills the
worker, and a fresh one is started at once so that it is warm for the next call.
"""

from __future__ import annotations

import functools
import importlib
import pickle
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mathsolve.errors import MathsolveError

STARTUP_LIMIT_S = 120.0  # importing sympy on a busy 2-core machine can take seconds


class HardTimeout(MathsolveError):
    """A job ran past its hard limit and its worker was killed; treat the result as unknown."""


class WorkerError(MathsolveError):
    """The worker process died or raised; the job's result is unknown."""


@dataclass(frozen=True)
class _Job:
    module: str
    name: str
    args: tuple[Any, ...]


def _worker_main(preload: tuple[str, ...]) -> None:
    """Worker loop on stdin/stdout pipes: import what is slow once, then run jobs."""
    import os
    import sys

    reader = os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    writer = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr  # nothing a job prints may corrupt the result channel
    for module in preload:
        try:
            importlib.import_module(module)
        except Exception:  # a failed preload shows up as an error in the first job instead
            pass

    def send(message: tuple[Any, ...]) -> None:
        pickle.dump(message, writer, protocol=pickle.HIGHEST_PROTOCOL)
        writer.flush()

    send(("ready", None))
    while True:
        try:
            job = pickle.load(reader)
        except (EOFError, OSError, pickle.UnpicklingError):
            return
        try:
            fn = getattr(importlib.import_module(job.module), job.name)
            result = ("ok", fn(*job.args))
        except BaseException as exc:  # report every failure; the worker keeps serving
            result = ("error", f"{type(exc).__name__}: {str(exc)[:300]}")
        try:
            send(result)
        except Exception:
            send(("error", "the result could not be sent back"))


class HardLimitWorker:
    """One persistent worker process; `call` runs a module-level function with a hard limit.

    A plain subprocess (`python -m mathsolve.answers.limits`) rather than multiprocessing's spawn,
    which would re-run the caller's `__main__`. Thread-safe, one job at a time.
    """

    def __init__(self, preload: tuple[str, ...] = ()) -> None:
        self._preload = preload
        self._lock = threading.Lock()
        self._proc: Any = None
        self._ready = False

    def _start(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "mathsolve.answers.limits", *self._preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        self._ready = False

    def _wait_readable(self, seconds: float) -> bool:
        ready, _, _ = select.select([self._proc.stdout], [], [], max(0.0, seconds))
        return bool(ready)

    def _receive(self) -> tuple[Any, ...]:
        try:
            message: tuple[Any, ...] = pickle.load(self._proc.stdout)
            return message
        except Exception as exc:  # EOF, a truncated pickle: the worker died mid-answer
            self._kill()
            raise WorkerError("the checking worker died; the job was dropped") from exc

    def _ensure_ready(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            self._kill()
            self._start()
        if not self._ready:
            if not self._wait_readable(STARTUP_LIMIT_S):
                self._kill()
                raise WorkerError("the checking worker did not start; check the sympy install")
            self._receive()
            self._ready = True

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            for stream in (self._proc.stdin, self._proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        self._proc = None
        self._ready = False

    def start(self) -> None:
        """Start the worker now, without waiting: its imports run while the caller goes on."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._kill()
                self._start()

    def wait_ready(self) -> bool:
        """Wait until the worker has imported its modules; False if it could not start (the
        first call then reports why)."""
        with self._lock:
            try:
                self._ensure_ready()
            except WorkerError:
                return False
            return True

    @property
    def pid(self) -> int | None:
        """The worker process's id (None before it is started)."""
        return None if self._proc is None else int(self._proc.pid)

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float) -> Any:
        """Run `fn(*args)` in the worker; raise HardTimeout after `timeout` seconds."""
        job = _Job(fn.__module__, fn.__name__, args)
        with self._lock:
            self._ensure_ready()
            start = time.monotonic()
            try:
                pickle.dump(job, self._proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                self._proc.stdin.flush()
            except (OSError, ValueError) as exc:
                self._kill()
                raise WorkerError(f"could not send a job to the worker: {exc}") from exc
            if not self._wait_readable(timeout - (time.monotonic() - start)):
                self._kill()
                self._start()  # warm up the next worker while the caller goes on
                raise HardTimeout(f"stopped after {timeout:g} s")
            status, value = self._receive()
        if status != "ok":
            raise WorkerError(value)
        return value

    def close(self) -> None:
        with self._lock:
            self._kill()


@functools.lru_cache(maxsize=1)
def shared_worker() -> HardLimitWorker:
    """The process-wide worker for sympy/math-verify jobs (created on first use).

    A cached factory rather than a global so importing this module starts nothing.
    """
    return HardLimitWorker(preload=("sympy", "math_verify", "mathsolve.answers.equivalence",
                                    "mathsolve.answers.verify"))


def call_limited(fn: Callable[..., Any], *args: Any, timeout: float) -> Any:
    """Run `fn(*args)` in the shared worker under a hard limit (see HardLimitWorker.call)."""
    return shared_worker().call(fn, *args, timeout=timeout)


if __name__ == "__main__":
    _worker_main(tuple(sys.argv[1:]))
