"""Engine: what a server is asked: chat messages, its URL, and a budget's continuation.

A budget on a server is kept client side (server.ServerEngine._sample): at the budget, the
text so far goes back as a raw /v1/completions prompt in the training format (the Qwen3
chat template's rendering, see DESIGN) with the cue that leads to an answer appended.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, replace
from typing import Any

from mathsolve.config import SamplingConfig, budget_cue
from mathsolve.engine.decode import Completion, TextEvent
from mathsolve.engine.stream import ThinkSplitter, think_open_at_end
from mathsolve.errors import UsageError


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
    tokens are not counted (a server does not say how many it made of them)."""
    return replace(rest, text=first.text + cue + rest.text,
                   prompt_tokens=first.prompt_tokens or rest.prompt_tokens,
                   completion_tokens=first.completion_tokens + rest.completion_tokens,
                   seconds=first.seconds + rest.seconds, prompt_seconds=first.prompt_seconds,
                   budget=first.budget or "thinking_budget", budget_at=first.completion_tokens,
                   budget_in_think=in_think)
