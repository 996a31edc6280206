"""llama.cpp engine: load a GGUF, then decode K samples of one prompt as one batch.

Built on llama-cpp-python's low-level API because the high-level `Llama` decodes a single
sequence. The flow, in named steps:

* `_prefill`: the prompt is evaluated once, on sequence 0. Sequence 0 keeps the prompt's KV
  after the run, so the next prompt only evaluates what differs from it (prefix reuse:
  the system prompt and template head are computed once per session).
* `_fork`: `llama_memory_seq_cp` copies sequence 0 to sequences 1..K-1. (A prompt batch that
  carries all K sequence ids would need a unified KV cache; llama.cpp 0.3.36 rejects it.)
* `_decode_step`: one token of every live sequence in one `llama_decode`, then every
  sequence samples from its own row with its own sampler chain and seed.
* `_finish`: a sequence that stops leaves the batch and frees its KV cells (sequence 0 is
  trimmed back to the prompt instead, for prefix reuse).

The KV cache is not unified: each sequence has a stream of `n_ctx_seq` cells, so attention
cost per sequence does not grow with K.
"""

from __future__ import annotations

import ctypes
import functools
import os
import time
from pathlib import Path
from typing import Callable

from .config import STOP_TOKENS, EngineConfig, SamplingConfig
from .decode import (Completion, GenerationInterrupted, InterruptibleDecode, OnEvent, SampleState,
                     StopWhen, TextEvent, unstarted)
from .errors import EngineError, InputError, ModelError
from .stream import think_open_at_end

__all__ = ["Completion", "Engine", "GenerationInterrupted", "TextEvent", "physical_cores"]

GGUF_MAGIC = b"GGUF"
PROMPT_CHUNK = 512  # tokens per prefill llama_decode (= n_batch)
KV_PAD = 256  # llama.cpp pads each sequence's KV stream to this many cells

Warn = Callable[[str], None]


def physical_cores() -> int:
    """Physical cores we may run on: SMT siblings share one core's FPU, so llama.cpp decodes
    no faster (often slower) with them. Linux: distinct (physical id, core id) pairs among
    the CPUs in our affinity mask; elsewhere os.cpu_count()."""
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return max(1, len(allowed))
    cores: set[tuple[str, str]] = set()
    for block in text.strip().split("\n\n"):
        fields = dict(
            (k.strip(), v.strip()) for k, _, v in (ln.partition(":") for ln in block.splitlines())
        )
        if fields.get("processor", "").isdigit() and int(fields["processor"]) in allowed:
            cores.add((fields.get("physical id", "0"), fields.get("core id", fields["processor"])))
    return max(1, len(cores) or len(allowed))


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
    """A loaded model plus one llama.cpp context, recreated only when K or length grows."""

    def __init__(self, cfg: EngineConfig, model, *, load_seconds: float, gpu_offload: bool,
                 warn: Warn | None) -> None:
        import llama_cpp

        self._cfg = cfg
        self._model = model
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self._load_seconds = load_seconds
        self._gpu_offload = gpu_offload
        self._warn = warn or (lambda message: None)
        self._threads = cfg.n_threads or physical_cores()
        self._ctx = None
        self._ctx_seqs = 0
        self._ctx_seq_cells = 0
        self._batch = None
        self._prefix: list[int] = []  # tokens whose KV sequence 0 holds
        self._last_prefill = 0
        self._stop_ids = self._find_stop_ids()

    # ---- loading -------------------------------------------------------------------------

    @classmethod
    def load(cls, cfg: EngineConfig, *, warn: Warn | None = None) -> "Engine":
        """Load with every layer on the GPU when the build can; fall back to CPU with a warning."""
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
        if self._model is not None:
            llama_cpp.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
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
        """Prompt tokens the last generate evaluated (the rest came from prefix reuse)."""
        return self._last_prefill

    def kv_sequence_lengths(self) -> list[int]:
        """KV cells held per sequence (diagnostics: finished samples must hold none)."""
        import llama_cpp

        if self._ctx is None:
            return []
        mem = llama_cpp.llama_get_memory(self._ctx)
        return [llama_cpp.llama_memory_seq_pos_max(mem, s) + 1 for s in range(self._ctx_seqs)]

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
        import llama_cpp

        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, 64, 0, True)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, -n, 0, True)
        return buf.raw[:n]

    def is_stop(self, token: int) -> bool:
        import llama_cpp

        return token in self._stop_ids or bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def _find_stop_ids(self) -> frozenset[int]:
        ids = set()
        for text in STOP_TOKENS:
            toks = self.tokenize(text)
            if len(toks) == 1:
                ids.add(toks[0])
        return frozenset(ids)

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
        for s in samplings:
            if s.max_tokens < 1:
                raise EngineError(f"max_tokens must be at least 1, got {s.max_tokens}")
        tokens = self.tokenize(prompt)
        if not tokens:
            raise InputError("the prompt is empty; give a problem to solve")
        if len(tokens) >= self._cfg.n_ctx:
            raise InputError(
                f"the prompt is {len(tokens)} tokens but the context holds {self._cfg.n_ctx}; "
                "shorten the problem or raise --ctx"
            )
        need = min(self._cfg.n_ctx, len(tokens) + max(s.max_tokens for s in samplings))
        group = self._group_size(len(samplings), need)
        in_think = think_open_at_end(prompt)
        done: list[Completion] = []
        first = 0
        while first < len(samplings):
            try:
                with InterruptibleDecode(None):  # llama.cpp logs (Python callbacks) here
                    group = self._ensure_context(min(group, len(samplings) - first), need)
                part = samplings[first:first + group]
                ask = None if stop_when is None else (lambda fin, done=done: stop_when(done + fin))
                done += self._run_group(tokens, part, first, in_think, on_event, ask)
                if stop_when is not None and first + group < len(samplings) and stop_when(done):
                    done += [unstarted(i, s, len(tokens), "cancelled")
                             for i, s in enumerate(samplings[first + group:], first + group)]
                    break
            except GenerationInterrupted as stop:
                rest = [unstarted(i, s, len(tokens))
                        for i, s in enumerate(samplings[first + len(stop.completions):],
                                              first + len(stop.completions))]
                raise GenerationInterrupted(done + stop.completions + rest) from None
            except KeyboardInterrupt:  # while creating the context
                rest = [unstarted(i, s, len(tokens))
                        for i, s in enumerate(samplings[first:], first)]
                raise GenerationInterrupted(done + rest) from None
            first += group
        return done

    # ---- KV sizing ---------------------------------------------------------------------------

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

    def _kv_budget_cells(self) -> int | None:
        """KV cells we may allocate: cfg.extra["kv_budget_tokens"], else half of the free RAM
        on CPU (a GPU that cannot hold it fails context creation, and we halve then)."""
        explicit = self._cfg.extra.get("kv_budget_tokens")
        if explicit:
            return int(explicit)
        if self._gpu_offload:
            return None
        free = _available_ram()
        return None if free is None else free // 2 // self._kv_bytes_per_cell()

    def _group_size(self, k: int, need: int) -> int:
        cells = _round_up(need, KV_PAD)
        budget = self._kv_budget_cells()
        group = k if budget is None else max(1, min(k, budget // cells))
        if group < k:
            self._warn(
                f"the KV cache for {k} samples x {need} tokens does not fit; "
                f"decoding them in groups of {group}"
            )
        return group

    # ---- context -----------------------------------------------------------------------------

    def _ensure_context(self, seqs: int, need: int) -> int:
        """A context with >= seqs sequences of >= need cells; returns the sequences usable."""
        import llama_cpp

        cells = _round_up(need, KV_PAD)
        if self._ctx is not None and self._ctx_seqs >= seqs and self._ctx_seq_cells >= cells:
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
        self._ctx, self._ctx_seqs = ctx, seqs
        self._ctx_seq_cells = llama_cpp.llama_n_ctx_seq(ctx)
        self._batch = llama_cpp.llama_batch_init(max(PROMPT_CHUNK, seqs), 0, 1)
        self._prefix = []
        return seqs

    def _free_context(self) -> None:
        import llama_cpp

        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx is not None:
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        self._prefix = []

    # ---- the decoding steps ------------------------------------------------------------------

    def _run_group(self, tokens: list[int], samplings: list[SamplingConfig], first: int,
                   in_think: bool, on_event: OnEvent | None,
                   stop_when: StopWhen | None = None) -> list[Completion]:
        import llama_cpp

        start = time.perf_counter()
        seqs: list[SampleState] = []
        try:
            limit = min(self._cfg.n_ctx, self._ctx_seq_cells)
            mem = llama_cpp.llama_get_memory(self._ctx)
            prefill_start = time.perf_counter()
            for j, s in enumerate(samplings):
                seqs.append(SampleState(self, first + j, j, s, len(tokens),
                                      min(s.max_tokens, limit - len(tokens)), in_think, on_event))
            last = self._prefill(mem, tokens)
            self._fork(mem, len(seqs))
            prompt_seconds = time.perf_counter() - prefill_start
            for seq in seqs:
                seq.prompt_seconds = prompt_seconds
                seq.accept(seq.sample_from(self._ctx, last), start)
            live = [seq for seq in seqs if seq.finish is None]
            self._release(mem, [seq for seq in seqs if seq.finish is not None], len(tokens))
            while live:
                self._decode_step(live)
                for row, seq in enumerate(live):
                    seq.accept(seq.sample_from(self._ctx, row), start)
                ended = [seq for seq in live if seq.finish is not None]
                if ended and stop_when is not None and stop_when(
                        [seq.completion(start) for seq in seqs if seq.finish is not None]):
                    for seq in live:
                        if seq.finish is None:
                            seq._end("cancelled", start)
                    ended = live
                if ended:
                    self._release(mem, ended, len(tokens))
                    live = [seq for seq in live if seq.finish is None]
        except KeyboardInterrupt:
            self._abandon(len(tokens))
            raise GenerationInterrupted(
                [seq.completion(start, interrupted=True) for seq in seqs]
            ) from None
        finally:
            for seq in seqs:
                seq.free()
        return [seq.completion(start) for seq in seqs]

    def _prefill(self, mem, tokens: list[int]) -> int:
        """Evaluate the prompt on sequence 0, reusing the KV of the prefix it already holds.
        Returns the batch row holding the last prompt token's logits."""
        import llama_cpp

        common = _common_prefix(self._prefix, tokens)
        common = min(common, len(tokens) - 1)  # the last token is re-evaluated for its logits
        if not llama_cpp.llama_memory_seq_rm(mem, 0, common, -1):
            llama_cpp.llama_memory_seq_rm(mem, 0, -1, -1)
            common = 0
        self._prefix = []
        self._last_prefill = len(tokens) - common
        row = 0
        with InterruptibleDecode(self._ctx):
            row = self._prefill_chunks(tokens, common)
        self._prefix = list(tokens)
        return row

    def _prefill_chunks(self, tokens: list[int], common: int) -> int:
        row = 0
        for at in range(common, len(tokens), PROMPT_CHUNK):
            chunk = tokens[at:at + PROMPT_CHUNK]
            b = self._batch
            for i, tok in enumerate(chunk):
                b.token[i] = tok
                b.pos[i] = at + i
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = 0
                b.logits[i] = 0
            b.logits[len(chunk) - 1] = 1
            b.n_tokens = len(chunk)
            self._decode()
            row = len(chunk) - 1
        return row

    def _fork(self, mem, k: int) -> None:
        """Give sequences 1..k-1 their own copy of the prompt's KV (a full stream copy)."""
        import llama_cpp

        for seq_id in range(1, k):
            llama_cpp.llama_memory_seq_rm(mem, seq_id, -1, -1)
            llama_cpp.llama_memory_seq_cp(mem, 0, seq_id, -1, -1)

    def _decode_step(self, live: list["SampleState"]) -> None:
        """One new token for every live sequence, all in one llama_decode."""
        b = self._batch
        for i, seq in enumerate(live):
            b.token[i] = seq.last_token
            b.pos[i] = seq.pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq.seq_id
            b.logits[i] = 1
            seq.pos += 1
        b.n_tokens = len(live)
        self._decode()

    def _decode(self) -> None:
        import llama_cpp

        rc = llama_cpp.llama_decode(self._ctx, self._batch)
        if rc == 2:  # aborted by InterruptibleDecode: Ctrl-C during a long prompt
            self._prefix = []
            raise KeyboardInterrupt
        if rc != 0:
            self._prefix = []
            raise EngineError(f"llama_decode failed (code {rc}); try a smaller --ctx or --samples")

    def _release(self, mem, ended: list["SampleState"], n_prompt: int) -> None:
        """Free finished sequences' KV; sequence 0 keeps the prompt for prefix reuse."""
        import llama_cpp

        for seq in ended:
            if seq.seq_id == 0:
                llama_cpp.llama_memory_seq_rm(mem, 0, n_prompt, -1)
            else:
                llama_cpp.llama_memory_seq_rm(mem, seq.seq_id, -1, -1)

    def _abandon(self, n_prompt: int) -> None:
        """After Ctrl-C: drop every sampled sequence; keep the prompt only if it is whole."""
        import llama_cpp

        if self._ctx is None:
            return
        mem = llama_cpp.llama_get_memory(self._ctx)
        for seq_id in range(1, self._ctx_seqs):
            llama_cpp.llama_memory_seq_rm(mem, seq_id, -1, -1)
        if self._prefix:
            llama_cpp.llama_memory_seq_rm(mem, 0, n_prompt, -1)
        else:
            llama_cpp.llama_memory_seq_rm(mem, 0, -1, -1)


def _load_model(path: Path, *, gpu: bool):
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


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def _available_ram() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
