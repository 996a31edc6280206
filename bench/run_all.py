"""Every benchmark in one run, their ratio lines collected in one table at the end.

    python bench/run_all.py [--quick] [--model PATH]

--quick runs each script in its smoke mode (tiny models; the smoke test uses it). Without it,
the speed figures use the Qwen3-4B-shaped Q4_K_M that bench/bench_convert.py leaves under
scratch/bench-4b/ (build it first: python bench/bench_convert.py).
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPTS = ["bench_startup.py", "bench_decode.py", "bench_parallel.py", "bench_sampling.py",
           "bench_inflight.py", "bench_grade.py", "bench_convert.py", "bench_server.py",
           "bench_record.py", "bench_budget.py", "bench_adaptive.py", "bench_mcp.py", "bench_check.py",
           "bench_vote_replay.py", "bench_long.py"]
RATIO = re.compile(r"\d\.\d+x|peak RSS|median|agreement|tok/s|wall|samples differ")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", help="GGUF for the speed benchmarks")
    ap.add_argument("--only", help="comma-separated script names")
    args = ap.parse_args()
    chosen = args.only.split(",") if args.only else SCRIPTS
    table: list[str] = []
    failed = []
    for script in chosen:
        if not (BENCH / script).exists():
            continue
        cmd = [sys.executable, str(BENCH / script)]
        if args.quick:
            cmd.append("--quick")
        if args.model and script in ("bench_decode.py", "bench_parallel.py"):
            cmd += ["--model", args.model]
        print(f"== {script}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        print(proc.stdout, end="")
        if proc.returncode:
            failed.append(script)
            print(proc.stderr[-3000:], file=sys.stderr)
        table += [f"{script:18s} {line.strip()}" for line in proc.stdout.splitlines() if RATIO.search(line)]
        print(f"   ({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"\n== summary: {platform.node()} {platform.machine()}, {time.strftime('%Y-%m-%d')}")
    print("\n".join(table))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
