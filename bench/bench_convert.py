"""Converter benchmark on a random-weight checkpoint with the real Qwen3-4B shapes.

Prints wall time and peak RSS of bf16 and q8_0 conversions (each in a fresh child process,
so the numbers are the converter's alone) and the time of the Q4_K_M quantisation, and
leaves the Q4_K_M GGUF at a printed path for the speed benchmarks of other issues.

    python bench/bench_convert.py [--layers N] [--quick] [--workdir DIR] [--skip-q4]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

QWEN3_4B = dict(hidden=2560, heads=32, kv_heads=8, head_dim=128, ffn=9728, vocab_size=151936, tied=True)

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[4])
from convert import convert
marks = {}
def progress(stage, done, total):
    marks.setdefault(stage + (":end" if done >= total else ":start"), time.perf_counter())
t0 = time.perf_counter()
convert(sys.argv[1], sys.argv[2], sys.argv[3], force=True, progress=progress)
wall = time.perf_counter() - t0
q = marks.get("quantize:end", 0) - marks.get("quantize:start", 0)
print(json.dumps({"wall_s": wall, "quantize_s": q,
                  "self_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "children_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def build(workdir: Path, layers: int, quick: bool) -> Path:
    import tinymodels

    tag = "tiny" if quick else f"qwen3-4b-shapes-{layers}L"
    hf = workdir / tag
    stamp = hf / ".complete"
    if stamp.exists():
        return hf
    if hf.exists():
        shutil.rmtree(hf)
    shared_tok = tinymodels.SHARED / "qwen3-tokenizer"
    t0 = time.perf_counter()
    if quick:
        tinymodels.make_checkpoint(hf)
    else:
        tok = shared_tok if shared_tok.exists() else "tiny"
        tinymodels.make_checkpoint(hf, layers=layers, tokenizer=tok, shards=2 if layers > 8 else 1, **QWEN3_4B)
    stamp.write_text("ok")
    print(f"built {hf} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return hf


def run(hf: Path, out: Path, outtype: str) -> dict:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _CHILD, str(hf), str(out), outtype, str(REPO)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"conversion to {outtype} failed: {r.stderr.strip().splitlines()[-1:]}")
    result = json.loads(r.stdout.strip().splitlines()[-1])
    result["outer_wall_s"] = time.perf_counter() - t0
    result["bytes"] = out.stat().st_size
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=36)
    ap.add_argument("--quick", action="store_true", help="tiny model (smoke test)")
    ap.add_argument("--workdir", type=Path, default=REPO / "scratch" / "bench-4b")
    ap.add_argument("--skip-q4", action="store_true")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    hf = build(args.workdir, args.layers, args.quick)
    size = sum(p.stat().st_size for p in hf.glob("*.safetensors"))
    print(f"checkpoint: {hf} ({size / 1e9:.2f} GB bf16)")
    outtypes = ["bf16", "q8_0"] + ([] if args.skip_q4 else ["q4_k_m"])
    for outtype in outtypes:
        out = args.workdir / f"{hf.name}-{outtype}.gguf"
        r = run(hf, out, outtype)
        line = (f"{outtype:7s} wall {r['wall_s']:7.1f} s  peak RSS {r['self_maxrss_kb'] / 1024:7.0f} MiB  "
                f"output {r['bytes'] / 1e9:.2f} GB")
        if outtype == "q4_k_m":
            line += (f"  (llama.cpp quantisation {r['quantize_s']:.1f} s, "
                     f"quantiser peak RSS {r['children_maxrss_kb'] / 1024:.0f} MiB)")
        print(line, flush=True)
        if outtype != "q4_k_m":
            out.unlink()  # keep disk use down; the Q4_K_M file stays for other benchmarks
        else:
            print(f"Q4_K_M GGUF kept at: {out}")
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"all children peak RSS (RUSAGE_CHILDREN): {children / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
