#!/usr/bin/env python3
"""Hold all but KEEP_MB of the GPU's free memory until stdin closes, so a model no longer fits:
the real path of mathsolve's "GPU load failed, running on the CPU" fall-back.

    python3 bench/gpu/hold_gpu.py [KEEP_MB] < fifo
"""

import sys

import torch

keep = int(sys.argv[1]) if len(sys.argv) > 1 else 512
free, total = torch.cuda.mem_get_info()
held = torch.empty(max(0, free - keep * 2**20), dtype=torch.uint8, device="cuda")
print(f"holding {held.numel() / 2**30:.1f} GiB of {total / 2**30:.1f} GiB", flush=True)
sys.stdin.read()
