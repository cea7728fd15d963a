"""Predictors and Planner options against their definitions.

Replaces a test that asserted its own tolerance, and adds the comparisons the
issue found missing: ``Planner(noise="binomial")`` and the continuous-reward
plan against an independent definition (not a round trip of the same code),
the baselines against their closed forms, the calibration metrics against
their formulas. Each test is the one a catalogue mutant of
``vipcore/_src/predict`` or ``planner.py`` fails
(``benchmarks/mutation/catalogue.py``).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy.spatial.distance import pdist

import vipcore
from tests.helpers import dense_gp_update, dense_kernel
from vipcore import calibration
from vipcore._src.predict import baselines, gp
from vipcore._src.predict.kernels import median_bandwidth


def _problem(seed, q=30, d=4, n=10):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(q, d))
    m = rng.normal(size=q)
    idx = rng.choice(q, n, replace=False)
    p = rng.integers(0, 9, n) / 8.0
    w = np.full(n, 8.0)
    return x, m, idx, p, w


def test_gp_update_equals_dense_algorithm_1_in_float64():
    x, m, idx, p, w = _problem(0)
    with jax.enable_x64(True):
        st = gp.init(x, bandwidth=1.7, prior_mean=m, jitter=1e-3)
        got = np.asarray(gp.update(st, idx, p, weights=w, eps=0.01).mean)
    ref, _ = dense_gp_update(x, m, idx, p, w, h=1.7, jitter=1e-3, eps=0.01)
    b = np.log(0.99 / 0.01)  # latent_bound="auto": the range of the data
    assert np.any(np.abs(ref) > b)  # the clip is exercised
    np.testing.assert_allclose(got, np.clip(ref, -b, b), rtol=1e-9, atol=1e-9)


def test_gp_update_float32_within_a_fixed_tolerance():
    """Well-conditioned problem (distinct prompts, jitter 1e-3, cond(K_BB) <
    1e3): float32 agrees with the float64 dense reference to 1e-3."""
    x, m, idx, p, w = _problem(1)
    ref, kbb = dense_gp_update(x, m, idx, p, w, h=1.7, jitter=1e-3, eps=0.01)
    assert np.linalg.cond(kbb) < 1e3
    st = gp.init(x.astype(np.float32), bandwidth=1.7,
                 prior_mean=m.astype(np.float32), jitter=1e-3)
    got = np.asarray(gp.update(st, idx, p, weights=w, eps=0.01).mean)
    b = np.log(0.99 / 0.01)  # latent_bound="auto"
    np.testing.assert_allclose(got, np.clip(ref, -b, b), rtol=0, atol=1e-3)


def test_median_bandwidth_and_kernel_definitions():
    x = np.random.default_rng(2).normal(size=(38, 3))  # 703 pairs: odd
    assert float(median_bandwidth(x)) == pytest.approx(np.median(pdist(x)), rel=1e-5)
    np.testing.assert_allclose(np.asarray(gp.rbf_kernel(x, x, 0.9)),
                               dense_kernel(x, 0.9), rtol=1e-5, atol=1e-6)


def _binomial_reference(x, m, idx, s, n, *, h, jitter, eps):
    """Every prompt gets m + K_{.,B} (K_BB + jitter I + N)^{-1} (g_B - m_B),
    N = diag(1/(s + 1/2) + 1/(n - s + 1/2)) (empirical-logit noise)."""
    k = dense_kernel(x, h)
    pc = np.clip(s / n, eps, 1 - eps)
    g = np.log(pc / (1 - pc))
    noise = 1 / (s + 0.5) + 1 / (n - s + 0.5)
    kbb = k[np.ix_(idx, idx)] + np.diag(jitter + noise)
    return m + k[:, idx] @ np.linalg.solve(kbb, g - m[idx])


def test_planner_binomial_noise_is_the_documented_posterior():
    x, _, idx, _, _ = _problem(3)
    rng = np.random.default_rng(3)
    s = rng.integers(0, 9, idx.size).astype(float)
    pl = vipcore.Planner(x.astype(np.float32), predictor="gp", noise="binomial",
                         bandwidth=1.7,
                         lower=2, upper=16)
    rewards = [[1.0] * int(k) + [0.0] * (8 - int(k)) for k in s]
    pl.observe(idx.tolist(), rewards)
    got = pl.predict(list(range(x.shape[0])))
    ref = _binomial_reference(x, np.zeros(x.shape[0]), idx, s, np.full(idx.size, 8.0),
                              h=1.7, jitter=gp.default_jitter(np.float32), eps=0.01)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-ref)), atol=2e-3)


def test_continuous_plan_uses_the_equivalent_p():
    """A predicted reward variance v enters as p with 4p(1-p) = v / max v,
    i.e. p = (1 - sqrt(1 - v / max v)) / 2, then the exact allocation."""
    rng = np.random.default_rng(4)
    q = 12
    pl = vipcore.Planner(rng.normal(size=(q, 3)).astype(np.float32),
                         predictor="moving_average", reward="continuous", lower=2,
                         upper=16)
    ids = list(range(q))
    pl.observe(ids, [rng.normal(0, sd, 8) for sd in np.linspace(0.05, 1.0, q)])
    v = pl.predict(ids)
    p = (1 - np.sqrt(np.clip(1 - v / v.max(), 0, 1))) / 2
    np.testing.assert_allclose(4 * p * (1 - p), v / v.max(), rtol=1e-6, atol=1e-7)
    assert pl.plan(ids, 96).tolist() == vipcore.allocate(p, 96, 2, 16).tolist()


@pytest.mark.parametrize("estimator, lower", [("rloo", 2), ("drgrpo", 3)])
def test_plan_metrics_follow_their_definitions(estimator, lower):
    """vip/pred_var_ratio_vs_uniform = V(plan) / V(uniform at C/B);
    vip/rollouts_saved_vs_uniform = B n_u - C with V(uniform at n_u) = V(plan)
    (n_u found here by bisection, not by the closed form)."""
    rng = np.random.default_rng(5)
    q, budget = 10, 80
    pl = vipcore.Planner(rng.normal(size=(q, 3)).astype(np.float32),
                         predictor="moving_average", estimator=estimator,
                         lower=lower, upper=16)
    ids = list(range(q))
    pl.observe(ids, successes=rng.integers(0, 9, q), counts=np.full(q, 8))
    counts = pl.plan(ids, budget)
    p = np.clip(pl.predict(ids), 0, 1)
    a = 4 * p * (1 - p)
    f = (lambda n: 1 / (n - 1)) if estimator == "rloo" else (lambda n: (n - 1) / n**2)
    v_plan = float(np.sum(a * f(counts.astype(float))))
    met = pl.metrics
    assert met["vip/pred_var_ratio_vs_uniform"] == pytest.approx(
        v_plan / (a.sum() * f(budget / q)), rel=1e-5)
    lo, hi = 2.0 if estimator == "drgrpo" else 1.0 + 1e-9, 1e6
    for _ in range(200):  # V(uniform at n) decreases in n (n >= 2)
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if a.sum() * f(mid) > v_plan else (lo, mid)
    assert met["vip/rollouts_saved_vs_uniform"] == pytest.approx(q * lo - budget,
                                                                 rel=1e-4, abs=1e-3)


def test_moving_average_is_the_mean_of_the_last_window():
    st = baselines.moving_average_init(3, window=3)
    hist = {0: [], 1: []}
    rng = np.random.default_rng(6)
    for _ in range(5):
        obs = rng.uniform(size=2)
        st = baselines.moving_average_update(st, [0, 1], obs)
        for i in (0, 1):
            hist[i].append(obs[i])
    got = np.asarray(baselines.moving_average_predict(st, [0, 1]))
    np.testing.assert_allclose(got, [np.mean(hist[0][-3:]), np.mean(hist[1][-3:])],
                               rtol=1e-6)


def test_ridge_is_the_closed_form_fit():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(20, 3))
    st = baselines.ridge_init(x, capacity=64, lam=2.0)
    idx = np.arange(12)
    y = np.clip(x[idx] @ [0.2, -0.1, 0.05] + 0.5 + 0.05 * rng.normal(size=12), 0, 1)
    with jax.enable_x64(True):
        st = baselines.ridge_init(x, capacity=64, lam=2.0)
        st = baselines.ridge_update(st, idx, y)
        got = np.asarray(baselines.ridge_predict(st, np.arange(20)))
    xm, ym = x[idx].mean(0), y.mean()
    xc, yc = x[idx] - xm, y - ym
    coef = np.linalg.solve(xc.T @ xc + 2.0 * np.eye(3), xc.T @ yc)
    want = np.clip((x - xm) @ coef + ym, 0, 1)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert got.min() >= 0 and got.max() <= 1


def test_calibration_metrics_follow_their_formulas():
    p = np.array([0.1, 0.5, 0.8, 0.95])
    s, n = np.array([1, 4, 7, 8]), np.array([8, 8, 8, 10])
    assert float(calibration.mean_absolute_error(p, s, n)) == pytest.approx(
        np.mean(np.abs(p - s / n)), rel=1e-6)
    brier = np.sum(s * (1 - p) ** 2 + (n - s) * p**2) / n.sum()
    assert float(calibration.brier_score(p, s, n)) == pytest.approx(brier, rel=1e-6)
