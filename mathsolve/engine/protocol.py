"""Engine: the interface the solve flow drives, which both engines satisfy, and their data.

`EngineProtocol` is all that solve, vote, eval, the Python API and MCP know of an engine:
engine.local.engine.Engine (llama.cpp in this process, prompts are strings) and
engine.remote.server.ServerEngine (an OpenAI-compatible server, prompts are chat messages)
both satisfy it, so no caller asks which one it holds. Problems go in as Jobs (`job`, then
`run`: several in flight, each finished one handed back) or one at a time (`generate_many`);
`cancel()` is the one way to stop what runs, from any thread. Beside it, the data both
engines hand out: events, completions, finish reasons, budget hits, the Ctrl-C exception.
This module imports neither engine, so neither depends on the other.
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
    budget: BudgetHit | None = None  # where the sample was steered to an answer (None: it was not)


class GenerationInterrupted(KeyboardInterrupt):
    """Ctrl-C during generation; carries every sample, unfinished ones marked "interrupted"."""

    def __init__(self, completions: list[Completion]) -> None:
        super().__init__("generation interrupted")
        self.completions = completions


@dataclass(eq=False)
class Job:
    """One prompt and its K samplings, as an engine's run() takes them (EngineProtocol.job makes
    one); `tag` is the caller's. `tokens` is the local engine's prompt, `prompt` a server's;
    `error` says why a server could not solve it (the other jobs go on)."""

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
    prompt: object = None  # a server's rendered prompt (ChatPrompt)
    error: str | None = None

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

    def job(self, prompt: PromptT, samplings: list[SamplingConfig], *, on_event: OnEvent | None = None,
            stop_when: StopWhen | None = None, wanted: Wanted | None = None, tag: object = None) -> Job:
        """A problem's samples for run(); raises InputError for a prompt the engine cannot take."""
        ...

    def run(self, jobs: list[Job], on_done: OnDone | None = None, *, parallel: int | None = None) -> None:
        """Every job's samples, several jobs in flight; on_done(job) as each ends."""
        ...

    def cancel(self) -> None:
        """From any thread: what runs now stops, and its call raises GenerationInterrupted."""
        ...

    def close(self) -> None: ...
