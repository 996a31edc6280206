"""Engine: HTTP to an OpenAI-compatible server, one connection a request (standard library only).

`Http` makes the connections and headers, reads small GET answers, turns an HTTP error into
what the engine does next (retry, drop an optional field, stop with a one-line error) and says
what went wrong without ever printing the API key.
"""

from __future__ import annotations

import http.client
import socket
import ssl

from mathsolve import __version__
from mathsolve.engine.remote.chat import normalise_url
from mathsolve.engine.remote.sse import (
    MAX_ERROR_BYTES,
    MAX_LINE_BYTES,
    Rejected,
    Retryable,
    error_message,
    retry_after,
)
from mathsolve.errors import EngineError

OPTIONAL_FIELDS = ("stream_options", "chat_template_kwargs", "repeat_penalty")


class Http:
    """The server's address, the API key (sent only in the Authorization header) and the
    timeout of each connection."""

    def __init__(self, url: str, api_key: str | None, timeout: float) -> None:
        self.url, self.scheme, self.host, self.port, self.prefix = normalise_url(url)
        self.api_key = api_key or None
        self.timeout = timeout

    def connection(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def headers(self, stream: bool = False) -> dict[str, str]:
        headers = {"User-Agent": f"mathsolve/{__version__}",
                   "Accept": "text/event-stream" if stream else "application/json"}
        if stream:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def get(self, path: str) -> tuple[int, bytes]:
        """(status, body) of GET path; a body over 1 MB is an error."""
        conn = self.connection()
        try:
            conn.request("GET", self.prefix + path, headers=self.headers())
            resp = conn.getresponse()
            body = resp.read(MAX_LINE_BYTES + 1)
            if len(body) > MAX_LINE_BYTES:
                raise EngineError(f"the server at {self.url} sent over 1 MB for {path}")
            return resp.status, body
        finally:
            conn.close()

    def fail(self, resp: http.client.HTTPResponse, body: bytes) -> None:
        """Raise what a non-200 answer to the request `body` means: Retryable (408, 429, 5xx),
        Rejected (an optional field the server does not take), else a one-line EngineError."""
        status = resp.status
        message = self.scrub(error_message(resp.read(MAX_ERROR_BYTES)))
        if status == 429 or status == 408 or status >= 500:
            raise Retryable(f"HTTP {status} {message}".strip(), retry_after(resp.getheader("Retry-After")))
        if status in (400, 422):
            for name in OPTIONAL_FIELDS:
                if name in message and name.encode() in body:
                    raise Rejected(name)
        if status in (401, 403):
            raise EngineError(f"the server refused the API key (HTTP {status}); "
                              "check --api-key or MATHSOLVE_API_KEY")
        hint = "; check the URL and the model name" if status == 404 else ""
        raise EngineError(f"the server rejected the request (HTTP {status}): {message or 'no reason given'}{hint}")

    def describe(self, exc: BaseException) -> str:
        """A failed connection in a few words."""
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused"
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return f"no answer within {self.timeout:g} s"
        if isinstance(exc, socket.gaierror):
            return f"unknown host {self.host}"
        return self.scrub(f"{type(exc).__name__}: {exc}".rstrip(": "))

    def scrub(self, text: str) -> str:
        """One line of at most 300 characters, the API key replaced."""
        text = " ".join(text.split())[:300]
        return text.replace(self.api_key, "[key]") if self.api_key else text
