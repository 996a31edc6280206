"""pass@k and maj@k against hand-computed values."""

from __future__ import annotations

from math import comb

import pytest

from mathsolve.metrics import ks_for, maj_at_k, pass_at_k, summarise

PASS = [
    ("all-correct", 4, 4, 2, 1.0),
    ("none-correct", 4, 0, 2, 0.0),
    ("k1-is-mean", 10, 3, 1, 0.3),
    ("n4-c1-k2", 4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    ("n5-c2-k2", 5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    ("too-few-wrong", 5, 4, 2, 1.0),
]


@pytest.mark.parametrize("n,c,k,expected", [p[1:] for p in PASS], ids=[p[0] for p in PASS])
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


def test_maj_at_k_uses_the_majority_group_grade():
    answers = ["3", "5", "5", "\\frac{10}{2}"]
    correct = [True, False, False, False]
    assert maj_at_k(answers, correct) == 0.0
    assert maj_at_k(answers, correct, k=1) == 1.0
    assert maj_at_k([None, None], [None, None]) == 0.0


def test_summarise_reports_accuracy_pass_at_k_maj_and_no_answer():
    records = [
        {"correct": [True, False, False, False], "answers": ["1", "2", None, "2"], "maj_correct": False},
        {"correct": [True, True, True, True], "answers": ["4"] * 4, "maj_correct": True},
    ]
    s = summarise(records)
    assert s["accuracy"] == pytest.approx(5 / 8)
    assert s["pass_at_k"]["1"] == pytest.approx(5 / 8)
    assert s["pass_at_k"]["2"] == pytest.approx((0.5 + 1.0) / 2)
    assert s["pass_at_k"]["4"] == pytest.approx(1.0)
    assert s["maj_at_4"] == 0.5
    assert s["no_answer"] == pytest.approx(1 / 8)
