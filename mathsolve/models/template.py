"""Model flow: a GGUF's chat template renders a problem in the model's training format.

Here, below the engine and the solve flow, because three layers need it: the local engine
renders its prompt with it (engine.local.engine.Engine.render), checking a pulled GGUF proves its
template renders (models.gguf_check).

Training (PipelineRL math) used a system message with SYSTEM_PROMPT, the raw problem as the
user message and the Qwen3 template with `add_generation_prompt=True`; nothing else. We render
with llama-cpp-python's `Jinja2ChatFormatter`, which compiles the template in jinja2's
`ImmutableSandboxedEnvironment`: a template read from a downloaded GGUF cannot reach Python
internals (`''.__class__.__mro__` raises `SecurityError`), and we turn that into a one-line
ModelError instead of a traceback.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from mathsolve.config import SYSTEM_PROMPT
from mathsolve.errors import ModelError

if TYPE_CHECKING:
    from llama_cpp.llama_types import ChatCompletionRequestMessage

EOS_TOKEN = "<|im_end|>"


def training_messages(problem: str) -> list[ChatCompletionRequestMessage]:
    """The two messages the model saw in training: the fixed system prompt and the problem."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": problem},
    ]


def render_prompt(chat_template: str, problem: str, *, think: bool = True) -> str:
    """Render `problem` exactly as in training; think=False passes enable_thinking=False."""
    import jinja2
    from jinja2.exceptions import SecurityError

    try:
        formatter = _formatter(chat_template)
        kwargs: dict[str, Any] = {} if think else {"enable_thinking": False}
        prompt: str = formatter(messages=training_messages(problem), **kwargs).prompt
        return prompt
    except SecurityError as exc:
        raise ModelError(
            f"the model's chat template tried an unsafe operation ({_one_line(exc)}); "
            "use a GGUF with a standard Qwen3 chat template"
        ) from exc
    except jinja2.TemplateError as exc:
        raise ModelError(
            f"the model's chat template cannot be rendered ({_one_line(exc)}); "
            "use a GGUF with a working chat template"
        ) from exc
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        # raise_exception() in a template raises ValueError; broken templates raise the rest.
        raise ModelError(
            f"the model's chat template failed ({type(exc).__name__}: {_one_line(exc)}); "
            "use a GGUF with a working chat template"
        ) from exc


@functools.lru_cache(maxsize=4)
def _formatter(chat_template: str) -> Any:  # a Jinja2ChatFormatter
    """The compiled template, once per template: compiling took 30 ms of every problem."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    return Jinja2ChatFormatter(chat_template, eos_token=EOS_TOKEN, bos_token="",
                               add_generation_prompt=True)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] if text else type(exc).__name__
