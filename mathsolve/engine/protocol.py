"""Engine: the interfaces the solve flow drives, which both engines satisfy.

`EngineProtocol` is what solve, vote and eval need of any engine: llama.Engine (local
llama.cpp, prompts are strings) and server.ServerEngine (an OpenAI-compatible server, prompts
are chat messages) both satisfy it. Two narrower capabilities sit beside it instead of
`hasattr` probing: `InFlightEngine` (the local engine keeps several problems' samples in one
batch) and `RequestEngine` (the server engine solves several problems from threads, and can
cancel its requests). Beside them, the data both engines hand out: events, completions,
finish reasons, budget hits, the Ctrl-C exception, and the in-flight engine's jobs. This
module imports neither engine, so neither depends on the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar, runtime_checkable

from mathsolve.config import SamplingConfig
from mathsolve.engine.stream import EventKind

OnEvent = Callable[["TextEvent"], None]
StopWhen = Callable[[list["Completion"]], bool]
# The vote's schedule (solving.solve.VoteRule.wanted): how many of a job's samples should have
# started, given its finished ones. The local engine on a CPU starts no more than that; on a GPU,
# where a wider batch costs little, and on a server, all start at once.
Wanted = Callable[[list["Completion"]], int]


@dataclass(frozen=True)
class TextEvent:
    """A piece of generated text; kind is "reasoning", "answer" or "tag" (stream.EventKind)."""

    sample: int
    text: str
    kind: EventKind


# How a sample ended: ran to its end ("stop"), hit its token limit ("length"), stopped before
# its end ("interrupted", e.g. Ctrl-C), or cut off once the vote was decided ("cancelled").
# The one list of finish reasons; every finish field is typed with it.
FinishReason = Literal["stop", "length", "interrupted", "cancelled"]


@dataclass(frozen=True)
class BudgetHit:
    """Where a sample was steered to an answer: by which budget, after how many tokens, and
    whether inside an open <think> block (the `budget` of a result and of each sample)."""

    hit: str  # "thinking_budget" or "time_limit"
    at: int | None  # completion tokens generated when it was steered
    in_think: bool


@dataclass(frozen=True)
class Completion:
    """One finished (or interrupted) sample. Stop tokens are neither in text nor counted."""

    sample: int
    seed: int
    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    prompt_seconds: float
    tokens: tuple[int, ...] = ()  # the token ids drawn (local engine), stop token included
    budget: str | None = None  # "thinking_budget" or "time_limit" when the sample was steered
    budget_at: int | None = None  # completion tokens generated when it was steered
    budget_in_think: bool = False  # it was steered inside an open <think> block

    def budget_hit(self) -> BudgetHit | None:
        """Where the budget was hit, as results record it (None: it was not)."""
        if self.budget is None:
            return None
        return BudgetHit(self.budget, self.budget_at, self.budget_in_think)


class GenerationInterrupted(KeyboardInterrupt):
    """Ctrl-C during generation; carries every sample, unfinished ones marked "interrupted"."""

    def __init__(self, completions: list[Completion]) -> None:
        super().__init__("generation interrupted")
        self.completions = completions


@dataclass(eq=False)
class Job:
    """One prompt and its K samplings, as batch.Scheduler runs them; `tag` is the caller's."""

    tokens: list[int]
    samplings: list[SamplingConfig]
    in_think: bool = False
    on_event: OnEvent | None = None
    stop_when: StopWhen | None = None
    tag: object = None
    wanted: Wanted | None = None
    done: dict[int, Completion] = field(default_factory=dict)
    started: int = 0
    prompt_seconds: float = 0.0
    cancelled: bool = False
    start: float = 0.0  # when its first sample was admitted; samples' seconds count from here
    deadline: float | None = None  # perf_counter time its samples are steered (--time-limit)

    @property
    def finished(self) -> bool:
        return len(self.done) == len(self.samplings)

    def completions(self) -> list[Completion]:
        return [self.done[i] for i in range(len(self.samplings))]


OnDone = Callable[[Job], None]

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
                      stop_when: StopWhen | None = None,
                      wanted: Wanted | None = None) -> list[Completion]: ...

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
