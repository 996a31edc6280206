"""`python -m mathsolve_convert HF_DIR -o OUT.gguf --outtype TYPE [--force]`."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from . import CONVERTER_VERSION, OUTTYPES, ConversionError, convert


def _progress_printer() -> Callable[[str, int, int], None]:
    last = {"t": 0.0}

    def report(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last["t"] < 0.5:
            return
        last["t"] = now
        if stage == "write":
            print(f"\rwriting {done / 1e9:.2f}/{total / 1e9:.2f} GB", end="\n" if done >= total else "",
                  file=sys.stderr, flush=True)
        elif stage == "quantize" and done == 0:
            print("quantising with llama.cpp ...", file=sys.stderr, flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mathsolve_convert",
                                     description="Convert a Hugging Face Qwen3/Qwen2 safetensors model to GGUF.")
    parser.add_argument("hf_dir", metavar="HF_DIR",
                        help="Hugging Face model folder (config.json, *.safetensors, tokenizer)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.gguf", help="output GGUF file")
    parser.add_argument("--outtype", default="bf16", choices=OUTTYPES, help="output type (default: bf16)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    parser.add_argument("--version", action="version", version=CONVERTER_VERSION)
    args = parser.parse_args(argv)
    try:
        out = convert(args.hf_dir, args.output, args.outtype, force=args.force, progress=_progress_printer())
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; no output written", file=sys.stderr)
        return 130
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
