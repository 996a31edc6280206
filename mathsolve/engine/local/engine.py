"""Engine: llama.cpp loads a GGUF, then decodes many samples of one or many prompts as a batch.

Built on llama-cpp-python's low-level API because the high-level `Llama` decodes a single
sequence. scheduler.Scheduler runs the decode loop (which sample runs on which sequence, or
slot, and when); the engine's context.LlamaContext does what touches llama.cpp, in named
steps, and its kv.KVCache owns the cache's cells:

* `prepare_slot`: give a slot the prompt's KV minus its last token (kept from an earlier
  sample or copied from a running sibling by the KVCache, else prefilled in chunks that
  Ctrl-C can stop);
* `decode_rows`: one token of every running sample in one `llama_decode`;
* `sample_rows`: a token per row, on one of three paths (see `choose_path`): "graph"
  (llama.cpp samples inside its compute graph, so only token ids leave the GPU), "vector"
  (sampling.BatchSampler: every row at once with numpy, on all cores) or "chain" (llama.cpp's
  sampler chain per sample on the CPU);
* `release`: a finished sample's slot is trimmed back to its prompt and is free again.

The KV cache is not unified: each slot has a stream of its own, so attention per sample does
not grow with the number of samples, and a sample that starts can always finish (none is ever
preempted). When memory holds fewer streams than samples, they run that many at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mathsolve.config import MIN_CTX, SAMPLERS, EngineConfig, SamplerPath, SamplingConfig
from mathsolve.engine.local import kv
from mathsolve.engine.local.context import PROMPT_CHUNK, LlamaContext
from mathsolve.engine.local.machine import physical_cores
from mathsolve.engine.local.native import OPENMP_SPIN, _load_model, _set_logging
from mathsolve.engine.local.samples import InterruptibleDecode, unstarted
from mathsolve.engine.local.scheduler import Scheduler
from mathsolve.engine.local.vocab import Vocab
from mathsolve.engine.protocol import (
    Completion,
    GenerationInterrupted,
    Job,
    OnDone,
    OnEvent,
    StopWhen,
    TextEvent,
    Wanted,
)
from mathsolve.engine.stream import think_open_at_end
from mathsolve.errors import EngineError, InputError, ModelError
from mathsolve.models.gguf_file import check_gguf_file

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["Completion", "Engine", "GenerationInterrupted", "Job", "TextEvent", "check_gguf_file",
           "physical_cores"]


Warn = Callable[[str], None]


class Engine:
    """A loaded model, its vocabulary, and the slots of one llama.cpp context (LlamaContext,
    the context recreated only when it must grow)."""

    def __init__(self, cfg: EngineConfig, model: Any, *, load_seconds: float, gpu_offload: bool,
                 warn: Warn | None) -> None:  # model: a llama_model pointer (ctypes)
        import llama_cpp

        if cfg.sampler not in SAMPLERS:
            raise EngineError(f"unknown sampler {cfg.sampler!r}: choose one of {', '.join(SAMPLERS)}")
        self._cfg = cfg
        self._model = model
        vocab = llama_cpp.llama_model_get_vocab(model)
        self._n_vocab: int = llama_cpp.llama_vocab_n_tokens(vocab)
        self._load_seconds = load_seconds
        self._gpu_offload = gpu_offload
        self._warn = warn or (lambda message: None)
        self._threads = cfg.n_threads or physical_cores()
        self._text = Vocab(vocab)
        self._context = LlamaContext(cfg, model, self._text, n_vocab=self._n_vocab, threads=self._threads,
                                  gpu_offload=gpu_offload, warn=self._warn)

    # ---- loading -------------------------------------------------------------------------

    @classmethod
    def load(cls, cfg: EngineConfig, *, warn: Warn | None = None) -> Engine:
        """Load with every layer on the GPU when the build can; fall back to CPU with a warning."""
        import os

        os.environ.setdefault(*OPENMP_SPIN)  # before llama.cpp (and OpenMP) loads
        import llama_cpp

        path = Path(cfg.model_path)
        check_gguf_file(path)
        if cfg.n_ctx < 16:
            raise EngineError(f"context of {cfg.n_ctx} tokens is too small; use --ctx {MIN_CTX} or more")
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

        self._context.close()
        if self._model is not None:
            llama_cpp.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> Engine:
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

        raw: bytes | None = llama_cpp.llama_model_chat_template(self._model, None)
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
    def context(self) -> LlamaContext:
        """The llama.cpp context: its slots, and the KV cache's owner (`context.kv`)."""
        return self._context

    @property
    def last_prefill_tokens(self) -> int:
        """Prompt tokens the last run evaluated by prefill (the rest came from prefix reuse)."""
        return self._context.prefilled

    @property
    def kv_bytes(self) -> int:
        """Bytes of KV cache the current context holds (0 before the first run)."""
        return self._context.kv_bytes

    def kv_description(self) -> str:
        """What KV cache the last run chose, in words (-v)."""
        return self._context.kv_description()

    def kv_sequence_lengths(self) -> list[int]:
        """KV cells held per slot (diagnostics: a free slot holds at most its prompt)."""
        return self._context.kv.lengths()

    def forget_prefixes(self) -> None:
        """Drop every slot's kept prompt, so the next prompt is evaluated whole (benchmarks)."""
        self._context.kv.forget()

    def cancel(self) -> None:
        """From any thread: the decode running now (or the next one) returns at once and the
        generate or run call raises GenerationInterrupted (an MCP request cancelled, an API
        iterator closed). Cleared when the next call starts."""
        self._context.abort()

    def logits_of(self, tokens: list[int]) -> NDArray[np.float32]:
        """The logits after each of `tokens` (len x vocab), from a context of their own: what
        the model says at each step, to check what the samplers drew (tests, diagnostics)."""
        import llama_cpp
        import numpy as np

        n = len(tokens)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = kv.round_up(n + 1, kv.KV_PAD)
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
            logits: NDArray[np.float32] = np.ctypeslib.as_array(llama_cpp.llama_get_logits(ctx),
                                                                shape=(n, self._n_vocab)).copy()
            return logits
        finally:
            llama_cpp.llama_batch_free(batch)
            llama_cpp.llama_free(ctx)

    # ---- text ----------------------------------------------------------------------------

    def render(self, problem: str, think: bool = True) -> str:
        from mathsolve.models.template import render_prompt

        return render_prompt(self.chat_template, problem, think=think)

    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text`: no BOS added, special tokens such as <|im_start|> parsed."""
        return self._text.tokenize(text)

    def token_bytes(self, token: int) -> bytes:
        """The raw bytes of one token (special tokens rendered), possibly half a character."""
        return self._text.token_bytes(token)

    def is_stop(self, token: int) -> bool:
        return self._text.is_stop(token)

    def cue_tokens(self, in_think: bool, at_start: bool = False) -> list[int]:
        """The budget cue's tokens (see config.budget_cue)."""
        return self._text.cue_tokens(in_think, at_start)

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
                      stop_when: StopWhen | None = None,
                      wanted: Wanted | None = None) -> list[Completion]:
        """K samples of one prompt, decoded together; sample i follows samplings[i].

        `stop_when(finished)` is asked each time samples finish; when it says True the
        samples still running end with finish_reason "cancelled" (early stop of a vote).
        `wanted(finished)` is the vote's schedule: on a CPU no more samples start than it says
        (see scheduler.Scheduler); on a GPU all start at once.
        """
        job = self.job(prompt, samplings, on_event=on_event, stop_when=stop_when, wanted=wanted)
        self.run([job])
        return job.completions()

    def job(self, prompt: str, samplings: list[SamplingConfig], *, on_event: OnEvent | None = None,
            stop_when: StopWhen | None = None, wanted: Wanted | None = None, tag: object = None) -> Job:
        """A problem's samples for run(): its prompt's tokens (an InputError when they do not
        fit the context) and how each sample is drawn."""
        if not samplings:
            raise EngineError("no samples requested; use --samples 1 or more")
        return Job(self.prompt_tokens(prompt), list(samplings), think_open_at_end(prompt), on_event, stop_when,
                   tag, wanted=wanted)

    def run(self, jobs: list[Job], on_done: OnDone | None = None, *,
            parallel: int | None = None, reserve: int | None = None) -> None:
        """Decode every job's samples, several jobs in flight when the slots allow; on_done(job)
        is called as each job finishes (in the order they finish). `reserve`: tokens a sample
        may hold to size the context for, if more than the jobs need (the warm-up's)."""
        jobs = [j for j in jobs if j.samplings]
        if not jobs:
            return
        for job in jobs:
            for s in job.samplings:
                if s.max_tokens < 1:
                    raise EngineError(f"max_tokens must be at least 1, got {s.max_tokens}")
        need = min(self._cfg.n_ctx,
                   max([reserve or 0, *(len(j.tokens) + max(s.max_tokens for s in j.samplings)
                                        for j in jobs)]))
        widest = max(len(j.samplings) for j in jobs)
        wanted = parallel or self._cfg.parallel
        if not wanted:  # one job: its K samples; several: as many samples as make sense
            total = sum(len(j.samplings) for j in jobs)
            wanted = widest if len(jobs) == 1 else max(widest, min(total, self._sequence_cap()))
        path = self.choose_path([s for j in jobs for s in j.samplings])
        wanted = min(wanted, kv.MAX_SEQUENCES)
        slots = self._context.kv.plan(wanted, need, widest)
        self._context.prefilled = 0
        try:
            with InterruptibleDecode(None):  # llama.cpp logs (Python callbacks) here
                slots = self._context.ensure_context(slots, need, graph=path == "graph")
        except KeyboardInterrupt:
            first = jobs[0]
            raise GenerationInterrupted([unstarted(i, s, len(first.tokens))
                                         for i, s in enumerate(first.samplings)]) from None
        self._context.rearm()  # an abort() of an earlier call is spent
        Scheduler(self._context, slots, path, on_done, schedule=not self._gpu_offload).run(jobs)

    def _sequence_cap(self) -> int:
        return kv.MAX_SEQUENCES if self._gpu_offload else kv.CPU_SEQUENCES

    def choose_path(self, samplings: list[SamplingConfig]) -> SamplerPath:
        """The sampling path for these samplings (see sampling.choose_path)."""
        import llama_cpp

        from mathsolve.engine.local.sampling import choose_path

        return choose_path(self._cfg.sampler, gpu=self._gpu_offload, samplings=samplings,
                           graph_available=hasattr(llama_cpp, "llama_set_sampler"))
