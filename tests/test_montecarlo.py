"""Tests of the Monte-Carlo simulator (vipcore._src.montecarlo).

Exact checks use enumeration of every reward configuration of a small group
(the law of total variance, float64 NumPy) and a hand-written NumPy ``G``.
Monte-Carlo checks are z-tests whose threshold is Bonferroni-corrected for the
checks in the test, at a false-failure probability of 1e-6 per test.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import assert_allclose, z_ok, zstar
from vipcore._src import montecarlo as mc
from vipcore._src.variance import advantages, gradient_variance

#: One (n, trials) shape for most sampler tests, so they share compilations.
N, T = 8, 2000


# ---------------------------------------------------------------------------
# NumPy references
# ---------------------------------------------------------------------------


def g_reference(r, z, estimator):
    """G = (1/n) sum_j A_j Z_j written out by hand (float64, loops)."""
    r = np.asarray(r, np.float64)
    z = np.asarray(z, np.float64)
    n = r.shape[-1]
    out = np.zeros(r.shape[:-1])
    for idx in np.ndindex(r.shape[:-1]):
        row, zr = r[idx], z[idx]
        mean = row.mean()
        if estimator == "drgrpo":
            a = row - mean
        elif estimator == "rloo":
            a = np.array([row[j] - (row.sum() - row[j]) / (n - 1) for j in range(n)])
        else:
            std = math.sqrt(((row - mean) ** 2).mean())
            a = (row - mean) / (std + 1e-6)
        out[idx] = sum(a[j] * zr[j] for j in range(n)) / n
    return out


def exact_moments(p, n, estimator, *, corr=0.0, z_mean=0.0, z_var=1.0):
    """Exact (E[G], Var(G)) for ±1 rewards and Z = mu + sigma*eps + corr*R.

    Enumerates all 2^n reward vectors; given R, G is linear in eps with
    E[G|R] = (1/n) sum_j A_j (mu + corr R_j) and Var(G|R) = z_var/n^2 sum A_j^2.
    Uses the library's advantages (float64), so it checks formulas, not them.
    """
    bits = np.array(list(itertools.product((0, 1), repeat=n)), np.float64)
    r = 2 * bits - 1
    k = bits.sum(axis=1)
    prob = p**k * (1 - p) ** (n - k)
    with jax.enable_x64(True):
        # ddof=0: the population std, as grpo_gradient_variance's default
        a = np.asarray(advantages(jnp.asarray(r), estimator, ddof=0))
    cm = (a * (z_mean + corr * r)).sum(axis=1) / n
    cv = z_var * (a * a).sum(axis=1) / n**2
    mean = float(prob @ cm)
    return mean, float(prob @ (cv + cm * cm)) - mean * mean


# ---------------------------------------------------------------------------
# Exact identities
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["grpo", "drgrpo", "rloo"])
def test_group_gradient_matches_hand_reference(estimator):
    r, z = mc.sample_rollouts(jax.random.key(3), 0.4, N, T, z_mean=1.5)
    r, z = r[:64], z[:64]
    g = mc.group_gradient(r, z, estimator)
    assert g.shape == (64,) and g.dtype == jnp.float32
    assert_allclose(g, g_reference(r, z, estimator), dtype=np.float32, atol=1e-5)


@given(
    st.lists(st.sampled_from([-1.0, 1.0, 0.0, 0.5]), min_size=6, max_size=6),
    st.floats(-5, 5),
)
def test_group_gradient_ignores_mean_of_z(rewards, shift):
    """sum_j A_j = 0, so adding a constant to Z leaves G unchanged."""
    r = np.asarray(rewards)
    z = np.linspace(-1.0, 2.0, r.size)
    with jax.enable_x64(True):
        for est in ("grpo", "drgrpo", "rloo"):
            g0 = float(mc.group_gradient(r, z, est))
            g1 = float(mc.group_gradient(r, z + shift, est))
            assert g1 == pytest.approx(g0, abs=1e-9)
        # RLOO = n/(n-1) Dr.GRPO exactly
        n = r.size
        assert float(mc.group_gradient(r, z, "rloo")) == pytest.approx(
            n / (n - 1) * float(mc.group_gradient(r, z, "drgrpo")), abs=1e-12)


def test_group_gradient_float32_matches_float64():
    r, z = mc.sample_rollouts(jax.random.key(0), 0.3, N, T, reward="gaussian")
    with jax.enable_x64(True):
        g64 = mc.group_gradient(np.asarray(r, np.float64), np.asarray(z, np.float64),
                                "rloo")
    g32 = mc.group_gradient(r, z, "rloo")
    assert_allclose(g32, g64, dtype=np.float32, atol=1e-5)


def test_masked_cells_equal_truncated_groups():
    """simulate_cells pads to n_max and masks; the result equals G on the first
    n columns of the same draws."""
    # 8 cells, n_max = 16, 4000 trials: the shapes of the quick verify section,
    # so the compiled program is shared with tests/test_verify_*.py
    K, n_max, trials = 8, 16, 4000
    keys = jax.random.split(jax.random.key(7), K)
    ns = [2, 5, 16, 3, 8, 9, 2, 16]
    est = [1, 2, 0, 1, 2, 0, 2, 1]
    zm = [0.0, 2.0, -1.0, 0.5, 0.0, 1.0, 3.0, -2.0]
    zv = [1.0, 0.5, 2.0, 1.0, 3.0, 0.1, 1.0, 1.0]
    g = mc.simulate_cells(
        keys, jnp.full(K, 0.35), jnp.asarray(ns), jnp.asarray(est),
        jnp.asarray(zm), jnp.asarray(zv), jnp.zeros(K), n_max=n_max, trials=trials,
        df=10.0,
    )
    assert g.shape == (K, trials)
    for k in range(K):
        r, z = mc.sample_rollouts(keys[k], 0.35, n_max, trials, z_mean=zm[k],
                                  z_var=zv[k])
        name = ("grpo", "drgrpo", "rloo")[est[k]]
        ref = g_reference(r[:20, : ns[k]], z[:20, : ns[k]], name)
        assert_allclose(g[k, :20], ref, dtype=np.float32, atol=1e-5)


def test_simulate_batch_and_vmap_agree_with_sampler():
    p = jnp.asarray([0.1, 0.5, 0.9])
    n = jnp.asarray([2, 8, 3])
    g = mc.simulate_batch(jax.random.key(1), p, n, T, estimator="drgrpo")
    assert g.shape == (T, 3)
    keys = jax.random.split(jax.random.key(1), 3)
    for q in range(3):
        r, z = mc.sample_rollouts(keys[q], float(p[q]), N, T)
        ref = g_reference(r[:50, : int(n[q])], z[:50, : int(n[q])], "drgrpo")
        assert_allclose(g[:50, q], ref, dtype=np.float32, atol=1e-5)
    # sample_rollouts under a user's vmap over p (and z_var per prompt)
    rr, zz = jax.vmap(lambda k, pq, v: mc.sample_rollouts(k, pq, N, T, z_var=v))(
        keys, p, jnp.asarray([1.0, 2.0, 3.0]))
    assert rr.shape == zz.shape == (3, T, N)
    assert_allclose(rr[1], mc.sample_rollouts(keys[1], 0.5, N, T)[0])
    assert_allclose(zz[2], mc.sample_rollouts(keys[2], 0.9, N, T, z_var=3.0)[1])


@pytest.mark.parametrize("estimator", ["drgrpo", "rloo"])
@pytest.mark.parametrize("n", [2, 3, 6])
def test_props_4_2_4_3_by_enumeration(estimator, n):
    for p in (0.0, 0.01, 0.3, 0.5, 0.99):
        mean, var = exact_moments(p, n, estimator, z_mean=2.0, z_var=1.7)
        assert mean == pytest.approx(0.0, abs=1e-12)
        assert var == pytest.approx(float(gradient_variance(p, n, estimator, 1.7)),
                                    rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("estimator", ["drgrpo", "rloo"])
@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_correlated_moments_by_enumeration(estimator, n, p):
    em, ev = exact_moments(p, n, estimator, corr=0.8, z_var=1.3)
    tm, tv = mc.correlated_gradient_moments(p, n, 0.8, estimator=estimator, z_var=1.3)
    assert float(tm) == pytest.approx(em, rel=1e-5)
    assert float(tv) == pytest.approx(ev, rel=1e-5)


def test_grpo_variance_by_enumeration():
    from vipcore._src.variance import grpo_gradient_variance

    for n in (2, 3, 6):
        for p in (0.05, 0.5, 0.8):
            _, ev = exact_moments(p, n, "grpo", z_var=2.0)
            got = float(grpo_gradient_variance(p, n, sigma_z2=2.0))
            assert got == pytest.approx(ev, rel=1e-9)


def test_reward_moments_match_scipy():
    p, kappa, sd = 0.3, 2.0, 1.7
    cases = {
        "binary": scipy.stats.bernoulli(p),
        "pm1": scipy.stats.bernoulli(p),  # R = 2B - 1
        "beta": scipy.stats.beta(kappa * p, kappa * (1 - p)),
        "gaussian": scipy.stats.norm(2 * p - 1, sd),
    }
    with jax.enable_x64(True):
        for name, dist in cases.items():
            scale = 2.0 if name == "pm1" else 1.0
            shift = -1.0 if name == "pm1" else 0.0
            m = dist.mean() * scale + shift
            var = dist.var() * scale**2
            m1 = dist.mean()
            raw = [dist.moment(k) for k in (2, 3, 4)]
            mu4 = (raw[2] - 4 * m1 * raw[1] + 6 * m1**2 * raw[0] - 3 * m1**4) * scale**4
            kw = dict(concentration=kappa, reward_sd=sd)
            assert float(mc.reward_mean(p, name)) == pytest.approx(m, rel=1e-12)
            assert float(mc.reward_variance(p, name, **kw)) == pytest.approx(var,
                                                                             rel=1e-9)
            assert float(mc.reward_central_moment4(p, name, **kw)) == pytest.approx(
                mu4, rel=1e-7)


# ---------------------------------------------------------------------------
# Monte-Carlo checks of the sampler
# ---------------------------------------------------------------------------


def test_reward_frequencies_and_supports():
    m_checks = 0
    results = []
    for reward in ("pm1", "binary"):
        for p in (0.0, 0.05, 0.5, 1.0):
            r, _ = mc.sample_rollouts(jax.random.key(11), p, N, T, reward=reward)
            r = np.asarray(r)
            hi = 1.0
            lo = -1.0 if reward == "pm1" else 0.0
            assert set(np.unique(r)) <= {lo, hi}
            freq = (r == hi).mean()
            se = math.sqrt(max(p * (1 - p), 0) / r.size)
            if se == 0:
                assert freq == p
                continue
            m_checks += 1
            results.append((freq, p, se))
    for freq, p, se in results:
        ok, z = z_ok(freq, p, se, m_checks)
        assert ok, (freq, p, z)
    # beta in [0, 1] and degenerate at the ends (same compiled program as the
    # student_t case of test_z_family_moments)
    for p in (0.3, 1.0):
        r, _ = mc.sample_rollouts(jax.random.key(2), p, N, T, reward="beta",
                                  z_dist="student_t", df=10.0)
        assert float(r.min()) >= 0 and float(r.max()) <= 1
    assert np.all(np.asarray(r) == 1.0)


@pytest.mark.parametrize("reward, z_dist", [("pm1", "normal"), ("binary", "normal"),
                                            ("beta", "student_t"),
                                            ("gaussian", "normal")])
def test_reward_families_have_the_documented_moments(reward, z_dist):
    """Sample mean and variance of R (estimate_variance, float64) against
    reward_mean / reward_variance, whose formulas the exact tests check:
    z-tests, Bonferroni over 2 x 2 checks of this test."""
    for p in (0.3, 0.85):
        r, _ = mc.sample_rollouts(jax.random.key(12), p, N, T, reward=reward,
                                  z_dist=z_dist, df=10.0, reward_sd=1.5)
        est = mc.estimate_variance(np.asarray(r, np.float64).ravel())
        checks = [(est.mean, float(mc.reward_mean(p, reward)), est.mean_se),
                  (est.var, float(mc.reward_variance(p, reward, reward_sd=1.5)),
                   est.se)]
        for emp, th, se in checks:
            ok, z = z_ok(emp, th, se, 4)
            assert ok, (reward, p, emp, th, z)


def test_rollout_model_settings_and_keywords_agree():
    """``model=RolloutModel(...)`` and the same settings as keywords draw the
    same numbers; keywords override the model's fields; unknown names are
    refused as for any Python function."""
    key = jax.random.key(4)
    model = mc.RolloutModel(reward="beta", z_dist="student_t", z_mean=0.5,
                            z_var=2.0, df=10.0)
    a = mc.sample_rollouts(key, 0.3, N, T, model)
    b = mc.sample_rollouts(key, 0.3, N, T, reward="beta", z_dist="student_t",
                           z_mean=0.5, z_var=2.0, df=10.0)
    np.testing.assert_array_equal(np.asarray(a[1]), np.asarray(b[1]))
    c = mc.sample_rollouts(key, 0.3, N, T, model, z_mean=1.5)
    np.testing.assert_allclose(np.asarray(c[1]) - np.asarray(a[1]), 1.0, atol=1e-5)
    # the doctest's compiled program (pm1 rewards, normal Z, 1000 trials)
    pm1 = mc.RolloutModel(z_mean=0.5, z_var=2.0)
    g1 = mc.simulate_gradient(key, 0.4, N, 1000, pm1, estimator="drgrpo")
    g2 = mc.simulate_gradient(key, 0.4, N, 1000, estimator="drgrpo", **pm1._asdict())
    np.testing.assert_array_equal(np.asarray(g1), np.asarray(g2))
    with pytest.raises(TypeError, match="unexpected keyword argument 'zvar'"):
        mc.sample_rollouts(key, 0.3, N, T, zvar=1.0)
    with pytest.raises(ValueError, match="model must be a RolloutModel"):
        mc.sample_rollouts(key, 0.3, N, T, {"reward": "beta"})
    with pytest.raises(ValueError, match="z_var must be >= 0"):
        mc.simulate_batch(key, jnp.asarray([0.2, 0.4]), jnp.asarray([2, 3]), 8,
                          mc.RolloutModel(z_var=-1.0))


@pytest.mark.parametrize("z_dist", ["normal", "exponential", "two_point", "student_t"])
def test_z_family_moments(z_dist):
    """Mean and variance of Z match (z-tests); shape facts per family."""
    # student_t is drawn with Beta rewards: one gamma-based program for both
    reward = "beta" if z_dist == "student_t" else "pm1"
    _, z = mc.sample_rollouts(jax.random.key(5), 0.5, N, T, z_dist=z_dist,
                              reward=reward, z_mean=-0.7, z_var=2.5, df=10.0)
    z = np.asarray(z, np.float64).ravel()
    est = mc.estimate_variance(z)
    ok_m, zm = z_ok(float(est.mean), -0.7, float(est.mean_se), 2)
    ok_v, zv = z_ok(float(est.var), 2.5, float(est.se), 2)
    assert ok_m and ok_v, (zm, zv)
    d = (z + 0.7) / math.sqrt(2.5)
    if z_dist == "two_point":
        assert_allclose(np.abs(d), 1.0, rtol=1e-5)
    # shape facts that tell the families apart (margins > 10 s.e. at 16000 draws)
    if z_dist == "exponential":
        assert d.min() >= -1 - 1e-6 and scipy.stats.skew(d) > 1.5  # skewness 2
    if z_dist == "student_t":
        assert scipy.stats.kurtosis(d) > 0.5  # excess kurtosis 6/(df-4) = 1
    if z_dist == "normal":
        assert abs(scipy.stats.kurtosis(d)) < 0.25 and abs(scipy.stats.skew(d)) < 0.2


def test_corr_breaks_independence():
    r, z = mc.sample_rollouts(jax.random.key(8), 0.5, N, T, corr=0.5)
    r, z = np.asarray(r, np.float64).ravel(), np.asarray(z, np.float64).ravel()
    # Cov(R, Z) = c Var(R) = 0.5 and Var(Z) = 1 + c^2 Var(R) = 1.25
    cov = mc.estimate_variance((r - r.mean()) * (z - z.mean()))
    vz = mc.estimate_variance(z)
    ok_c, zc = z_ok(float(cov.mean), 0.5, float(cov.mean_se), 2)
    ok_v, zv = z_ok(float(vz.var), 1.25, float(vz.se), 2)
    assert ok_c and ok_v, (zc, zv)
    # and at corr = 0 the covariance is 0 (same draws of eps)
    r0, z0 = mc.sample_rollouts(jax.random.key(8), 0.5, N, T)
    r0, z0 = np.asarray(r0, np.float64).ravel(), np.asarray(z0, np.float64).ravel()
    assert_allclose(z - z0, 0.5 * r, atol=1e-5)


# ---------------------------------------------------------------------------
# The variance estimator and its standard error
# ---------------------------------------------------------------------------


def test_estimate_variance_matches_numpy():
    x = np.random.default_rng(0).standard_t(6, size=(3, 1000))
    est = mc.estimate_variance(x.astype(np.float32), axis=-1)
    assert est.trials == 1000
    assert_allclose(est.var, x.var(axis=-1, ddof=1), dtype=np.float32, rtol=1e-5)
    assert_allclose(est.mean, x.mean(axis=-1), dtype=np.float32, atol=1e-5)
    m = 1000
    s2 = x.var(axis=-1, ddof=1)
    m4 = scipy.stats.moment(x, 4, axis=-1)
    se = np.sqrt((m4 - (m - 3) / (m - 1) * s2**2) / m)
    assert_allclose(est.se, se, dtype=np.float32, rtol=1e-4)
    # float64 NumPy input is reduced in NumPy float64, whatever the x64 flag
    e64 = mc.estimate_variance(x[0])
    assert all(type(getattr(e64, f)) is np.float64
               for f in ("var", "se", "mean", "mean_se"))
    assert (e64.var, e64.se, e64.mean) == pytest.approx(
        (s2[0], se[0], x[0].mean()), rel=1e-12)
    assert e64.mean_se == pytest.approx(math.sqrt(s2[0] / m), rel=1e-12)
    both = mc.estimate_variance(x, axis=-1)
    np.testing.assert_allclose(both.var, s2, rtol=1e-12)
    assert both.var.dtype == np.float64 and isinstance(both.var, np.ndarray)


@pytest.mark.parametrize("z_dist", ["normal", "student_t"])
def test_standard_error_is_calibrated(z_dist):
    """Over R independent replicates of M draws:

    * the spread of s^2 across replicates matches the exact
      Var(s^2) = (mu4 - (M-3)/(M-1) sigma^4)/M (normal: 2 sigma^4/(M-1)),
      tested with the spread's own s.e.;
    * the plug-in se^2 averages to the same value;
    * |s^2 - sigma^2| <= 1.96 se in 95% of replicates: at M = 2000 draws
      (float64 NumPy path) the normal approximation's coverage error is below
      0.005 (measured with 20 000 replicates: 0.9493 normal, 0.9468
      Student-t(10); at M = 200 it is 0.939 / 0.928, too coarse to test), so
      the margin is the binomial one plus 0.005.
    """
    R, M, sigma2 = 2000, 200, 1.0
    rng = np.random.default_rng(21)

    def draw(shape):
        if z_dist == "normal":
            return rng.standard_normal(shape)
        return rng.standard_t(10.0, shape) * math.sqrt(8.0 / 10.0)

    z = draw((R, M))
    est = mc.estimate_variance(z.astype(np.float32), axis=-1)
    mu4 = 3.0 if z_dist == "normal" else 3.0 + 6.0 / (10.0 - 4.0)
    exact = (mu4 - (M - 3) / (M - 1) * sigma2**2) / M
    if z_dist == "normal":
        assert exact == pytest.approx(2 * sigma2**2 / (M - 1), rel=1e-12)
    s2 = np.asarray(est.var, np.float64)
    spread = mc.estimate_variance(s2)
    mean_se2 = np.asarray(est.se, np.float64) ** 2
    m_se2 = mc.estimate_variance(mean_se2)
    checks = [
        (float(spread.var), exact, float(spread.se)),
        # plug-in se^2 is consistent; its O(1/M^2) bias is far below this s.e.
        (float(m_se2.mean), exact, float(m_se2.mean_se) + exact * 3 / M),
    ]
    for emp, th, se in checks:
        ok, zz = z_ok(emp, th, se, 3)
        assert ok, (emp, th, zz)
    R2, M2 = 4000, 2000
    big = mc.estimate_variance(draw((R2, M2)), axis=-1)  # float64 NumPy
    cover = float(np.mean(np.abs(big.var - sigma2) <= 1.96 * big.se))
    margin = zstar(3) * math.sqrt(0.95 * 0.05 / R2) + 0.005
    assert abs(cover - 0.95) <= margin, (cover, margin)


@pytest.mark.parametrize("estimator", ["drgrpo", "rloo"])
def test_variance_check_detects_wrong_advantage(estimator):
    """Mutation: a z-check of Prop 4.2/4.3 on G built with the *other*
    estimator's advantages fails, while the right one passes."""
    p, n = 0.5, 3
    r, z = mc.sample_rollouts(jax.random.key(4), p, N, T)
    r, z = r.reshape(-1, 4)[:, :n], z.reshape(-1, 4)[:, :n]  # 4000 groups of 3
    theory = float(gradient_variance(p, n, estimator))
    good = mc.estimate_variance(mc.group_gradient(r, z, estimator))
    other = "rloo" if estimator == "drgrpo" else "drgrpo"
    bad = mc.estimate_variance(mc.group_gradient(r, z, other))
    assert z_ok(float(good.var), theory, float(good.se), 2)[0]
    assert not z_ok(float(bad.var), theory, float(bad.se), 2)[0]


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(reward="bernoulli"), "reward must be one of"),
        (dict(z_dist="cauchy"), "z_dist must be one of"),
        (dict(z_dist="student_t", df=4.0), "df must be > 4"),
        (dict(z_var=-1.0), "z_var must be >= 0"),
        (dict(reward="beta", concentration=0.0), "concentration must be > 0"),
        (dict(dtype=jnp.int32), "dtype must be a floating dtype"),
    ],
)
def test_sample_rollouts_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mc.sample_rollouts(jax.random.key(0), 0.5, 4, 10, **kwargs)


def test_sample_rollouts_rejects_bad_data():
    k = jax.random.key(0)
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]"):
        mc.sample_rollouts(k, 1.5, 4, 10)
    with pytest.raises(ValueError, match="p must be a scalar"):
        mc.sample_rollouts(k, jnp.asarray([0.1, 0.2]), 4, 10)
    with pytest.raises(ValueError, match="n must be >= 1"):
        mc.sample_rollouts(k, 0.5, 0, 10)
    with pytest.raises(ValueError, match="trials must be an integer"):
        mc.sample_rollouts(k, 0.5, 4, 2.5)
    with pytest.raises(ValueError, match="n must be >= 2"):
        mc.simulate_gradient(k, 0.5, 1, 10)
    with pytest.raises(ValueError, match="n must have the shape of p"):
        mc.simulate_batch(k, jnp.asarray([0.1, 0.2]), jnp.asarray([2, 3, 4]), 10)
    with pytest.raises(ValueError, match="n_max=3 is below max"):
        mc.simulate_batch(k, jnp.asarray([0.1, 0.2]), jnp.asarray([2, 4]), 10,
                          n_max=3)
    with pytest.raises(ValueError, match="z must have the shape of rewards"):
        mc.group_gradient(jnp.ones((2, 3)), jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="need at least 2 draws"):
        mc.estimate_variance(jnp.ones(1))


def test_public_module_exports():
    import vipcore.montecarlo as pub

    for name in pub.__all__:
        assert getattr(pub, name) is getattr(mc, name)
