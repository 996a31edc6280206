"""mathsolve: an offline math solver around Qwen3-4B-RLOO-math-reasoning, run by llama.cpp.

The public Python API (see README, "Python API"): `Solver`, `Result`, `TextEvent`,
`extract_answer`, `grade` and the errors. Names load on first use (PEP 562), so
`import mathsolve` stays as light as `mathsolve --help`: llama.cpp, sympy and numpy come
only with a model or a check. `__init__.pyi` gives type checkers the same names.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Solver": "api", "extract_answer": "api", "grade": "api",
    "Result": "api", "TextEvent": "engine.protocol", "Grade": "answers.grade",
    "Problem": "solving.inputs",
    "MathsolveError": "errors", "ModelError": "errors", "UsageError": "errors",
    "InputError": "errors", "EngineError": "errors", "GenerationInterrupted": "engine.protocol",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mathsolve' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
