"""Engine: what a server is asked: chat messages, its URL, and a budget's continuation.

A budget on a server is kept client side (budgeted, below): at the budget, the
text so far goes back as a raw /v1/completions prompt in the training format (the Qwen3
chat template's rendering, see DESIGN) with the cue that leads to an answer appended.
A server that advertises its own reasoning budget (llama.cpp's: GET /props lists
`reasoning_format` among its generation settings, and chat requests take
`reasoning_budget_tokens` and `reasoning_budget_message`) is also sent the budget, with
room for its message and the answer: it steers the sample itself, on its own KV cells, and
the client side continuation is left for a sample that still ends at the length cap.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from mathsolve.config import ANSWER_ALLOWANCE, BUDGET_THINK_CUE, SamplingConfig, budget_cue
from mathsolve.engine.protocol import BudgetHit, Completion, TextEvent
from mathsolve.engine.stream import ThinkSplitter, think_open_at_end
from mathsolve.errors import EngineError, UsageError


@dataclass(frozen=True)
class ChatPrompt:
    """What render() gives generate(): the messages plus the think flag."""

    messages: tuple[tuple[str, str], ...]
    think: bool = True

    def as_json(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]


def normalise_url(url: str) -> tuple[str, str, str, int, str]:
    """(display url, scheme, host, port, path prefix); a trailing /v1 is dropped."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.username or parts.password:
        raise UsageError("put the API key in --api-key or MATHSOLVE_API_KEY, not in the --server URL")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise UsageError(f"--server wants a URL such as http://127.0.0.1:8000, got {url.strip()[:200]!r}")
    port = port or (443 if parts.scheme == "https" else 80)
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[:-3]
    return f"{parts.scheme}://{parts.netloc}{path}", parts.scheme, parts.hostname, port, path


def request_body(model: str, prompt: ChatPrompt, s: SamplingConfig, max_tokens: int | None = None, *,
                 raw: str | None = None) -> dict[str, Any]:
    """Sampling as the local engine does it: top_k, min_p (vLLM and llama.cpp take them
    as extra fields) and repeat_penalty 1 (llama-cpp-python's server defaults to 1.1).
    `raw`: a /v1/completions request on that text instead of the chat messages."""
    body: dict[str, Any] = {
        "model": model, "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": s.max_tokens if max_tokens is None else max_tokens,
        "temperature": s.temperature, "top_p": s.top_p, "top_k": s.top_k, "min_p": s.min_p,
        "seed": s.seed, "repeat_penalty": 1.0,
    }
    if raw is not None:
        body["prompt"] = raw
    else:
        body["messages"] = prompt.as_json()
        if not prompt.think:
            body["chat_template_kwargs"] = {"enable_thinking": False}
    return body


Request = Callable[[dict[str, Any], str, bool], Completion]  # (body, path, deadline) -> completion
CHAT_PATH = "/v1/chat/completions"

SERVER_BUDGET_FIELD = "reasoning_budget_tokens"
SERVER_BUDGET_MESSAGE = BUDGET_THINK_CUE[:BUDGET_THINK_CUE.index("</think>")]  # llama.cpp adds </think>
SERVER_BUDGET_ROOM = 40  # tokens for that message and the end tag (23 with Qwen3's tokenizer)


def server_budget_field(props: object) -> str | None:
    """The field a server reads for its own reasoning budget, from its GET /props answer."""
    settings = props.get("default_generation_settings") if isinstance(props, dict) else None
    params = settings.get("params") if isinstance(settings, dict) else None
    return SERVER_BUDGET_FIELD if isinstance(params, dict) and "reasoning_format" in params else None


def with_server_budget(body: dict[str, Any], field: str, budget: int) -> dict[str, Any]:
    """`body` asking the server to steer at `budget` tokens of reasoning itself, with room
    for its message, the end tag and config.ANSWER_ALLOWANCE tokens of answer."""
    return {**body, field: budget, "reasoning_budget_message": SERVER_BUDGET_MESSAGE,
            "max_tokens": min(body["max_tokens"], budget + SERVER_BUDGET_ROOM + ANSWER_ALLOWANCE)}


def server_steered(first: Completion, budget: int) -> Completion:
    """`first` marked as steered at `budget` when the server's budget message is in its text."""
    if SERVER_BUDGET_MESSAGE.strip() not in first.text:
        return first
    return replace(first, budget=BudgetHit("thinking_budget", budget, True))


def server_ignored(first: Completion) -> bool:
    """A first request sent with the server's budget that ended at the length cap with no
    closed think block: the server did not apply it (it ignores the field, or the model's
    text never opened the block its budget counts)."""
    return first.budget is None and first.finish_reason == "length" and "</think>" not in first.text


def model_ids(body: bytes, url: str) -> list[str]:
    """The model ids in a GET /v1/models answer."""
    try:
        data = json.loads(body).get("data") or []
        return [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
    except (ValueError, AttributeError, TypeError):
        raise EngineError(f"the server at {url} sent no model list at /v1/models; "
                          "is it an OpenAI-compatible server?") from None


def continuation(prompt: ChatPrompt, text: str) -> tuple[str, str, bool]:
    """(raw prompt, cue, in_think) to continue `text` at its budget."""
    in_think = think_open_at_end(text)
    cue = budget_cue(in_think, at_start=not text)
    head = "".join(f"<|im_start|>{role}\n{content}<|im_end|>\n" for role, content in prompt.messages)
    head += "<|im_start|>assistant\n" + ("" if prompt.think else "<think>\n\n</think>\n\n")
    return head + text + cue, cue, in_think


def cue_events(sample: int, cue: str, in_think: bool) -> list[TextEvent]:
    """The cue as the live display shows it (reasoning, the </think> tag, answer)."""
    splitter = ThinkSplitter(in_think=in_think)
    return [TextEvent(sample, piece, kind) for kind, piece in splitter.feed(cue) + splitter.flush()]


def joined(first: Completion, rest: Completion, cue: str, in_think: bool) -> Completion:
    """One completion of the capped first request, the cue and the continuation; the cue's
    tokens are not counted (a server does not say how many it made of them). A first request
    the server steered itself keeps where it did."""
    hit = first.budget
    if hit is None or hit.at is None:  # steered here, at the first request's end
        hit = BudgetHit(hit.hit if hit else "thinking_budget", first.completion_tokens, in_think)
    return replace(rest, text=first.text + cue + rest.text,
                   prompt_tokens=first.prompt_tokens or rest.prompt_tokens,
                   completion_tokens=first.completion_tokens + rest.completion_tokens,
                   seconds=first.seconds + rest.seconds, prompt_seconds=first.prompt_seconds, budget=hit)


def budgeted(request: Request, emit: Callable[[TextEvent], None], model: str, prompt: ChatPrompt,
             s: SamplingConfig, sample: int, field: str | None) -> tuple[Completion, bool]:
    """One sample with a thinking budget or a time limit, client side: a first request capped
    at the budget (or left at the deadline), then /v1/completions on the training-format text
    so far plus the cue (config.budget_cue), with config.ANSWER_ALLOWANCE tokens for the
    answer (any OpenAI-compatible server takes a raw prompt there). With the server's own
    budget `field`, the server steers first and the continuation is the fallback. Returns the
    completion and whether the server ignored `field`."""
    budget = s.thinking_budget
    capped = budget is not None and budget < s.max_tokens
    field = field if capped and budget and prompt.think else None
    body = request_body(model, prompt, s, budget if capped and not field else None)
    if budget == 0:
        first = Completion(sample, s.seed, "", "length", 0, 0, 0.0, 0.0)
    elif field and budget:
        first = server_steered(request(with_server_budget(body, field, budget), CHAT_PATH, True), budget)
    else:
        first = request(body, CHAT_PATH, True)
    ignored = field is not None and server_ignored(first)
    timed_out = first.budget is not None and first.budget.hit == "time_limit"
    if first.finish_reason != "length" or not (timed_out or capped):
        return first, ignored
    raw, cue, in_think = continuation(prompt, first.text)
    allowance = max(1, min(ANSWER_ALLOWANCE, s.max_tokens - first.completion_tokens))
    for event in cue_events(sample, cue, in_think):
        emit(event)
    rest = request(request_body(model, prompt, s, allowance, raw=raw), "/v1/completions", False)
    return joined(first, rest, cue, in_think), ignored
