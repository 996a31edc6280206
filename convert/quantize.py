"""K-quant types through llama.cpp's own quantiser, in a child process.

llama_model_quantize is a long C call: in-process, Ctrl-C would wait for it. A child
process can be killed at once, and its intermediate files removed by the parent. Its log is
read as it comes: llama.cpp writes a line per tensor, `[  12/ 398] blk.0.attn_q.weight ...`,
which is the progress of the only step of a pull that otherwise shows none for minutes.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .errors import ConversionError

_CHILD = """
import sys, llama_cpp
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = int(sys.argv[3])
params.nthread = int(sys.argv[4])
rc = llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), params)
sys.exit(0 if rc == 0 else 3)
"""
# llama-quant.cpp logs "[%4d/%4d] %-36s - [...], type = ..." before each tensor, and the
# tensor's "size = ... MiB" at the end of the same line once it is written.
_TENSOR_LINE = re.compile(rb"^\[\s*(\d+)/\s*(\d+)\]")
_KEEP_LINES = 20  # of the log, for the error message

TensorProgress = Callable[[int, int], None]


def parse_tensor_line(line: bytes) -> tuple[int, int] | None:
    """(tensor number, tensor count) of a quantiser log line, or None for other lines."""
    found = _TENSOR_LINE.match(line)
    return (int(found.group(1)), int(found.group(2))) if found else None


def quantize_file(src: Path, dst: Path, ftype: int, nthread: int = 0,
                  progress: TensorProgress | None = None) -> int:
    """Quantise a bf16 GGUF into dst; on failure or interruption dst is removed.

    `progress(done, total)` is called as each tensor is finished. Returns the number of
    tensors the quantiser reported (0 if its log had no tensor lines)."""
    threads = nthread or os.cpu_count() or 1
    tail: collections.deque[str] = collections.deque(maxlen=_KEEP_LINES)
    seen = 0
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(src), str(dst), str(ftype), str(threads)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        for line in proc.stdout or ():  # a line ends when its tensor is written
            if line.strip():
                tail.append(line.decode(errors="replace").strip())
            found = parse_tensor_line(line)
            if found is not None:
                seen = found[1]
                if progress is not None:
                    progress(*found)
        rc = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        dst.unlink(missing_ok=True)
        raise
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
    if rc != 0:
        dst.unlink(missing_ok=True)
        last = tail[-1] if tail else f"exit status {rc}"
        raise ConversionError(f"llama.cpp quantisation failed: {last}")
    return seen
