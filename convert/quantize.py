"""K-quant types through llama.cpp's own quantiser, in a child process.

llama_model_quantize is a long C call: in-process, Ctrl-C would wait for it. A child
process can be killed at once, and its intermediate files removed by the parent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
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


def quantize_file(src: Path, dst: Path, ftype: int, nthread: int = 0) -> None:
    """Quantise a bf16 GGUF into dst; on failure or interruption dst is removed."""
    threads = nthread or os.cpu_count() or 1
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(src), str(dst), str(ftype), str(threads)],
            stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            dst.unlink(missing_ok=True)
            raise
        if rc != 0:
            dst.unlink(missing_ok=True)
            log.seek(0)
            lines = [ln for ln in log.read().decode(errors="replace").splitlines() if ln.strip()]
            last = lines[-1].strip() if lines else f"exit status {rc}"
            raise ConversionError(f"llama.cpp quantisation failed: {last}")
