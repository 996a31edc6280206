"""Engine: the per-sample side of decoding (sample state, UTF-8 and cues, sampler chains).

Ctrl-C inside llama_decode is handled here too. scheduler.py schedules the samples and
context.py drives llama.cpp; the state of each sample lives here. The data every engine hands
out (events, completions, jobs) is in engine/protocol.py, which imports no engine."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from mathsolve.config import SamplingConfig
from mathsolve.engine.protocol import (
    BudgetHit,
    Completion,
    FinishReason,
    Job,
    TextEvent,
)
from mathsolve.engine.stream import Piece, ThinkSplitter, Utf8Stream, think_open_at_end

if TYPE_CHECKING:
    from types import FrameType

class InterruptibleDecode:
    """Ctrl-C inside a long llama_decode (a prompt chunk can take seconds on a CPU).

    Python runs signal handlers only between bytecodes of the main thread, which is inside
    llama_decode. ggml calls the abort callback from that same thread between graph nodes;
    running the callback's bytecode lets our SIGINT handler set the flag, and the callback
    returning True makes llama_decode return 2. Only for prefill: per-node Python calls would
    cost a little on every decode step, which is short anyway. Main thread only.
    With ctx None it only defers Ctrl-C: while llama.cpp calls our (Python) log callback, the
    default handler's KeyboardInterrupt would be swallowed inside the ctypes callback."""

    def __init__(self, ctx: Any, standing: tuple[Any, Any] | None = None) -> None:
        self._ctx = ctx  # a llama_context pointer (ctypes), or None
        self._standing = standing  # the context's own (callback, flag buffer), put back on exit
        self._hit = False
        self._old: Callable[[int, FrameType | None], Any] | int | None = None  # SIGINT handler
        self._callback: object | None = None  # the ctypes callback, kept alive while installed

    def __enter__(self) -> InterruptibleDecode:
        import signal
        import threading

        import llama_cpp

        if threading.current_thread() is not threading.main_thread():
            return self
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # nohup: Ctrl-C stays ignored
            return self
        self._old = signal.signal(signal.SIGINT, self._on_sigint)
        flag = self._standing[1] if self._standing else None
        self._callback = llama_cpp.ggml_abort_callback(lambda _data: self._hit or bool(flag and flag.raw[0]))
        if self._ctx is not None:
            llama_cpp.llama_set_abort_callback(self._ctx, self._callback, None)
        return self

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self._hit = True

    def __exit__(self, *exc: object) -> None:
        import signal

        import llama_cpp

        if self._callback is None:
            return
        if self._ctx is not None and self._standing:
            llama_cpp.llama_set_abort_callback(self._ctx, self._standing[0], self._standing[1])
        elif self._ctx is not None:
            llama_cpp.llama_set_abort_callback(self._ctx, llama_cpp.ggml_abort_callback(0), None)
        signal.signal(signal.SIGINT, self._old)
        self._callback = None
        if self._hit and exc[0] is None:
            raise KeyboardInterrupt


class Vocabulary(Protocol):
    """What a sample needs from the model to turn tokens into text."""

    def is_stop(self, token: int) -> bool: ...

    def token_bytes(self, token: int) -> bytes: ...

    def cue_tokens(self, in_think: bool, at_start: bool, /) -> list[int]:
        """The tokens that steer a sample at its budget to an answer (see config.budget_cue)."""
        ...


class SampleState:
    """One sample being decoded: its slot, position, text and finish state.

    `chain` is llama.cpp's sampler chain for the "chain" and "graph" sampling paths (None on
    the vectorised path, which samples every row at once from `seed` and `steps`).
    """

    def __init__(self, vocab: Vocabulary, job: Job, sample: int, seq_id: int, max_tokens: int,
                 chain: object = None) -> None:
        self.vocab = vocab
        self.job = job
        self.sample = sample
        self.seq_id = seq_id
        self.sampling = job.samplings[sample]
        self.n_prompt = len(job.tokens)
        self.pos = self.n_prompt - 1  # the last prompt token is decoded in the first step
        self.next_input = job.tokens[-1]
        self.max_tokens = max(0, max_tokens)
        self.on_event = job.on_event
        self.chain = chain
        self.utf8 = Utf8Stream()
        self.splitter = ThinkSplitter(in_think=job.in_think)
        self.parts: list[str] = []  # text so far, when events stream it
        self.raw: list[bytes] | None = [] if self.on_event is None else None  # else bytes
        self.ids: list[int] = []
        self.n_generated = 0
        self.finish: FinishReason | None = None
        self.start = job.start or time.perf_counter()
        self.seconds = 0.0
        self.prompt_seconds = 0.0
        self.forced: list[int] = []  # cue tokens still to feed in place of drawn ones
        self.feeding: list[int] = []  # cue tokens in the batch being decoded
        self.budget: BudgetHit | None = None  # where it was steered to an answer
        self.ctx_limit = self.max_tokens  # what the context allows, whatever a budget says
        self.thinking_budget = self.sampling.thinking_budget
        if self.thinking_budget is not None and self.thinking_budget <= 0:
            self.steer("thinking_budget")  # a budget of 0 answers at once

    @property
    def steps(self) -> int:
        """Tokens drawn so far (the counter of the vectorised sampler's random stream)."""
        return self.n_generated

    def feed(self, room: int) -> list[int]:
        """The cue tokens to decode in this step after next_input (as many as `room` allows)."""
        if not self.forced or room <= 0:
            return []
        self.feeding, self.forced = self.forced[:room], self.forced[room:]
        return self.feeding

    def accept(self, token: int) -> None:
        """Record the cue tokens decoded in this step, then the sampled token (or the next
        cue token in its place, when the batch had no room for the cue); decide whether this
        sequence is finished or has reached its thinking budget."""
        feeding, self.feeding = self.feeding, []
        for cue in feeding:
            self._take(cue)
            if self.finish is not None:
                return
        if self.forced:
            token = self.forced.pop(0)
        elif self.vocab.is_stop(token):
            self.ids.append(token)
            self.end("stop")
            return
        self._take(token)

    def _take(self, token: int) -> None:
        self.ids.append(token)
        self.next_input = token
        self.pos += 1
        self.n_generated += 1
        if self.raw is not None:  # nobody watches: decode once, at the end (same text)
            self.raw.append(self.vocab.token_bytes(token))
        else:
            self._text(self.utf8.feed(self.vocab.token_bytes(token)))
        if (self.budget is None and self.thinking_budget is not None
                and self.n_generated >= self.thinking_budget):
            self.steer("thinking_budget")
        if self.n_generated >= self.max_tokens:
            self.end("length")

    def steer(self, reason: str) -> bool:
        """The budget is reached: feed the cue that leads to an answer, then allow
        ANSWER_ALLOWANCE tokens more. Waits (returns False) while the text ends inside a
        UTF-8 character, so the cue never splits one; called again on the next token."""
        from mathsolve.config import ANSWER_ALLOWANCE

        if self.budget is not None or self.finish is not None:
            return True
        if self._mid_character():
            return False
        text = self.text()
        in_think = think_open_at_end(("<think>" if self.job.in_think else "") + text)
        self.forced = list(self.vocab.cue_tokens(in_think, self.n_generated == 0))
        self.budget = BudgetHit(reason, self.n_generated, in_think)
        self.max_tokens = min(self.ctx_limit, self.n_generated + len(self.forced) + ANSWER_ALLOWANCE)
        return True

    def _mid_character(self) -> bool:
        if self.raw is not None:
            return incomplete_utf8(b"".join(self.raw[-4:]))
        return bool(self.utf8.pending())

    def end(self, reason: FinishReason) -> None:
        if self.raw is None:
            self._text(self.utf8.flush())
            self._emit(self.splitter.flush())
        self.finish = reason
        self.seconds = time.perf_counter() - self.start

    def _text(self, text: str) -> None:
        if text:
            self.parts.append(text)
            self._emit(self.splitter.feed(text))

    def _emit(self, pieces: list[Piece]) -> None:
        if self.on_event is not None:
            for kind, text in pieces:
                self.on_event(TextEvent(self.sample, text, kind))

    def text(self) -> str:
        if self.raw is not None:
            utf8 = Utf8Stream()
            return utf8.feed(b"".join(self.raw)) + utf8.flush()
        return "".join(self.parts)

    def completion(self, *, interrupted: bool = False) -> Completion:
        if self.finish is None:
            if self.raw is None:
                self.parts.append(self.utf8.flush())
            self.seconds = time.perf_counter() - self.start
        reason = self.finish or ("interrupted" if interrupted else "length")
        return Completion(self.sample, self.sampling.seed, self.text(), reason,
                          self.n_prompt, self.n_generated, self.seconds, self.prompt_seconds,
                          tuple(self.ids), self.budget)


def incomplete_utf8(data: bytes) -> bool:
    """True when `data` ends inside a UTF-8 character (its lead byte seen, not all the rest)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # a lead byte (or ASCII): how long is its character?
            need = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4 if byte & 0xF8 == 0xF0 else 1
            return need > back
    return False


def sampler_chain(s: SamplingConfig) -> object:  # a llama_sampler pointer (ctypes)
    """top_k -> top_p -> min_p -> temperature -> dist(seed), llama.cpp's usual order;
    temperature 0 is greedy (argmax, seed unused)."""
    import llama_cpp

    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    add = functools.partial(llama_cpp.llama_sampler_chain_add, chain)
    if s.temperature <= 0:
        add(llama_cpp.llama_sampler_init_greedy())
        return chain
    if s.top_k > 0:
        add(llama_cpp.llama_sampler_init_top_k(s.top_k))
    if s.top_p < 1.0:
        add(llama_cpp.llama_sampler_init_top_p(s.top_p, 1))
    if s.min_p > 0.0:
        add(llama_cpp.llama_sampler_init_min_p(s.min_p, 1))
    add(llama_cpp.llama_sampler_init_temp(s.temperature))
    add(llama_cpp.llama_sampler_init_dist(s.seed & 0xFFFFFFFF))
    return chain


def unstarted(sample: int, s: SamplingConfig, n_prompt: int,
               reason: FinishReason = "interrupted") -> Completion:
    return Completion(sample, s.seed, "", reason, n_prompt, 0, 0.0, 0.0)
