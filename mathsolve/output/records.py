"""Output: the JSON form of typed records (the `model` object of every result)."""

from __future__ import annotations

from typing import Any

from mathsolve.engine.loading import ModelInfo


def model_json(info: ModelInfo) -> dict[str, Any]:
    """{"path", "source", "name"} for a server, {"path", "source", "quant"} for a GGUF."""
    if info.server:
        return {"path": info.path, "source": info.source, "name": info.name}
    return {"path": info.path, "source": info.source, "quant": info.quant}
