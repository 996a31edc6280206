"""Engine: continuous batching, the samples of one or many prompts in one llama.cpp batch.

A slot is a llama.cpp sequence with a KV stream of its own (the cache is not unified, so a
sample's attention never reads the others' cells). Each sample of a job takes a free slot:

* the slot gets the prompt's KV minus its last token: from a free slot that already holds it
  (prefix reuse: a finished sample leaves its prompt behind), by copying a live sibling's
  stream, or by a prefill of whatever the slot does not hold yet;
* the prompt's last token is the sample's first row in the next decode step, so every sample
  draws its first token from its own row, exactly as it draws all the others;
* a finished sample gives its slot back at once, trimmed to the prompt, and the next waiting
  sample (of this job, then of the next job) takes it in the same step.

Scheduling depends only on token counts, never on time, so a run repeats exactly.
"""

from __future__ import annotations

import time
from typing import Protocol

from mathsolve.config import SamplerPath
from mathsolve.engine.decode import PoolFull, SampleState, unstarted
from mathsolve.engine.protocol import Completion, GenerationInterrupted, Job, OnDone
from mathsolve.errors import EngineError


class Slots(Protocol):
    """What the scheduler asks of the engine's context (slots.SlotContext implements it)."""

    def best_slot(self, free: list[int], prefix: list[int]) -> int: ...

    def prepare_slot(self, slot: int, prompt: list[int], sibling: SampleState | None) -> float: ...

    def new_sample(self, job: Job, index: int, slot: int, path: SamplerPath) -> SampleState: ...

    def decode_rows(self, rows: list[SampleState]) -> None: ...

    def sample_rows(self, rows: list[SampleState], path: SamplerPath) -> list[int]: ...

    def release(self, seq: SampleState) -> None: ...

    def evict(self, seq: SampleState) -> None: ...

    def evict_prompt(self, seq: SampleState) -> bool: ...

    def restore(self, seq: SampleState) -> None: ...


class Scheduler:
    """Runs jobs on `slots` sequences of an engine's context; `on_done(job)` as each ends."""

    def __init__(self, context: Slots, slots: int, path: SamplerPath, on_done: OnDone | None) -> None:
        self.context = context
        self.path = path
        self.on_done = on_done
        self.free = list(range(slots))
        self.live: list[SampleState] = []
        self.queue: list[Job] = []
        self.current: Job | None = None
        self.preempted: list[SampleState] = []  # out of the pool for now, oldest first
        self.admitted = 0  # admission counter: the youngest sample has the highest order
        self.freed = False  # a sample left the pool since the last restore attempt
        self.stepped_at = 0.0  # when the last step began (--time-limit keeps a step in hand)

    # ---- the loop ----------------------------------------------------------------------------

    def run(self, jobs: list[Job]) -> None:
        self.queue = list(reversed(jobs))
        self.stepped_at = 0.0
        try:
            while True:
                self._admit()
                if not self.live:
                    if self.preempted:
                        raise EngineError("the KV pool cannot hold one sample; raise --kv-budget")
                    return
                self._step()
        except KeyboardInterrupt:
            raise GenerationInterrupted(self._abandon()) from None
        finally:
            for seq in self.live + self.preempted:
                self.context.release(seq)
            self.live = []
            self.preempted = []

    def _step(self) -> None:
        self._deadlines()
        try:
            self.context.decode_rows(self.live)
        except PoolFull:
            self._preempt()
            return
        tokens = self.context.sample_rows(self.live, self.path)
        ended = []
        for seq, token in zip(self.live, tokens):
            seq.accept(token)
            if seq.finish is not None:
                ended.append(seq)
        if ended:
            self._retire(ended)

    def _preempt(self) -> None:
        """The pool is full: the youngest running sample leaves it (its cells freed, its
        slot, tokens and sampler kept) and comes back when a sample finishes."""
        if len(self.live) == 1:  # the waiting samples' prompts go too, else nothing is left to free
            if not [s for s in self.preempted if self.context.evict_prompt(s)]:
                raise EngineError("the KV pool is full with a single sample; raise --kv-budget or lower --ctx")
            return
        youngest = max(self.live, key=lambda s: s.order)
        self.live.remove(youngest)
        self.context.evict(youngest)
        self.preempted.append(youngest)
        self.freed = False

    def _restore(self) -> bool:
        """Bring preempted samples back, oldest first, while the pool has room; True when
        none is left waiting (only then do new samples start)."""
        if not self.freed and self.live:
            return not self.preempted
        self.freed = False
        while self.preempted:
            seq = self.preempted[0]
            try:
                self.context.restore(seq)
            except PoolFull:
                return False
            self.preempted.pop(0)
            self.live.append(seq)
        return True

    def _deadlines(self) -> None:
        """--time-limit: a job's samples are steered to an answer once the next step would end
        past its deadline: the last step's time, and the cue's decode for each sample steered
        (its tokens at the job's prefill rate), are kept in hand."""
        now = time.perf_counter()
        step, self.stepped_at = (now - self.stepped_at if self.stepped_at else 0.0), now
        timed = [s for s in self.live + self.preempted if s.job.deadline is not None and s.budget is None]
        for seq in timed:
            job = seq.job
            cue = job.prompt_seconds / max(1, len(job.tokens)) * len(seq.vocab.cue_tokens(True, False)) * len(timed)
            if job.deadline is not None and now + step + cue >= job.deadline:
                seq.steer("time_limit")

    # ---- admission ---------------------------------------------------------------------------

    def _next_job(self) -> Job | None:
        job = self.current
        if job is not None and not job.cancelled and job.started < len(job.samplings):
            if job.deadline is None or time.perf_counter() < job.deadline:
                return job
            self._skip_unstarted(job)  # out of time: the samples not started never will be
            if job.finished and self.on_done is not None:
                self.on_done(job)
        while self.queue:
            job = self.queue.pop()
            if job.samplings:
                self.current = job
                return job
        return None

    def _admit(self) -> None:
        if self.preempted and not self._restore():
            return
        while self.free:
            job = self._next_job()
            if job is None:
                return
            index = job.started
            if index == 0:
                job.start = time.perf_counter()
                limit = job.samplings[0].time_limit
                job.deadline = job.start + limit if limit else None
            job.started += 1
            sibling = next((s for s in self.live if s.job is job), None)
            slot = self.context.best_slot(self.free, job.tokens[:-1])
            try:
                job.prompt_seconds += self.context.prepare_slot(slot, job.tokens, sibling)
            except PoolFull:  # no room for its prompt now: it starts when a sample leaves
                job.started -= 1
                if not self.live:
                    raise EngineError("the KV pool cannot hold the prompt; raise --kv-budget") from None
                return
            self.free.remove(slot)
            seq = self.context.new_sample(job, index, slot, self.path)
            seq.prompt_seconds = job.prompt_seconds
            seq.order = self.admitted
            self.admitted += 1
            self.live.append(seq)

    # ---- finishing ---------------------------------------------------------------------------

    def _retire(self, ended: list[SampleState]) -> None:
        jobs: list[Job] = []
        for seq in ended:
            job = seq.job
            job.done[seq.sample] = seq.completion()
            self.context.release(seq)
            self.live.remove(seq)
            self.free.append(seq.seq_id)
            self.freed = True
            if job not in jobs:
                jobs.append(job)
        self.free.sort()
        for job in jobs:
            if not job.finished and job.stop_when is not None and not job.cancelled:
                finished = [job.done[i] for i in sorted(job.done)]
                if job.stop_when(finished):
                    self._cancel(job)
            if job.finished and self.on_done is not None:
                self.on_done(job)

    def _cancel(self, job: Job) -> None:
        """The vote is decided: end the job's running samples and skip the unstarted ones."""
        job.cancelled = True
        for seq in [s for s in self.live + self.preempted if s.job is job]:
            seq.end("cancelled")
            job.done[seq.sample] = seq.completion()
            self.context.release(seq)
            if seq in self.live:
                self.live.remove(seq)
            else:
                self.preempted.remove(seq)
            self.free.append(seq.seq_id)
            self.freed = True
        self.free.sort()
        self._skip_unstarted(job)

    def _skip_unstarted(self, job: Job) -> None:
        n_prompt = len(job.tokens)
        for i in range(job.started, len(job.samplings)):
            job.done[i] = unstarted(i, job.samplings[i], n_prompt, "cancelled")
        job.started = len(job.samplings)

    def _abandon(self) -> list[Completion]:
        """Ctrl-C: the first unfinished job's samples, unfinished ones marked interrupted."""
        job = next((s.job for s in self.live + self.preempted), None) or self.current
        if job is None:
            return []
        out = dict(job.done)
        for seq in self.live + self.preempted:
            if seq.job is job:
                out[seq.sample] = seq.completion(interrupted=True)
        for i, s in enumerate(job.samplings):
            out.setdefault(i, unstarted(i, s, len(job.tokens)))
        return [out[i] for i in range(len(job.samplings))]
