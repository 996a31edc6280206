"""Solve flow: a blocking solve run in a worker thread, its output yielded as it comes.

llama.cpp's batch hands results to callbacks; a generator cannot yield from inside them, so
the work runs in a thread and the consumer reads a queue. Leaving early (closing the
generator, Ctrl-C in the consumer, closing the Solver) sets a flag; the worker raises
`Stopped` at its next emit, which the engines end like a Ctrl-C (slots released, requests
stopped), and the consumer waits for the thread before it goes on, so the model is never
freed under a running decode.
"""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
Emit = Callable[[T], None]
Checkpoint = Callable[[], None]

_ITEM, _END = "item", "end"
POLL_S = 0.1  # how often a waiting consumer lets Ctrl-C in


class Stopped(KeyboardInterrupt):
    """Raised inside the worker at its next emit once nobody reads its output any more."""


class Background(Generic[T]):
    """`work(emit, checkpoint)` in a worker thread holding `lock`; `items()` yields what it
    emits. `emit` and `checkpoint` raise Stopped once the consumer has gone.

    `cancel` (the engine's) stops what the worker waits for when it emits nothing for a while
    (a decode step, a server's request). An exception of the work is raised in the consumer,
    unless the consumer asked the work to stop.
    """

    def __init__(self, work: Callable[[Emit[T], Checkpoint], None], lock: threading.Lock, *,
                 cancel: Callable[[], None] | None = None) -> None:
        self._work = work
        self._lock = lock
        self._cancel = cancel
        self._queue: queue.SimpleQueue[tuple[str, T | None, BaseException | None]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mathsolve-solve", daemon=True)

    def _checkpoint(self) -> None:
        if self._stop.is_set():
            raise Stopped()

    def _emit(self, item: T) -> None:
        self._checkpoint()
        self._queue.put((_ITEM, item, None))

    def _run(self) -> None:
        while not self._lock.acquire(timeout=POLL_S):
            if self._stop.is_set():
                self._queue.put((_END, None, None))
                return
        try:
            self._checkpoint()
            self._work(self._emit, self._checkpoint)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            stopped = self._stop.is_set() and isinstance(exc, KeyboardInterrupt)
            self._queue.put((_END, None, None if stopped else exc))
        else:
            self._queue.put((_END, None, None))
        finally:
            self._lock.release()

    def items(self) -> Iterator[T]:
        """What the work emits, as it comes; the thread starts on the first next()."""
        self._thread.start()
        previous = self._take_ctrl_c()
        try:
            while True:
                try:
                    kind, item, error = self._queue.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                if error is not None:
                    raise error
                if kind == _END:
                    return
                yield cast(T, item)
        finally:
            if previous is not None and signal.getsignal(signal.SIGINT) == self._on_ctrl_c:
                signal.signal(signal.SIGINT, previous)
            self.stop()

    def _take_ctrl_c(self) -> Any:
        """A Ctrl-C may land in the consumer's own loop body, between two items, where this
        generator's `finally` does not run until it is closed: the worker would go on decoding.
        On the main thread, with Python's default handler, Ctrl-C stops the work and waits for
        the thread first, then raises KeyboardInterrupt where it landed. Returns the handler
        to put back (None when none was taken)."""
        if threading.current_thread() is not threading.main_thread():
            return None
        previous = signal.getsignal(signal.SIGINT)
        if previous is not signal.default_int_handler:
            return None
        signal.signal(signal.SIGINT, self._on_ctrl_c)
        return previous

    def _on_ctrl_c(self, signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C: stop() waits on
        self.stop()
        raise KeyboardInterrupt

    def stop(self) -> None:
        """Ask the work to stop and wait until its thread has ended (Ctrl-C waits too)."""
        if not self._thread.is_alive():
            return
        self._stop.set()
        if self._cancel is not None:
            self._cancel()
        interrupted = False
        while self._thread.is_alive():
            try:
                self._thread.join(POLL_S)
            except KeyboardInterrupt:  # a second Ctrl-C: still never free a running model
                interrupted = True
        if interrupted:
            raise KeyboardInterrupt
