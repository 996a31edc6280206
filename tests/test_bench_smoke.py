"""Each benchmark script runs in its quick mode (tiny models). Benchmarks are not timed tests:
this only proves they work, so the README's numbers can be measured again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
QUICK = {
    "startup": (["bench_startup.py", "--quick"], "mathsolve --help"),
    "decode": (["bench_decode.py", "--quick", "--tokens", "8", "--runs", "1"], "ratio engine/bare"),
    "parallel": (["bench_parallel.py", "--quick", "--tokens", "8", "--ks", "1,2"], "K=2"),
    "grade": (["bench_grade.py", "--quick"], "agreement"),
    "convert": (["bench_convert.py", "--quick"], "peak RSS"),
    "server": (["bench_server.py", "--quick", "--problems", "2", "--max-tokens", "8"], "concurrency"),
    "sampling": (["bench_sampling.py", "--quick"], "K=2"),
    "inflight": (["bench_inflight.py", "--quick"], "in flight"),
    "record": (["bench_record.py", "--quick"], "record"),
    "record_check": (["bench_record.py", "--quick", "--check-start"], "the check adds"),
    "budget": (["bench_budget.py", "--quick"], "--thinking-budget 256"),
    "adaptive": (["bench_adaptive.py", "--quick"], "adaptive / full"),
    "mcp": (["bench_mcp.py", "--quick"], "4 requests at once: 0 errors"),
    "long": (["bench_long.py", "--quick"], "half: wall"),
    "fuzz_gguf": (["fuzz_gguf.py", "--cost"], "child probe"),  # the 50-mutation run: test_gguf_check
}


@pytest.mark.parametrize(("args", "expect"), QUICK.values(), ids=QUICK.keys())
def test_benchmark_runs_in_quick_mode(args, expect):
    proc = subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:]], capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert expect in proc.stdout


SHARED_DATA = {  # --data: ../shared/data, or the file in it
    "check": (["bench_check.py", "--quick"], "checkable", "."),
    "vote_replay": (["bench_vote_replay.py", "--quick"], "schedule", "math_cot_100x8.jsonl"),
}


@pytest.mark.parametrize(("args", "expect", "data"), SHARED_DATA.values(), ids=SHARED_DATA.keys())
def test_benchmark_on_shared_data_runs_in_quick_mode(args, expect, data, shared_data_dir):
    proc = subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:], "--data", str(shared_data_dir / data)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert expect in proc.stdout
