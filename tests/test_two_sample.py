"""The exact Mann-Whitney U test against brute-force permutation and scipy, as properties."""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rayflavor.analysis.two_sample import mann_whitney, median_difference_ci

# small integers make ties common, which the exact test must count too
TIED = st.lists(st.integers(0, 4).map(float), min_size=1, max_size=6)
VALUES = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=9)


def brute_force_p(a: list[float], b: list[float]) -> float:
    """Two-sided permutation p-value of the rank sum: every split of the pooled values into groups
    of len(a) and len(b), counted one by one."""
    pooled = np.array(a + b)
    ranks = np.array([np.sum(pooled < v) + (np.sum(pooled == v) + 1) / 2 for v in pooled])
    n, n_a = len(pooled), len(a)
    mean = n_a * (n + 1) / 2
    observed = abs(ranks[:n_a].sum() - mean)
    hits = sum(abs(ranks[list(idx)].sum() - mean) >= observed - 1e-9 for idx in combinations(range(n), n_a))
    return hits / comb(n, n_a)


@settings(max_examples=60, deadline=None)
@given(TIED, TIED)
def test_p_is_the_brute_force_permutation_p_and_swapping_the_samples_changes_nothing(a, b):
    r = mann_whitney(a, b)
    assert 0.0 < r.p <= 1.0
    assert r.p == pytest.approx(brute_force_p(a, b), rel=1e-12, abs=1e-15)
    s = mann_whitney(b, a)
    assert s.p == r.p and s.u == pytest.approx(len(a) * len(b) - r.u)
    assert 0.0 <= r.prob_a_greater <= 1.0


@settings(max_examples=60, deadline=None)
@given(VALUES, VALUES)
def test_without_ties_p_is_scipys_exact_mann_whitney(a, b):
    stats = pytest.importorskip("scipy.stats")
    if len(set(a + b)) < len(a + b):
        return  # scipy's exact method assumes no ties
    ref = stats.mannwhitneyu(a, b, alternative="two-sided", method="exact")
    r = mann_whitney(a, b)
    assert r.u == ref.statistic and r.p == pytest.approx(ref.pvalue, rel=1e-10)


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 12), st.integers(3, 12), st.floats(0.0, 10.0))
def test_separated_samples_give_the_smallest_p_there_is(n_a, n_b, gap):
    rng = np.random.default_rng(n_a * 100 + n_b)
    a = rng.uniform(0, 1, n_a)
    b = rng.uniform(0, 1, n_b) + 1.0 + gap  # every b above every a
    r = mann_whitney(a, b)
    assert r.u == 0.0 and r.prob_a_greater == 0.0
    assert r.p == pytest.approx(2 / comb(n_a + n_b, n_a))  # only this split and its mirror are as extreme
    assert mann_whitney(b, a).prob_a_greater == 1.0


def test_refuses_empty_or_non_finite_samples():
    with pytest.raises(ValueError, match="non-empty"):
        mann_whitney([], [1.0])
    with pytest.raises(ValueError, match="finite"):
        mann_whitney([np.nan, 1.0], [1.0])


def test_the_bootstrap_interval_holds_the_difference_of_medians_and_is_reproducible():
    a, b = [5.0, 6.0, 7.0, 8.0, 9.0], [1.0, 2.0, 3.0, 4.0, 5.0]
    lo, hi = median_difference_ci(a, b)
    assert lo <= np.median(a) - np.median(b) <= hi and lo > 0
    assert median_difference_ci(a, b) == (lo, hi)
