"""Engine: the llama.cpp context's slots (batch.Slots): sizing, prefill, one decode a step.

engine.llama.Engine makes one SlotContext when it loads and holds it: the context, its batch,
the KV sizing and the state of the slots live here, and batch.Scheduler drives them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mathsolve.config import EngineConfig, SamplerPath
from mathsolve.engine import sizing
from mathsolve.engine.decode import InterruptibleDecode, PoolFull, SampleState, Vocabulary, sampler_chain
from mathsolve.engine.layout import FreeCells, PoolLayout
from mathsolve.engine.protocol import Job
from mathsolve.engine.rows import RowSampler
from mathsolve.errors import EngineError

PROMPT_CHUNK = 512  # tokens per prefill llama_decode (= n_batch)
RESTORE_CHUNK = 32  # restore() on the CPU: under llama.cpp's 64-row attention tile, as decode did


class SlotContext:
    """A llama.cpp context of n_seq_max sequences (slots), made when a run needs one and made
    again only when it must grow, and what runs on its slots (batch.Slots).

    `model` is the engine's llama_model pointer (the engine frees it, after close()) and
    `vocab` its vocabulary; the rest is how the engine was configured and loaded."""

    def __init__(self, cfg: EngineConfig, model: Any, vocab: Vocabulary, *, n_vocab: int,
                 threads: int, gpu_offload: bool, warn: Callable[[str], None]) -> None:
        # llama.cpp's pointers and structs are Any: llama_cpp declares its pointer types as
        # NewType(int) but hands out ctypes objects, and its ctypes functions are untyped to mypy.
        self._cfg = cfg
        self._model = model
        self._vocab = vocab
        self._threads = threads
        self._gpu_offload = gpu_offload
        self._warn = warn
        self._ctx: Any = None
        self._ctx_seqs = 0
        self._ctx_cells = 0
        self._ctx_graph = False
        self._ctx_pool: int | None = None  # cells of the unified pool; None: a stream per slot
        self._layout: FreeCells = FreeCells()  # PoolLayout for a pool on the CPU (layout.py)
        self._busy: set[int] = set()  # slots of samples started and not yet released
        self._batch: Any = None
        self._outputs: list[int] = []  # the batch index of each row's output in the last decode_rows
        self._slot_tokens: list[list[int]] = []  # per slot: the tokens whose KV it holds
        self._attached: dict[int, object] = {}  # graph path: the chain llama.cpp holds per slot
        self._refused_noted = False
        self._rows = RowSampler(n_vocab, threads)
        self._abort: tuple[Any, Any] | None = None  # (native.flag_abort_callback, its flag buffer)
        self.prefilled = 0  # prompt tokens evaluated by prefill since the run began (Engine.run resets it)
        self.prompts_dropped = 0  # preempted samples that gave up their prompt's cells too (tests)

    def close(self) -> None:
        """Free the context, its batch and sampler chains, and the vector sampler's threads."""
        self._free_context()
        self._rows.close()

    # ---- what the context holds (Engine's diagnostics) -----------------------------------------

    @property
    def kv_bytes(self) -> int:
        """Bytes of KV cache the current context holds (0 before the first run)."""
        import llama_cpp

        if self._ctx is None:
            return 0
        cells: int = llama_cpp.llama_n_ctx(self._ctx)
        return cells * self.kv_bytes_per_cell()

    def kv_description(self) -> str:
        """What KV cache the last run chose, in words (-v)."""
        gb = self.kv_bytes / 1e9
        if self._ctx_pool is not None:
            return (f"KV cache: one unified pool of {self._ctx_pool} tokens ({gb:.2f} GB, "
                    f"{self._cfg.kv_type}) shared by up to {self._ctx_seqs} samples; the youngest "
                    "is preempted when it fills")
        return (f"KV cache: a stream of {self._ctx_cells} tokens per sample x {self._ctx_seqs} "
                f"({gb:.2f} GB, {self._cfg.kv_type})")

    @property
    def compactions(self) -> int:
        """Times the pool was compacted (layout.py) since the context was made."""
        return self._layout.compactions

    def kv_sequence_lengths(self) -> list[int]:
        """KV cells held per slot (diagnostics: a free slot holds at most its prompt)."""
        import llama_cpp

        if self._ctx is None:
            return []
        mem = llama_cpp.llama_get_memory(self._ctx)
        return [llama_cpp.llama_memory_seq_pos_max(mem, s) + 1 for s in range(self._ctx_seqs)]

    def forget_prefixes(self) -> None:
        """Drop every slot's kept prompt, so the next prompt is evaluated whole (benchmarks)."""
        import llama_cpp

        if self._ctx is not None:
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self._ctx), True)
        self._slot_tokens = [[] for _ in self._slot_tokens]
        self._layout.parked = False

    # ---- sizing and the context --------------------------------------------------------------

    def kv_bytes_per_cell(self) -> int:
        """Bytes of K and V one token takes in this model's cache (sizing.kv_bytes_per_cell)."""
        return sizing.kv_bytes_per_cell(self._model, self._cfg.kv_type)

    def kv_plan(self, wanted: int, need: int) -> int | None:
        """The unified pool's cells for `wanted` samples of up to `need` tokens, or None for
        per-sample streams (sizing.kv_plan; the tests' kv_budget_tokens keeps streams)."""
        if self._cfg.kv_budget_tokens:
            return None
        cells = sizing.round_up(need, sizing.KV_PAD)
        per_cell, budget = self.kv_bytes_per_cell(), self._cfg.kv_budget
        pool = sizing.kv_plan(wanted, cells, per_cell, gpu=self._gpu_offload, budget_bytes=budget)
        if pool is not None and budget is not None and pool * per_cell > budget:
            raise EngineError(f"--kv-budget {budget / 1e9:.2f} GB holds {budget // per_cell} "
                              f"tokens of KV, one sample needs {cells}; raise it or lower --ctx")
        return pool

    def fit(self, wanted: int, need: int, widest: int) -> int:
        """Slots of `need` tokens that fit in memory (or in kv_budget_tokens), at most `wanted`."""
        cells = sizing.round_up(need, sizing.KV_PAD)
        slots = sizing.sequences_that_fit(wanted, cells, self.kv_bytes_per_cell(),
                                          gpu=self._gpu_offload,
                                          budget_cells=self._cfg.kv_budget_tokens or None)
        if slots < widest:
            self._warn(f"the KV cache for {widest} samples x {need} tokens does not fit; "
                       f"decoding them in groups of {slots}")
        return slots

    def ensure_context(self, seqs: int, need: int, *, graph: bool, pool: int | None = None) -> int:
        """A context with >= seqs slots of >= need cells each (a stream per slot), or with
        `pool` cells that seqs slots share (unified); returns the slots usable."""
        import llama_cpp

        cells = sizing.round_up(need, sizing.KV_PAD)
        same_kind = (pool is None) == (self._ctx_pool is None)
        big_enough = self._ctx_cells >= cells and (pool is None or (self._ctx_pool or 0) >= pool)
        if (self._ctx is not None and self._ctx_seqs >= seqs and self._ctx_graph == graph
                and same_kind and big_enough):
            return seqs
        self._free_context()
        while True:
            params = llama_cpp.llama_context_default_params()
            params.n_ctx = pool or cells * seqs
            ordered = pool is not None and not self._gpu_offload
            params.n_seq_max = seqs + 1 if ordered else seqs  # + the sequence parked cells go to
            params.n_batch = max(PROMPT_CHUNK, seqs)
            params.n_ubatch = max(PROMPT_CHUNK, seqs)
            params.n_threads = self._threads
            params.n_threads_batch = self._threads
            params.kv_unified = pool is not None
            if self._cfg.kv_type == "q8_0":  # a quantised V cache needs flash attention
                params.type_k = params.type_v = llama_cpp.GGML_TYPE_Q8_0
                params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
            params.no_perf = True
            if graph:  # one output per slot and step: the in-graph RNG advances per draw
                params.n_outputs_max_per_seq = 1
            ctx = llama_cpp.llama_init_from_model(self._model, params)
            if ctx is not None:
                break
            if pool is not None:
                raise EngineError(f"llama.cpp could not allocate a KV pool of {pool} tokens; "
                                  "lower --kv-budget, --ctx or --samples")
            if seqs == 1:
                raise EngineError(
                    f"llama.cpp could not allocate a context of {cells} tokens; "
                    "lower --ctx or --max-tokens"
                )
            seqs = max(1, seqs // 2)
            self._warn(f"not enough memory for the KV cache; decoding in groups of {seqs}")
        self._ctx, self._ctx_seqs, self._ctx_graph, self._ctx_pool = ctx, seqs, graph, pool
        self._layout = PoolLayout(seqs) if ordered else FreeCells()
        self._install_abort()
        self._rows.forget_logits()
        self._ctx_cells = llama_cpp.llama_n_ctx_seq(ctx)  # unified: the whole pool
        self._batch = llama_cpp.llama_batch_init(max(PROMPT_CHUNK, seqs), 0, 1)
        self._slot_tokens = [[] for _ in range(seqs)]
        if self._cfg.verbose:  # said once a context made (a reused one was said when made)
            self._warn(self.kv_description())
        return seqs

    def _install_abort(self) -> None:
        """abort() stops a llama_decode between two graph nodes: the context reads a flag byte."""
        import ctypes

        import llama_cpp

        from mathsolve.engine.native import flag_abort_callback

        callback = flag_abort_callback()
        if callback is None:
            return
        if self._abort is None:
            self._abort = (callback, ctypes.create_string_buffer(2))
        llama_cpp.llama_set_abort_callback(self._ctx, callback, self._abort[1])

    def abort(self) -> None:
        """From any thread: the decode running now (or the next one) returns at once and the
        generate call raises GenerationInterrupted (an MCP request cancelled). Cleared when the
        next generate call starts (rearm)."""
        if self._abort is not None:
            self._abort[1][0] = b"\x01"

    def rearm(self) -> None:
        """A new run starts: an abort() of an earlier call is spent."""
        if self._abort is not None:
            self._abort[1][0] = b"\x00"

    def _free_context(self) -> None:
        import llama_cpp

        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx is not None:
            for slot in list(self._attached):
                llama_cpp.llama_set_sampler(self._ctx, slot, None)
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        for chain in self._attached.values():
            llama_cpp.llama_sampler_free(chain)
        self._attached = {}
        self._slot_tokens = []
        self._busy = set()

    # ---- slots (batch.Slots) -------------------------------------------------------------------

    def best_slot(self, free: list[int], prefix: list[int]) -> int:
        """The free slot already holding the longest part of `prefix` (lowest id on ties)."""
        return max(free, key=lambda s: (_common_prefix(self._slot_tokens[s], prefix), -s))

    def prepare_slot(self, slot: int, prompt: list[int], sibling: SampleState | None) -> float:
        """Make `slot` hold the KV of prompt[:-1]; returns the seconds spent prefilling."""
        import llama_cpp

        want = prompt[:-1]
        mem = llama_cpp.llama_get_memory(self._ctx)
        layout = self._layout
        common = _common_prefix(self._slot_tokens[slot], want)
        if common < len(want) and sibling is not None:  # a running sibling holds the prompt
            layout.drop(mem, slot, -1)
            upto = len(want) if self._ctx_pool is not None else -1  # streams copy whole (then cut)
            llama_cpp.llama_memory_seq_cp(mem, sibling.seq_id, slot, 0 if upto > 0 else -1, upto)
            common = len(want)
            layout.copied(slot, sibling.seq_id, len(want))
        elif common < len(want) or len(self._slot_tokens[slot]) != len(want):
            layout.own(slot, len(want))  # prefilled here, or a longer kept prompt cut back
        if not layout.drop(mem, slot, common):
            layout.drop(mem, slot, -1)
            common = 0
        self._slot_tokens[slot] = want[:common]
        if common == len(want):
            self._slot_tokens[slot] = list(want)
            return 0.0
        start = time.perf_counter()
        layout.filling = slot
        try:
            with InterruptibleDecode(self._ctx, self._abort):
                self._prefill(slot, want, common)
        except BaseException:  # Ctrl-C or a failed decode: the slot's KV is not known to be whole
            layout.drop(mem, slot, -1)
            self._slot_tokens[slot] = []
            raise
        finally:
            layout.filling = None
        self._slot_tokens[slot] = list(want)
        self.prefilled += len(want) - common
        return time.perf_counter() - start

    def _prefill(self, slot: int, tokens: list[int], at: int, chunk_size: int = PROMPT_CHUNK) -> None:
        """Evaluate tokens[at:] on `slot` in chunks; no logits are needed."""
        b = self._batch
        starts = list(range(at, len(tokens), chunk_size))
        if len(starts) > 1 and len(tokens) - starts[-1] == 1:
            starts[-1] -= 1  # no last chunk of one token: llama.cpp splits a lone token's attention (README)
        for k, first in enumerate(starts):
            chunk = tokens[first:starts[k + 1] if k + 1 < len(starts) else len(tokens)]
            for i, tok in enumerate(chunk):
                b.token[i] = tok
                b.pos[i] = first + i
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = slot
                b.logits[i] = 0
            b.n_tokens = len(chunk)
            self._decode()

    def new_sample(self, job: Job, index: int, slot: int, path: SamplerPath) -> SampleState:
        sampling = job.samplings[index]
        limit = min(self._cfg.n_ctx, self._ctx_cells)
        chain = None
        if path != "vector":
            chain = sampler_chain(sampling)
            if path == "graph":
                self._attach(slot, chain)
        self._busy.add(slot)
        return SampleState(self._vocab, job, index, slot, min(sampling.max_tokens, limit - len(job.tokens)),
                           chain)

    def _attach(self, slot: int, chain: object) -> None:
        """Hand the chain to llama.cpp's graph for this slot; llama.cpp may refuse, and then the
        same chain samples on the CPU (llama_sampler_sample does both)."""
        import llama_cpp

        old = self._attached.pop(slot, None)
        if llama_cpp.llama_set_sampler(self._ctx, slot, chain):
            self._attached[slot] = chain
        elif not self._refused_noted:
            self._refused_noted = True
            self._warn("llama.cpp refused to sample inside its graph; sampling on the CPU")
        if old is not None:
            llama_cpp.llama_sampler_free(old)

    def decode_rows(self, rows: list[SampleState]) -> None:
        """One new token for every running sample, all in one llama_decode. A sample steered
        at its budget has its cue decoded in the same call (one output, after the cue's
        last token), while the batch has room; the rest of a cue goes a token a step."""
        b = self._batch
        room = max(PROMPT_CHUNK, self._ctx_seqs) - len(rows)
        n = 0
        self._outputs = []
        for seq in rows:
            feed = seq.feed(room)
            room -= len(feed)
            for j, tok in enumerate([seq.next_input, *feed]):
                b.token[n] = tok
                b.pos[n] = seq.pos + j
                b.n_seq_id[n] = 1
                b.seq_id[n][0] = seq.seq_id
                b.logits[n] = int(j == len(feed))
                n += 1
            self._outputs.append(n - 1)
        b.n_tokens = n
        try:
            self._decode()
        except PoolFull:
            for seq in rows:
                seq.unfeed()
            raise

    def sample_rows(self, rows: list[SampleState], path: SamplerPath) -> list[int]:
        return self._rows.sample(self._ctx, self._ctx_seqs, self._outputs, rows, path)

    def release(self, seq: SampleState) -> None:
        """A sample left the batch: its slot keeps only the prompt (for the next sample)."""
        import llama_cpp

        if seq.chain is not None and self._attached.get(seq.seq_id) is not seq.chain:
            llama_cpp.llama_sampler_free(seq.chain)  # an attached chain is freed when replaced
        seq.chain = None
        if self._ctx is None:
            return
        keep = len(self._slot_tokens[seq.seq_id])
        mem = llama_cpp.llama_get_memory(self._ctx)
        if self._ctx_pool is not None and seq.job.started >= len(seq.job.samplings):
            keep = 0  # a pool keeps no prompt that no sample of its problem will start from
            self._slot_tokens[seq.seq_id] = []
        self._busy.discard(seq.seq_id)
        self._layout.drop(mem, seq.seq_id, keep)

    def evict(self, seq: SampleState) -> None:
        """Preemption (the pool is full): free the sample's generated cells; its prompt's
        cells stay (a sibling shares them). restore() brings the rest back."""
        self._drop(seq.seq_id, seq.n_prompt - 1)

    def evict_prompt(self, seq: SampleState) -> bool:
        """A preempted sample gives up its prompt's cells too (a lone running sample needs
        them); restore() prefills the prompt again. False when it held none."""
        if not self._slot_tokens[seq.seq_id]:
            return False
        self._drop(seq.seq_id, -1)
        self._slot_tokens[seq.seq_id] = []
        self.prompts_dropped += 1
        return True

    def _drop(self, seq_id: int, p0: int) -> None:  # positions >= p0 (-1: all): freed, or parked
        import llama_cpp

        self._layout.drop(llama_cpp.llama_get_memory(self._ctx), seq_id, p0)

    def restore(self, seq: SampleState) -> None:
        """A preempted sample's cells again: its last prompt token and its tokens so far,
        prefilled in chunks (the next token it decodes is seq.next_input, as before); on the
        CPU in chunks small enough that its cells come back as its decode steps made them."""
        full = seq.job.tokens + seq.ids
        chunk = RESTORE_CHUNK if self._layout.ordered else PROMPT_CHUNK
        start = 0 if not self._slot_tokens[seq.seq_id] else seq.n_prompt - 1  # 0: evict_prompt took it
        try:
            with InterruptibleDecode(self._ctx, self._abort):
                if start == 0:  # the prompt again, as it was first made
                    self._layout.own(seq.seq_id, seq.n_prompt - 1)
                    self._prefill(seq.seq_id, full[:seq.n_prompt - 1], 0)
                    self._slot_tokens[seq.seq_id] = list(seq.job.tokens[:-1])
                self._prefill(seq.seq_id, full[:seq.pos], seq.n_prompt - 1, chunk)
        except BaseException:  # what it holds now is not known whole: back to as it was
            self._drop(seq.seq_id, -1 if not self._slot_tokens[seq.seq_id] else seq.n_prompt - 1)
            raise
        self.prefilled += seq.pos - start

    def _decode(self) -> None:
        import llama_cpp

        rc = llama_cpp.llama_decode(self._ctx, self._batch)
        if rc == 1 and self._layout.parked:
            self._layout.compact(self._ctx, self._slot_tokens, self._busy)  # the parked cells free, in order
            rc = llama_cpp.llama_decode(self._ctx, self._batch)
        if rc == 2:  # aborted: Ctrl-C during a long prompt (InterruptibleDecode), or abort()
            raise KeyboardInterrupt
        if rc == 1 and self._ctx_pool is not None:  # nothing decoded, the cache as it was
            raise PoolFull()
        if rc != 0:
            raise EngineError(f"llama_decode failed (code {rc}); try a smaller --ctx or --samples")


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
