"""llama.cpp engine: load a GGUF, then decode many samples of one or many prompts as one batch.

Built on llama-cpp-python's low-level API because the high-level `Llama` decodes a single
sequence. batch.Scheduler decides which sample runs on which sequence (slot) and when; this
module does what touches llama.cpp, in named steps:

* `prepare_slot`: give a slot the prompt's KV minus its last token (kept from an earlier
  sample, copied from a running sibling, or prefilled in chunks that Ctrl-C can stop);
* `decode_rows`: one token of every running sample in one `llama_decode`;
* `sample_rows`: a token per row, on one of three paths (see `choose_path`): "graph"
  (llama.cpp samples inside its compute graph, so only token ids leave the GPU), "vector"
  (sampling.BatchSampler: every row at once with numpy, on all cores) or "chain" (llama.cpp's
  sampler chain per sample on the CPU);
* `release`: a finished sample's slot is trimmed back to its prompt and is free again.

The KV cache is not unified: each slot has a stream of its own, so attention per sample does
not grow with the number of samples.
"""

from __future__ import annotations

import ctypes
import functools
import time
from pathlib import Path
from typing import Callable

from . import sizing
from .batch import OnDone, Scheduler
from .config import STOP_TOKENS, EngineConfig, SamplingConfig
from .decode import (Completion, GenerationInterrupted, InterruptibleDecode, Job, OnEvent,
                     SampleState, StopWhen, TextEvent, sampler_chain, unstarted)
from .errors import EngineError, InputError, ModelError
from .sizing import physical_cores
from .stream import think_open_at_end

__all__ = ["Completion", "Engine", "GenerationInterrupted", "Job", "TextEvent", "physical_cores"]

GGUF_MAGIC = b"GGUF"
# llama.cpp's CPU threads (GNU OpenMP) spin 300,000 times before they sleep: on a small
# machine the spinning thread takes the core our sampler's second thread needs between two
# decodes. 30,000 keeps llama.cpp's own speed (llama-batched-bench alike) and frees the core
# sooner. Read once, when llama.cpp loads; a value the user set wins.
OPENMP_SPIN = ("GOMP_SPINCOUNT", "30000")
PROMPT_CHUNK = 512  # tokens per prefill llama_decode (= n_batch)
PATHS = ("auto", "graph", "vector", "chain")

Warn = Callable[[str], None]


@functools.lru_cache(maxsize=1)
def _silent_log_callback():
    """The no-op llama.cpp log callback; cached so it lives as long as the process."""
    import llama_cpp

    @llama_cpp.llama_log_callback
    def _ignore(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        return None

    return _ignore


def _set_logging(verbose: bool) -> None:
    import llama_cpp
    import llama_cpp._logger as lcpp_logger

    if verbose:
        lcpp_logger.set_verbose(True)
        llama_cpp.llama_log_set(lcpp_logger.llama_log_callback, ctypes.c_void_p(0))
    else:
        llama_cpp.llama_log_set(_silent_log_callback(), ctypes.c_void_p(0))


def check_gguf_file(path: Path,
                    fix: str = "pass a .gguf model or re-run `mathsolve pull`") -> None:
    """Cheap checks before llama.cpp sees the file, for clear messages; `fix` says what to do."""
    if not path.exists():
        raise ModelError(f"model file not found: {path}; pass a .gguf path or run `mathsolve pull`")
    if not path.is_file():
        raise ModelError(f"model path is not a file: {path}; pass a .gguf file")
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror}; {fix}") from exc
    if head != GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF file (bad magic {head!r}); {fix}")


class Engine:
    """A loaded model plus one llama.cpp context, recreated only when it must grow."""

    def __init__(self, cfg: EngineConfig, model, *, load_seconds: float, gpu_offload: bool,
                 warn: Warn | None) -> None:
        import llama_cpp

        if cfg.sampler not in PATHS:
            raise EngineError(f"unknown sampler {cfg.sampler!r}: choose one of {', '.join(PATHS)}")
        self._cfg = cfg
        self._model = model
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._load_seconds = load_seconds
        self._gpu_offload = gpu_offload
        self._warn = warn or (lambda message: None)
        self._threads = cfg.n_threads or physical_cores()
        self._ctx = None
        self._ctx_seqs = 0
        self._ctx_cells = 0
        self._ctx_graph = False
        self._batch = None
        self._slot_tokens: list[list[int]] = []  # per slot: the tokens whose KV it holds
        self._attached: dict[int, object] = {}  # graph path: the chain llama.cpp holds per slot
        self._last_prefill = 0
        self._last_path = ""
        self._refused_noted = False
        self._vector = None
        self._logits: tuple | None = None  # (address, numpy view) of llama.cpp's logits buffer
        self._pieces: dict[int, bytes] = {}
        self._stops: dict[int, bool] = {}
        self._stop_ids = self._find_stop_ids()

    # ---- loading -------------------------------------------------------------------------

    @classmethod
    def load(cls, cfg: EngineConfig, *, warn: Warn | None = None) -> "Engine":
        """Load with every layer on the GPU when the build can; fall back to CPU with a warning."""
        import os

        os.environ.setdefault(*OPENMP_SPIN)  # before llama.cpp (and OpenMP) loads
        import llama_cpp

        path = Path(cfg.model_path)
        check_gguf_file(path)
        if cfg.n_ctx < 16:
            raise EngineError(f"context of {cfg.n_ctx} tokens is too small; use --ctx 512 or more")
        llama_cpp.llama_backend_init()
        _set_logging(cfg.verbose)
        start = time.perf_counter()
        want_gpu = bool(cfg.gpu) and bool(llama_cpp.llama_supports_gpu_offload())
        model = _load_model(path, gpu=want_gpu)
        if model is None and want_gpu:
            if warn:
                warn(f"loading {path.name} on the GPU failed (out of memory?); running on the CPU")
            want_gpu = False
            model = _load_model(path, gpu=False)
        if model is None:
            raise ModelError(
                f"llama.cpp could not load {path} (truncated or corrupt GGUF?); "
                "re-run `mathsolve pull` or pass another file (--verbose shows llama.cpp's log)"
            )
        return cls(cfg, model, load_seconds=time.perf_counter() - start, gpu_offload=want_gpu,
                   warn=warn)

    def close(self) -> None:
        import llama_cpp

        self._free_context()
        if self._vector is not None:
            self._vector.close()
            self._vector = None
        if self._model is not None:
            llama_cpp.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # ---- properties ----------------------------------------------------------------------

    @property
    def chat_template(self) -> str:
        import llama_cpp

        raw = llama_cpp.llama_model_chat_template(self._model, None)
        if not raw:
            raise ModelError(
                f"{self.model_path} has no tokenizer.chat_template; re-convert it with `mathsolve pull`"
            )
        return raw.decode("utf-8", errors="replace")

    @property
    def load_seconds(self) -> float:
        return self._load_seconds

    @property
    def n_ctx(self) -> int:
        return self._cfg.n_ctx

    @property
    def model_path(self) -> str:
        return str(self._cfg.model_path)

    @property
    def gpu_offload(self) -> bool:
        return self._gpu_offload

    @property
    def n_threads(self) -> int:
        return self._threads

    @property
    def last_prefill_tokens(self) -> int:
        """Prompt tokens the last run evaluated by prefill (the rest came from prefix reuse)."""
        return self._last_prefill

    @property
    def last_sampler_path(self) -> str:
        """The sampling path of the last run: "graph", "vector" or "chain"."""
        return self._last_path

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

    def logits_of(self, tokens: list[int]):  # noqa: ANN201 - a numpy array
        """The logits after each of `tokens` (len x vocab), from a context of their own: what
        the model says at each step, to check what the samplers drew (tests, diagnostics)."""
        import llama_cpp
        import numpy as np

        n = len(tokens)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = sizing.round_up(n + 1, sizing.KV_PAD)
        params.n_batch = params.n_ubatch = max(PROMPT_CHUNK, n)
        params.n_seq_max = 1
        params.n_threads = params.n_threads_batch = self._threads
        ctx = llama_cpp.llama_init_from_model(self._model, params)
        if ctx is None:
            raise EngineError(f"llama.cpp could not allocate a context of {n} tokens")
        batch = llama_cpp.llama_batch_init(n, 0, 1)
        try:
            for i, tok in enumerate(tokens):
                batch.token[i], batch.pos[i], batch.n_seq_id[i] = tok, i, 1
                batch.seq_id[i][0], batch.logits[i] = 0, 1
            batch.n_tokens = n
            if llama_cpp.llama_decode(ctx, batch) != 0:
                raise EngineError("llama_decode failed while computing logits")
            return np.ctypeslib.as_array(llama_cpp.llama_get_logits(ctx),
                                         shape=(n, self._n_vocab)).copy()
        finally:
            llama_cpp.llama_batch_free(batch)
            llama_cpp.llama_free(ctx)

    # ---- text ----------------------------------------------------------------------------

    def render(self, problem: str, think: bool = True) -> str:
        from .prompt import render_prompt

        return render_prompt(self.chat_template, problem, think=think)

    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text`: no BOS added, special tokens such as <|im_start|> parsed."""
        import llama_cpp

        data = text.encode("utf-8")
        size = len(data) + 8
        while True:
            buf = (llama_cpp.llama_token * size)()
            n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, size, False, True)
            if n >= 0:
                return list(buf[:n])
            size = -n

    def token_bytes(self, token: int) -> bytes:
        """The raw bytes of one token (special tokens rendered), possibly half a character."""
        piece = self._pieces.get(token)
        if piece is None:
            import llama_cpp

            buf = ctypes.create_string_buffer(64)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, 64, 0, True)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, -n, 0, True)
            piece = self._pieces[token] = buf.raw[:n]
        return piece

    def is_stop(self, token: int) -> bool:
        stop = self._stops.get(token)
        if stop is None:
            import llama_cpp

            stop = token in self._stop_ids or bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))
            self._stops[token] = stop
        return stop

    def _find_stop_ids(self) -> frozenset[int]:
        ids = set()
        for text in STOP_TOKENS:
            toks = self.tokenize(text)
            if len(toks) == 1:
                ids.add(toks[0])
        return frozenset(ids)

    def prompt_tokens(self, prompt: str) -> list[int]:
        """The prompt's tokens, or an InputError when it is empty or does not fit the context."""
        tokens = self.tokenize(prompt)
        if not tokens:
            raise InputError("the prompt is empty; give a problem to solve")
        if len(tokens) >= self._cfg.n_ctx:
            raise InputError(
                f"the prompt is {len(tokens)} tokens but the context holds {self._cfg.n_ctx}; "
                "shorten the problem or raise --ctx"
            )
        return tokens

    # ---- generation ----------------------------------------------------------------------

    def generate(self, prompt: str, sampling: SamplingConfig, *,
                 on_event: OnEvent | None = None) -> Completion:
        return self.generate_many(prompt, [sampling], on_event=on_event)[0]

    def generate_many(self, prompt: str, samplings: list[SamplingConfig], *,
                      on_event: OnEvent | None = None,
                      stop_when: StopWhen | None = None) -> list[Completion]:
        """K samples of one prompt, decoded together; sample i follows samplings[i].

        `stop_when(finished)` is asked each time samples finish; when it says True the
        samples still running end with finish_reason "cancelled" (early stop of a vote).
        """
        if not samplings:
            raise EngineError("no samples requested; use --samples 1 or more")
        job = Job(self.prompt_tokens(prompt), list(samplings), think_open_at_end(prompt),
                  on_event, stop_when)
        self.run([job])
        return job.completions()

    def run(self, jobs: list[Job], on_done: OnDone | None = None, *,
            parallel: int | None = None) -> None:
        """Decode every job's samples, several jobs in flight when the slots allow; on_done(job)
        is called as each job finishes (in the order they finish)."""
        jobs = [j for j in jobs if j.samplings]
        if not jobs:
            return
        for job in jobs:
            for s in job.samplings:
                if s.max_tokens < 1:
                    raise EngineError(f"max_tokens must be at least 1, got {s.max_tokens}")
        need = min(self._cfg.n_ctx,
                   max(len(j.tokens) + max(s.max_tokens for s in j.samplings) for j in jobs))
        widest = max(len(j.samplings) for j in jobs)
        wanted = parallel or self._cfg.parallel
        if not wanted:  # one job: its K samples; several: as many samples as make sense
            total = sum(len(j.samplings) for j in jobs)
            wanted = widest if len(jobs) == 1 else max(widest, min(total, self._sequence_cap()))
        path = self.choose_path([s for j in jobs for s in j.samplings])
        slots = self._fit(min(wanted, sizing.MAX_SEQUENCES), need, widest)
        self._last_prefill = 0
        self._last_path = path
        try:
            with InterruptibleDecode(None):  # llama.cpp logs (Python callbacks) here
                slots = self._ensure_context(slots, need, graph=path == "graph")
        except KeyboardInterrupt:
            first = jobs[0]
            raise GenerationInterrupted([unstarted(i, s, len(first.tokens))
                                         for i, s in enumerate(first.samplings)]) from None
        Scheduler(self, slots, path, on_done).run(jobs)

    def _sequence_cap(self) -> int:
        return sizing.MAX_SEQUENCES if self._gpu_offload else sizing.CPU_SEQUENCES

    def choose_path(self, samplings: list[SamplingConfig]) -> str:
        """The sampling path for these samplings (see sampling.choose_path)."""
        import llama_cpp

        from .sampling import choose_path

        return choose_path(self._cfg.sampler, gpu=self._gpu_offload, samplings=samplings,
                           graph_available=hasattr(llama_cpp, "llama_set_sampler"))

    # ---- sizing and the context --------------------------------------------------------------

    def _kv_bytes_per_cell(self) -> int:
        import llama_cpp

        n_layer = llama_cpp.llama_model_n_layer(self._model)
        n_head = max(1, llama_cpp.llama_model_n_head(self._model))
        n_head_kv = llama_cpp.llama_model_n_head_kv(self._model)
        n_embd = llama_cpp.llama_model_n_embd(self._model)
        head_dim = self._meta_int("attention.key_length") or n_embd // n_head
        return 2 * 2 * n_layer * n_head_kv * head_dim  # K and V, f16

    def _meta_int(self, suffix: str) -> int | None:
        arch = self._meta_str("general.architecture")
        value = self._meta_str(f"{arch}.{suffix}") if arch else None
        return int(value) if value and value.isdigit() else None

    def _meta_str(self, key: str) -> str | None:
        import llama_cpp

        buf = ctypes.create_string_buffer(256)
        n = llama_cpp.llama_model_meta_val_str(self._model, key.encode(), buf, 256)
        return buf.value.decode("utf-8", "replace") if n >= 0 else None

    def _fit(self, wanted: int, need: int, widest: int) -> int:
        cells = sizing.round_up(need, sizing.KV_PAD)
        budget = self._cfg.extra.get("kv_budget_tokens")
        slots = sizing.sequences_that_fit(wanted, cells, self._kv_bytes_per_cell(),
                                          gpu=self._gpu_offload,
                                          budget_cells=int(budget) if budget else None)
        if slots < widest:
            self._warn(f"the KV cache for {widest} samples x {need} tokens does not fit; "
                       f"decoding them in groups of {slots}")
        return slots

    def _ensure_context(self, seqs: int, need: int, *, graph: bool) -> int:
        """A context with >= seqs slots of >= need cells; returns the slots usable."""
        import llama_cpp

        cells = sizing.round_up(need, sizing.KV_PAD)
        if (self._ctx is not None and self._ctx_seqs >= seqs and self._ctx_cells >= cells
                and self._ctx_graph == graph):
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
            self._warn(f"not enough memory for the KV cache; decoding in groups of {seqs}")
        self._ctx, self._ctx_seqs, self._ctx_graph = ctx, seqs, graph
        self._logits = None
        self._ctx_cells = llama_cpp.llama_n_ctx_seq(ctx)
        self._batch = llama_cpp.llama_batch_init(max(PROMPT_CHUNK, seqs), 0, 1)
        self._slot_tokens = [[] for _ in range(seqs)]
        return seqs

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

    # ---- slots (batch.Slots) -------------------------------------------------------------------

    def best_slot(self, free: list[int], prefix: list[int]) -> int:
        """The free slot already holding the longest part of `prefix` (lowest id on ties)."""
        return max(free, key=lambda s: (_common_prefix(self._slot_tokens[s], prefix), -s))

    def prepare_slot(self, slot: int, prompt: list[int], sibling: SampleState | None) -> float:
        """Make `slot` hold the KV of prompt[:-1]; returns the seconds spent prefilling."""
        import llama_cpp

        want = prompt[:-1]
        mem = llama_cpp.llama_get_memory(self._ctx)
        common = _common_prefix(self._slot_tokens[slot], want)
        if common < len(want) and sibling is not None:  # a running sibling holds the prompt
            llama_cpp.llama_memory_seq_rm(mem, slot, -1, -1)
            llama_cpp.llama_memory_seq_cp(mem, sibling.seq_id, slot, -1, -1)
            common = len(want)
        if not llama_cpp.llama_memory_seq_rm(mem, slot, common, -1):
            llama_cpp.llama_memory_seq_rm(mem, slot, -1, -1)
            common = 0
        self._slot_tokens[slot] = want[:common]
        if common == len(want):
            self._slot_tokens[slot] = list(want)
            return 0.0
        start = time.perf_counter()
        try:
            with InterruptibleDecode(self._ctx):
                self._prefill(slot, want, common)
        except BaseException:  # Ctrl-C or a failed decode: the slot's KV is not known to be whole
            llama_cpp.llama_memory_seq_rm(mem, slot, -1, -1)
            self._slot_tokens[slot] = []
            raise
        self._slot_tokens[slot] = list(want)
        self._last_prefill += len(want) - common
        return time.perf_counter() - start

    def _prefill(self, slot: int, tokens: list[int], at: int) -> None:
        """Evaluate tokens[at:] on `slot` in chunks; no logits are needed."""
        b = self._batch
        for first in range(at, len(tokens), PROMPT_CHUNK):
            chunk = tokens[first:first + PROMPT_CHUNK]
            for i, tok in enumerate(chunk):
                b.token[i] = tok
                b.pos[i] = first + i
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = slot
                b.logits[i] = 0
            b.n_tokens = len(chunk)
            self._decode()

    def new_sample(self, job: Job, index: int, slot: int, path: str) -> SampleState:
        sampling = job.samplings[index]
        limit = min(self._cfg.n_ctx, self._ctx_cells)
        chain = None
        if path != "vector":
            chain = sampler_chain(sampling)
            if path == "graph":
                self._attach(slot, chain)
        return SampleState(self, job, index, slot, min(sampling.max_tokens, limit - len(job.tokens)),
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
        """One new token for every running sample, all in one llama_decode."""
        b = self._batch
        for i, seq in enumerate(rows):
            b.token[i] = seq.next_input
            b.pos[i] = seq.pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq.seq_id
            b.logits[i] = 1
        b.n_tokens = len(rows)
        self._decode()

    def sample_rows(self, rows: list[SampleState], path: str) -> list[int]:
        import llama_cpp

        if path == "vector":
            return self._sample_vector(rows)
        ctx = self._ctx
        return [llama_cpp.llama_sampler_sample(seq.chain, ctx, i) for i, seq in enumerate(rows)]

    def _sample_vector(self, rows: list[SampleState]) -> list[int]:
        import numpy as np

        from .sampling import BatchSampler

        if self._vector is None:
            self._vector = BatchSampler(self._n_vocab, self._threads)
        n = len(rows)
        logits = self._logits_view()[:n]
        if n == 1:  # K = 1: no arrays for one seed and one step
            seq = rows[0]
            return [self._vector.sample_one(logits[0], seq.sampling, seq.sampling.seed, seq.steps)]
        seeds = np.fromiter((seq.sampling.seed for seq in rows), dtype=np.int64, count=n)
        steps = np.fromiter((seq.steps for seq in rows), dtype=np.int64, count=n)
        first = rows[0].sampling
        if all(seq.sampling.draw_key == first.draw_key for seq in rows):
            return self._vector.sample(logits, first, seeds, steps).tolist()
        return [self._vector.sample_one(logits[i], seq.sampling, seq.sampling.seed, seq.steps)
                for i, seq in enumerate(rows)]  # mixed samplings in one batch: row by row

    def _logits_view(self):  # noqa: ANN202 - a numpy array over llama.cpp's logits buffer
        """All rows of llama.cpp's logits buffer as one numpy array, made again only when
        llama.cpp moves the buffer (building the view costs more than a K = 1 draw)."""
        import llama_cpp
        import numpy as np

        ptr = llama_cpp.llama_get_logits(self._ctx)  # also puts the rows in batch order
        address = ctypes.cast(ptr, ctypes.c_void_p).value
        if self._logits is None or self._logits[0] != address:  # a step has <= one row a slot
            self._logits = (address, np.ctypeslib.as_array(ptr, shape=(self._ctx_seqs, self._n_vocab)))
        return self._logits[1]

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
        llama_cpp.llama_memory_seq_rm(mem, seq.seq_id, keep, -1)

    def _decode(self) -> None:
        import llama_cpp

        rc = llama_cpp.llama_decode(self._ctx, self._batch)
        if rc == 2:  # aborted by InterruptibleDecode: Ctrl-C during a long prompt
            raise KeyboardInterrupt
        if rc != 0:
            raise EngineError(f"llama_decode failed (code {rc}); try a smaller --ctx or --samples")


def _load_model(path: Path, *, gpu: bool):  # noqa: ANN202 - a ctypes pointer or None
    import llama_cpp

    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = -1 if gpu else 0
    with InterruptibleDecode(None):  # Ctrl-C during loading is raised when it ends
        return llama_cpp.llama_model_load_from_file(str(path).encode("utf-8"), params)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
