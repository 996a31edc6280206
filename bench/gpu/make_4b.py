#!/usr/bin/env python3
"""A random-weight checkpoint with the real Qwen3-4B shapes and the real tokenizer, drawn with
torch on the GPU (seconds; numpy on 2 CPU cores takes minutes), in the layout and order of
tests/tinymodels.py, which writes everything else (config, tokenizer files, shard index).

    python3 bench/gpu/make_4b.py OUT_DIR TOKENIZER_DIR [--layers 36] [--shards 3]

Speed does not depend on the weights' values, so this stands in for the real model in speed
checks. Without CUDA it draws on the CPU (for a dry run of the GPU check with few layers).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

QWEN3_4B = dict(hidden=2560, heads=32, kv_heads=8, head_dim=128, ffn=9728, vocab_size=151936, tied=True)


def torch_writer(device: str):  # noqa: ANN201
    import torch
    from safetensors.torch import save_file

    def write(path: Path, specs: list, seed: int, first_index: int) -> int:
        gen = torch.Generator(device=device).manual_seed(seed * 100003 + first_index)
        tensors, size = {}, 0
        for name, shape, mean, std in specs:
            t = torch.randn(shape, generator=gen, device=device, dtype=torch.float32) * std + mean
            tensors[name] = t.to(torch.bfloat16).cpu()
            size += tensors[name].numel() * 2
        save_file(tensors, str(path), metadata={"format": "pt"})
        return size

    return write


def main() -> None:
    import tinymodels
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("tokenizer", type=Path)
    ap.add_argument("--layers", type=int, default=36)
    ap.add_argument("--shards", type=int, default=3)
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    start = time.perf_counter()
    tinymodels.make_checkpoint(args.out, layers=args.layers, tokenizer=args.tokenizer,
                               shards=args.shards, writer=torch_writer(device), **QWEN3_4B)
    print(f"checkpoint: {args.layers} layers on {device} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
