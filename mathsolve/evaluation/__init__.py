"""Evaluation: datasets, pass@k / maj@k and resumable result files for `eval` and `grade`."""
