"""Per-tensor encoding: choose the GGUF type as the reference does, and encode row chunks.

Every conversion goes through float32 exactly as the reference's torch path does (bf16 and
f16 widen losslessly), then through gguf.quants, so f16 and q8_0 bytes match the reference.
bf16 -> bf16 skips the round trip: widening and rounding back is the identity.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .checkpoint import DTYPE_SIZES, TensorRef

# outtype -> (gguf.LlamaFileType value, GGML type name of the bulk tensors)
DIRECT_TYPES = {"bf16": (32, "BF16"), "f16": (1, "F16"), "q8_0": (7, "Q8_0")}
# outtype -> llama.cpp's LLAMA_FTYPE_* for llama_model_quantize (from a bf16 file)
QUANTISED_TYPES = {"q4_k_m": 15, "q5_k_m": 17, "q6_k": 18}
OUTTYPES = ("bf16", "f16", "q8_0", "q4_k_m", "q5_k_m", "q6_k")
# Output size relative to bf16 weights (about bits per weight / 16; the k-quant mixes measured
# on Qwen3-4B shapes and rounded up): the disk checks of `convert` and of mathsolve's `pull`.
SIZE_RATIO = {"bf16": 1.0, "f16": 1.0, "q8_0": 0.54, "q6_k": 0.42, "q5_k_m": 0.37, "q4_k_m": 0.32}
CHUNK_ELEMENTS = 1 << 23  # 32 MiB of float32 per chunk keeps peak memory flat


@dataclass(frozen=True)
class Planned:
    """One output tensor: its source, GGUF name, GGML type and encoded size."""

    ref: TensorRef
    name: str
    qtype: Any  # gguf.GGMLQuantizationType
    nbytes: int


def choose_type(gguf_name: str, shape: tuple[int, ...], outtype: str) -> Any:
    """1-D tensors and norms stay F32; q8_0 rows not divisible by 32 fall back to F16."""
    import gguf

    Q = gguf.GGMLQuantizationType
    if len(shape) <= 1 or gguf_name.endswith("_norm.weight") or not gguf_name.endswith(".weight"):
        return Q.F32
    qtype = Q[DIRECT_TYPES[outtype][1]]
    block, _ = gguf.GGML_QUANT_SIZES[qtype]
    if shape[-1] % block:
        return Q.F16
    return qtype


def encoded_nbytes(shape: tuple[int, ...], qtype: Any) -> int:
    import gguf

    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    n = 1
    for d in shape:
        n *= d
    return n // block * type_size


def _to_f32(raw: memoryview, dtype: str) -> Any:
    import numpy as np

    if dtype == "BF16":
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    if dtype == "F16":
        return np.frombuffer(raw, dtype="<f2").astype(np.float32)
    return np.frombuffer(raw, dtype="<f4")


def encode_chunks(item: Planned) -> Iterator[bytes | memoryview]:
    """Encoded bytes of one tensor, whole rows at a time."""
    import gguf
    import numpy as np

    ref, Q = item.ref, gguf.GGMLQuantizationType
    cols = ref.shape[-1] if ref.shape else 1
    rows_per_chunk = max(1, CHUNK_ELEMENTS // max(cols, 1))
    row_bytes = cols * DTYPE_SIZES[ref.dtype]
    if ref.dtype == "BF16" and item.qtype == Q.BF16:
        yield from ref.chunks(align=row_bytes)
        return
    for raw in ref.chunks(max_bytes=rows_per_chunk * row_bytes, align=row_bytes):
        data = _to_f32(raw, ref.dtype).reshape(-1, cols)
        if item.qtype == Q.F32:
            yield data.astype("<f4", copy=False).tobytes()
        else:
            yield np.ascontiguousarray(gguf.quants.quantize(data, item.qtype)).tobytes()
        del data
