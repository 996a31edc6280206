"""Budgets and KV memory (issue 15) on the Qwen3-4B-shaped Q4_K_M, as a user sees them.

1. `mathsolve --json --thinking-budget 256`: the most tokens a sample generated and whether
   every sample ends in a \\boxed{ (target: <= 256 + the cue + 64, every one boxed).
2. `mathsolve --json --time-limit T`: the record's `seconds` against T (target: <= T plus one
   decode step and the answer allowance).
3. KV memory, K = 8 at --ctx 8192, 256 tokens per sample: bytes allocated and aggregate tok/s
   of the default pool against per-sample streams of --ctx cells (today's layout, forced with
   a large --kv-budget); with --kv-budget 3 GB all 8 run at once (no sample preempted);
   K = 32 at --ctx 8192 (bytes only). Targets: <= 0.25x the bytes at >= 0.95x the rate;
   K = 32 <= 8 GB.

    python bench/bench_budget.py [--model PATH] [--threads N] [--time-limit 20] [--skip-memory]

Default model: the Q4_K_M that bench/bench_convert.py leaves under scratch/bench-4b/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

from bench_decode import default_model  # noqa: E402

PROBLEM = "Write a long story about a dragon who learns arithmetic."


def cli_record(model: Path, threads: int | None, *args: str) -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "mathsolve", "--json", "--model", str(model), "--seed", "3", "--no-check",
           *(["--threads", str(threads)] if threads else []), *args, PROBLEM]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 3):
        sys.exit(proc.stderr[-2000:])
    return json.loads(proc.stdout), wall


def budgets(model: Path, threads: int | None, limit: float) -> None:
    from mathsolve.config import ANSWER_ALLOWANCE, EngineConfig
    from mathsolve.engine.llama import Engine

    rec, _ = cli_record(model, threads, "--samples", "2", "--thinking-budget", "256")
    most = max(s["completion_tokens"] for s in rec["samples"])
    boxed = all(s["budget"] and s["budget"]["at"] == 256 for s in rec["samples"])
    with Engine.load(EngineConfig(str(model), n_ctx=512, n_threads=threads)) as engine:
        cue = len(engine.cue_tokens(False, False))
    bound = 256 + cue + ANSWER_ALLOWANCE
    print(f"--thinking-budget 256, 2 samples: most tokens in a sample {most}, bound 256 + cue {cue} + "
          f"{ANSWER_ALLOWANCE} = {bound} ({'met' if most <= bound else 'missed'}); steered at 256: {boxed}; "
          f"the answer opens a box: {(chr(92) + 'boxed{') in rec['completion']}")
    rec, wall = cli_record(model, threads, "--time-limit", str(limit))
    step = limit / max(1, rec["budget"]["at"])  # a decode step's time, from the steps before the limit
    bound = limit + step + ANSWER_ALLOWANCE * step
    print(f"--time-limit {limit:g}: record seconds {rec['seconds']:.1f}; target: the limit + one decode step "
          f"+ the {ANSWER_ALLOWANCE}-token allowance at {step:.2f} s/token = {bound:.1f} s "
          f"({'met' if rec['seconds'] <= bound else 'missed'}); budget {rec['budget']}; "
          f"tokens after the limit {rec['completion_tokens'] - rec['budget']['at']}; process wall {wall:.1f} s")


def memory(model: Path, threads: int | None) -> None:
    from mathsolve.config import EngineConfig, SamplingConfig
    from mathsolve.engine.llama import Engine

    def run(k: int, budget: float | None, tokens: int = 256) -> tuple[int, float, int, str]:
        cfg = EngineConfig(str(model), n_ctx=8192, n_threads=threads, kv_budget=int(budget * 1e9) if budget else None)
        with Engine.load(cfg) as engine:
            prompt = engine.render(PROBLEM)
            n_prompt = len(engine.tokenize(prompt))
            samplings = [SamplingConfig(seed=10 + i, max_tokens=7680, thinking_budget=tokens)
                         for i in range(k)]
            # the budget ends every sample near `tokens`: samples use 256 of their 8192 cells
            start = time.perf_counter()
            out = engine.generate_many(prompt, samplings)
            wall = time.perf_counter() - start - out[0].prompt_seconds
            rate = sum(c.completion_tokens for c in out) / wall
            restored = engine.last_prefill_tokens - (n_prompt - 1)
            return engine.kv_bytes, rate, restored, engine.kv_description()

    streams = run(8, 20.0)
    pool = run(8, None)
    three = run(8, 3.0)
    print(f"K=8 streams of 8192 cells: {streams[0] / 1e9:.2f} GB, {streams[1]:.1f} tok/s  [{streams[3]}]")
    print(f"K=8 default pool:          {pool[0] / 1e9:.2f} GB, {pool[1]:.1f} tok/s  [{pool[3]}]  "
          f"bytes {pool[0] / streams[0]:.2f}x (target <= 0.25x), rate {pool[1] / streams[1]:.2f}x (target >= 0.95x)")
    print(f"K=8 --kv-budget 3 GB:      {three[0] / 1e9:.2f} GB, {three[1]:.1f} tok/s, tokens prefilled again "
          f"after preemption: {three[2]} (0: all 8 ran at once)")
    cfg = EngineConfig(str(model), n_ctx=8192, n_threads=threads)
    with Engine.load(cfg) as engine:
        pool32 = engine.slots.kv_plan(32, 8192)
        cell = engine.slots.kv_bytes_per_cell()
    print(f"K=32 at --ctx 8192: pool of {pool32} cells = {(pool32 or 0) * cell / 1e9:.2f} GB "
          f"(streams would take {32 * 8192 * cell / 1e9:.1f} GB; target <= 8 GB)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--time-limit", type=float, default=20.0)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-budgets", action="store_true")
    ap.add_argument("--quick", action="store_true", help="SmolLM2, budgets only, a 1 s limit (smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.time_limit, args.skip_memory = 1.0, True
    model = args.model or default_model(args.quick)
    print(f"model: {model}")
    if not args.skip_budgets:
        budgets(model, args.threads, args.time_limit)
    if not args.skip_memory:
        memory(model, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
