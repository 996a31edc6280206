"""The converter's one exception type (convert/ never imports mathsolve)."""

from __future__ import annotations


class ConversionError(Exception):
    """A conversion that cannot proceed; the message is one line saying what to do next."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
