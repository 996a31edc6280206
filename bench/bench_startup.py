"""Start-up: `mathsolve --help` vs `python -c "import click, rich"` (target <= 2x).

    python bench/bench_startup.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def median_seconds(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="3 runs: a smoke run")
    args = ap.parse_args()
    runs = 3 if args.quick else args.runs
    ours = median_seconds([sys.executable, "-m", "mathsolve", "--help"], runs)
    version = median_seconds([sys.executable, "-m", "mathsolve", "--version"], runs)
    base = median_seconds([sys.executable, "-c", "import click, rich"], runs)
    print(f"python -c 'import click, rich'  {base * 1000:7.1f} ms (median of {runs})")
    print(f"mathsolve --help                {ours * 1000:7.1f} ms  {ours / base:5.2f}x  (target <= 2x)")
    print(f"mathsolve --version             {version * 1000:7.1f} ms  {version / base:5.2f}x")


if __name__ == "__main__":
    main()
