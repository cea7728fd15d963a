"""Tests of the recursive GP (Algorithm 1) against an independent dense oracle."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist

from tests.helpers import dense_gp_update as dense_update
from tests.helpers import dense_kernel
from vipcore._src.predict import gp

# The independent dense float64 oracle of Algorithm 1 (full Q x Q kernel from
# explicit differences, duplicates pooled in a dict) lives in tests/helpers.py.


def _problem(seed, q=40, d=5, n=12, repeats=True):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, d))
    x = centres[rng.integers(0, 4, q)] + 0.5 * rng.normal(size=(q, d))
    m = rng.normal(size=q)
    idx = rng.choice(q, n, replace=repeats)
    p = rng.integers(0, 9, n) / 8.0
    w = rng.integers(1, 9, n).astype(float)
    return x, m, idx, p, w


@pytest.mark.parametrize("cache, block", [(False, None), (False, 7), (True, None)])
def test_update_matches_dense_float64(cache, block):
    x, m, idx, p, w = _problem(0)
    with jax.enable_x64(True):
        st0 = gp.init(x, bandwidth=1.7, prior_mean=m, jitter=1e-8, cache_kernel=cache)
        assert st0.mean.dtype == jnp.float64
        st1 = gp.update(st0, idx, p, weights=w, eps=0.01, block_size=block,
                        latent_bound=None)
        ref, _ = dense_update(x, m, idx, p, w, h=1.7, jitter=1e-8, eps=0.01)
        np.testing.assert_allclose(np.asarray(st1.mean), ref, rtol=1e-6, atol=1e-9)
        # a second step from the new prior, different batch size
        x2, _, idx2, p2, w2 = _problem(1, n=10)  # same bucket (12): no compile
        st2 = gp.update(st1, idx2, p2, weights=w2, eps=0.01, block_size=block,
                        latent_bound=None)
        ref2, _ = dense_update(x, ref, idx2, p2, w2, h=1.7, jitter=1e-8, eps=0.01)
        np.testing.assert_allclose(np.asarray(st2.mean), ref2, rtol=1e-6, atol=1e-9)


def test_binomial_noise_matches_dense_posterior_mean():
    """noise='binomial': every prompt gets m + K_.B (K_BB + dI + N)^-1 (g - m_B)
    with N = diag(1/(s + 1/2) + 1/(n - s + 1/2)) from the pooled counts."""
    x, m, idx, p, w = _problem(11)
    with jax.enable_x64(True):
        st0 = gp.init(x, bandwidth=1.7, prior_mean=m, jitter=1e-8)
        got = np.asarray(gp.update(st0, idx, p, weights=w, noise="binomial",
                                   latent_bound=None).mean)
    succ: dict[int, list[float]] = {}
    for i, pi, wi in zip(idx, p, w, strict=True):
        a = succ.setdefault(int(i), [0.0, 0.0])
        a[0] += wi * pi
        a[1] += wi
    b = np.array(sorted(succ))
    s_, n_ = np.array([succ[i] for i in b]).T
    pc = np.clip(s_ / n_, 0.01, 0.99)
    g = np.log(pc / (1 - pc))
    k = dense_kernel(x, 1.7)
    noise = 1 / (s_ + 0.5) + 1 / (n_ - s_ + 0.5)
    kbb = k[np.ix_(b, b)] + np.diag(1e-8 + noise)
    ref = m + k[:, b] @ np.linalg.solve(kbb, g - m[b])
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-9)
    # observed prompts are shrunk towards the prior, not set to g_hat
    assert np.all(np.abs(got[b] - g) > 1e-6)


def test_update_float32_agrees_with_float64_reference():
    x, m, idx, p, w = _problem(2, n=20)
    jitter = 1e-3
    ref, kbb = dense_update(x, m, idx, p, w, h=1.7, jitter=jitter, eps=0.01)
    st0 = gp.init(x.astype(np.float32), bandwidth=1.7,
                  prior_mean=m.astype(np.float32), jitter=jitter)
    st1 = gp.update(st0, idx, p, weights=w, eps=0.01, latent_bound=None)
    assert st1.mean.dtype == jnp.float32
    # Backward-stable solve: error <~ cond(K_BB) * eps_32 * |residual| (x 10
    # for the kernel entries' own rounding); observed entries are exact.
    cond = np.linalg.cond(kbb)
    tol = 10 * cond * np.finfo(np.float32).eps * np.max(np.abs(ref - m))
    np.testing.assert_allclose(np.asarray(st1.mean), ref, rtol=0, atol=tol)
    assert tol < 0.05  # the bound is informative for this problem


def test_softplus_link_matches_dense():
    x, m, idx, _, w = _problem(3)
    s2 = np.random.default_rng(3).uniform(0, 3, len(idx))
    s2[0] = 0.0  # guard at s^2 -> 0
    with jax.enable_x64(True):
        st0 = gp.init(x, bandwidth=1.7, prior_mean=m, jitter=1e-8)
        st1 = gp.update(st0, idx, s2, weights=w - 1 + 1e-9, link="softplus",
                        eps=1e-3)
        ref, _ = dense_update(x, m, idx, s2, w - 1 + 1e-9, h=1.7, jitter=1e-8,
                              eps=1e-3, link="softplus")
        np.testing.assert_allclose(np.asarray(st1.mean), ref, rtol=1e-6, atol=1e-9)
        v = gp.predict(st1, idx, link="softplus")
        assert np.all(np.asarray(v) > 0)


def test_latent_observation_softplus_is_inverse_and_stable():
    v = jnp.array([1e-3, 0.5, 2.0, 50.0, 1e4], jnp.float32)
    g = gp.latent_observation(v, link="softplus", eps=1e-4)
    assert np.all(np.isfinite(np.asarray(g)))
    np.testing.assert_allclose(np.asarray(jax.nn.softplus(g)), np.asarray(v),
                               rtol=1e-4)
    g0 = gp.latent_observation(jnp.zeros(1), link="softplus", eps=1e-4)
    assert np.isfinite(float(g0[0]))  # guard as s^2 -> 0
    np.testing.assert_allclose(float(g0[0]), np.log(np.expm1(1e-4)), rtol=1e-4)


def test_median_bandwidth_matches_scipy_and_subsample():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 6))
    with jax.enable_x64(True):
        h = gp.median_bandwidth(x)
    # the |x|^2 + |y|^2 - 2 x.y expansion costs a few digits in float64
    np.testing.assert_allclose(float(h), np.median(pdist(x)), rtol=1e-8)
    # Subsample path: seeded and deterministic; 150 points = 11175 pairs,
    # relative s.e. of a sample median of distances ~ 1/sqrt(11175) ~ 1%:
    # 5% is > 5 standard errors.
    h1 = gp.median_bandwidth(x.astype(np.float32), max_points=150, seed=1)
    h2 = gp.median_bandwidth(x.astype(np.float32), max_points=150, seed=1)
    assert float(h1) == float(h2)
    np.testing.assert_allclose(float(h1), np.median(pdist(x)), rtol=0.05)


def test_posterior_variance_matches_dense():
    x, _, idx, _, _ = _problem(5)
    with jax.enable_x64(True):
        for cache in (False, True):
            st0 = gp.init(x, bandwidth=1.7, jitter=1e-6, cache_kernel=cache)
            q = np.arange(len(x))
            v = np.asarray(gp.posterior_variance(st0, q, idx))
            k = dense_kernel(x, 1.7)
            b = np.unique(idx)
            kbb = k[np.ix_(b, b)] + 1e-6 * np.eye(len(b))
            ref = 1 - np.einsum("qb,bq->q", k[:, b], np.linalg.solve(kbb, k[b, :]))
            np.testing.assert_allclose(v, ref, rtol=1e-6, atol=1e-10)


def test_default_latent_bound_clips_to_the_observation_range():
    """The default ``latent_bound="auto"`` is the dense Algorithm 1 mean clipped
    to ``[-logit(1 - eps), logit(1 - eps)]``, and this problem does leave the
    range without it (4 of 40 means)."""
    x, m, idx, p, w = _problem(0)
    b = np.log(0.99 / 0.01)
    assert gp.default_latent_bound("sigmoid", 0.01) == pytest.approx(b)
    assert gp.default_latent_bound("softplus", 0.01) is None
    assert gp.default_latent_bound("sigmoid", 0.01, "binomial") is None
    ref, _ = dense_update(x, m, idx, p, w, h=1.7, jitter=1e-8, eps=0.01)
    assert np.sum(np.abs(ref) > b) >= 3
    with jax.enable_x64(True):
        st0 = gp.init(x, bandwidth=1.7, prior_mean=m, jitter=1e-8)
        got = np.asarray(gp.update(st0, idx, p, weights=w).mean)
        np.testing.assert_allclose(got, np.clip(ref, -b, b), rtol=1e-6, atol=1e-9)
        three = np.asarray(gp.update(st0, idx, p, weights=w, latent_bound=3.0).mean)
        np.testing.assert_allclose(three, np.clip(ref, -3, 3), rtol=1e-6, atol=1e-9)
        with pytest.raises(ValueError, match="latent_bound must be"):
            gp.update(st0, idx, p, latent_bound=-1.0)


def test_near_duplicate_embeddings_keep_latent_means_bounded():
    """Near-duplicate embeddings with opposite 0/8 and 8/8 outcomes make
    K_BB + delta I nearly singular: Algorithm 1 without a bound sends other
    prompts' latent means far outside the observation range (negative
    control); the default bound keeps every mean within logit(0.99)."""
    rng = np.random.default_rng(1)  # 6 tight clusters of 10 prompts in R^8
    centres = rng.normal(size=(6, 8))
    x = (np.repeat(centres, 10, axis=0)
         + 0.1 * rng.normal(size=(60, 8))).astype(np.float32)
    st0 = gp.init(x)  # float32, default jitter 3.45e-4, median bandwidth
    idx = rng.choice(60, 30, replace=False)
    obs = rng.integers(0, 2, 30).astype(float)  # all-fail or all-pass groups
    raw = np.asarray(gp.update(st0, idx, obs, weights=np.full(30, 8.0),
                               latent_bound=None).mean)
    assert np.max(np.abs(raw)) > 10
    bounded = np.asarray(gp.update(st0, idx, obs, weights=np.full(30, 8.0)).mean)
    assert np.max(np.abs(bounded)) <= np.log(99) + 1e-5


def test_cached_kernel_update_does_not_copy_the_state():
    """The jitted update returns only the new mean: the kernel (and the
    embeddings) of the next state are the very same arrays (the copy of the
    Q x Q kernel made every cached step slower than NumPy)."""
    x, _, idx, p, w = _problem(13, q=40)
    st0 = gp.init(x.astype(np.float32), bandwidth=1.0, cache_kernel=True)
    st1 = gp.update(st0, idx, p, weights=w)
    assert st1.kernel is st0.kernel and st1.embeddings is st0.embeddings
    pred = gp.gp_predictor(bandwidth=1.0, cache_kernel=True)
    s = pred.init(40, x.astype(np.float32))
    s2 = pred.update(s, jnp.asarray(idx, jnp.int32), jnp.asarray(p, jnp.float32),
                     jnp.asarray(w, jnp.float32))
    assert s2.kernel is s.kernel


def test_grow_equals_a_state_built_with_every_prompt():
    """Prompts added by grow() start at the prior mean and then update exactly
    as if they had been there from the start (distances do not depend on the
    centring)."""
    x, _, idx, p, w = _problem(14, q=40)
    with jax.enable_x64(True):
        full = gp.init(x, bandwidth=1.3, prior_mean=-0.5)
        part = gp.grow(gp.init(x[:25], bandwidth=1.3, prior_mean=-0.5), x[25:],
                       prior_mean=-0.5)
        np.testing.assert_array_equal(np.asarray(part.mean), np.asarray(full.mean))
        a = gp.update(full, idx, p, weights=w, noise="binomial")
        b = gp.update(part, idx, p, weights=w, noise="binomial")
        np.testing.assert_allclose(np.asarray(b.mean), np.asarray(a.mean),
                                   rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match=r"shape \(k, 5\)"):
        gp.grow(full, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="cached kernel"):
        gp.grow(gp.init(x, bandwidth=1.0, cache_kernel=True), x[:2])


# ----------------------------- properties ---------------------------------

problems = st.tuples(
    st.integers(0, 10_000),            # seed
    st.just(30),                       # Q (one shape: each one compiles)
    st.integers(1, 8),                 # batch length (one bucket: 8)
)


@settings(max_examples=25)
@given(problems, st.sampled_from([1e-3, 1e-2, 0.1]))
def test_observed_prompts_get_clipped_observation(prob, eps):
    seed, q, n = prob
    x, m, idx, p, w = _problem(seed, q=q, n=n)
    with jax.enable_x64(True):
        st0 = gp.init(x, bandwidth=1.0, prior_mean=m)
        st1 = gp.update(st0, idx, p, weights=w, eps=eps)
        pooled = {}
        for i, pi, wi in zip(idx, p, w, strict=True):
            a = pooled.setdefault(int(i), [0.0, 0.0])
            a[0] += wi * pi
            a[1] += wi
        b = np.array(sorted(pooled))
        want = np.clip([pooled[i][0] / pooled[i][1] for i in b], eps, 1 - eps)
        got = np.asarray(gp.predict(st1, b))
        np.testing.assert_allclose(got, want, rtol=1e-12)
        allp = np.asarray(gp.predict(st1, np.arange(q)))
        assert np.all((allp > 0) & (allp < 1))


@settings(max_examples=20)
@given(problems)
def test_tiny_bandwidth_leaves_unobserved_at_prior(prob):
    seed, q, n = prob
    x, m, idx, p, w = _problem(seed, q=q, n=n)
    st0 = gp.init(x.astype(np.float32), bandwidth=1e-4,
                  prior_mean=m.astype(np.float32))
    st1 = gp.update(st0, idx, p, weights=w)
    rest = np.setdiff1d(np.arange(q), idx)
    np.testing.assert_array_equal(np.asarray(st1.mean)[rest],
                                  m.astype(np.float32)[rest])


@settings(max_examples=20)
@given(problems)
def test_permutation_equivariance(prob):
    seed, q, n = prob
    x, m, idx, p, w = _problem(seed, q=q, n=n)
    perm = np.random.default_rng(seed + 1).permutation(q)
    inv = np.argsort(perm)
    with jax.enable_x64(True):
        a = gp.update(gp.init(x, bandwidth=1.3, prior_mean=m), idx, p, weights=w)
        # prompts relabelled: new prompt j is old prompt perm[j]
        b = gp.update(gp.init(x[perm], bandwidth=1.3, prior_mean=m[perm]),
                      inv[idx], p, weights=w)
        np.testing.assert_allclose(np.asarray(b.mean), np.asarray(a.mean)[perm],
                                   rtol=1e-9, atol=1e-12)
        # the order of the batch does not matter either
        bo = np.random.default_rng(seed + 2).permutation(n)
        c = gp.update(gp.init(x, bandwidth=1.3, prior_mean=m), idx[bo], p[bo],
                      weights=w[bo])
        np.testing.assert_allclose(np.asarray(c.mean), np.asarray(a.mean),
                                   rtol=1e-9, atol=1e-12)


def test_repeated_indices_pool_rollouts():
    x, m, _, _, _ = _problem(6)
    st0 = gp.init(x.astype(np.float32), bandwidth=1.0)
    # prompt 3 seen twice: 2/4 and 4/4 successes -> pooled 6/8
    a = gp.update(st0, [3, 5, 3], [0.5, 0.25, 1.0], weights=[4, 4, 4])
    b = gp.update(st0, [3, 5], [0.75, 0.25], weights=[8, 4])
    np.testing.assert_allclose(np.asarray(a.mean), np.asarray(b.mean), rtol=1e-6)
    assert np.all(np.isfinite(np.asarray(a.mean)))


def test_compile_count_bounded_over_batch_sizes():
    x, _, _, _, _ = _problem(7, q=64)
    st0 = gp.init(x.astype(np.float32), bandwidth=1.0)
    before = gp._update_mean_jit._cache_size()
    rng = np.random.default_rng(0)
    for n in (1, 3, 8, 9, 11, 12, 13, 15, 16):
        idx = rng.choice(64, n, replace=False)
        st0 = gp.update(st0, idx, rng.uniform(size=n))
        st0 = gp.update(st0, idx, rng.uniform(size=n), noise="binomial")
    # buckets 8, 12, 16 cover 1..16, and both noise models share a compiled
    # version: at most 3 new compilations for 18 calls
    assert gp._update_mean_jit._cache_size() - before <= 3
    assert [gp.bucket_size(n) for n in (40, 41, 48, 49)] == [48, 48, 48, 64]


def test_update_step_is_jittable_and_vmappable():
    x, _, idx, p, w = _problem(8, q=12, n=8)
    st0 = gp.init(x.astype(np.float32), bandwidth=1.0)
    ps = jnp.stack([jnp.asarray(p, jnp.float32), jnp.asarray(1 - p, jnp.float32)])
    f = jax.jit(jax.vmap(lambda pp: gp.update_step(st0, jnp.asarray(idx), pp,
                                           jnp.asarray(w, jnp.float32)).mean))
    out = f(ps)
    for k in range(2):
        one = gp.update(st0, idx, np.asarray(ps[k]), weights=w).mean
        np.testing.assert_allclose(np.asarray(out[k]), np.asarray(one),
                                   rtol=1e-5, atol=1e-6)


def test_zero_weight_entries_are_ignored():
    x, _, _, _, _ = _problem(9)
    st0 = gp.init(x.astype(np.float32), bandwidth=1.0)
    a = gp.update(st0, [1, 2, 3], [0.5, 0.9, 0.1], weights=[1, 0, 1])
    b = gp.update(st0, [1, 3], [0.5, 0.1])
    np.testing.assert_array_equal(np.asarray(a.mean), np.asarray(b.mean))


def test_rbf_kernel_and_bucket_doctests():
    k = gp.rbf_kernel([[0.0, 0.0]], [[3.0, 4.0]], 5.0)
    np.testing.assert_allclose(float(k[0, 0]), np.exp(-0.5), rtol=1e-6)
    assert gp.default_jitter(np.float32) == pytest.approx(3.4526698e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(idx=[0, 99], obs=[0.5, 0.5]), r"idx must lie in \[0, 40\)"),
        (dict(idx=[0, 1], obs=[0.5, 1.5]), r"must lie in \[0, 1\]"),
        (dict(idx=[0, 1], obs=[0.5]), r"observations must have shape \(2,\)"),
        (dict(idx=[0.5, 1], obs=[0.5, 0.5]), r"idx must be integers"),
        (dict(idx=[0, 1], obs=[0.5, 0.5], weights=[1, -1]), r"weights must be"),
        (dict(idx=[0, 1], obs=[0.5, 0.5], eps=0.7), r"eps must lie in"),
        (dict(idx=[0, 1], obs=[0.5, 0.5], link="probit"), r"link must be one of"),
    ],
)
def test_update_validation(kwargs, match):
    x, _, _, _, _ = _problem(10)
    st0 = gp.init(x.astype(np.float32), bandwidth=1.0)
    kw = dict(kwargs)
    idx, obs = kw.pop("idx"), kw.pop("obs")
    with pytest.raises(ValueError, match=match):
        gp.update(st0, idx, obs, **kw)


def test_init_validation():
    with pytest.raises(ValueError, match="embeddings must have shape"):
        gp.init(np.zeros(5))
    with pytest.raises(ValueError, match="bandwidth must be a positive"):
        gp.init(np.eye(3), bandwidth=-1.0)
    with pytest.raises(ValueError, match="gave 0"):
        gp.init(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="prior_mean must be"):
        gp.init(np.eye(3), bandwidth=1.0, prior_mean=np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        gp.init(np.array([[0.0, np.nan], [1.0, 1.0]]), bandwidth=1.0)
