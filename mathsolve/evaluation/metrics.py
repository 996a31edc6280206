"""Evaluation: pass@k, the unbiased estimator of Chen et al. 2021 (summaries: evaluate.py)."""

from __future__ import annotations


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n is correct.

    1 - C(n-c, k) / C(n, k), computed as a product so that n = 1000 does not overflow floats.
    """
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (got n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def ks_for(samples: int) -> list[int]:
    """The k reported for `samples` samples: 1, 2, 4, ... up to and including `samples`."""
    ks, k = [], 1
    while k < samples:
        ks.append(k)
        k *= 2
    if samples >= 1:
        ks.append(samples)
    return ks
