"""K samples of one problem at llama.cpp's speed (issue 9): mathsolve vs llama-batched-bench.

For each model file and each K, the aggregate decode rate of `Engine.generate_many` (K samples
of one prompt, `--tokens` each) against `llama-batched-bench` at B = K on the same file, same
threads, same prompt length: ratio = mathsolve / llama.cpp. llama-batched-bench samples
nothing, so the ratio shows what sampling and our loop cost. Two samplings: Qwen's defaults
(T 0.6, top-k 20, top-p 0.95) and the model card's protocol (T 1.0, top-k 0, top-p 1).

Rate = generated tokens / (wall time - prefill time). Samples that stop early leave the batch;
the printed mean batch size says how full it stayed. mathsolve and llama-batched-bench
alternate for `--runs` rounds and each side's best round is compared (this 2-core machine's
speed drifts by +-20% from minute to minute; the best round is the least disturbed).

    python bench/bench_sampling.py [--model PATH ...] [--ks 1,8,32] [--tokens 256]
        [--paths auto,vector,chain,graph] [--llama-bin DIR] [--ngl 99] [--quick]

Default models: the tiny real-vocabulary Qwen3 checkpoints (hidden 128, 3 layers, vocab
151,936, q8_0) built under scratch/tinyrv/ on first use. llama-batched-bench comes from
bench/build_llama_tools.sh (default scratch/llama.cpp/build/bin); without it only mathsolve's
rates print.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

PROBLEM = "Write a long story about a dragon who learns arithmetic."
SAMPLINGS = {
    "default": dict(temperature=0.6, top_p=0.95, top_k=20),
    "card": dict(temperature=1.0, top_p=1.0, top_k=0),
}
TARGETS = {("default", 32): 0.85, ("card", 32): 0.7, ("default", 1): 0.9, ("default", 8): 0.9}


def tiny_models(n: int = 2) -> list[Path]:
    """Tiny real-vocabulary Qwen3 q8_0 GGUFs (built once, seconds each)."""
    import tinymodels

    from mathsolve_convert import convert

    out = []
    for seed in range(n):
        gguf = REPO / "scratch" / "tinyrv" / f"tiny-rv{seed}-q8_0.gguf"
        if not gguf.exists():
            tok = tinymodels.SHARED / "qwen3-tokenizer"
            hf = tinymodels.make_checkpoint(gguf.parent / f"hf{seed}", tokenizer=tok if tok.exists() else "tiny",
                                            vocab_size=151936, hidden=128, heads=4, kv_heads=2,
                                            head_dim=32, ffn=256, layers=3, seed=seed)
            convert(hf, gguf, "q8_0", force=True)
        out.append(gguf)
    return out


def batched_bench(binary: Path, model: Path, ks: list[int], n_prompt: int, tokens: int,
                  threads: int, ngl: int, *, shared: bool = False) -> dict[int, float]:
    """S_TG (aggregate generation tokens/s) of llama-batched-bench per batch size; `shared`:
    the K sequences share one prompt (-pps), as a vote's samples do."""
    ctx = max(ks) * (n_prompt + tokens + 256)
    cmd = [str(binary), "-m", str(model), "-c", str(ctx), "-b", "2048", "-ub", "512",
           "-npp", str(n_prompt), "-ntg", str(tokens), "-npl", ",".join(map(str, ks)),
           "-t", str(threads), "-ngl", str(ngl)] + (["-pps"] if shared else [])
    from mathsolve.engine.local.native import cpu_has_amx

    if cpu_has_amx():  # the weights in plain CPU buffers, as mathsolve loads them (native.model_params)
        cmd.append("--no-repack")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    rates = {}
    for line in proc.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 8 and cells[0].isdigit():
            rates[int(cells[2])] = float(cells[7])
    if not rates:
        print(proc.stderr[-2000:], file=sys.stderr)
    return rates


def llama_bench_tg(binary: Path, model: Path, threads: int, ngl: int) -> float | None:
    """llama-bench's tg128 tokens/s (single sequence, no sampling) on the same file."""
    import json

    from mathsolve.engine.local.native import cpu_has_amx

    proc = subprocess.run([str(binary), "-m", str(model), "-p", "0", "-n", "128", "-r", "2",
                           "-t", str(threads), "-ngl", str(ngl), "-o", "json",
                           *(["-nr", "1"] if cpu_has_amx() else [])],  # as mathsolve loads weights
                          capture_output=True, text=True, timeout=1800)
    try:
        return float(json.loads(proc.stdout)[0]["avg_ts"])
    except (ValueError, LookupError, TypeError):
        print(proc.stderr[-2000:], file=sys.stderr)
        return None


def ours(engine, prompt: str, k: int, tokens: int, sampling: dict, seed: int) -> tuple[float, float]:
    """(aggregate decode tokens/s, mean batch size) of one generate_many call."""
    from mathsolve.config import SamplingConfig

    samplings = [SamplingConfig(seed=seed + i, max_tokens=tokens, **sampling) for i in range(k)]
    start = time.perf_counter()
    out = engine.generate_many(prompt, samplings)
    wall = time.perf_counter() - start - out[0].prompt_seconds
    generated = sum(c.completion_tokens for c in out)
    return generated / wall, generated / max(c.completion_tokens for c in out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, action="append")
    ap.add_argument("--ks", default="1,8,32")
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3, help="alternating rounds; best of each side")
    ap.add_argument("--paths", default="auto")
    ap.add_argument("--samplings", default="default,card")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--ngl", type=int, default=0, help="GPU layers for llama-batched-bench (99 on a GPU)")
    ap.add_argument("--llama-bin", type=Path, default=REPO / "scratch" / "llama.cpp" / "build" / "bin")
    ap.add_argument("--quick", action="store_true", help="one tiny model, K = 1,2, 16 tokens")
    args = ap.parse_args()
    if args.quick:
        args.ks, args.tokens, args.runs = "1,2", 16, 1
    ks = [int(k) for k in args.ks.split(",")]
    paths = args.paths.split(",")
    models = args.model or tiny_models(1 if args.quick else 2)

    from mathsolve.config import EngineConfig, SamplingConfig
    from mathsolve.engine.local.engine import Engine

    binary = args.llama_bin / "llama-batched-bench"
    for model in models:
        engines = {p: Engine.load(EngineConfig(str(model), n_ctx=args.tokens + 256, gpu=args.ngl > 0,
                                               n_threads=args.threads, sampler=p)) for p in paths}
        first = next(iter(engines.values()))
        prompt = first.render(PROBLEM)
        n_prompt = len(first.tokenize(prompt))
        print(f"model: {model}  threads: {first.n_threads}  gpu_offload: {first.gpu_offload}  "
              f"prompt: {n_prompt} tokens  tokens/sample: {args.tokens}  rounds: {args.runs}")
        if not binary.exists():
            print(f"(no {binary}: run bench/build_llama_tools.sh for the llama.cpp column)")
        tg128 = None
        if 1 in ks and (args.llama_bin / "llama-bench").exists():
            tg128 = llama_bench_tg(args.llama_bin / "llama-bench", model, first.n_threads, args.ngl)
            print(f"llama-bench tg128: {tg128} tok/s")
        for name in args.samplings.split(","):
            for k in ks:
                rates: dict[str, list[float]] = {p: [] for p in paths}
                fills: dict[str, list[float]] = {p: [] for p in paths}
                base: list[float] = []
                for engine in engines.values():  # warm-up: context, prefix, page cache
                    ours(engine, prompt, k, min(16, args.tokens), SAMPLINGS[name], 7)
                for r in range(args.runs):  # alternate, so both sides see the same machine
                    for path, engine in engines.items():
                        rate, fill = ours(engine, prompt, k, args.tokens, SAMPLINGS[name], 100 + 1000 * r)
                        rates[path].append(rate)
                        fills[path].append(fill)
                    if binary.exists():
                        got = batched_bench(binary, model, [k], n_prompt, args.tokens,
                                            first.n_threads, args.ngl)
                        base += [got[k]] if k in got else []
                for path, engine in engines.items():
                    rate = max(rates[path])
                    took = engine.choose_path([SamplingConfig(**SAMPLINGS[name])])
                    line = (f"{name:8s} K={k:<3d} {path:6s} ({took:6s}) "
                            f"{rate:9.1f} tok/s  batch {statistics.mean(fills[path]):5.1f}")
                    if base:
                        target = TARGETS.get((name, k))
                        line += (f"   llama-batched-bench B={k}: {max(base):9.1f} tok/s   "
                                 f"{rate / max(base):.2f}x" + (f" (target >= {target}x)" if target else ""))
                    if k == 1 and tg128:
                        line += f"   vs llama-bench tg128: {rate / tg128:.2f}x (GPU target >= 0.95x)"
                    print(line, flush=True)
        for engine in engines.values():
            engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
