#!/usr/bin/env python3
"""The reproducibility contract on this machine's backend (README "Reproducibility").

Prints, for one model file: whether a rerun with the same seed, K and sampling repeats every
token (the contract), and how far batched tokens follow single-sequence runs (greedy K = 8 vs
K = 1; seeded sample i vs the single run with seed + i), which the contract does not promise
on a GPU.

    python3 bench/gpu/repro.py MODEL.gguf [--cpu] [--tokens 64]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def first_difference(a: tuple, b: tuple) -> int | None:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--cpu", action="store_true")
    ap.add_argument("--tokens", type=int, default=64)
    args = ap.parse_args()

    from mathsolve.config import EngineConfig, SamplingConfig
    from mathsolve.engine.local.engine import Engine

    with Engine.load(EngineConfig(args.model, n_ctx=args.tokens + 256, gpu=not args.cpu)) as e:
        prompt = e.render("Write a long story about a dragon who learns arithmetic.")
        backend = "GPU" if e.gpu_offload else "CPU"
        seeded = [SamplingConfig(seed=100 + i, max_tokens=args.tokens) for i in range(8)]
        a = [c.tokens for c in e.generate_many(prompt, seeded)]
        b = [c.tokens for c in e.generate_many(prompt, seeded)]
        print(f"{backend} {e.choose_path(seeded)}: rerun, same seed/K/file: "
              f"{'identical' if a == b else 'DIFFERENT'} ({sum(len(t) for t in a)} tokens)")
        singles = [e.generate(prompt, s).tokens for s in seeded]
        same = sum(1 for x, y in zip(a, singles) if x == y)
        firsts = [first_difference(x, y) for x, y in zip(a, singles)]
        print(f"{backend}: seeded sample i of K=8 vs single run with seed i: {same}/8 identical; "
              f"first differing token per sample: {firsts}")
        greedy = SamplingConfig(temperature=0.0, max_tokens=args.tokens)
        one = e.generate(prompt, greedy).tokens
        eight = [c.tokens for c in e.generate_many(prompt, [greedy] * 8)]
        print(f"{backend}: greedy K=8 vs K=1: {sum(1 for t in eight if t == one)}/8 identical; "
              f"first differing token: {[first_difference(t, one) for t in eight]}")
        return 0 if a == b else 1


if __name__ == "__main__":
    sys.exit(main())
