"""Engine: continuous batching, the samples of one or many prompts in one llama.cpp batch.

A slot is a llama.cpp sequence with a KV stream of its own (the cache is not unified, so a
sample's attention never reads the others' cells, and a sample that starts can always finish).
The decode loop, `Scheduler.run`, repeats: admit samples into free slots, decode one step of
every running sample, sample a token for each, retire the finished ones.

* admit: a sample takes a free slot, which gets the prompt's KV minus its last token: from a
  free slot that already holds it (prefix reuse: a finished sample leaves its prompt behind),
  by copying a live sibling's stream, or by a prefill of whatever the slot does not hold yet.
  The prompt's last token is the sample's first row in the next decode step, so every sample
  draws its first token from its own row, exactly as it draws all the others. On a CPU a job
  with a vote schedule (Job.wanted) starts no more samples than the schedule says; the slots it
  leaves go to the next job's samples.
* retire: a finished sample gives its slot back at once, trimmed to the prompt; the vote's stop
  rule may end the job's other samples; the next waiting sample takes the slot in the next step.

Scheduling depends only on token counts and the answers of finished samples, never on time
(--time-limit aside), so a run repeats exactly.
"""

from __future__ import annotations

import time
from typing import Protocol

from mathsolve.config import SamplerPath
from mathsolve.engine.local.samples import SampleState, unstarted
from mathsolve.engine.protocol import Completion, GenerationInterrupted, Job, OnDone


class Slots(Protocol):
    """What the scheduler asks of the engine's context (context.LlamaContext implements it)."""

    def best_slot(self, free: list[int], prefix: list[int]) -> int: ...

    def prepare_slot(self, slot: int, prompt: list[int], sibling: SampleState | None) -> float: ...

    def new_sample(self, job: Job, index: int, slot: int, path: SamplerPath) -> SampleState: ...

    def decode_rows(self, rows: list[SampleState]) -> None: ...

    def sample_rows(self, rows: list[SampleState], path: SamplerPath) -> list[int]: ...

    def release(self, seq: SampleState) -> None: ...


class Scheduler:
    """Runs jobs on `slots` sequences of an engine's context; `on_done(job)` as each ends.
    `schedule`: follow each job's vote schedule (Job.wanted); False starts every sample as
    slots allow (a GPU, where a wider batch costs little)."""

    def __init__(self, context: Slots, slots: int, path: SamplerPath, on_done: OnDone | None, *,
                 schedule: bool = True) -> None:
        self.context = context
        self.path = path
        self.on_done = on_done
        self.schedule = schedule
        self.free = list(range(slots))
        self.live: list[SampleState] = []
        self.queue: list[Job] = []  # jobs not started yet, the next one last
        self.open: list[Job] = []  # started jobs with samples not started yet, oldest first
        self.targets: dict[int, tuple[int, int]] = {}  # id(job) -> (samples finished, wanted)
        self.stepped_at = 0.0  # when the last step began (--time-limit keeps a step in hand)

    # ---- the loop ----------------------------------------------------------------------------

    def run(self, jobs: list[Job]) -> None:
        """The decode loop: admit samples into free slots (each gets its prompt's cells: kept,
        copied or prefilled), decode one step of every running sample, sample a token for
        each, retire the finished; until no sample is running or waiting."""
        self.queue = list(reversed(jobs))
        self.stepped_at = 0.0
        try:
            while True:
                self._admit()  # and prefill
                if not self.live:
                    return
                self._deadlines()
                self.context.decode_rows(self.live)
                tokens = self.context.sample_rows(self.live, self.path)
                for seq, token in zip(self.live, tokens):
                    seq.accept(token)
                ended = [seq for seq in self.live if seq.finish is not None]
                if ended:
                    self._retire(ended)
        except KeyboardInterrupt:
            raise GenerationInterrupted(self._abandon()) from None
        finally:
            for seq in self.live:
                self.context.release(seq)
            self.live = []

    def _deadlines(self) -> None:
        """--time-limit: a job's samples are steered to an answer once the next step would end
        past its deadline: the last step's time, and the cue's decode for each sample steered
        (its tokens at the job's prefill rate), are kept in hand."""
        now = time.perf_counter()
        step, self.stepped_at = (now - self.stepped_at if self.stepped_at else 0.0), now
        timed = [s for s in self.live if s.job.deadline is not None and s.budget is None]
        for seq in timed:
            job = seq.job
            cue = job.prompt_seconds / max(1, len(job.tokens)) * len(seq.vocab.cue_tokens(True, False)) * len(timed)
            if job.deadline is not None and now + step + cue >= job.deadline:
                seq.steer("time_limit")

    # ---- admission ---------------------------------------------------------------------------

    def _wanted(self, job: Job) -> int:
        """How many of the job's samples may have started: its vote schedule's answer, asked
        again only when another sample has finished; always one more than it has running."""
        if not self.schedule or job.wanted is None:
            return len(job.samplings)
        key = id(job)
        cached = self.targets.get(key)
        if cached is None or cached[0] != len(job.done):
            cached = (len(job.done), job.wanted([job.done[i] for i in sorted(job.done)]))
            self.targets[key] = cached
        if not any(s.job is job for s in self.live):
            return max(cached[1], job.started + 1)
        return cached[1]

    def _next_job(self) -> Job | None:
        """The oldest started job that may start another sample, else the next job."""
        for job in list(self.open):
            if job.cancelled or job.started >= len(job.samplings):
                self.open.remove(job)
            elif job.deadline is not None and time.perf_counter() >= job.deadline:
                self.open.remove(job)  # out of time: the samples not started never will be
                self._skip_unstarted(job)
                if job.finished and self.on_done is not None:
                    self.on_done(job)
            elif job.started < self._wanted(job):
                return job
        while self.queue:
            job = self.queue.pop()
            if job.samplings:
                self.open.append(job)
                return job
        return None

    def _admit(self) -> None:
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
            job.prompt_seconds += self.context.prepare_slot(slot, job.tokens, sibling)
            self.free.remove(slot)
            seq = self.context.new_sample(job, index, slot, self.path)
            seq.prompt_seconds = job.prompt_seconds
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
            if job not in jobs:
                jobs.append(job)
        self.free.sort()
        for job in jobs:
            if not job.finished and job.stop_when is not None and not job.cancelled:
                finished = [job.done[i] for i in sorted(job.done)]
                if job.stop_when(finished):
                    self._cancel(job)
            if job.finished and self.on_done is not None:
                self.targets.pop(id(job), None)
                self.on_done(job)

    def _cancel(self, job: Job) -> None:
        """The vote is decided: end the job's running samples and skip the unstarted ones."""
        job.cancelled = True
        for seq in [s for s in self.live if s.job is job]:
            seq.end("cancelled")
            job.done[seq.sample] = seq.completion()
            self.context.release(seq)
            self.live.remove(seq)
            self.free.append(seq.seq_id)
        self.free.sort()
        self._skip_unstarted(job)

    def _skip_unstarted(self, job: Job) -> None:
        n_prompt = len(job.tokens)
        for i in range(job.started, len(job.samplings)):
            job.done[i] = unstarted(i, job.samplings[i], n_prompt, "cancelled")
        job.started = len(job.samplings)

    def _abandon(self) -> list[Completion]:
        """Ctrl-C: the first unfinished job's samples, unfinished ones marked interrupted."""
        job = next((s.job for s in self.live), None) or (self.open[0] if self.open else None)
        if job is None:
            return []
        out = dict(job.done)
        for seq in self.live:
            if seq.job is job:
                out[seq.sample] = seq.completion(interrupted=True)
        for i, s in enumerate(job.samplings):
            out.setdefault(i, unstarted(i, s, len(job.tokens)))
        return [out[i] for i in range(len(job.samplings))]
