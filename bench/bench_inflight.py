"""Problems in flight (issue 9): eval-style throughput of many problems x K samples in one batch.

Solves `--problems` problems with `--samples` K each through `solve.solve_many` (what `eval`
runs), and reports the aggregate rate (generated tokens / wall time, prefills and answer
extraction included) against llama-batched-bench at the same number of sequences, and, with
`--sequential`, against solving the problems one after another (K samples each, as before).

    python bench/bench_inflight.py [--model PATH] [--problems 64] [--samples 8] [--tokens 256]
        [--parallel N] [--data FILE.jsonl] [--llama-bin DIR] [--ngl 99] [--sequential] [--quick]

Default model: the first tiny real-vocabulary Qwen3 of bench_sampling.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_sampling import batched_bench, tiny_models  # noqa: E402


def problems_from(data: Path | None, n: int):  # noqa: ANN201
    from mathsolve.solving.inputs import Problem

    if data is not None:
        rows = [json.loads(line) for line in data.read_text().splitlines() if line.strip()][:n]
        return [Problem(str(r.get("id", i)), r.get("problem") or r["question"]) for i, r in enumerate(rows)]
    return [Problem(str(i), f"Problem {i}: what is {i} times {i + 7}, minus {3 * i}?") for i in range(n)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--problems", type=int, default=64)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--parallel", type=int)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--ngl", type=int, default=0)
    ap.add_argument("--llama-bin", type=Path, default=REPO / "scratch" / "llama.cpp" / "build" / "bin")
    ap.add_argument("--sequential", action="store_true", help="also solve them one after another")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.problems, args.samples, args.tokens = 4, 2, 8
    model = args.model or tiny_models(1)[0]

    from mathsolve.config import EngineConfig, SamplingConfig
    from mathsolve.engine.local.engine import Engine
    from mathsolve.solving.loading import ModelInfo
    from mathsolve.solving.solve import SolveOptions, solve, solve_many

    problems = problems_from(args.data, args.problems)
    options = SolveOptions(samples=args.samples, check=False)
    base = SamplingConfig(seed=1, max_tokens=args.tokens)
    positions = {p.id: i for i, p in enumerate(problems)}

    def seeding(p):  # noqa: ANN001,ANN202 - eval's rule: seeds follow the position in the data
        return base.with_seed(base.seed + 1000 * positions[p.id])

    engine = Engine.load(EngineConfig(str(model), n_ctx=args.tokens + 512, gpu=args.ngl > 0,
                                      n_threads=args.threads, parallel=args.parallel))
    info = ModelInfo(str(model), "file")  # what the Results record (not printed here)
    solve_many(engine, problems[:1], seeding, options, info, lambda i, r: None)  # warm-up
    results = []
    start = time.perf_counter()
    solve_many(engine, problems, seeding, options, info, lambda i, r: results.append(r))
    wall = time.perf_counter() - start
    tokens = sum(r.completion_tokens for r in results)
    slots = len(engine.kv_sequence_lengths())
    n_prompt = round(sum(r.prompt_tokens for r in results) / len(results))
    rate = tokens / wall
    print(f"model: {model}  gpu_offload: {engine.gpu_offload}  threads: {engine.n_threads}  "
          f"sampler: {engine.choose_path([base])}")
    print(f"{len(problems)} problems x K={args.samples}, {args.tokens} tokens max: {tokens} tokens in "
          f"{wall:.1f} s = {rate:.1f} tok/s with {slots} sequences in flight")
    binary = args.llama_bin / "llama-batched-bench"
    if binary.exists():
        ref = batched_bench(binary, model, [slots], n_prompt, args.tokens, engine.n_threads, args.ngl)
        if slots in ref:
            print(f"llama-batched-bench B={slots}: {ref[slots]:.1f} tok/s   in flight / batched-bench "
                  f"= {rate / ref[slots]:.2f}x (GPU target >= 0.7x)")
    if args.sequential:
        start = time.perf_counter()
        seq_tokens = sum(solve(engine, p, seeding(p), options, info).completion_tokens for p in problems)
        seq = seq_tokens / (time.perf_counter() - start)
        print(f"one problem at a time: {seq:.1f} tok/s   in flight / sequential = {rate / seq:.2f}x")
    engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
