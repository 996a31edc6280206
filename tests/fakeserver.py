"""A scripted OpenAI-compatible stand-in on 127.0.0.1, for failures a real server will not make
on demand: every other request failing (500, 429, a stream cut short), a problem that always
fails, reasoning sent as `reasoning_content` (vLLM's reasoning parser), an oversized answer,
a slow stream, llama.cpp's own reasoning budget. It records every request so tests can check
what mathsolve sent."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = "<think>\nTwo and two make four.\n</think>\n\nThe answer is \\boxed{4}."
REASONING = "Two and two make four."
CONTENT = "The answer is \\boxed{4}."
FAILURES = ("500", "429", "cut")  # the flaky mode cycles through these, one per failed request
MAX_REQUESTS = 400  # a runaway client gets 503 forever after this, never an endless test


class LocalServer:
    """The tests' one local HTTP server: `handler` served on 127.0.0.1 at a free port from a
    thread, from construction until close() (or the end of a `with` block)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.handle_error = lambda request, address: None  # a client that hung up
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self):  # noqa: ANN204 - the subclass itself
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FakeServer(LocalServer):
    """mode: "ok", "flaky" (odd-numbered POSTs fail), "fail-marked" (a problem containing
    FAIL always gets 503), "reasoning" (reasoning_content deltas), "huge" (5 MB of text),
    "slow" (a chunk every 50 ms), "strict" (HTTP 400 for a request with stream_options),
    "budget" (llama.cpp's server: GET /props lists reasoning_format, and a chat request's
    reasoning_budget_tokens ends its thinking with reasoning_budget_message + </think>;
    one chunk is one token, max_tokens is kept), "budget-ignored" (advertises it, ignores it).
    pace: seconds between chunks, so concurrent streams overlap and max_in_flight shows it."""

    def __init__(self, mode: str = "ok", *, usage: bool = True, pace: float = 0.0) -> None:
        self.mode = mode
        self.usage = usage
        self.pace = 0.05 if mode == "slow" else pace
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[dict] = []  # {"path", "headers", "body"}
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._posts = 0
        super().__init__(self._handler())

    def posts(self) -> list[dict]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    def _plan(self, body: dict) -> str:
        """What to do with one POST: "ok" or a failure kind."""
        with self._lock:
            self._posts += 1
            n = self._posts
        if n > MAX_REQUESTS:
            return "503"
        if self.mode == "flaky" and n % 2 == 1:
            kind = FAILURES[(n // 2) % len(FAILURES)]
        elif self.mode == "fail-marked" and "FAIL" in json.dumps(body.get("messages")):
            kind = "503"
        elif self.mode == "strict" and "stream_options" in body:
            kind = "400"
        else:
            return "ok"
        with self._lock:
            self.failures.append(kind)
        return kind

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 20

            def log_message(self, *args: object) -> None:
                pass

            def _record(self, body: dict | None) -> None:
                with fake._lock:
                    fake.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "body": body, "at": time.perf_counter()})

            def _json(self, status: int, obj: dict, extra: dict | None = None) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **(extra or {})}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._record(None)
                if self.path.endswith("/props"):  # llama.cpp's server; others have none
                    if fake.mode.startswith("budget"):
                        self._json(200, {"default_generation_settings": {
                            "params": {"temperature": 0.8, "reasoning_format": "none"}, "n_ctx": 4096}})
                    else:
                        self._json(404, {"error": {"message": "File Not Found"}})
                    return
                self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

            def do_POST(self) -> None:  # noqa: N802
                length = min(int(self.headers.get("Content-Length") or 0), 1 << 20)
                body = json.loads(self.rfile.read(length) or b"{}")
                self._record(body)
                plan = fake._plan(body)
                if plan == "500":
                    self._json(500, {"error": {"message": "internal error, try again"}})
                elif plan == "429":
                    self._json(429, {"error": {"message": "rate limited"}}, {"Retry-After": "0"})
                elif plan == "503":
                    self._json(503, {"error": {"message": "overloaded"}}, {"Retry-After": "0"})
                elif plan == "400":
                    self._json(400, {"error": {"message": "Unrecognized request argument "
                                                          "supplied: stream_options"}})
                else:
                    with fake._lock:
                        fake.in_flight += 1
                        fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                    self.counted = True
                    try:
                        self._stream(body, cut=plan == "cut")
                    finally:
                        self._leave()

            def _leave(self) -> None:
                """Out of in_flight once, before the stream's last bytes: a client that has read them
                may send its next request before this handler returns."""
                if getattr(self, "counted", False):
                    self.counted = False
                    with fake._lock:
                        fake.in_flight -= 1

            def _stream(self, body: dict, cut: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                if fake.mode.startswith("budget"):
                    return self._tokens(body)
                pieces = fake._pieces()
                if cut:
                    pieces = pieces[: len(pieces) // 2]
                for delta in pieces:
                    self._event({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
                    if fake.pace:
                        time.sleep(fake.pace)
                if cut:
                    self.close_connection = True
                    self._leave()
                    return  # no finish_reason, no [DONE]: the connection just ends
                self._leave()
                self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                if fake.usage:
                    self._event({"choices": [], "usage": {"prompt_tokens": 31,
                                                          "completion_tokens": 12}})
                self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True

            def _tokens(self, body: dict) -> None:
                """The budget modes: one token a chunk, finish "length" at max_tokens."""
                if "prompt" in body:  # /v1/completions: the continuation after a cue
                    tokens = ["4", "}$", "."]
                else:
                    tokens = ["<think>", "\n"] + ["step "] * 300 + ["\n</think>\n\n", "The answer is ",
                                                                      "\\boxed{4}", "."]
                    budget = body.get("reasoning_budget_tokens")
                    if fake.mode == "budget" and isinstance(budget, int) and budget >= 0:
                        tokens = (tokens[:1 + budget] + [body.get("reasoning_budget_message", ""), "</think>",
                                                         "\n\n", "The answer is ", "\\boxed{4}", "."])
                limit = body.get("max_tokens") or len(tokens)
                finish = "length" if len(tokens) > limit else "stop"
                chat = "prompt" not in body
                for token in tokens[:limit]:
                    self._event({"choices": [{"index": 0, "finish_reason": None,
                                              **({"delta": {"content": token}} if chat else {"text": token})}]})
                self._event({"choices": [{"index": 0, "finish_reason": finish,
                                          **({"delta": {}} if chat else {"text": ""})}]})
                self._event({"choices": [], "usage": {"prompt_tokens": 31,
                                                      "completion_tokens": min(limit, len(tokens))}})
                self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True

            def _event(self, obj: dict) -> None:
                self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
                self.wfile.flush()

        return Handler

    def _pieces(self) -> list[dict]:
        if self.mode == "reasoning":
            return ([{"role": "assistant"}] + [{"reasoning_content": w} for w in _chop(REASONING)]
                    + [{"content": w} for w in _chop(CONTENT)])
        if self.mode == "huge":
            return [{"content": "x" * 65536}] * 80 + [{"content": CONTENT}]
        if self.mode == "slow":
            return [{"content": c} for c in "<think>" + "thinking " * 40]
        return [{"role": "assistant"}] + [{"content": w} for w in _chop(ANSWER)]


def _chop(text: str, size: int = 3) -> list[str]:
    """Small pieces, so tags such as </think> arrive split over several chunks."""
    return [text[i:i + size] for i in range(0, len(text), size)]
