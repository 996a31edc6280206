"""Engine: KVCache, the one owner of the KV cache's cells.

It decides how many streams fit in memory, knows what each slot's stream holds, and makes
every change to its cells.

A stream per sample, never a shared pool: a sample that starts can always finish (none is
ever preempted) and its attention reads only its own cells (a unified cache attends over every
used cell of every sample; at thousands of tokens a sample that costs more than the pool
saves, bench/bench_long.py). As many streams as the memory rule holds (kv_memory), or
--kv-budget in its place; the other samples start as samples finish. The scheduler asks the
KVCache for a slot's prompt cells (kept from an earlier sample, copied from a running sibling,
else prefilled by the context) and gives a finished sample's cells back to it; nothing else
touches the cells.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

from mathsolve.engine.local.machine import available_ram, free_gpu_memory
from mathsolve.errors import EngineError

KV_PAD = 256  # llama.cpp pads each sequence's KV stream to this many cells
MAX_SEQUENCES = 256  # llama.cpp's LLAMA_MAX_SEQ
CPU_SEQUENCES = 32  # beyond this a CPU gains little per extra sequence and prefills stall more
GPU_RESERVE_BYTES = 1 << 30  # compute buffers and the logits of a large batch


def round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def kv_bytes_per_cell(model: Any, kv_type: str) -> int:
    """Bytes of K and V one token takes in the cache of `model` (a llama_model pointer) when
    the cache is of `kv_type` ("f16", or "q8_0": 34 bytes a block of 32 values)."""
    import llama_cpp

    n_layer: int = llama_cpp.llama_model_n_layer(model)
    n_head = max(1, llama_cpp.llama_model_n_head(model))
    n_head_kv: int = llama_cpp.llama_model_n_head_kv(model)
    n_embd: int = llama_cpp.llama_model_n_embd(model)
    head_dim = _meta_int(model, "attention.key_length") or n_embd // n_head
    values = 2 * n_layer * n_head_kv * head_dim  # K and V
    return values * 34 // 32 if kv_type == "q8_0" else values * 2


def _meta_int(model: Any, suffix: str) -> int | None:
    arch = _meta_str(model, "general.architecture")
    value = _meta_str(model, f"{arch}.{suffix}") if arch else None
    return int(value) if value and value.isdigit() else None


def _meta_str(model: Any, key: str) -> str | None:
    import llama_cpp

    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_model_meta_val_str(model, key.encode(), buf, 256)
    return buf.value.decode("utf-8", "replace") if n >= 0 else None


def kv_memory(gpu: bool) -> tuple[int | None, str]:
    """Bytes the KV cache may take by the memory rule, and the rule in words: half the
    available RAM on a CPU, the GPU's free memory less a reserve for compute buffers. None
    when the machine does not say."""
    free = free_gpu_memory() if gpu else available_ram()
    if free is None:
        return None, "the machine does not say how much memory is free"
    if gpu:
        return max(0, free - GPU_RESERVE_BYTES), f"the GPU's free memory less {GPU_RESERVE_BYTES / 1e9:.0f} GB"
    return free // 2, "half the available RAM"


def streams_that_fit(wanted: int, cells: int, bytes_per_cell: int, *, gpu: bool,
                     budget_bytes: int | None = None) -> tuple[int, str]:
    """How many KV streams of `cells` cells to allocate, at most `wanted`, and why.

    A stream per sample, never a shared pool: a sample that starts can always finish, so
    none is ever preempted, and its attention reads only its own cells (a unified cache
    attends over every used cell of every sample). When the memory rule (kv_memory), or
    `budget_bytes` (--kv-budget) in its place, holds fewer streams than samples, the samples
    run that many at a time, the next starting as one finishes. Raises EngineError when not
    even one stream fits the budget.
    """
    per_stream = max(1, cells * bytes_per_cell)
    if budget_bytes is not None:
        if budget_bytes < per_stream:
            raise EngineError(f"--kv-budget {budget_bytes / 1e9:.3g} GB holds {budget_bytes // max(1, bytes_per_cell)} "
                              f"tokens of KV, one sample needs {cells}; raise it or lower --ctx")
        usable, held = budget_bytes, f"--kv-budget {budget_bytes / 1e9:.3g} GB"
    else:
        memory, rule = kv_memory(gpu)
        if memory is None:
            return max(1, wanted), rule
        usable, held = memory, f"{rule} ({memory / 1e9:.2f} GB)"
    fit = max(1, min(wanted, usable // per_stream))
    if fit == wanted:
        return fit, f"all {wanted} fit in {held}"
    return fit, f"{held} holds {fit}; the others start as samples finish"


class KVCache:
    """The cells of the engine's llama.cpp context: how many streams a run gets (plan), what
    each slot's stream holds (its tokens, for prefix reuse), and every change to them.

    `model` is the llama_model pointer; `kv_type`, `gpu` and `budget` (--kv-budget bytes, or
    None) how the engine was configured; `warn` says when samples must run in turns."""

    def __init__(self, model: Any, kv_type: str, *, gpu: bool, budget: int | None,
                 warn: Callable[[str], None]) -> None:
        self._model = model
        self.kv_type = kv_type
        self._gpu = gpu
        self._budget = budget
        self._warn = warn
        self._per_cell: int | None = None
        self._ctx: Any = None  # the llama_context whose memory this is
        self.streams = 0
        self.cells = 0  # per stream
        self.reason = ""  # why the context has the streams it has (-v)
        self._tokens: list[list[int]] = []  # per slot: the tokens whose KV it holds

    @property
    def bytes_per_cell(self) -> int:
        """Bytes of K and V one token takes (kv_bytes_per_cell), read once."""
        if self._per_cell is None:
            self._per_cell = kv_bytes_per_cell(self._model, self.kv_type)
        return self._per_cell

    def plan(self, wanted: int, need: int, widest: int) -> int:
        """Streams of `need` tokens that fit in memory (or in --kv-budget), at most `wanted`;
        the widest job's samples run in turns when fewer fit (said once)."""
        streams, self.reason = streams_that_fit(wanted, round_up(need, KV_PAD), self.bytes_per_cell,
                                                gpu=self._gpu, budget_bytes=self._budget)
        if streams < widest:
            self._warn(f"the KV cache for {widest} samples x {need} tokens does not fit; "
                       f"decoding them {streams} at a time")
        return streams

    def attach(self, ctx: Any, streams: int, cells: int) -> None:
        """The context these cells now belong to (a new one: every stream empty)."""
        self._ctx, self.streams, self.cells = ctx, streams, cells
        self._tokens = [[] for _ in range(streams)]

    def detach(self) -> None:
        self._ctx, self._tokens = None, []

    def _mem(self) -> Any:
        import llama_cpp

        return llama_cpp.llama_get_memory(self._ctx)

    # ---- what the cells hold -------------------------------------------------------------------

    def describe(self, total_cells: int) -> str:
        """What the run got, in words (-v)."""
        gb = total_cells * self.bytes_per_cell / 1e9
        return (f"KV cache: a stream of {self.cells} tokens per sample x {self.streams} "
                f"({gb:.2f} GB, {self.kv_type}): {self.reason}")

    def lengths(self) -> list[int]:
        """KV cells held per slot (diagnostics: a free slot holds at most its prompt)."""
        import llama_cpp

        if self._ctx is None:
            return []
        return [llama_cpp.llama_memory_seq_pos_max(self._mem(), s) + 1 for s in range(self.streams)]

    def holds(self, slot: int) -> list[int]:
        return self._tokens[slot]

    def best_slot(self, free: list[int], prefix: list[int]) -> int:
        """The free slot already holding the longest part of `prefix` (lowest id on ties)."""
        return max(free, key=lambda s: (_common_prefix(self._tokens[s], prefix), -s))

    # ---- every change to the cells -------------------------------------------------------------

    def take(self, slot: int, want: list[int], sibling: int | None) -> int:
        """Make `slot` hold as much of `want` as it can without a decode: what it kept from an
        earlier sample, else a running `sibling`'s prompt (its whole stream copied, then cut);
        the rest is cut. Returns how many of `want` it holds; the context prefills the rest."""
        import llama_cpp

        mem = self._mem()
        common = _common_prefix(self._tokens[slot], want)
        if common < len(want) and sibling is not None:
            llama_cpp.llama_memory_seq_rm(mem, slot, -1, -1)
            llama_cpp.llama_memory_seq_cp(mem, sibling, slot, -1, -1)  # a stream copies whole
            common = len(want)  # its tokens past the prompt are cut below
        if not llama_cpp.llama_memory_seq_rm(mem, slot, common, -1):
            llama_cpp.llama_memory_seq_rm(mem, slot, -1, -1)
            common = 0
        self._tokens[slot] = want[:common]
        return common

    def filled(self, slot: int, tokens: list[int]) -> None:
        """The slot's stream holds `tokens` now (its prompt, prefilled)."""
        self._tokens[slot] = list(tokens)

    def clear(self, slot: int) -> None:
        """The slot's cells are not known to be whole (a prefill stopped): all of them go."""
        import llama_cpp

        llama_cpp.llama_memory_seq_rm(self._mem(), slot, -1, -1)
        self._tokens[slot] = []

    def release(self, slot: int) -> None:
        """A sample left the batch: its stream keeps only the prompt, for the next sample."""
        import llama_cpp

        if self._ctx is not None:
            llama_cpp.llama_memory_seq_rm(self._mem(), slot, len(self._tokens[slot]), -1)

    def forget(self) -> None:
        """Every stream emptied, so the next prompt is evaluated whole (benchmarks)."""
        import llama_cpp

        if self._ctx is not None:
            llama_cpp.llama_memory_clear(self._mem(), True)
        self._tokens = [[] for _ in self._tokens]


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
