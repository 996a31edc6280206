"""Solve flow: a ModelSpec -> a loaded engine (a cached or given GGUF on llama.cpp, or a server).

Used by the Python API (`Solver`) and so by the CLI: one way to go from `--model`/`--server`
to something that generates, and one description of it (`model` in every JSON result).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mathsolve.config import EngineConfig, ModelSpec, SamplingConfig
from mathsolve.engine.protocol import EngineProtocol
from mathsolve.errors import MathsolveError

if TYPE_CHECKING:
    from mathsolve.models.cache import Stages

Note = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What was loaded: a GGUF file (its path, where it came from, its quant; quant None for a
    path given as is) or a server (`server`, its URL as source, the model name it serves).
    output.records.model_json gives the `model` object every JSON result records."""

    path: str | None
    source: str
    quant: str | None = None  # a GGUF's
    name: str | None = None  # a server's
    server: bool = False


def open_engine(spec: ModelSpec, engine: EngineConfig, *, note: Note,
                pull: bool = False, probe: SamplingConfig | None = None,
                stages: Stages | None = None, samples: int = 1) -> tuple[EngineProtocol[Any], ModelInfo]:
    """The engine for `spec` and its record: a server when `spec.server`, else the GGUF that
    `spec.model` names, loaded with `engine`'s settings (its model_path is filled here).

    A Hub model that is not cached raises models.ModelNotCached (with the pull command), or
    is pulled first when `pull` (never offline). `probe` (the run's sampling) makes a verbose
    engine say which sampling path it takes; `stages` shows a pull's conversion phases.
    `samples` (the run's K) sizes the context the warm-up makes, the one a problem decodes in.
    """
    if spec.server:
        from mathsolve.engine.remote.server import ServerEngine

        server = ServerEngine.connect(spec.server, api_key=spec.api_key,
                                      concurrency=spec.concurrency, warn=note, model=spec.model)
        return server, ModelInfo(None, server.url, name=server.model_name, server=True)

    from mathsolve.engine.local.engine import Engine
    from mathsolve.models import cache as models
    from mathsolve.models.hub import offline_from_env
    from mathsolve.models.pull import pull as pull_model

    offline = spec.offline or offline_from_env()
    try:
        resolved = models.resolve(spec.model, spec.quant)
    except models.ModelNotCached as missing:
        if offline or not pull:
            raise
        note(f"{missing}; pulling it now")
        resolved = pull_model(missing.repo, spec.quant, offline=offline, progress=note,
                                  stages=stages)
    local = Engine.load(dataclasses.replace(engine, model_path=str(resolved.path)), warn=note)
    _warm_up(local, samples, probe.max_tokens if probe is not None else None)
    if engine.verbose and probe is not None:
        from mathsolve.engine.local.sampling import describe_path

        note(f"engine: {'GPU' if local.gpu_offload else 'CPU'}, {local.n_threads} threads; "
             f"sampling: {describe_path(local.choose_path([probe]))}")
    quant = None if resolved.source == "file" else resolved.quant  # --quant does not apply to a path
    return local, ModelInfo(str(resolved.path), resolved.source, quant=quant)


PROMPT_ROOM = 256  # prompt tokens the warm-up's context leaves room for (a math problem's, mostly)


def _warm_up(engine: Any, samples: int, max_tokens: int | None) -> None:  # an engine.local.engine.Engine
    """What the first problem would otherwise pay once per process, paid while loading (as
    llama.cpp's own tools warm up): the chat template compiled, and one token generated the
    way a problem's are, from the template's first token (every prompt starts with it, so its
    cell is kept for the first problem). That pages the weights in, starts llama.cpp's threads,
    takes the sampler's first calls and makes the context a problem of K = `samples` samples
    of `max_tokens` and a prompt of up to PROMPT_ROOM tokens decodes in (kept; a longer
    prompt or several problems in flight make a larger one). On the tiny real-vocabulary
    model here that was 19 + 15 ms of a 0.33 s problem; far more for 2.5 GB of 4B weights
    read from disk."""
    from mathsolve.config import SamplingConfig
    from mathsolve.engine.protocol import Job

    try:
        prompt = engine.render("")
    except MathsolveError:
        return  # a broken template is reported with the problem it cannot render
    reserve = max_tokens + PROMPT_ROOM if max_tokens is not None else None
    engine.run([Job(engine.prompt_tokens(prompt)[:1], [SamplingConfig(max_tokens=1)])],
               parallel=max(1, samples), reserve=reserve)  # K slots, one sample decoded
