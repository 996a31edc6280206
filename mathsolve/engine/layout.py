"""Engine: where a sample's cells lie in a unified KV pool on the CPU backend (SlotContext).

llama.cpp's CPU flash attention adds up a query's cells in the order of their cell indices, so
a sample's logits are those of a stream of its own only while its cells lie in the order of
their positions. llama.cpp puts a new token in the lowest free cell, and a freed cell below a
sample's last one (a finished or preempted sibling's) would break that order. So in a pool on
the CPU no cell is given back while others lie above it: a sample's cells that must go are
*parked* (moved to a sequence of their own, which never decodes). When the pool is full and
cells are parked, `compact` writes every sample's cells to a file (byte for byte), clears the
pool and reads them back in order, each sample's cells in one run after its prompt's; the
parked cells are free again, above all others.

A problem's samples share the cells of its prompt: `roots` says which slots hold the same
prompt cells (a sibling's copy, llama_memory_seq_cp), and compaction keeps them shared.
"""

from __future__ import annotations

import ctypes
import os
import tempfile
from typing import Any

from mathsolve.errors import EngineError


class FreeCells:
    """Streams, or a pool on a GPU: a sample's cells are freed at once (nothing is parked)."""

    ordered = False
    parked = False
    compactions = 0

    def __init__(self) -> None:
        self.filling: int | None = None

    def own(self, slot: int, share: int) -> None:
        pass

    def copied(self, slot: int, sibling: int, share: int) -> None:
        pass

    def drop(self, mem: Any, seq: int, p0: int) -> bool:
        """Take positions >= p0 (-1: all) from `seq`; False where the memory cannot cut there."""
        import llama_cpp

        return bool(llama_cpp.llama_memory_seq_rm(mem, seq, p0, -1))

    def compact(self, ctx: Any, slot_tokens: list[list[int]], holders: set[int]) -> None:
        raise AssertionError("nothing is parked where cells are freed at once")


class PoolLayout(FreeCells):
    """The cells' bookkeeping for one pool context on the CPU: `park` is the sequence id parked
    cells go to (the context has one sequence more than slots)."""

    ordered = True

    def __init__(self, slots: int) -> None:
        super().__init__()  # filling: the slot whose prompt is being prefilled
        self.park = slots
        self.parked = False  # the park sequence holds cells
        self.roots = list(range(slots))  # slots with equal roots share their first share[slot] cells
        self.share = [0] * slots
        self._next_root = slots
        self.compactions = 0

    def own(self, slot: int, share: int) -> None:
        """`slot`'s prompt cells are its own (prefilled, or kept from an earlier problem)."""
        self.roots[slot] = self._next_root
        self._next_root += 1
        self.share[slot] = share

    def copied(self, slot: int, sibling: int, share: int) -> None:
        """`slot`'s first `share` cells are `sibling`'s (llama_memory_seq_cp)."""
        self.roots[slot] = self.roots[sibling]
        self.share[slot] = share

    def drop(self, mem: Any, seq: int, p0: int) -> bool:
        """Take positions >= p0 (-1: all) from `seq`; cells no other sequence holds are parked."""
        import llama_cpp

        if llama_cpp.llama_memory_seq_pos_max(mem, seq) >= max(p0, 0):
            llama_cpp.llama_memory_seq_cp(mem, seq, self.park, p0, -1)
            self.parked = True
        return bool(llama_cpp.llama_memory_seq_rm(mem, seq, p0, -1))

    def compact(self, ctx: Any, slot_tokens: list[list[int]], holders: set[int]) -> None:
        """Free the parked cells: the cells of every sample started and not yet released
        (`holders`) out to a file, the pool cleared, and back in, slot by slot; an idle slot's
        kept prompt is dropped (slot_tokens emptied)."""
        import llama_cpp

        mem = llama_cpp.llama_get_memory(ctx)
        llama_cpp.llama_memory_seq_rm(mem, self.park, -1, -1)
        self.parked = False
        kept = sorted(s for s in holders | ({self.filling} if self.filling is not None else set())
                      if llama_cpp.llama_memory_seq_pos_max(mem, s) >= 0)
        groups: dict[int, list[int]] = {}
        for slot in kept:
            groups.setdefault(self.roots[slot], []).append(slot)
        with tempfile.TemporaryDirectory(prefix="mathsolve-kv-") as tmp:
            saved: list[tuple[int, str | None, int | None]] = []  # (slot, file, lead it shares)
            for slots in groups.values():
                lead = max(slots, key=lambda s: self.share[s])  # holds the longest shared prompt
                saved.append((lead, _save(ctx, tmp, lead, lead), None))
                for slot in slots:
                    if slot == lead:
                        continue
                    path = None
                    if llama_cpp.llama_memory_seq_pos_max(mem, slot) >= self.share[slot]:
                        llama_cpp.llama_memory_seq_cp(mem, slot, self.park, self.share[slot], -1)
                        path = _save(ctx, tmp, self.park, slot)
                        llama_cpp.llama_memory_seq_rm(mem, self.park, -1, -1)
                    saved.append((slot, path, lead))
            llama_cpp.llama_memory_clear(mem, False)
            for idle in range(len(slot_tokens)):
                if idle not in kept:
                    slot_tokens[idle] = []
            for back, path, shares in saved:
                if path is not None:
                    _load(ctx, path, back)
                if shares is not None:
                    llama_cpp.llama_memory_seq_cp(mem, shares, back, 0, self.share[back])
        self.compactions += 1


def _save(ctx: Any, folder: str, seq: int, slot: int) -> str:
    import llama_cpp

    path = os.path.join(folder, f"slot{slot}.kv")
    if not llama_cpp.llama_state_seq_save_file(ctx, path.encode(), seq, None, 0):
        raise EngineError(f"could not write the KV cache of a sample to {folder}")
    return path


def _load(ctx: Any, path: str, seq: int) -> None:
    import llama_cpp

    count = ctypes.c_size_t(0)
    tokens = (llama_cpp.llama_token * 1)()
    if not llama_cpp.llama_state_seq_load_file(ctx, path.encode(), seq, tokens, 1, ctypes.byref(count)):
        raise EngineError("could not read back a sample's KV cache while compacting the pool")
