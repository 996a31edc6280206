"""Solve flow: the prompt in the model's training format, from the model's own chat template.

The rendering itself lives in models.template (the local engine and models.gguf_check need it
below this layer); this module is the solve flow's name for it.
"""

from __future__ import annotations

from mathsolve.models.template import EOS_TOKEN, render_prompt, training_messages

__all__ = ["EOS_TOKEN", "render_prompt", "training_messages"]
