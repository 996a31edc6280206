"""Budgets (issue 15) on the Qwen3-4B-shaped Q4_K_M, as a user sees them.

1. `mathsolve --json --thinking-budget 256`: the most tokens a sample generated and whether
   every sample ends in a \\boxed{ (target: <= 256 + the cue + 64, every one boxed).
2. `mathsolve --json --time-limit T`: the record's `seconds` against T (target: <= T plus one
   decode step and the answer allowance).
KV memory at the real model's lengths is measured by bench/bench_long.py (issue 24).

    python bench/bench_budget.py [--model PATH] [--threads N] [--time-limit 20]

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
    from mathsolve.engine.local.engine import Engine

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--time-limit", type=float, default=20.0)
    ap.add_argument("--skip-budgets", action="store_true")
    ap.add_argument("--quick", action="store_true", help="SmolLM2, budgets only, a 1 s limit (smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.time_limit = 1.0
    model = args.model or default_model(args.quick)
    print(f"model: {model}")
    if not args.skip_budgets:
        budgets(model, args.threads, args.time_limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
