"""Output: the phases of a conversion (pull, convert) as live progress on a terminal.

The converter reports (phase, done, total): "read" (checking the checkpoint), "write"
(bytes of the GGUF), "quantize" (tensors, counted from llama.cpp's log), and `pull` adds
"sha256" (bytes hashed). On a terminal each phase gets one rich progress display: bytes,
rate and time left, or tensors and time left; a finished phase stays on screen as one line.
Piped, or with NO_COLOR, there is no live display (`live_stages` yields None) and the
callers print a line per phase and per 10 % instead, as before.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mathsolve.models.cache import Phase, Stages

TITLES: dict[Phase, str] = {"read": "read checkpoint", "write": "write GGUF",
                            "quantize": "quantise (llama.cpp)", "sha256": "sha256"}
BYTE_PHASES: tuple[Phase, ...] = ("write", "sha256")


def wants_live_display() -> bool:
    """A colour terminal on stderr (where progress goes); NO_COLOR asks for plain lines."""
    return sys.stderr.isatty() and not os.environ.get("NO_COLOR")


@contextmanager
def live_stages() -> Iterator[Stages | None]:
    """A PhaseDisplay on a terminal, None when piped or with NO_COLOR; closed on exit."""
    if not wants_live_display():
        yield None
        return
    display = PhaseDisplay()
    try:
        yield display
    finally:
        display.close()


class PhaseDisplay:
    """Called with (phase, done, total); one rich Progress per phase, opened when the phase
    starts and stopped when it ends or the next one starts (two live displays cannot share
    a terminal)."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console

        self._console = console or Console(stderr=True)
        self._phase: Phase | None = None
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, phase: Phase, done: int, total: int) -> None:
        if phase == self._phase and self._bar is None:
            return  # the phase has ended already
        if phase != self._phase:
            self._open(phase)
        # quantize starts as (0, 1): the tensor count is not known until llama.cpp logs it
        known = phase != "quantize" or total > 1 or done == total
        self._bar.update(self._task, completed=done, total=total if known and total else None)
        if known and total and done >= total:
            self.close()

    def _open(self, phase: Phase) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.close()
        columns: list[Any] = [SpinnerColumn(finished_text="✓"),
                              TextColumn("{task.description}"), BarColumn()]
        if phase in BYTE_PHASES:
            columns += [DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
        elif phase == "quantize":
            columns += [MofNCompleteColumn(), TextColumn("tensors"), TimeElapsedColumn(),
                        TimeRemainingColumn()]
        else:
            columns += [TimeElapsedColumn()]
        self._bar = Progress(*columns, console=self._console, transient=False)
        self._bar.start()
        self._task = self._bar.add_task(TITLES[phase], total=None)
        self._phase = phase

    def close(self) -> None:
        """Stop the current phase's display, leaving its last state on screen."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
