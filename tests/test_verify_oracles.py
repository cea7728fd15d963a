"""The oracles of ``vipcore verify`` against scipy and brute force.

The exact rows of the report compare the library with
``vipcore._src.apps.verify.oracles``; these tests make sure the oracles
themselves are right (scipy, exact enumeration of every reward sequence,
brute-force allocation), so a green exact row means the library is.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as ss

from tests.helpers import brute_force_allocation, exact_var_g_sequences
from vipcore._src.apps.verify import oracles as O


@pytest.mark.parametrize("a, b", [(0.5, 0.5), (7, 0.5), (2, 3), (300, 30),
                                  (4500, 299.5), (1000, 1000)])
def test_betainc_matches_scipy(a, b):
    for x in np.linspace(0.001, 0.999, 23):
        ref = sp.betainc(a, b, x)
        if ref > 1e-280:
            assert O.betainc(a, b, x) == pytest.approx(ref, rel=1e-10)
    assert O.betainc(a, b, 0.0) == 0.0 and O.betainc(a, b, 1.0) == 1.0


def test_tails_match_scipy():
    rng = np.random.default_rng(0)
    for df in (1, 2, 5, 14, 150):
        for t in rng.normal(0, 3, 10):
            assert O.t_two_sided(t, df) == pytest.approx(2 * ss.t.sf(abs(t), df),
                                                         rel=1e-10)
    for d1, d2 in ((1, 4), (2, 30), (29, 450), (599, 9000)):
        for w in ss.f.rvs(d1, d2, size=10, random_state=rng):
            assert O.f_sf(w, d1, d2) == pytest.approx(ss.f.sf(w, d1, d2), rel=1e-9)
    for df in (2, 8, 40, 1200):
        for x in ss.chi2.rvs(df, size=10, random_state=rng):
            assert O.chi2_sf_even(x, df) == pytest.approx(ss.chi2.sf(x, df),
                                                          rel=1e-10)
    assert O.chi2_sf_even(math.inf, 4) == 0.0 and O.chi2_sf_even(0.0, 4) == 1.0
    with pytest.raises(ValueError, match="even"):
        O.chi2_sf_even(1.0, 3)


def test_irwin_hall_closed_forms_and_symmetry():
    for s in np.linspace(0.05, 1.95, 12):
        want = s * s / 2 if s <= 1 else 1 - (2 - s) ** 2 / 2  # q = 2
        assert O.irwin_hall_cdf(s, 2) == pytest.approx(want, rel=1e-14)
    for q in (3, 7, 20):
        for s in np.linspace(0.1, q / 2, 6):
            assert O.irwin_hall_cdf(s, q) + O.irwin_hall_cdf(q - s, q) == (
                pytest.approx(1.0, abs=1e-14))
    assert O.irwin_hall_cdf(0.5, 1) == 0.5 and O.irwin_hall_cdf(-1, 3) == 0.0


def test_statistics_match_scipy():
    rng = np.random.default_rng(1)
    groups = [rng.standard_normal(n) * rng.uniform(0.5, 3) for n in (3, 5, 8, 13)]
    for center in ("median", "mean"):
        w, p, dfn, dfd = O.oneway_f([O.levene_y(g, center) for g in groups])
        ref = ss.levene(*groups, center=center)
        assert (w, p) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-10)
        assert (dfn, dfd) == (3, sum(g.size for g in groups) - 4)
    w, p, _, _ = O.oneway_f([O.obrien_y(g) for g in groups])
    ref = ss.f_oneway(*ss.obrientransform(*groups))
    assert (w, p) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-10)
    for n in (3, 4, 9):
        r, z = rng.choice([-1.0, 1.0], n), rng.standard_normal(n)
        r[:2] = (1.0, -1.0)
        ref = ss.pearsonr(r, z)
        assert O.pearson(r, z) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-10)
    pv = rng.uniform(size=7)
    ref = ss.combine_pvalues(pv, method="fisher")
    assert O.fisher(pv) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-12)
    s, p = O.edgington(pv)
    assert s == pytest.approx(pv.sum()) and 0 < p < 1


def test_advantage_oracle_on_the_worked_example():
    """Rewards [1, 0, 1, 0]: GRPO gives ±1.0 (population std), ±0.87 (sample
    std); RLOO is n/(n-1) times Dr. GRPO."""
    r = [1.0, 0.0, 1.0, 0.0]
    np.testing.assert_allclose(O.advantages(r, "grpo", eps=0), [1, -1, 1, -1])
    np.testing.assert_allclose(O.advantages(r, "grpo", ddof=1, eps=0),
                               np.array([1, -1, 1, -1]) * math.sqrt(3 / 4))
    np.testing.assert_allclose(O.advantages(r, "drgrpo"), [0.5, -0.5, 0.5, -0.5])
    np.testing.assert_allclose(O.advantages(r, "rloo"), 4 / 3 * O.advantages(
        r, "drgrpo"))


@pytest.mark.parametrize("estimator", ["drgrpo", "rloo", "grpo"])
def test_moments_oracle_equals_enumeration_of_every_sequence(estimator):
    """Multisets (the oracle) vs all 2^n ordered sequences (tests/helpers)."""
    for p, n in ((0.3, 4), (0.01, 2), (0.7, 6)):
        _, var = O.exact_gradient_moments(p, n, estimator, z_var=1.7, z_mean=0.3)
        assert var == pytest.approx(exact_var_g_sequences(p, n, estimator,
                                                          z_var=1.7), rel=1e-12)


def test_moments_oracle_equals_the_propositions():
    for p, n in itertools.product((0.0, 0.2, 0.5), (2, 3, 7)):
        v = 4 * p * (1 - p)
        assert O.exact_gradient_moments(p, n, "drgrpo")[1] == pytest.approx(
            (n - 1) / n**2 * v, abs=1e-15)
        assert O.exact_gradient_moments(p, n, "rloo")[1] == pytest.approx(
            v / (n - 1), abs=1e-15)
    vals, probs = (0.0, 0.5, 1.0), (0.2, 0.5, 0.3)
    var_r = np.dot(probs, np.square(vals)) - np.dot(probs, vals) ** 2
    assert O.discrete_gradient_variance(vals, probs, 4, "rloo") == pytest.approx(
        var_r / 3, rel=1e-12)


def _small_instances(seed: int, L: int, k: int = 15):
    """``k`` random ``(p, C, U, a)`` with 2-4 prompts and ``U < 8``: small
    enough for brute force."""
    rng = np.random.default_rng(seed)
    for _ in range(k):
        B = int(rng.integers(2, 5))
        p = rng.uniform(size=B)
        U = int(rng.integers(L + 1, 8))
        C = int(rng.integers(B * L, B * U + 1))
        yield p, C, U, 4 * p * (1 - p)


@pytest.mark.parametrize("estimator, L", [("rloo", 2), ("drgrpo", 3)])
def test_allocation_oracles(estimator, L):
    for p, C, U, a in _small_instances(2, L):
        best = O.greedy_optimum(a, C, L, U, estimator)
        brute = brute_force_allocation(p, C, L, U, estimator)
        assert best.sum() == C and np.sum(a * O.factor(best, estimator)) == (
            pytest.approx(np.sum(a * O.factor(brute, estimator)), rel=1e-12))
        n, lam = O.kkt_solution(a, C, L, U, estimator)
        assert n.sum() == pytest.approx(C, rel=1e-12)
        inner = (n > L + 1e-9) & (n < U - 1e-9)
        g = a * (1 / (n - 1) ** 2 if estimator == "rloo" else (n - 2) / n**3)
        np.testing.assert_allclose(g[inner], lam, rtol=1e-9)
        assert np.all(g[n <= L + 1e-9] <= lam * (1 + 1e-9))
        assert np.all(g[n >= U - 1e-9] >= lam * (1 - 1e-9))
    # a budget the a > 0 prompts cannot absorb goes evenly to a = 0 prompts
    n, lam = O.kkt_solution(np.array([1.0, 0.0, 0.0]), 3 * 5, L, 5, estimator)
    assert lam == 0 and n.tolist() == [5, 5, 5]


def test_scaled_target():
    w = np.array([1.0, 2.0, 4.0, 100.0])
    x = O.scaled_target(w, 30, 2, 16)
    assert x.sum() == pytest.approx(30) and x[3] == 16
    np.testing.assert_allclose(x[:3] / w[:3], x[0] / w[0])


@pytest.mark.parametrize("estimator, L", [("rloo", 2), ("drgrpo", 3)])
def test_tie_rule_oracle(estimator, L):
    """Without a band it is an optimum (brute force); with the band, near-tied
    units go by index; a budget beyond the a > 0 prompts goes to a = 0."""
    for p, C, U, a in _small_instances(4, L):
        n = O.tie_rule_allocation(a, C, L, U, estimator, rtol=0.0)
        brute = brute_force_allocation(p, C, L, U, estimator)
        assert n.sum() == C and np.sum(a * O.factor(n, estimator)) == pytest.approx(
            np.sum(a * O.factor(brute, estimator)), rel=1e-12)
    # two prompts 3e-5 apart, one unit left: the band gives it to the first
    a = np.array([0.5 * (1 - 3e-5), 0.5])
    assert O.tie_rule_allocation(a, 2 * L + 1, L, L + 3, estimator).tolist() == [
        L + 1, L]
    assert O.tie_rule_allocation(a, 2 * L + 1, L, L + 3, estimator,
                                 rtol=0.0).tolist() == [L, L + 1]
    # excess: prompts with a > 0 at U, 3 extra units over two a = 0 prompts
    n = O.tie_rule_allocation(np.array([0.0, 1.0, 0.0]), 3 * L + 5, L, L + 2,
                              estimator)
    assert n.tolist() == [L + 2, L + 2, L + 1]


def test_separable_optimum_is_the_brute_force_minimum():
    rng = np.random.default_rng(5)
    for _ in range(20):
        B, W = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        costs = rng.normal(size=(B, W))  # not convex: the DP needs no convexity
        K = int(rng.integers(0, B * (W - 1) + 1))
        m, total = O.separable_optimum(costs, K)
        best = min(sum(costs[q, c[q]] for q in range(B))
                   for c in itertools.product(range(W), repeat=B) if sum(c) == K)
        assert m.sum() == K and total == pytest.approx(best, rel=1e-12)
        assert np.sum(costs[np.arange(B), m]) == pytest.approx(total, rel=1e-12)


@pytest.mark.parametrize("p", [0.03, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("n", [2, 3, 4, 9])
def test_grpo_objective_oracle_is_var_over_squared_signal(p, n):
    """V_n(p) = Var(G) / omega^2 with both moments by exact enumeration, and
    V_n = 4p(1-p)/(n-1) (RLOO's) exactly for n <= 3."""
    _, var = O.exact_gradient_moments(p, n, "grpo", eps=1e-13)
    mean, _ = O.exact_gradient_moments(p, n, "grpo", eps=1e-13, corr=1.0)
    omega = mean / (4 * p * (1 - p))
    v = O.grpo_normalized_variance(p, n)
    assert v == pytest.approx(var / omega**2, rel=1e-9)
    if n <= 3:
        assert v == pytest.approx(4 * p * (1 - p) / (n - 1), rel=1e-12)
    assert O.grpo_normalized_variance(0.0, n) == O.grpo_normalized_variance(1.0, n) == 0
