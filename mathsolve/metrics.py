"""pass@k (the unbiased estimator of Chen et al. 2021), maj@k, and eval summaries."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence


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


def maj_at_k(
    answers: Sequence[str | None],
    correct: Sequence[bool | None],
    k: int | None = None,
    *,
    timeout: float = 2.0,
) -> float:
    """1.0 when the majority answer of the first k samples is correct, else 0.0.

    `correct[i]` is sample i's grade against the reference; the majority group's grade is
    that of its first sample (all members are equivalent). Ties: see `answer.vote`.
    """
    from mathsolve.answer import vote

    if len(answers) != len(correct):
        raise ValueError("answers and correct must have one entry per sample")
    k = len(answers) if k is None else k
    if not 1 <= k <= len(answers):
        raise ValueError(f"maj@k needs 1 <= k <= {len(answers)} (got {k})")
    result = vote(list(answers[:k]), timeout=timeout)
    if result.answer is None:
        return 0.0
    return 1.0 if correct[result.groups[0].samples[0]] is True else 0.0


def summarise(records: Iterable[Mapping]) -> dict:
    """Eval totals from per-problem records with `correct` (list per sample), optional
    `answers` (list per sample, None = no answer) and `maj_correct` (bool).

    accuracy is the mean over all samples (= pass@1); pass@k uses the smallest sample count
    over problems as K so that every problem contributes to every k.
    """
    records = list(records)
    if not records:
        return {"problems": 0}
    counts = [len(r["correct"]) for r in records]
    big_k = min(counts)
    graded = [g for r in records for g in r["correct"]]
    answers = [a for r in records for a in r.get("answers", [])]
    summary: dict = {
        "problems": len(records),
        "samples": len(graded),
        "accuracy": sum(g is True for g in graded) / len(graded) if graded else 0.0,
        "not_comparable": sum(g is None for g in graded) / len(graded) if graded else 0.0,
    }
    if answers:
        summary["no_answer"] = sum(a is None for a in answers) / len(answers)
    if big_k >= 1:
        summary["pass_at_k"] = {
            str(k): sum(pass_at_k(len(r["correct"]), sum(g is True for g in r["correct"]), k) for r in records)
            / len(records)
            for k in ks_for(big_k)
        }
    majs = [r["maj_correct"] for r in records if "maj_correct" in r]
    if majs:
        summary[f"maj_at_{big_k}"] = sum(bool(m) for m in majs) / len(majs)
    return summary
