"""Errors: exit codes and the error hierarchy. Only `cli.main()` maps exceptions to exit codes."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Process exit codes, documented in `--help` and README."""

    OK = 0  # every problem answered
    ERROR = 1  # an error (bad model, failed pull, I/O, ...)
    USAGE = 2  # bad command line or option out of range
    NO_ANSWER = 3  # at least one problem finished without a final answer
    INTERRUPTED = 130  # Ctrl-C


class MathsolveError(Exception):
    """An error with a one-line message that says what to do next."""

    exit_status: ExitStatus = ExitStatus.ERROR


class UsageError(MathsolveError):
    """Options or arguments that cannot work (out of range, missing input)."""

    exit_status = ExitStatus.USAGE


class InputError(MathsolveError):
    """A problem, file or record that cannot be used (empty, not UTF-8, bad JSON)."""


class ModelError(MathsolveError):
    """A model that is missing, not a GGUF, truncated or cannot be loaded."""


class PullError(MathsolveError):
    """Download, conversion or quantisation during `pull` failed."""


class EngineError(MathsolveError):
    """llama.cpp failed while evaluating a prompt or generating."""
