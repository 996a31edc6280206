"""Both engines satisfy the one interface the solve flow, the API and MCP drive (issue 25: job,
run, cancel; no caller asks which engine it holds): checked statically (mypy reads the
assignments in `_conforms`) and at run time."""

from __future__ import annotations

from mathsolve.config import EngineConfig
from mathsolve.engine.local.context import LlamaContext
from mathsolve.engine.local.engine import Engine
from mathsolve.engine.local.samples import Vocabulary
from mathsolve.engine.local.scheduler import Slots
from mathsolve.engine.local.vocab import Vocab
from mathsolve.engine.protocol import EngineProtocol
from mathsolve.engine.remote.server import ChatPrompt, ServerEngine


def _conforms(local: Engine, server: ServerEngine, context: LlamaContext, vocab: Vocab) -> None:
    """Never called: a type checker fails here when an engine drifts from the Protocol."""
    engine: EngineProtocol[str] = local
    remote: EngineProtocol[ChatPrompt] = server
    slots: Slots = context  # what scheduler.Scheduler drives
    words: Vocabulary = vocab  # what a sample reads
    del engine, remote, slots, words


def test_the_local_engine_is_an_engine(smollm2_gguf: object) -> None:
    with Engine.load(EngineConfig(model_path=str(smollm2_gguf), n_ctx=512)) as engine:
        assert isinstance(engine, EngineProtocol)
        assert engine.load_seconds > 0


def test_the_server_engine_is_an_engine() -> None:
    engine = ServerEngine("http://127.0.0.1:9", model_name="m")  # nothing is sent until used
    assert isinstance(engine, EngineProtocol)
