"""pass@k and maj@k against hand-computed values."""

from __future__ import annotations

from math import comb

import pytest
from cases import cases

from mathsolve.evaluation.metrics import ks_for, pass_at_k

PASS = [
    ("all-correct", 4, 4, 2, 1.0),
    ("none-correct", 4, 0, 2, 0.0),
    ("k1-is-mean", 10, 3, 1, 0.3),
    ("n4-c1-k2", 4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    ("n5-c2-k2", 5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    ("too-few-wrong", 5, 4, 2, 1.0),
]


@cases("n,c,k,expected", PASS)
def test_pass_at_k_matches_hand_computed_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_is_the_combinatorial_formula_for_large_n():
    assert pass_at_k(200, 17, 32) == pytest.approx(1 - comb(183, 32) / comb(200, 32))


@pytest.mark.parametrize("n,c,k", [(4, 5, 1), (4, 1, 0), (4, 1, 5)], ids=["c>n", "k=0", "k>n"])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_ks_are_powers_of_two_up_to_k():
    assert ks_for(32) == [1, 2, 4, 8, 16, 32]
    assert ks_for(6) == [1, 2, 4, 6]
