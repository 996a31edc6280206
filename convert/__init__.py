"""HF Qwen3/Qwen2 safetensors -> GGUF, matching llama.cpp's convert_hf_to_gguf.py output.

Installed as `mathsolve_convert`; knows nothing of mathsolve. Heavy libraries (numpy, gguf,
llama_cpp) are imported inside the functions that need them.
"""

from __future__ import annotations

from .core import check_free_space, convert, estimate_output_bytes
from .errors import ConversionError
from .tensors import OUTTYPES, SIZE_RATIO

CONVERTER_VERSION = "1.0.0"

__all__ = ["CONVERTER_VERSION", "OUTTYPES", "SIZE_RATIO", "ConversionError", "check_free_space", "convert",
           "estimate_output_bytes"]
