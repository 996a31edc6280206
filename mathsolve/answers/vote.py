"""Answers: the majority answer over K samples, answers grouped by equivalence."""

from __future__ import annotations

from dataclasses import dataclass

from mathsolve.answers.equivalence import equivalent, normalise
from mathsolve.config import CHECK_TIMEOUT_S


@dataclass(frozen=True)
class VoteGroup:
    answer: str  # the answer as the group's first sample wrote it
    count: int
    samples: tuple[int, ...]  # sample indices, ascending


@dataclass(frozen=True)
class Vote:
    answer: str | None  # None when no sample has an answer
    count: int
    total: int
    groups: tuple[VoteGroup, ...]  # largest first; ties in the order of the rule below


def vote(answers: list[str | None], *, timeout: float = CHECK_TIMEOUT_S) -> Vote:
    """Majority answer over samples, clustering answers by equivalence.

    Tie rule: among groups with the same count, the one whose first sample has the lowest
    index wins (with samples indexed in the order they finished, that is the earliest
    finished). Samples without an answer are counted in `total` but never form a group, so
    None never wins. Equivalence that cannot be decided in time counts as different.
    """
    members: list[list[int]] = []
    leaders: list[str] = []  # each group's answer as its first sample wrote it
    keys: dict[str, int] = {}
    for index, answer in enumerate(answers):
        if answer is None or not answer.strip():
            continue
        key = normalise(answer) if len(answer) < 2000 else answer
        slot = keys.get(key)
        if slot is None:
            for g, leader in enumerate(leaders):
                if equivalent(leader, answer, timeout=timeout):
                    slot = g
                    break
        if slot is None:
            members.append([])
            leaders.append(answer)
            slot = len(members) - 1
        keys.setdefault(key, slot)
        members[slot].append(index)
    groups = sorted(
        (VoteGroup(leader, len(m), tuple(m)) for leader, m in zip(leaders, members)),
        key=lambda g: (-g.count, g.samples[0]),
    )
    if not groups:
        return Vote(None, 0, len(answers), ())
    return Vote(groups[0].answer, groups[0].count, len(answers), tuple(groups))


def confidence(leader: int, runner_up: int) -> float:
    """Adaptive-Consistency's stopping statistic (Aggarwal et al., EMNLP 2023): with a uniform
    prior on the share x of the leading answer between the two leading answers, the Beta
    posterior's P(x > 1/2) = ∫_{1/2}^1 x^a (1-x)^b dx / ∫_0^1 x^a (1-x)^b dx for counts a, b.
    For whole counts that is P(Binomial(a + b + 1, 1/2) <= a), computed exactly."""
    from math import comb

    if leader < 0 or runner_up < 0:
        raise ValueError("vote counts are never negative")
    n = leader + runner_up + 1
    return sum(comb(n, j) for j in range(leader + 1)) / (1 << n)  # 2**n, typed as an int


def vote_confidence(v: Vote) -> float | None:
    """The confidence of a vote's leading answer; None when no sample has an answer.

    The samples that finished without an answer form a group of their own here: it never wins
    the vote, but it can be the runner-up, so one answer against three samples without one
    reads confidence(1, 3) = 19%, not confidence(1, 0) = 75%."""
    if not v.groups:
        return None
    no_answer = v.total - sum(g.count for g in v.groups)
    runner_up = v.groups[1].count if len(v.groups) > 1 else 0
    return confidence(v.groups[0].count, max(runner_up, no_answer))
