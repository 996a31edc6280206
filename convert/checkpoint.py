"""Reading a Hugging Face checkpoint: config, safetensors shards, raw tensor bytes.

numpy cannot hold bf16, so tensors are handed out as raw little-endian bytes read from
the file region by region; nothing here keeps more than one chunk of a tensor alive.
"""

from __future__ import annotations

import json
import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConversionError

# safetensors dtype -> bytes per element; the converter accepts only float weights
DTYPE_SIZES = {"BF16": 2, "F16": 2, "F32": 4}
MAX_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True)
class TensorRef:
    """Where a tensor's bytes live: file, absolute byte range, dtype, HF shape."""

    name: str
    path: Path
    dtype: str
    shape: tuple[int, ...]
    start: int
    nbytes: int

    def chunks(self, max_bytes: int = 64 << 20, align: int = 1) -> Iterator[memoryview]:
        """Memory-mapped views of consecutive pieces (multiples of `align` bytes when possible)."""
        step = max(align, (max_bytes // align) * align)
        gran = mmap.ALLOCATIONGRANULARITY
        with open(self.path, "rb") as f:
            for off in range(0, self.nbytes, step):
                n = min(step, self.nbytes - off)
                pos = self.start + off
                base = pos - pos % gran
                mm = mmap.mmap(f.fileno(), n + (pos - base), access=mmap.ACCESS_READ, offset=base)
                try:
                    view = memoryview(mm)[pos - base:]
                    try:
                        yield view
                    finally:
                        view.release()
                finally:
                    mm.close()  # unmapping drops the pages from our RSS


def read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ConversionError(f"{path} is missing: {what}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConversionError(f"{path} is not valid JSON ({e}); re-download it") from None


def shard_files(hf_dir: Path) -> list[Path]:
    """Shards in the order the reference converter reads them (sorted file names)."""
    index = hf_dir / "model.safetensors.index.json"
    if index.is_file():
        data = read_json(index, "the shard index")
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise ConversionError(f"{index} has no weight_map; re-download the checkpoint")
        files = sorted(set(weight_map.values()))
        missing = [f for f in files if not (hf_dir / f).is_file()]
        if missing:
            raise ConversionError(f"shard {missing[0]} listed in {index.name} is missing from {hf_dir}; re-download it")
        return [hf_dir / f for f in files]
    single = hf_dir / "model.safetensors"
    if single.is_file():
        return [single]
    if any(hf_dir.glob("*.bin")) or any(hf_dir.glob("*.pt")):
        raise ConversionError(f"{hf_dir} has PyTorch .bin weights only; download the safetensors files")
    raise ConversionError(f"no model.safetensors or model.safetensors.index.json in {hf_dir}")


def read_header(path: Path) -> list[TensorRef]:
    """Parse and validate one safetensors header; tensors sorted by name, as the reference does."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ConversionError(f"{path.name} is truncated (no safetensors header); re-download it")
        (hlen,) = struct.unpack("<Q", head)
        if hlen > MAX_HEADER or 8 + hlen > size:
            raise ConversionError(f"{path.name} is corrupt: header length {hlen} exceeds the file; re-download it")
        try:
            header = json.loads(f.read(hlen))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ConversionError(f"{path.name} is corrupt: unreadable safetensors header; re-download it") from None
    if not isinstance(header, dict):
        raise ConversionError(f"{path.name} is corrupt: safetensors header is not an object; re-download it")
    data_start = 8 + hlen
    refs = []
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = meta["dtype"], tuple(int(d) for d in meta["shape"]), meta["data_offsets"]
            begin, end = int(begin), int(end)
        except (KeyError, TypeError, ValueError):
            raise ConversionError(f"{path.name} is corrupt: bad header entry for {name}; re-download it") from None
        if dtype not in DTYPE_SIZES:
            raise ConversionError(f"tensor {name} has dtype {dtype}; only BF16, F16 and F32 checkpoints are supported")
        count = 1
        for d in shape:
            count *= d
        if begin < 0 or end < begin or end - begin != count * DTYPE_SIZES[dtype]:
            raise ConversionError(f"{path.name} is corrupt: offsets of {name} disagree with its shape; re-download it")
        if data_start + end > size:
            raise ConversionError(f"{path.name} is truncated: {name} ends past the end of the file; re-download it")
        refs.append(TensorRef(name, path, dtype, shape, data_start + begin, end - begin))
    spans = sorted((r.start, r.start + r.nbytes, r.name) for r in refs if r.nbytes)
    for (_, end_a, a), (start_b, _, b) in zip(spans, spans[1:]):
        if start_b < end_a:
            raise ConversionError(f"{path.name} is corrupt: tensors {a} and {b} overlap; re-download it")
    return sorted(refs, key=lambda r: r.name)


def read_tensors(hf_dir: Path) -> list[TensorRef]:
    """All tensors, shard by shard (sorted), names sorted within a shard: the reference's order."""
    refs: list[TensorRef] = []
    seen: set[str] = set()
    for path in shard_files(hf_dir):
        for ref in read_header(path):
            if ref.name in seen:
                raise ConversionError(f"tensor {ref.name} appears in two shards; re-download the checkpoint")
            seen.add(ref.name)
            refs.append(ref)
    index = hf_dir / "model.safetensors.index.json"
    if index.is_file():
        listed = set(read_json(index, "the shard index")["weight_map"])
        if listed != seen:
            diff = sorted(listed ^ seen)[0]
            raise ConversionError(f"tensor {diff} disagrees between {index.name} and the shards; "
                                  "re-download the checkpoint")
    return refs
