"""Engine: the interfaces the solve flow drives, which both engines satisfy.

`EngineProtocol` is what solve, vote and eval need of any engine: llama.Engine (local
llama.cpp, prompts are strings) and server.ServerEngine (an OpenAI-compatible server, prompts
are chat messages) both satisfy it. Two narrower capabilities sit beside it instead of
`hasattr` probing: `InFlightEngine` (the local engine keeps several problems' samples in one
batch) and `RequestEngine` (the server engine solves several problems from threads, and can
cancel its requests). This module imports neither engine, so neither depends on the other.
"""

from __future__ import annotations

from typing import Protocol, TypeVar, runtime_checkable

from mathsolve.config import SamplingConfig
from mathsolve.engine.batch import OnDone
from mathsolve.engine.decode import Completion, Job, OnEvent, StopWhen

PromptT = TypeVar("PromptT")


@runtime_checkable
class EngineProtocol(Protocol[PromptT]):
    """Render a problem in the training format, then draw one or K samples of it."""

    @property
    def load_seconds(self) -> float:
        """Seconds the model took to load (local) or the server to answer its model list."""
        ...

    def render(self, problem: str, think: bool = True) -> PromptT: ...

    def generate(self, prompt: PromptT, sampling: SamplingConfig, *,
                 on_event: OnEvent | None = None) -> Completion: ...

    def generate_many(self, prompt: PromptT, samplings: list[SamplingConfig], *,
                      on_event: OnEvent | None = None,
                      stop_when: StopWhen | None = None) -> list[Completion]: ...

    def close(self) -> None: ...


@runtime_checkable
class InFlightEngine(EngineProtocol[str], Protocol):
    """An engine that decodes several prompts' samples in one batch (problems in flight)."""

    def prompt_tokens(self, prompt: str) -> list[int]: ...

    def run(self, jobs: list[Job], on_done: OnDone | None = None, *,
            parallel: int | None = None) -> None: ...


@runtime_checkable
class RequestEngine(Protocol):
    """An engine whose generate calls may run in several threads at once (one request each)."""

    def eval_workers(self, samples: int) -> int:
        """How many problems to solve at once so the requests in flight fill the server."""
        ...

    def cancel(self) -> None:
        """Stop every request in flight: generate calls raise GenerationInterrupted."""
        ...

    def resume(self) -> None:
        """Accept requests again after cancel(), once the cancelled calls have returned."""
        ...
