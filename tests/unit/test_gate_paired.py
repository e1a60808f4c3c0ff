"""ml.paired: the exact binomial tail, McNemar's test and the Wilson interval."""

from __future__ import annotations

import math

import pytest

from ml.paired import Pairs, binomial_cdf, binomial_tail, wilson_interval


def _tail(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


@pytest.mark.parametrize(
    ("k", "n", "p"),
    [(0, 5, 0.5), (3, 5, 0.5), (5, 5, 0.5), (7, 20, 0.3), (30, 35, 0.643), (6, 5, 0.5)],
)
def test_binomial_tail_matches_the_sum_of_terms(k: int, n: int, p: float) -> None:
    assert binomial_tail(k, n, p) == pytest.approx(_tail(k, n, p), rel=1e-9, abs=1e-15)


def test_binomial_cdf_is_the_lower_tail() -> None:
    assert binomial_cdf(1, 5, 0.6) == pytest.approx(0.4**5 + 5 * 0.6 * 0.4**4)
    assert binomial_cdf(5, 5, 0.6) == pytest.approx(1.0)
    assert binomial_cdf(0, 5, 0.0) == 1.0 and binomial_cdf(4, 5, 1.0) == 0.0


def test_binomial_tail_edges_and_large_n() -> None:
    assert binomial_tail(0, 0, 0.5) == 1.0
    assert binomial_tail(1, 0, 0.5) == 0.0
    assert binomial_tail(3, 5, 0.0) == 0.0 and binomial_tail(3, 5, 1.0) == 1.0
    # 5000 trials: no overflow, and symmetric around the middle.
    assert binomial_tail(2500, 5000, 0.5) == pytest.approx(0.5 + _half_point(5000), rel=1e-9)
    assert binomial_tail(3000, 5000, 0.5) < 1e-40


def _half_point(n: int) -> float:
    return math.exp(math.lgamma(n + 1) - 2 * math.lgamma(n / 2 + 1) - n * math.log(2)) / 2


def test_mcnemar_exact_one_sided_known_values() -> None:
    pairs = Pairs.count([True] * 2 + [False] * 8, [False] * 2 + [True] * 8)
    assert (pairs.b, pairs.c) == (8, 2)
    # P(X >= 8 | 10, 1/2) = 56 / 1024
    assert pairs.p_drop_above(0.0) == pytest.approx(56 / 1024)
    assert pairs.p_better() == pytest.approx(1013 / 1024)
    assert pairs.drop == pytest.approx(0.6)


def test_a_tolerance_raises_the_bar_and_no_disagreement_is_no_evidence() -> None:
    pairs = Pairs(n=100, candidate_hits=80, production_hits=86, b=8, c=2)
    assert pairs.p_drop_above(0.02) > pairs.p_drop_above(0.0)
    # A tolerance at least the largest possible drop can never be shown exceeded.
    assert pairs.p_drop_above(0.10) == 1.0
    assert Pairs.count([True, False], [True, False]).p_drop_above(0.0) == 1.0
    assert Pairs.count([True, False], [True, False]).p_better() == 1.0


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(5, 5)
    assert high == 1.0 and 0.56 < low < 0.57
