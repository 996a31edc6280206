"""Engine: the wire side of the server backend (SSE reading with size limits).

One generate call's shared state, a streamed completion being accumulated, SSE reading with
size limits, error bodies, Retry-After. Responses are untrusted: every read is bounded and JSON is only ever parsed."""

from __future__ import annotations

import http.client
import json
import queue
import socket
import threading
import time
from typing import Any

from mathsolve.config import THINK_CLOSE, THINK_OPEN
from mathsolve.engine.protocol import Completion, FinishReason, TextEvent
from mathsolve.engine.stream import REASONING, TAG, EventKind, ThinkSplitter
from mathsolve.errors import EngineError

MAX_COMPLETION_BYTES = 4 * 1024 * 1024  # one streamed completion, all SSE bytes
MAX_LINE_BYTES = 1024 * 1024  # one SSE line / the /v1/models answer
MAX_ERROR_BYTES = 64 * 1024  # the body of an error answer we read for its message

class Retryable(Exception):
    """A failure worth another try; str() is one line without secrets."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Rejected(Exception):
    """The server refused an optional field we sent (HTTP 400/422 naming it)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


class Cancelled(Exception):
    """Ctrl-C or cancel(): stop this sample now."""


class Call:
    """State shared by the threads of one generate_many call."""

    def __init__(self, k: int, deadline: float | None = None) -> None:
        self.deadline = deadline  # perf_counter time the samples are steered (--time-limit)
        # (kind, payload): the payload's type follows the kind (see ServerEngine.generate_many)
        self.inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.live: dict[int, Accumulator] = {}
        self.ended = 0
        self._stop = threading.Event()
        self._conns: set[http.client.HTTPConnection] = set()
        self._lock = threading.Lock()

    def note(self, message: str) -> None:
        self.inbox.put(("note", message))

    def stopped(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float) -> bool:
        return self._stop.wait(seconds)

    def watch(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._conns.add(conn)

    def unwatch(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._conns.discard(conn)

    def stop(self) -> None:
        """Wake every worker: blocked reads end when their sockets are shut down."""
        self._stop.set()
        with self._lock:
            for conn in list(self._conns):
                if conn.sock is not None:
                    try:
                        conn.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass


class Accumulator:
    """One attempt's text, events, finish reason and token counts."""

    def __init__(self, sample: int, seed: int, start: float, call: Call, *,
                 in_think: bool = False) -> None:
        self.sample, self.seed, self.start, self.call = sample, seed, start, call
        self.splitter = ThinkSplitter(in_think=in_think)
        self.timed_out = False  # the stream was left at the call's deadline
        self.parts: list[str] = []
        self.in_reasoning = False  # inside a reasoning_content run (vLLM reasoning parser)
        self.chunks = 0
        self.bytes = 0
        self.first: float | None = None
        self.finish: str | None = None
        self.usage: dict[str, Any] = {}

    def _emit(self, kind: EventKind, text: str) -> None:
        self.call.inbox.put(("event", TextEvent(self.sample, text, kind)))

    def delta(self, delta: dict[str, Any]) -> None:
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        content = delta.get("content")
        if isinstance(reasoning, str) and reasoning:
            self._mark()
            if not self.in_reasoning:
                self.in_reasoning = True
                self.parts.append(THINK_OPEN)
                self._emit(TAG, THINK_OPEN)
            self.parts.append(reasoning)
            self._emit(REASONING, reasoning)
        if isinstance(content, str) and content:
            self._mark()
            self._close_reasoning()
            self.parts.append(content)
            for kind, text in self.splitter.feed(content):
                self._emit(kind, text)

    def _mark(self) -> None:
        self.chunks += 1
        if self.first is None:
            self.first = time.perf_counter()

    def _close_reasoning(self) -> None:
        if self.in_reasoning:
            self.in_reasoning = False
            self.parts.append(THINK_CLOSE)
            self._emit(TAG, THINK_CLOSE)

    def chunk(self, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise EngineError("the server sent a stream chunk that is not a JSON object")
        if obj.get("error"):
            raise Retryable(f"the server reported an error mid-stream: {error_message(json.dumps(obj).encode())}")
        for choice in obj.get("choices") or []:
            if isinstance(choice, dict):
                if isinstance(choice.get("delta"), dict):
                    self.delta(choice["delta"])
                elif isinstance(choice.get("text"), str):  # /v1/completions
                    self.delta({"content": choice["text"]})
                if choice.get("finish_reason"):
                    self.finish = str(choice["finish_reason"])
        if isinstance(obj.get("usage"), dict):
            self.usage = obj["usage"]

    def whole(self, obj: Any) -> None:
        """A server that ignored stream: true and sent one JSON answer."""
        choices = obj.get("choices") if isinstance(obj, dict) else None
        if not choices or not isinstance(choices[0], dict):
            raise EngineError("the server's answer has no choices; is it OpenAI-compatible?")
        message = choices[0].get("message") or {}
        if isinstance(message, dict):
            self.delta(message)
        elif isinstance(choices[0].get("text"), str):  # /v1/completions
            self.delta({"content": choices[0]["text"]})
        self.finish = str(choices[0].get("finish_reason") or "stop")
        if isinstance(obj.get("usage"), dict):
            self.usage = obj["usage"]

    def completion(self, reason: FinishReason | None = None) -> Completion:
        """reason overrides the server's (interrupted); length stays an open think block."""
        finish: FinishReason = reason or ("length" if self.finish == "length" else "stop")
        if finish == "stop":
            self._close_reasoning()
        for kind, text in self.splitter.flush():
            self._emit(kind, text)
        now = time.perf_counter()
        return Completion(self.sample, self.seed, "".join(self.parts), finish,
                          as_int(self.usage.get("prompt_tokens")),
                          as_int(self.usage.get("completion_tokens"), self.chunks),
                          now - self.start, (self.first or now) - self.start)


def read_sse(resp: http.client.HTTPResponse, acc: Accumulator, call: Call, *, deadline: bool = True) -> None:
    """Server-sent events: `data:` lines up to a blank line form one event; `[DONE]` ends."""
    data: list[bytes] = []
    while True:
        if call.stopped():
            raise Cancelled()
        if deadline and call.deadline is not None and time.perf_counter() >= call.deadline:
            acc.timed_out = True  # --time-limit: the caller steers this sample to an answer
            return
        line = resp.readline(MAX_LINE_BYTES + 1)
        acc.bytes += len(line)
        if acc.bytes > MAX_COMPLETION_BYTES or len(line) > MAX_LINE_BYTES:
            raise EngineError("the server sent over 4 MB for one completion; lower --max-tokens")
        if not line or line in (b"\n", b"\r\n"):
            if data:
                payload = b"\n".join(data).strip()
                data = []
                if payload == b"[DONE]":
                    return
                acc.chunk(parse_json(payload))
            if not line:
                return
            continue
        if line.startswith(b"data:"):
            data.append(line[5:].rstrip(b"\r\n").removeprefix(b" "))


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise EngineError("the server sent data that is not JSON; is it OpenAI-compatible?") from None


def read_limited(resp: http.client.HTTPResponse, limit: int) -> bytes:
    body = resp.read(limit + 1)
    if len(body) > limit:
        raise EngineError("the server sent over 4 MB for one completion; lower --max-tokens")
    return body


def error_message(raw: bytes) -> str:
    """The message of an error body ({"error": {"message"}}, {"detail"}, or text), one line."""
    text = raw.decode("utf-8", "replace")
    try:
        obj = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:200]
    if isinstance(obj, dict):
        err = obj.get("error", obj.get("detail", obj.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            text = err if isinstance(err, str) else json.dumps(err)
    return " ".join(str(text).split())[:200]


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (a number or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def as_int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and value >= 0 else default


def join_threads(threads: list[threading.Thread], seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
