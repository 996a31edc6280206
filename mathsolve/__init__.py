"""mathsolve: an offline math solver around Qwen3-4B-RLOO-math-reasoning, run by llama.cpp."""

__version__ = "0.1.0"
