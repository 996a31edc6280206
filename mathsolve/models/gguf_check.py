"""Model flow: a GGUF that `pull` did not write is checked before llama.cpp loads it here.

llama.cpp trusts a GGUF's metadata: a duplicated vocabulary entry or an impossible
hyperparameter ends in GGML_ASSERT -> abort(), which no Python code can catch. So a user's
GGUF passes two gates first, and every failure is one ModelError line naming the file:

1. `scan`: our own parser of the header, key/values and tensor table, over an mmap. (The
   `gguf` package's GGUFReader builds a numpy view per field, raises arbitrary exceptions on
   hostile input and takes seconds on a 150k-token vocabulary, so it is not used here.)
   Every length and count is checked against the bytes that remain; value and tensor types
   (1-D tensors f32, no integer weights), alignment, tensor offsets and sizes against the
   file size; float hyperparameters (finite, epsilons not negative); the vocabulary (present,
   no duplicated entry, scores and types at least as long as the token list).
2. `probe`: llama.cpp loads the file in a child process with `no_alloc` (hyperparameters,
   vocabulary and tensor shapes, no weights), renders the chat template and tokenizes the
   prompt. A crash (abort, signal) or hang there becomes a one-line error here.

A file that passed is remembered under `verdicts` (a folder in the cache) by path, size,
mtime_ns, ctime_ns, inode, device, this checker's version and llama-cpp-python's version;
the same unchanged file is not checked again. ctime cannot be set back by `touch`, so an
edited file is always checked again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import mmap
import os
import re
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from mathsolve.errors import ModelError

CHECKER_VERSION = 1
PROBE_TIMEOUT_S = 60.0  # the no_alloc load of a 151k-vocabulary model takes about a second
MAX_ARRAY_STRINGS = 1 << 22  # 4M entries: 16x the largest real vocabularies (~260k)
MAX_TENSORS = 1 << 20
GGML_MAX_NAME = 64
GGML_MAX_DIMS = 4
INT64_MAX = 2**63 - 1
# GGUF value types: id -> (struct format, bytes); 8 = string and 9 = array are read apart.
_SCALARS = {0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4),
            6: ("<f", 4), 7: ("<B", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8)}
STRING, ARRAY, UINT32, INT32, FLOAT32 = 8, 9, 4, 5, 6
# ggml types llama.cpp 0.3.36 dropped from GGUF files (Q4_2, Q4_3, the 4x4/4x8/8x8 repacks).
_REMOVED_TYPES = {4, 5, 31, 32, 33, 36, 37, 38}
GGML_TYPE_COUNT = 43
F32 = 0
_NOT_WEIGHT_TYPES = {24, 25, 26, 27, 28}  # I8, I16, I32, I64, F64: ggml cannot multiply by them


class _Bad(Exception):
    """What is wrong with the file, in a few words (becomes part of a ModelError)."""


@dataclass
class Metadata:
    """What `scan` read: scalar and string values, array summaries, the vocabulary."""

    version: int = 0
    values: dict[str, object] = field(default_factory=dict)
    arrays: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> (item type, n)
    tokens: list[bytes] = field(default_factory=list)
    n_tensors: int = 0
    data_offset: int = 0


class _Reader:
    """Bounds-checked little-endian reads over a buffer; every overrun is a `_Bad`."""

    def __init__(self, buf: mmap.mmap, size: int) -> None:
        self.buf, self.size, self.pos = buf, size, 0

    def take(self, n: int, what: str) -> int:
        if n < 0 or n > self.size - self.pos:
            raise _Bad(f"{what} at byte {self.pos} runs past the end of the file "
                       f"({n} bytes needed, {self.size - self.pos} left)")
        at = self.pos
        self.pos += n
        return at

    def scalar(self, kind: int, what: str) -> Any:
        fmt, n = _SCALARS[kind]
        return struct.unpack_from(fmt, self.buf, self.take(n, what))[0]

    def u32(self, what: str) -> int:
        return cast(int, self.scalar(UINT32, what))

    def u64(self, what: str) -> int:
        return cast(int, self.scalar(10, what))

    def string(self, what: str) -> bytes:
        n = self.u64(f"{what} length")
        at = self.take(n, f"{what} ({n} bytes)")
        return bytes(self.buf[at:at + n])

    def strings(self, n: int, key: str) -> list[bytes]:
        """`n` length-prefixed strings: one tight loop, as a vocabulary has 150k of them."""
        unpack, buf, size, pos = _U64.unpack_from, self.buf, self.size, self.pos
        out: list[bytes] = []
        for j in range(n):
            if pos + 8 > size:
                raise _Bad(f"{key!r}[{j}] at byte {pos} runs past the end of the file")
            (length,) = unpack(buf, pos)
            pos += 8
            if length > size - pos:
                raise _Bad(f"{key!r}[{j}] at byte {pos} claims {length} bytes, "
                           f"{size - pos} left")
            out.append(buf[pos:pos + length])
            pos += length
        self.pos = pos
        return out


_U64 = struct.Struct("<Q")


def scan(path: Path) -> Metadata:
    """Parse and check the metadata and tensor table of `path`; raise `_Bad` on any fault."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 24:
            raise _Bad(f"only {size} bytes, shorter than a GGUF header")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _scan(_Reader(buf, len(buf)))


def _scan(r: _Reader) -> Metadata:
    meta = Metadata()
    if bytes(r.buf[0:4]) != b"GGUF":
        raise _Bad("bad magic")
    r.take(4, "magic")
    meta.version = r.u32("version")
    if meta.version not in (2, 3):
        raise _Bad(f"GGUF version {meta.version} (llama.cpp reads versions 2 and 3)")
    n_tensors, n_kv = r.u64("tensor count"), r.u64("key/value count")
    left = r.size - r.pos
    if n_kv > left // 13:  # the smallest key/value: 8 length + 4 type + 1 value byte
        raise _Bad(f"{n_kv} key/values cannot fit in {left} bytes")
    if n_tensors > min(left // 24, MAX_TENSORS):  # the smallest tensor entry: 24 bytes
        raise _Bad(f"{n_tensors} tensors cannot fit in {left} bytes")
    for i in range(n_kv):
        _read_kv(r, meta, i)
    alignment = meta.values.get("general.alignment", 32)
    if (not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1)
            or ("general.alignment" in meta.values and meta.arrays.get("general.alignment"))):
        raise _Bad(f"general.alignment {alignment!r} is not a power of two")
    infos = [_read_tensor_info(r, i) for i in range(n_tensors)]
    names = [name for name, *_ in infos]
    if len(set(names)) != len(names):
        raise _Bad("two tensors have the same name")
    meta.n_tensors = n_tensors
    meta.data_offset = -(-r.pos // alignment) * alignment
    expected: int | None = 0  # tensors lie in order, each padded to the alignment
    for name, offset, nbytes in infos:
        if expected is not None and offset != expected:
            raise _Bad(f"tensor {name!r} starts at offset {offset}, expected {expected}")
        if nbytes is None:  # a type we cannot size: llama.cpp's reader checks the rest
            expected = None
            continue
        expected = offset + -(-nbytes // alignment) * alignment
        end = meta.data_offset + offset + nbytes
        if end > r.size:
            raise _Bad(f"tensor {name!r} ends at byte {end}, past the end of the file "
                       f"({r.size} bytes; truncated?)")
    _check_floats(meta)
    _check_vocab(meta)
    return meta


def _check_floats(meta: Metadata) -> None:
    """Float hyperparameters reach ggml's kernels, which assert on some (a negative or NaN
    norm epsilon aborts the first decode); the weightless probe never decodes, so here."""
    for key, value in meta.values.items():
        if not isinstance(value, float):
            continue
        if not math.isfinite(value):
            raise _Bad(f"{key!r} is {value}")
        if ("epsilon" in key and value < 0) or (key.endswith(".freq_base") and value <= 0):
            raise _Bad(f"{key!r} is {value}, out of range")


def _read_kv(r: _Reader, meta: Metadata, i: int) -> None:
    key = r.string(f"key {i}").decode("utf-8", "replace")
    if key in meta.values or key in meta.arrays:
        raise _Bad(f"key {key!r} appears twice")
    kind = r.u32(f"type of {key!r}")
    if kind == STRING:
        meta.values[key] = r.string(f"value of {key!r}")
    elif kind in _SCALARS:
        meta.values[key] = r.scalar(kind, f"value of {key!r}")
    elif kind == ARRAY:
        item, n = r.u32(f"item type of {key!r}"), r.u64(f"length of {key!r}")
        meta.arrays[key] = (item, n)
        if item == STRING:
            if n > MAX_ARRAY_STRINGS:
                raise _Bad(f"{key!r} claims {n} strings (at most {MAX_ARRAY_STRINGS} allowed)")
            if n > (r.size - r.pos) // 8:
                raise _Bad(f"{key!r} claims {n} strings, past the end of the file")
            strings = r.strings(n, key)
            if key == "tokenizer.ggml.tokens":
                meta.tokens = strings
        elif item in _SCALARS:
            nbytes = _SCALARS[item][1]
            if n > (r.size - r.pos) // nbytes:
                raise _Bad(f"{key!r} claims {n} items, past the end of the file")
            r.take(n * nbytes, f"{key!r} items")
        else:
            raise _Bad(f"{key!r} is an array of unknown type {item}")
    else:
        raise _Bad(f"{key!r} has unknown value type {kind}")


def _read_tensor_info(r: _Reader, i: int) -> tuple[str, int, int | None]:
    """(name, offset, bytes or None for a type the gguf package does not size) of tensor i."""
    raw = r.string(f"name of tensor {i}")
    name = raw.decode("utf-8", "replace")
    if len(raw) >= GGML_MAX_NAME:
        raise _Bad(f"tensor {i} has a name of {len(raw)} bytes (at most {GGML_MAX_NAME - 1})")
    n_dims = r.u32(f"dimension count of {name!r}")
    if n_dims > GGML_MAX_DIMS:
        raise _Bad(f"tensor {name!r} has {n_dims} dimensions (at most {GGML_MAX_DIMS})")
    dims = [r.u64(f"dimension {j} of {name!r}") for j in range(n_dims)]
    elements = 1
    for d in dims:
        elements *= d
        if d > INT64_MAX or elements > INT64_MAX:
            raise _Bad(f"tensor {name!r} has an impossible shape {dims}")
    kind = r.u32(f"type of {name!r}")
    offset = r.u64(f"offset of {name!r}")
    if kind >= GGML_TYPE_COUNT or kind in _REMOVED_TYPES:
        raise _Bad(f"tensor {name!r} has unknown ggml type {kind}")
    if kind in _NOT_WEIGHT_TYPES:
        raise _Bad(f"tensor {name!r} has integer or f64 type {kind}, which no model weight has")
    if n_dims <= 1 and kind != F32:
        # ggml's CPU kernels apply 1-D weights (norms, biases) as f32 only; other types abort.
        raise _Bad(f"1-D tensor {name!r} has ggml type {kind}, not f32")
    block = _block_sizes().get(kind)
    if block is None:
        return name, offset, None  # a newer type: llama.cpp's own reader sizes it in the probe
    per_block, block_bytes = block
    if dims and dims[0] % per_block:
        raise _Bad(f"tensor {name!r} has rows of {dims[0]} values, not a multiple of "
                   f"its type's block of {per_block}")
    return name, offset, elements // per_block * block_bytes


@functools.lru_cache(maxsize=1)
def _block_sizes() -> dict[int, tuple[int, int]]:
    from gguf.constants import GGML_QUANT_SIZES

    return {int(t): sizes for t, sizes in GGML_QUANT_SIZES.items()}


def _check_vocab(meta: Metadata) -> None:
    """What llama.cpp asserts on (a duplicated token aborts it) or reads past an array for."""
    if meta.arrays.get("tokenizer.ggml.tokens", (None,))[0] != STRING:
        raise _Bad("no vocabulary (tokenizer.ggml.tokens)")
    n = len(meta.tokens)
    if n == 0:
        raise _Bad("an empty vocabulary")
    seen: dict[bytes, int] = {}
    for i, token in enumerate(meta.tokens):
        token = token or f"[EMPTY_{i}]".encode()  # what llama.cpp calls an empty token
        if token in seen:
            raise _Bad(f"vocabulary entry {i} duplicates entry {seen[token]} ({token[:40]!r})")
        seen[token] = i
    for key, types, what in (("tokenizer.ggml.scores", (INT32, FLOAT32), "int32 or float32"),
                             ("tokenizer.ggml.token_type", (INT32,), "int32")):
        if key in meta.values or (key in meta.arrays and (
                meta.arrays[key][0] not in types or meta.arrays[key][1] < n)):
            raise _Bad(f"{key} is not an array of {what} with an entry for each of the "
                       f"{n} vocabulary entries")


# ---- the child-process probe ---------------------------------------------------------------

def probe(path: Path, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Load `path` with llama.cpp in a child process; raise `_Bad` when that fails or dies."""
    env = {**os.environ, "GGML_NO_BACKTRACE": "1"}
    try:
        proc = subprocess.run([sys.executable, "-m", "mathsolve.models.gguf_check", str(path)],
                              capture_output=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise _Bad(f"llama.cpp did not finish loading it within {timeout:.0f} s") from None
    lines = proc.stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if proc.returncode == 0 and lines else None
    except json.JSONDecodeError:
        answer = None
    if isinstance(answer, dict) and answer.get("ok") is True:
        return
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        raise _Bad(answer["error"])
    raise _Bad(f"llama.cpp crashed loading it ({_last_words(proc)})")


def _last_words(proc: subprocess.CompletedProcess[bytes]) -> str:
    err = [ln.strip() for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    died = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
    asserted = [ln for ln in err if "GGML_ASSERT" in ln or "error" in ln.lower()]
    detail = re.sub(r"^\S*/", "", (asserted or err or [""])[-1])[:160]  # no build path
    return f"{died}: {detail}" if detail else died


def _child(path: str) -> dict[str, Any]:
    """In the child: load without weights, walk the vocabulary, render and tokenize."""
    import ctypes

    import llama_cpp

    from mathsolve.models.template import render_prompt

    errors: list[str] = []

    def on_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        if level == 4:  # GGML_LOG_LEVEL_ERROR
            errors.append(text.decode("utf-8", "replace").strip())

    log = llama_cpp.llama_log_callback(on_log)  # a ctypes CFUNCTYPE instance, kept alive here
    llama_cpp.llama_log_set(log, ctypes.c_void_p(0))
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = 0
    params.no_alloc = True  # shapes are checked, nothing is read or allocated
    params.load_mode = 0  # LLAMA_LOAD_MODE_NONE: no_alloc asserts on a memory map
    params.lazy_mode = 0
    model = llama_cpp.llama_model_load_from_file(path.encode("utf-8"), params)
    if not model:
        reason = next((e for e in reversed(errors) if e), "no reason given")
        reason = reason.split("error loading model: ")[-1]
        return {"error": f"llama.cpp cannot load it ({' '.join(reason.split())[:200]})"}
    vocab = llama_cpp.llama_model_get_vocab(model)
    buf = ctypes.create_string_buffer(256)
    for token in range(llama_cpp.llama_vocab_n_tokens(vocab)):
        llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, True)
    raw = llama_cpp.llama_model_chat_template(model, None)
    if not raw:
        return {"error": "it has no tokenizer.chat_template"}
    for think in (True, False):
        try:
            text = render_prompt(raw.decode("utf-8", "replace"), "What is 1+1?", think=think)
        except ModelError as exc:
            return {"error": str(exc).split(";")[0]}
        data = text.encode("utf-8")
        ids = (llama_cpp.llama_token * (len(data) + 8))()
        llama_cpp.llama_tokenize(vocab, data, len(data), ids, len(data) + 8, False, True)
    llama_cpp.llama_model_free(model)
    return {"ok": True}


# ---- the verdict cache and the entry point -------------------------------------------------

def _printable(text: str) -> str:
    """One line without control characters: file contents must not drive the terminal."""
    return "".join(c if c.isprintable() else "?" for c in " ".join(text.split()))


def _fingerprint(path: Path) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    st = path.stat()
    try:
        llama = version("llama-cpp-python")
    except PackageNotFoundError:
        llama = "unknown"
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns, "inode": st.st_ino, "device": st.st_dev,
            "checker": CHECKER_VERSION, "llama_cpp_python": llama}


def _verdict_file(verdicts: Path, fingerprint: dict[str, Any]) -> Path:
    return verdicts / (hashlib.sha256(fingerprint["path"].encode()).hexdigest()[:32] + ".json")


def _remembered(verdicts: Path | None, fingerprint: dict[str, Any]) -> bool:
    if verdicts is None:
        return False
    try:
        stored: object = json.loads(_verdict_file(verdicts, fingerprint).read_text("utf-8"))
        return stored == fingerprint
    except (OSError, ValueError):
        return False


def _remember(verdicts: Path | None, fingerprint: dict[str, Any]) -> None:
    """Atomically; a cache we cannot write only costs a check next time."""
    if verdicts is None:
        return
    target = _verdict_file(verdicts, fingerprint)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    try:
        verdicts.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(fingerprint), "utf-8")
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)


def validate(path: Path, fix: str, verdicts: Path | None = None) -> None:
    """Raise a one-line ModelError naming `path` and `fix` unless llama.cpp can load it safely."""
    try:
        before = _fingerprint(path)
        if _remembered(verdicts, before):
            return
        scan(path)
        probe(path)
    except _Bad as bad:
        raise ModelError(f"{path} is not a usable GGUF: {_printable(str(bad))}; {fix}") from None
    except (OSError, ValueError) as exc:  # unreadable, or mmap of a file that changed size
        raise ModelError(f"cannot read {path} ({exc}); {fix}") from exc
    if _fingerprint(path) == before:  # not changed while it was checked
        _remember(verdicts, before)


if __name__ == "__main__":  # the probe's child: python -m mathsolve.models.gguf_check FILE
    os.environ["GGML_NO_BACKTRACE"] = "1"
    print(json.dumps(_child(sys.argv[1])), flush=True)
