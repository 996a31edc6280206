"""Output: what a person or a pipe sees (streamed reasoning, answers, JSON, progress)."""
