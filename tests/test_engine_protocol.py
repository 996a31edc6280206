"""Both engines satisfy the one interface the solve flow drives, and each has its capability:
checked statically (mypy reads the assignments in `_conforms`) and at run time."""

from __future__ import annotations

from mathsolve.config import EngineConfig
from mathsolve.engine.batch import Slots
from mathsolve.engine.decode import Vocabulary
from mathsolve.engine.llama import Engine
from mathsolve.engine.protocol import EngineProtocol, InFlightEngine, RequestEngine
from mathsolve.engine.server import ChatPrompt, ServerEngine
from mathsolve.engine.slots import SlotContext
from mathsolve.engine.vocab import Vocab


def _conforms(local: Engine, server: ServerEngine, context: SlotContext, vocab: Vocab) -> None:
    """Never called: a type checker fails here when an engine drifts from the Protocol."""
    engine: EngineProtocol[str] = local
    in_flight: InFlightEngine = local
    remote: EngineProtocol[ChatPrompt] = server
    requests: RequestEngine = server
    slots: Slots = context  # what batch.Scheduler drives
    words: Vocabulary = vocab  # what a sample reads
    del engine, in_flight, remote, requests, slots, words


def test_the_local_engine_is_an_engine_that_keeps_problems_in_flight(smollm2_gguf: object) -> None:
    with Engine.load(EngineConfig(model_path=str(smollm2_gguf), n_ctx=512)) as engine:
        assert isinstance(engine, EngineProtocol)
        assert isinstance(engine, InFlightEngine)
        assert not isinstance(engine, RequestEngine)
        assert engine.load_seconds > 0


def test_the_server_engine_is_an_engine_that_sends_requests() -> None:
    engine = ServerEngine("http://127.0.0.1:9", model_name="m")  # nothing is sent until used
    assert isinstance(engine, EngineProtocol)
    assert isinstance(engine, RequestEngine)
    assert not isinstance(engine, InFlightEngine)
