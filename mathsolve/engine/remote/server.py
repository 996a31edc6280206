"""Engine: an OpenAI-compatible server (vLLM, llama.cpp's server, llama-cpp-python's).

Satisfies protocol.EngineProtocol as the local Engine does, so solve, voting, eval and MCP
do not know which one they drive. The server applies the model's chat template to the
training-format messages; we stream `/v1/chat/completions` (SSE) over transport.Http.
Responses are untrusted: lines and whole completions have size limits, JSON is only parsed.

A request that fails (connection error, 408/429/5xx, a stream cut short) is retried from
scratch with capped exponential backoff and jitter, honouring Retry-After. Text of a failed
attempt was already shown live; the retry streams the sample again after a one-line note
(duplicated live text, never in the result: only the last attempt's text is recorded).
The API key travels only in the Authorization header: no message, repr or result holds it.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from mathsolve.config import SYSTEM_PROMPT, SamplingConfig
from mathsolve.engine.protocol import (
    BudgetHit,
    Completion,
    FinishReason,
    GenerationInterrupted,
    Job,
    OnDone,
    StopWhen,
    TextEvent,
    Wanted,
)
from mathsolve.engine.remote import chat
from mathsolve.engine.remote.chat import ChatPrompt, normalise_url
from mathsolve.engine.remote.jobs import run_jobs
from mathsolve.engine.remote.sse import (
    MAX_COMPLETION_BYTES,
    Accumulator,
    Call,
    Cancelled,
    Rejected,
    Retryable,
    join_threads,
    parse_json,
    read_limited,
    read_sse,
)
from mathsolve.engine.remote.transport import Http
from mathsolve.errors import EngineError, InputError

__all__ = ["ChatPrompt", "ServerEngine", "normalise_url"]

ENV_MODEL = "MATHSOLVE_SERVER_MODEL"

Warn = Callable[[str], None]
OnEvent = Callable[[TextEvent], None]


class ServerEngine:
    """Generates through an OpenAI-compatible chat completions endpoint."""

    default_eval_concurrency = 8  # problems eval keeps in flight when --concurrency is not given
    max_tries = 5
    backoff_base = 0.5  # seconds before the first retry (then doubled, capped, jittered)
    backoff_cap = 8.0
    retry_after_cap = 60.0

    def __init__(self, url: str, *, api_key: str | None = None, model_name: str = "",
                 concurrency: int | None = None, warn: Warn | None = None,
                 timeout: float = 600.0, load_seconds: float = 0.0) -> None:
        self.http = Http(url, api_key, timeout)
        self.url = self.http.url
        self.model_name = model_name
        self.concurrency = concurrency
        self.load_seconds = load_seconds
        self._warn = warn or (lambda message: None)
        self._slots = threading.BoundedSemaphore(concurrency) if concurrency else None
        self._calls: set[Call] = set()  # the generate calls running now (cancel stops them)
        self._dropped: set[str] = set()  # optional fields this server refused
        self.budget_field: str | None = None  # the server's own reasoning budget (chat.py)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ServerEngine({self.url!r}, model={self.model_name!r})"

    # ---- connecting ----------------------------------------------------------------------

    @classmethod
    def connect(cls, url: str, *, api_key: str | None = None, concurrency: int | None = None,
                warn: Warn | None = None, timeout: float = 600.0,
                model: str | None = None) -> ServerEngine:
        """Check the server once (GET /v1/models) and pick the model to ask for."""
        start = time.perf_counter()
        engine = cls(url, api_key=api_key, concurrency=concurrency, warn=warn,
                     timeout=min(timeout, 30.0))
        try:
            status, body = engine.http.get("/v1/models")
        except (OSError, http.client.HTTPException) as exc:
            raise EngineError(f"cannot reach the server at {engine.url}: "
                              f"{engine.http.describe(exc)}; is it running?") from None
        if status in (401, 403):
            raise EngineError(f"the server at {engine.url} refused the API key (HTTP {status}); "
                              "check --api-key or MATHSOLVE_API_KEY")
        if status != 200:
            raise EngineError(f"the server at {engine.url} answered HTTP {status} to /v1/models; "
                              "is it an OpenAI-compatible server (vLLM, llama.cpp)?")
        ids = chat.model_ids(body, engine.url)
        name = model or os.environ.get(ENV_MODEL) or (ids[0] if ids else "")
        if not name:
            raise EngineError(f"the server at {engine.url} lists no model; "
                              f"name the served model in {ENV_MODEL}")
        if ids and name not in ids and warn:
            warn(f"the server lists {', '.join(ids[:5])[:200]}, not {name}; asking for {name} anyway")
        engine.model_name = name
        engine.budget_field = engine._budget_field()
        engine.http.timeout = timeout
        engine.load_seconds = time.perf_counter() - start
        return engine

    def _budget_field(self) -> str | None:
        try:
            status, body = self.http.get("/props")  # llama.cpp's server; others answer 404
            return chat.server_budget_field(json.loads(body)) if status == 200 else None
        except (OSError, http.client.HTTPException, ValueError):
            return None

    def eval_workers(self, samples: int) -> int:
        """How many problems eval should solve at once: enough to fill --concurrency requests
        (each problem sends its K samples together), else default_eval_concurrency problems."""
        if self.concurrency:
            return max(1, math.ceil(self.concurrency / max(1, samples)))
        return self.default_eval_concurrency

    def cancel(self) -> None:
        """From any thread: stop every request in flight; each generate call running now raises
        GenerationInterrupted. Calls made after it run as usual."""
        with self._lock:
            calls = list(self._calls)
        for call in calls:
            call.stop()

    def close(self) -> None:
        """Nothing to free: connections live for one request."""

    def __enter__(self) -> ServerEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- text ----------------------------------------------------------------------------

    def render(self, problem: str, think: bool = True) -> ChatPrompt:
        """The training format as chat messages; the server applies the model's template."""
        if not problem.strip():
            raise InputError("the prompt is empty; give a problem to solve")
        return ChatPrompt((("system", SYSTEM_PROMPT), ("user", problem)), think)

    # ---- generation ----------------------------------------------------------------------

    def generate(self, prompt: ChatPrompt, sampling: SamplingConfig, *,
                 on_event: OnEvent | None = None) -> Completion:
        return self.generate_many(prompt, [sampling], on_event=on_event)[0]

    def generate_many(self, prompt: ChatPrompt, samplings: list[SamplingConfig], *,
                      on_event: OnEvent | None = None,
                      stop_when: Callable[[list[Completion]], bool] | None = None,
                      wanted: Callable[[list[Completion]], int] | None = None,
                      ) -> list[Completion]:
        """K requests at once (one thread each, at most `concurrency` in flight engine-wide).
        Events and notes are delivered on the calling thread, so renderers need no locks.
        `stop_when(finished)` as in Engine.generate_many: True ends the samples still running
        (finish_reason "cancelled"). `wanted` (the vote's schedule) is not used: a server
        decodes its requests in a batch, where starting them all at once costs little."""
        if not isinstance(prompt, ChatPrompt):
            raise EngineError("ServerEngine.generate needs the prompt from ServerEngine.render")
        if not samplings:
            raise EngineError("no samples requested; use --samples 1 or more")
        for s in samplings:
            if s.max_tokens < 1:
                raise EngineError(f"max_tokens must be at least 1, got {s.max_tokens}")
        limit = samplings[0].time_limit
        call = Call(len(samplings), time.perf_counter() + limit if limit else None)
        with self._lock:
            self._calls.add(call)
        try:
            return self._gather(prompt, samplings, call, on_event, stop_when)
        finally:
            with self._lock:
                self._calls.discard(call)

    def job(self, prompt: ChatPrompt, samplings: list[SamplingConfig], *, on_event: OnEvent | None = None,
            stop_when: StopWhen | None = None, wanted: Wanted | None = None, tag: object = None) -> Job:
        """A problem's samples for run(): the rendered prompt and how each sample is drawn."""
        if not isinstance(prompt, ChatPrompt):
            raise EngineError("ServerEngine.job needs the prompt from ServerEngine.render")
        return Job([], list(samplings), False, on_event, stop_when, tag, wanted=wanted, prompt=prompt)

    def run(self, jobs: list[Job], on_done: OnDone | None = None, *, parallel: int | None = None) -> None:
        """Several problems at once (jobs.run_jobs: eval_workers of them, enough to fill
        --concurrency), each a generate_many call; on_done(job) on this thread as each ends.
        A problem the server fails is that job's `error`, and the rest go on. `parallel` is
        the local engine's (sequences in one batch) and means nothing here."""
        run_jobs(self, jobs, on_done, self.eval_workers(max((len(j.samplings) for j in jobs), default=1)))

    def _gather(self, prompt: ChatPrompt, samplings: list[SamplingConfig], call: Call,
                on_event: OnEvent | None, stop_when: Callable[[list[Completion]], bool] | None,
                ) -> list[Completion]:
        """generate_many's requests, a thread each; their events, notes and results read here."""
        threads = [threading.Thread(target=self._worker, args=(prompt, s, i, call), daemon=True,
                                    name=f"mathsolve-server-{i}") for i, s in enumerate(samplings)]
        for t in threads:
            t.start()
        done: dict[int, Completion] = {}
        error: EngineError | None = None
        cancelled = decided = False
        try:
            while len(done) + call.ended < len(samplings):
                try:
                    item = call.inbox.get(timeout=0.25)
                except queue.Empty:
                    continue
                kind, payload = item
                if kind == "event":
                    if on_event is not None:
                        on_event(payload)
                elif kind == "note":
                    self._warn(payload)
                elif kind == "done":
                    done[payload.sample] = payload
                    if (stop_when is not None and not decided
                            and stop_when([done[i] for i in sorted(done)])):
                        decided = True
                        call.stop()  # the vote is decided: end the samples still running
                elif kind == "error":
                    call.ended += 1
                    if error is None and not decided:
                        error = payload
                        call.stop()  # the problem fails anyway: free the server
                else:  # "cancelled"
                    call.ended += 1
                    cancelled = cancelled or (error is None and not decided)
        except KeyboardInterrupt:
            call.stop()
            join_threads(threads)
            raise GenerationInterrupted(self._partial(samplings, done, call)) from None
        if decided:
            join_threads(threads)  # the stopped workers give their slots back before the next call
            return self._partial(samplings, done, call, reason="cancelled")
        if error is not None:
            raise error
        if cancelled:
            raise GenerationInterrupted(self._partial(samplings, done, call))
        return [done[i] for i in range(len(samplings))]

    def _partial(self, samplings: list[SamplingConfig], done: dict[int, Completion],
                 call: Call, reason: FinishReason = "interrupted") -> list[Completion]:
        out = []
        for i, s in enumerate(samplings):
            if i in done:
                out.append(done[i])
            elif i in call.live:
                out.append(call.live[i].completion(reason))
            else:
                out.append(Completion(i, s.seed, "", reason, 0, 0, 0.0, 0.0))
        return out

    def _worker(self, prompt: ChatPrompt, sampling: SamplingConfig, sample: int,
                call: Call) -> None:
        try:
            if self._slots is not None:
                while not self._slots.acquire(timeout=0.25):
                    if call.stopped():
                        raise Cancelled()
            try:
                result = self._sample(prompt, sampling, sample, call)
            finally:
                if self._slots is not None:
                    self._slots.release()
            call.inbox.put(("done", result))
        except Cancelled:
            call.inbox.put(("cancelled", sample))
        except EngineError as exc:
            call.inbox.put(("error", exc))
        except Exception as exc:  # noqa: BLE001 - a worker must always report back
            call.inbox.put(("error", EngineError(f"talking to the server failed: {self.http.describe(exc)}")))

    def _sample(self, prompt: ChatPrompt, sampling: SamplingConfig, sample: int,
                call: Call) -> Completion:
        """One sample; a thinking budget or a time limit as chat.budgeted keeps them."""
        def request(body: dict[str, Any], path: str, deadline: bool) -> Completion:
            return self._request(body, sample, sampling.seed, call, path=path, deadline=deadline)

        completion, ignored = chat.budgeted(request, lambda event: call.inbox.put(("event", event)),
                                            self.model_name, prompt, sampling, sample, self.budget_field)
        if ignored and self.budget_field:
            self.budget_field = None  # it did not steer: keep budgets client side from now on
            call.inbox.put(("note", f"the server at {self.url} did not apply its reasoning budget; "
                                    "budgets are kept client side"))
        return completion

    def _request(self, body: dict[str, Any], sample: int, seed: int, call: Call, *,
                 path: str = "/v1/chat/completions", in_think: bool = False,
                 deadline: bool = True) -> Completion:
        """One request, retried from scratch on failures worth retrying."""
        tries = 0
        refused: set[str] = set()
        while True:
            if call.stopped():
                raise Cancelled()
            try:
                return self._attempt(self._refit(body), sample, seed, call, path=path,
                                     in_think=in_think, deadline=deadline)
            except Rejected as rejected:
                if rejected.field in refused:
                    raise EngineError(f"the server rejected the request's {rejected.field}") from None
                refused.add(rejected.field)
                with self._lock:
                    first = rejected.field not in self._dropped
                    self._dropped.add(rejected.field)
                if first:
                    call.note(f"the server does not take {rejected.field}; sending without it")
            except Retryable as exc:
                tries += 1
                if tries >= self.max_tries:
                    raise EngineError(f"the server at {self.url} failed {tries} times: {exc}; "
                                      "is it overloaded or down? rerun to retry") from None
                delay = self._delay(tries, exc.retry_after)
                call.note(f"sample {sample + 1}: {exc}; retrying in {delay:.1f} s "
                          f"(try {tries + 1} of {self.max_tries})")
                if call.wait(delay):
                    raise Cancelled() from None

    def _delay(self, tries: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(0.0, retry_after), self.retry_after_cap)
        return min(self.backoff_cap, self.backoff_base * 2.0 ** (tries - 1)) * random.uniform(0.5, 1.0)

    def _refit(self, body: dict[str, Any]) -> bytes:
        """The request as bytes, without the optional fields this server refused."""
        with self._lock:
            body = {k: v for k, v in body.items() if k not in self._dropped}
        return json.dumps(body).encode("utf-8")

    def _attempt(self, body: bytes, sample: int, seed: int, call: Call, *,
                 path: str = "/v1/chat/completions", in_think: bool = False,
                 deadline: bool = True) -> Completion:
        start = time.perf_counter()
        conn = self.http.connection()
        call.watch(conn)
        acc = Accumulator(sample, seed, start, call, in_think=in_think)
        try:
            conn.request("POST", self.http.prefix + path, body=body, headers=self.http.headers(stream=True))
            resp = conn.getresponse()
            if resp.status != 200:
                self.http.fail(resp, body)
            call.live[sample] = acc
            if "text/event-stream" in (resp.getheader("Content-Type") or ""):
                read_sse(resp, acc, call, deadline=deadline)
            else:
                acc.whole(parse_json(read_limited(resp, MAX_COMPLETION_BYTES)))
        except (OSError, http.client.HTTPException) as exc:
            if call.stopped():
                raise Cancelled() from None
            raise Retryable(f"connection failed ({self.http.describe(exc)})") from None
        finally:
            call.unwatch(conn)
            conn.close()
        if call.stopped():
            raise Cancelled()
        if acc.timed_out:
            from dataclasses import replace

            return replace(acc.completion("length"), budget=BudgetHit("time_limit", None, False))
        if acc.finish is None:
            raise Retryable("the stream ended before a finish_reason (llama-cpp-python's "
                             "server needs --interrupt_requests False for concurrent requests)")
        return acc.completion()
