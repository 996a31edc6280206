"""Engine: split streamed text into reasoning / answer / tag pieces; decode UTF-8 as it comes.

Tokens arrive one at a time and a tag such as `</think>` may be split over several tokens
(SmolLM2 spells it in four pieces; Qwen3 has one token for it), so the splitter holds back
any tail that could still become a tag and never emits a half tag as text.
"""

from __future__ import annotations

import codecs
from typing import Final, Literal

from mathsolve.config import THINK_CLOSE, THINK_OPEN

# What a piece of streamed text is (protocol.TextEvent.kind): inside <think>...</think>, outside
# it, or the tag itself. The one list of event kinds; every kind field is typed with it.
EventKind = Literal["reasoning", "answer", "tag"]
REASONING: Final = "reasoning"
ANSWER: Final = "answer"
TAG: Final = "tag"
Piece = tuple[EventKind, str]  # (kind, text)


def think_open_at_end(prompt: str) -> bool:
    """True when the prompt leaves a `<think>` block open, so generation starts in reasoning."""
    return prompt.rfind(THINK_OPEN) > prompt.rfind(THINK_CLOSE)


class ThinkSplitter:
    """Classify streamed text: inside <think>...</think> is reasoning, the rest is answer."""

    def __init__(self, *, in_think: bool = False) -> None:
        self._in_think = in_think
        self._pending = ""

    @property
    def in_think(self) -> bool:
        return self._in_think

    def feed(self, text: str) -> list[Piece]:
        """Return (kind, text) pieces that are certain now; a possible partial tag waits."""
        self._pending += text
        out: list[Piece] = []
        while True:
            tag, at = self._next_tag(self._pending)
            if tag is None:
                break
            self._emit(out, self._pending[:at])
            out.append((TAG, tag))
            self._in_think = tag == THINK_OPEN
            self._pending = self._pending[at + len(tag) :]
        keep = _partial_tag_suffix(self._pending)
        self._emit(out, self._pending[: len(self._pending) - keep])
        self._pending = self._pending[len(self._pending) - keep :]
        return out

    def flush(self) -> list[Piece]:
        """Emit whatever is held back (generation ended inside a would-be tag)."""
        out: list[Piece] = []
        self._emit(out, self._pending)
        self._pending = ""
        return out

    def _emit(self, out: list[Piece], text: str) -> None:
        if text:
            out.append((REASONING if self._in_think else ANSWER, text))

    @staticmethod
    def _next_tag(text: str) -> tuple[str | None, int]:
        found = [(text.find(tag), tag) for tag in (THINK_OPEN, THINK_CLOSE)]
        found = [(at, tag) for at, tag in found if at >= 0]
        if not found:
            return None, -1
        at, tag = min(found)
        return tag, at


def _partial_tag_suffix(text: str) -> int:
    """Length of the longest tail of `text` that is a proper prefix of a tag."""
    best = 0
    for tag in (THINK_OPEN, THINK_CLOSE):
        for n in range(min(len(tag) - 1, len(text)), 0, -1):
            if tag.startswith(text[-n:]):
                best = max(best, n)
                break
    return best


class Utf8Stream:
    """Bytes in, whole characters out: a character split across tokens waits for its rest."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        return self._decoder.decode(data)

    def pending(self) -> bytes:
        """Bytes of a character not yet whole."""
        data: bytes = self._decoder.getstate()[0]
        return data

    def flush(self) -> str:
        """End of stream: a character cut off by the token limit is dropped, not shown as
        U+FFFD (it was never generated whole); bytes that are invalid anyway were already
        replaced as they came."""
        pending, _ = self._decoder.getstate()
        self._decoder.reset()
        return "" if pending else self._decoder.decode(b"", final=True)
