"""Engine: the llama.cpp context (scheduler.Slots): prefill, one decode a step, a token a row.

engine.Engine makes one LlamaContext when it loads and holds it: the llama_context and its
batch, the sampler chains the graph holds, the abort flag, and the KV cache's owner
(kv.KVCache), which it asks for a slot's cells. scheduler.Scheduler drives it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mathsolve.config import EngineConfig, SamplerPath
from mathsolve.engine.local.draw import RowSampler
from mathsolve.engine.local.kv import KV_PAD, KVCache, round_up
from mathsolve.engine.local.samples import InterruptibleDecode, SampleState, Vocabulary, sampler_chain
from mathsolve.engine.protocol import Job
from mathsolve.errors import EngineError

PROMPT_CHUNK = 512  # tokens per prefill llama_decode (= n_batch)


class LlamaContext:
    """A llama.cpp context of n_seq_max sequences (slots), made when a run needs one and made
    again only when it must grow, and what runs on its slots (scheduler.Slots).

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
        self._ctx_graph = False
        self.kv = KVCache(model, cfg.kv_type, gpu=gpu_offload, budget=cfg.kv_budget, warn=warn)
        self._batch: Any = None
        self._outputs: list[int] = []  # the batch index of each row's output in the last decode_rows
        self._attached: dict[int, object] = {}  # graph path: the chain llama.cpp holds per slot
        self._refused_noted = False
        self._rows = RowSampler(n_vocab, threads)
        self._abort: tuple[Any, Any] | None = None  # (native.flag_abort_callback, its flag buffer)
        self.prefilled = 0  # prompt tokens evaluated by prefill since the run began (Engine.run resets it)

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
        return cells * self.kv.bytes_per_cell

    def kv_description(self) -> str:
        """What KV cache the last run chose, and why, in words (-v)."""
        import llama_cpp

        return self.kv.describe(llama_cpp.llama_n_ctx(self._ctx) if self._ctx is not None else 0)

    # ---- the context ---------------------------------------------------------------------------

    def ensure_context(self, seqs: int, need: int, *, graph: bool) -> int:
        """A context with >= seqs slots of >= need cells each (a stream per slot); returns the
        slots usable."""
        import llama_cpp

        cells = round_up(need, KV_PAD)
        if (self._ctx is not None and self.kv.streams >= seqs and self._ctx_graph == graph
                and self.kv.cells >= cells):
            return seqs
        self._free_context()
        while True:
            params = llama_cpp.llama_context_default_params()
            params.n_ctx = cells * seqs
            params.n_seq_max = seqs
            params.n_batch = max(PROMPT_CHUNK, seqs)
            params.n_ubatch = max(PROMPT_CHUNK, seqs)
            params.n_threads = self._threads
            params.n_threads_batch = self._threads
            params.kv_unified = False
            if self._cfg.kv_type == "q8_0":  # a quantised V cache needs flash attention
                params.type_k = params.type_v = llama_cpp.GGML_TYPE_Q8_0
                params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
            params.no_perf = True
            if graph:  # one output per slot and step: the in-graph RNG advances per draw
                params.n_outputs_max_per_seq = 1
            ctx = llama_cpp.llama_init_from_model(self._model, params)
            if ctx is not None:
                break
            if seqs == 1:
                raise EngineError(
                    f"llama.cpp could not allocate a context of {cells} tokens; "
                    "lower --ctx or --max-tokens"
                )
            seqs = max(1, seqs // 2)
            self._warn(f"not enough memory for the KV cache; decoding {seqs} samples at a time")
            self.kv.reason = f"llama.cpp could allocate {seqs}"
        self._ctx, self._ctx_graph = ctx, graph
        self.kv.attach(ctx, seqs, llama_cpp.llama_n_ctx_seq(ctx))
        self._install_abort()
        self._rows.forget_logits()
        self._batch = llama_cpp.llama_batch_init(max(PROMPT_CHUNK, seqs), 0, 1)
        if self._cfg.verbose:  # said once a context made (a reused one was said when made)
            self._warn(self.kv_description())
        return seqs

    def _install_abort(self) -> None:
        """abort() stops a llama_decode between two graph nodes: the context reads a flag byte."""
        import ctypes

        import llama_cpp

        from mathsolve.engine.local.native import flag_abort_callback

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
        self.kv.detach()

    # ---- slots (scheduler.Slots) ----------------------------------------------------------------

    def best_slot(self, free: list[int], prefix: list[int]) -> int:
        return self.kv.best_slot(free, prefix)

    def prepare_slot(self, slot: int, prompt: list[int], sibling: SampleState | None) -> float:
        """Make `slot` hold the KV of prompt[:-1] (what the KVCache cannot give, prefilled);
        returns the seconds spent prefilling."""
        want = prompt[:-1]
        common = self.kv.take(slot, want, sibling.seq_id if sibling is not None else None)
        if common == len(want):
            self.kv.filled(slot, want)
            return 0.0
        start = time.perf_counter()
        try:
            with InterruptibleDecode(self._ctx, self._abort):
                self._prefill(slot, want, common)
        except BaseException:  # Ctrl-C or a failed decode: the slot's KV is not known to be whole
            self.kv.clear(slot)
            raise
        self.kv.filled(slot, want)
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
        limit = min(self._cfg.n_ctx, self.kv.cells)
        chain = None
        if path != "vector":
            chain = sampler_chain(sampling)
            if path == "graph":
                self._attach(slot, chain)
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
        room = max(PROMPT_CHUNK, self.kv.streams) - len(rows)
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
        self._decode()

    def sample_rows(self, rows: list[SampleState], path: SamplerPath) -> list[int]:
        return self._rows.sample(self._ctx, self.kv.streams, self._outputs, rows, path)

    def release(self, seq: SampleState) -> None:
        """A sample left the batch: its slot keeps only the prompt (for the next sample)."""
        import llama_cpp

        if seq.chain is not None and self._attached.get(seq.seq_id) is not seq.chain:
            llama_cpp.llama_sampler_free(seq.chain)  # an attached chain is freed when replaced
        seq.chain = None
        self.kv.release(seq.seq_id)

    def _decode(self) -> None:
        import llama_cpp

        rc = llama_cpp.llama_decode(self._ctx, self._batch)
        if rc == 2:  # aborted: Ctrl-C during a long prompt (InterruptibleDecode), or abort()
            raise KeyboardInterrupt
        if rc != 0:
            raise EngineError(f"llama_decode failed (code {rc}); try a smaller --ctx or --samples")

