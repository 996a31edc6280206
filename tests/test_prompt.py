"""The rendered prompt is exactly the training format, byte for byte, and templates are sandboxed."""

from __future__ import annotations

import pytest

from mathsolve.config import SYSTEM_PROMPT
from mathsolve.errors import MathsolveError, ModelError
from mathsolve.models.template import render_prompt

PROBLEMS = {
    "plain": "What is 2+3?",
    "latex": r"Compute $\int_0^1 x^2\,dx$ and give \frac{a}{b} in \boxed{} form.",
    "unicode": "Résoudre x² − 4 = 0 pour x ∈ ℝ; 求 √2 的近似值 🙂",
    "newlines": "Line one.\n\nLine two with  spaces\tand a tab.\n",
    "jinja-like": "Evaluate {{ 1 + 1 }} and {% raw %} as plain text.",
}


@pytest.fixture(scope="module")
def qwen3(qwen3_tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(qwen3_tokenizer_dir))
    return tok, tok.chat_template


def _messages(problem: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": problem}]


@pytest.mark.parametrize("problem", PROBLEMS.values(), ids=PROBLEMS.keys())
@pytest.mark.parametrize("think", [True, False], ids=["think", "no-think"])
def test_prompt_is_byte_identical_to_transformers_apply_chat_template(qwen3, problem, think):
    tok, template = qwen3
    extra = {} if think else {"enable_thinking": False}
    expected = tok.apply_chat_template(
        _messages(problem), tokenize=False, add_generation_prompt=True, **extra
    )
    assert render_prompt(template, problem, think=think) == expected


def test_prompt_has_the_training_shape(qwen3):
    _, template = qwen3
    rendered = render_prompt(template, "x^2=4")
    assert rendered == (
        "<|im_start|>system\n" + SYSTEM_PROMPT + "<|im_end|>\n"
        "<|im_start|>user\nx^2=4<|im_end|>\n<|im_start|>assistant\n"
    )
    assert render_prompt(template, "x^2=4", think=False).endswith(
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )


HOSTILE = {
    "mro": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
}


@pytest.mark.parametrize("template", HOSTILE.values(), ids=HOSTILE.keys())
def test_template_reaching_python_internals_fails_with_a_one_line_model_error(template):
    with pytest.raises(ModelError) as info:
        render_prompt(template, "1+1")
    message = str(info.value)
    assert "\n" not in message and "unsafe" in message


SILENCED = {
    "globals": "[{{ raise_exception.__globals__ }}]",
    "dict-class-init": "[{% for m in messages %}{{ m.__class__.__init__ }}{% endfor %}]",
    "format-escape": "[{{ '{0.__class__}'.format(messages) }}]",
}


@pytest.mark.parametrize("template", SILENCED.values(), ids=SILENCED.keys())
def test_template_reading_unsafe_attributes_gets_nothing(template):
    # The sandbox answers these unsafe reads with an empty undefined value, not the object.
    assert render_prompt(template, "1+1") == "[]"


BROKEN = {
    "syntax": "{% for m in messages %}{{ m.content }",
    "raise": "{{ raise_exception('no system role allowed') }}",
}


@pytest.mark.parametrize("template", BROKEN.values(), ids=BROKEN.keys())
def test_broken_template_is_a_mathsolve_error_not_a_traceback(template):
    with pytest.raises(MathsolveError) as info:
        render_prompt(template, "1+1")
    assert "\n" not in str(info.value)
