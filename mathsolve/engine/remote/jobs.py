"""Engine: several problems on a server at once, each from a thread of its own (ServerEngine.run).

A server batches the requests it gets, so problems in flight are requests in flight: a pool of
`workers` threads, each running one problem's generate_many, results handed to `on_done` on the
calling thread as they finish. Ctrl-C, or an exception from on_done, cancels the requests in
flight (engine.cancel) and waits for the threads before it goes on.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from mathsolve.engine.protocol import GenerationInterrupted, Job, OnDone
from mathsolve.errors import MathsolveError


def run_jobs(engine: Any, jobs: list[Job], on_done: OnDone | None, workers: int) -> None:  # a ServerEngine
    jobs = [j for j in jobs if j.samplings]
    workers = min(len(jobs), workers)

    def one(job: Job) -> Job:
        job.start = time.perf_counter()
        try:
            completions = engine.generate_many(job.prompt, job.samplings, on_event=job.on_event,
                                               stop_when=job.stop_when)
        except MathsolveError as exc:
            job.error = str(exc)
            completions = []
        job.done = {c.sample: c for c in completions}
        job.started = len(job.samplings)
        return job

    if workers <= 1:
        for job in jobs:
            one(job)
            if on_done is not None:
                on_done(job)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mathsolve-problem")
    pending = iter(jobs)
    running: set[Future[Job]] = {pool.submit(one, job) for job in itertools.islice(pending, workers)}
    try:
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                if on_done is not None:
                    on_done(future.result())
                nxt = next(pending, None)
                if nxt is not None:
                    running.add(pool.submit(one, nxt))
    except BaseException as exc:
        engine.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, GenerationInterrupted):
            raise GenerationInterrupted([]) from None  # as the local engine ends a Ctrl-C
        raise
    pool.shutdown(wait=True)
