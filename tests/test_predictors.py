"""Baselines (moving average, ridge) and calibration metrics vs plain oracles."""

from __future__ import annotations

import functools
from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vipcore._src.predict import baselines as pr
from vipcore._src.predict import beta
from vipcore._src.predict import calibration as cal


def _stream(seed, q=20, steps=6, n=9):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        idx = rng.integers(0, q, n)  # with repeats
        obs = rng.integers(0, 5, n) / 4
        w = rng.integers(1, 5, n).astype(float)
        yield idx, obs, w


def _pool(idx, obs, w):
    acc = {}
    for i, o, wi in zip(idx, obs, w, strict=True):
        a = acc.setdefault(int(i), [0.0, 0.0])
        a[0] += wi * o
        a[1] += wi
    return {i: s / n for i, (s, n) in acc.items()}


@pytest.mark.parametrize("window", [1, 3])
def test_moving_average_matches_python_reference(window):
    q = 20
    st = pr.moving_average_init(q, window=window)
    hist = {i: deque(maxlen=window) for i in range(q)}
    fallback = 0.5
    for idx, obs, w in _stream(0, q=q):
        st = pr.moving_average_update(st, idx, obs, weights=w)
        for i, v in sorted(_pool(idx, obs, w).items()):
            hist[i].append(v)
        fallback = float(np.sum(w * obs) / np.sum(w))
        want = [np.mean(hist[i]) if hist[i] else fallback for i in range(q)]
        got = np.asarray(pr.moving_average_predict(st, np.arange(q)))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def _ridge_ref(x, ys, lam):
    xs = np.array([x[i] for i, _ in ys], np.float64)
    y = np.array([v for _, v in ys])
    xm, ym = xs.mean(0), y.mean()
    xc, yc = xs - xm, y - ym
    coef = np.linalg.solve(xc.T @ xc + lam * np.eye(x.shape[1]), xc.T @ yc)
    return coef, ym - xm @ coef


def test_ridge_matches_closed_form_on_recent_window():
    rng = np.random.default_rng(1)
    q, d, cap = 20, 4, 16
    x = rng.normal(size=(q, d))
    st = pr.ridge_init(x.astype(np.float32), capacity=cap, lam=0.7)
    buf: deque = deque(maxlen=cap)
    for idx, obs, w in _stream(1, q=q):
        st = pr.ridge_update(st, idx, obs, weights=w)
        buf.extend(sorted(_pool(idx, obs, w).items()))  # one per prompt, by index
        coef, b = _ridge_ref(x, list(buf), 0.7)
        np.testing.assert_allclose(np.asarray(st.coef), coef, rtol=2e-4, atol=2e-5)
        want = np.clip(x @ coef + b, 0, 1)
        got = np.asarray(pr.ridge_predict(st, np.arange(q)))
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
    assert int(st.ptr) > cap  # the buffer wrapped


def test_ridge_batch_larger_than_capacity_keeps_last():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 3))
    st = pr.ridge_init(x, capacity=8)
    idx = np.arange(20)
    st = pr.ridge_update(st, idx, rng.uniform(size=20))
    assert int(np.sum(np.asarray(st.buf_valid))) == 8
    assert sorted(np.asarray(st.buf_idx).tolist()) == list(range(12, 20))


def test_predictors_validate():
    st = pr.moving_average_init(5)
    with pytest.raises(ValueError, match=r"idx must lie in \[0, 5\)"):
        pr.moving_average_update(st, [7], [0.5])
    with pytest.raises(ValueError, match="window must be >= 1"):
        pr.moving_average_init(5, window=0)
    with pytest.raises(ValueError, match="lam must be > 0"):
        pr.ridge_init(np.eye(3), lam=0)


# ------------------------------- calibration -------------------------------


def test_calibration_metrics_match_loops():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=200)
    n = rng.integers(1, 9, 200).astype(float)
    s = rng.binomial(n.astype(int), p).astype(float)
    assert float(cal.mean_absolute_error(p, s, n)) == pytest.approx(
        np.mean(np.abs(p - s / n)), rel=1e-5)
    # Brier over rollouts, written out rollout by rollout
    total = 0.0
    for pi, si, ni in zip(p, s, n, strict=True):
        total += si * (1 - pi) ** 2 + (ni - si) * pi**2
    assert float(cal.brier_score(p, s, n)) == pytest.approx(total / n.sum(), rel=1e-5)
    # ECE by explicit binning
    nb = 7
    b = np.minimum((p * nb).astype(int), nb - 1)
    ece = 0.0
    for k in range(nb):
        m = b == k
        if m.any():
            ece += n[m].sum() * abs(s[m].sum() / n[m].sum()
                                    - (n[m] * p[m]).sum() / n[m].sum())
    ece /= n.sum()
    got = float(cal.expected_calibration_error(p, s, n, n_bins=nb))
    assert got == pytest.approx(ece, rel=1e-4)
    curve = cal.reliability_curve(p, s, n, n_bins=nb)
    assert float(np.sum(curve.count)) == pytest.approx(n.sum())
    res = cal.calibration(p, s, n, n_bins=nb)
    assert float(res.ece) == pytest.approx(got) and res.n_prompts == 200


def test_ece_detects_miscalibration():
    """Calibrated predictions: ECE ~ sampling noise; shifted ones: ECE ~ shift.

    With 20000 Bernoulli outcomes in 10 bins the sampling part of the ECE is
    at most sum_b (N_b/N) sqrt(p(1-p)/N_b) <= 0.5 sqrt(10/N) = 0.011, while a
    +0.15 shift gives ECE >= 0.15 - 0.011.
    """
    rng = np.random.default_rng(4)
    p = rng.uniform(0.05, 0.8, 20000)
    y = rng.binomial(1, p).astype(float)
    ok = float(cal.expected_calibration_error(p, y))
    bad = float(cal.expected_calibration_error(np.clip(p + 0.15, 0, 1), y))
    assert ok < 0.011 * 3
    assert bad > 0.15 - 0.011 * 3


def test_calibration_validates():
    with pytest.raises(ValueError, match="successes <= counts"):
        cal.brier_score([0.5], [3], [2])
    with pytest.raises(ValueError, match=r"p_hat must lie in \[0, 1\]"):
        cal.mean_absolute_error([1.5], [1], [2])
    with pytest.raises(ValueError, match="must have the shape of p_hat"):
        cal.brier_score([0.5, 0.5], [1], [2])


def test_docstring_examples():
    import doctest

    from vipcore._src.apps.verify import synthetic

    # gp and planner examples compile several shapes; their behaviour is
    # covered by test_gp and test_planner
    from vipcore._src.predict import registry, uncertainty

    for mod in (pr, cal, synthetic, beta, uncertainty, registry):
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert res.failed == 0, mod.__name__


# --------------------------- discounted Beta posterior ----------------------
# Independent oracle: every observation kept with its step, the discount and
# the pooled prior applied when predicting (no lazy decay, no pooling trick).


class BetaOracle:
    def __init__(self, q, lam, kappa, eps=1e-2, prior_weight=1.0):
        self.q, self.lam, self.kappa, self.eps = q, lam, kappa, eps
        self.t = 0
        self.obs: list[tuple[int, int, float, float]] = []  # (step, q, s, f)
        self.w0 = prior_weight

    def update(self, idx, obs, w):
        self.t += 1
        for i, y, n in zip(idx, obs, w, strict=True):
            if n > 0:
                self.obs.append((self.t, int(i), n * y, n * (1 - y)))

    def pooled_prior(self):
        num = self.w0 * 0.5 + sum(self.lam ** (self.t - t) * s
                                  for t, _, s, _ in self.obs)
        den = self.w0 + sum(self.lam ** (self.t - t) * (s + f)
                            for t, _, s, f in self.obs)
        return num / den

    def posterior(self, mu):
        mu = np.clip(np.broadcast_to(mu, (self.q,)), self.eps, 1 - self.eps)
        a, b = self.kappa * mu, self.kappa * (1 - mu)
        for t, i, s, f in self.obs:
            d = self.lam ** (self.t - t)
            a[i] += d * s
            b[i] += d * f
        return a, b


def _beta_stream(seed, q=12, steps=7, n=6, graded=False):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        idx = rng.integers(0, q, n)
        w = rng.integers(0, 9, n).astype(float)  # 0 = padding
        obs = (rng.uniform(size=n) if graded
               else rng.binomial(w.astype(int), 0.6) / np.maximum(w, 1))
        yield idx, obs, w


def _run(pred, state, stream):
    for idx, obs, w in stream:
        state = pred.update(state, jnp.asarray(idx, jnp.int32),
                            jnp.asarray(obs, state_dtype(state)),
                            jnp.asarray(w, state_dtype(state)))
        yield state, (idx, obs, w)


def state_dtype(state):
    """The dtype of the state's first floating array."""
    return next(a.dtype for a in map(np.asarray, jax.tree.leaves(state))
                if a.dtype.kind == "f")


@pytest.mark.parametrize("lam, kappa, graded", [(0.8, 3.0, False), (1.0, 0.5, False),
                                                (0.5, 2.0, True), (0.0, 1.0, False)])
def test_beta_pooled_prior_matches_oracle(lam, kappa, graded):
    """Mean and variance of Beta(kappa mu + sum lam^(T-t) s, kappa (1-mu) +
    sum lam^(T-t) f) with the discounted pooled prior mu, step by step,
    repeated prompts and padding included (float64)."""
    q = 12
    with jax.enable_x64(True):
        pred = beta.beta_predictor(discount=lam, prior_strength=kappa,
                                   prior="pooled")
        ref = BetaOracle(q, lam, kappa)
        ref_pool = BetaOracle(q, lam, kappa)
        state0 = pred.init(q, None)
        for state, (idx, obs, w) in _run(pred, state0, _beta_stream(
                3, q=q, graded=graded)):
            ref.update(idx, obs, w)
            ref_pool.update(idx, obs, w)
            a, b = ref.posterior(ref_pool.pooled_prior())
            got_m = np.asarray(pred.predict(state, jnp.arange(q)))
            got_v = np.asarray(pred.variance(state, jnp.arange(q)))
            np.testing.assert_allclose(got_m, a / (a + b), rtol=1e-10)
            np.testing.assert_allclose(
                got_v, a * b / ((a + b) ** 2 * (a + b + 1)), rtol=1e-10)


def test_beta_ridge_prior_matches_closed_form():
    """With prior='ridge' the prior mean is the ridge prediction of the
    recent observations (closed form), clipped to [eps, 1 - eps]."""
    rng = np.random.default_rng(4)
    q, d = 15, 3
    x = rng.normal(size=(q, d))
    with jax.enable_x64(True):
        pred = beta.beta_predictor(discount=0.9, prior_strength=2.0, prior="ridge",
                                   ridge_capacity=64, ridge_lam=0.5)
        ref = BetaOracle(q, 0.9, 2.0)
        buf: deque = deque(maxlen=64)
        state0 = pred.init(q, x)
        for state, (idx, obs, w) in _run(pred, state0, _beta_stream(5, q=q)):
            ref.update(idx, obs, w)
            keep = w > 0
            buf.extend(sorted(_pool(idx[keep], obs[keep], w[keep]).items()))
            coef, b0 = _ridge_ref(x, list(buf), 0.5)
            a, b = ref.posterior(np.clip(x @ coef + b0, 0, 1))
            np.testing.assert_allclose(np.asarray(pred.predict(state, jnp.arange(q))),
                                       a / (a + b), rtol=1e-8)


def test_pooled_predictor_matches_oracle():
    with jax.enable_x64(True):
        pred = beta.pooled_predictor(discount=0.7, prior_weight=2.0)
        ref = BetaOracle(5, 0.7, 1.0, prior_weight=2.0)
        state0 = pred.init(5, None)
        for state, (idx, obs, w) in _run(pred, state0, _beta_stream(6, q=5)):
            ref.update(idx, obs, w)
            np.testing.assert_allclose(np.asarray(pred.predict(state, jnp.arange(5))),
                                       ref.pooled_prior(), rtol=1e-12)
        assert np.asarray(state.count).sum() > 0


beta_cases = st.tuples(st.integers(0, 10_000), st.sampled_from([0.0, 0.5, 0.95, 1.0]),
                       st.sampled_from([0.1, 1.0, 8.0]), st.booleans())


@functools.cache
def _pooled_beta(lam, kappa):
    return beta.beta_predictor(discount=lam, prior_strength=kappa, prior="pooled")


@settings(max_examples=16)
@given(beta_cases)
def test_beta_properties(case):
    """Posterior mean in (0, 1), evidence never negative, a never-seen prompt
    gets the prior, and discount 1 forgets nothing (the order of the steps
    does not matter)."""
    seed, lam, kappa, graded = case
    q = 10
    pred = _pooled_beta(lam, kappa)  # one compilation per setting
    steps = list(_beta_stream(seed, q=q, steps=5, n=4, graded=graded))
    state0 = pred.init(q, None)
    for state, _ in _run(pred, state0, steps):
        m = np.asarray(pred.predict(state, jnp.arange(q)))
        assert np.all((m > 0) & (m < 1))
        assert np.all(np.asarray(state.successes) >= 0)
        assert np.all(np.asarray(state.failures) >= 0)
    seen = {int(i) for idx, _, w in steps for i, wi in zip(idx, w, strict=True)
            if wi > 0}
    prior = np.clip(np.asarray(beta.pooled_predictor(discount=lam).predict(
        state.prior, jnp.arange(q))), 1e-2, 1 - 1e-2)
    for i in set(range(q)) - seen:
        assert float(m[i]) == pytest.approx(float(prior[i]), rel=1e-6)
    if lam == 1.0:
        rev = [s for s, _ in _run(pred, state0, steps[::-1])][-1]
        np.testing.assert_allclose(np.asarray(pred.predict(rev, jnp.arange(q))), m,
                                   rtol=1e-5)


def test_beta_discount_forgets():
    """Negative control of the property above: with discount < 1 an old
    failure weighs less than a new success."""
    pred = beta.beta_predictor(discount=0.5, prior_strength=1.0, prior="pooled")
    s = pred.init(2, None)
    one, eight = jnp.array([0], jnp.int32), jnp.array([8.0])
    a = pred.update(pred.update(s, one, jnp.array([0.0]), eight), one,
                    jnp.array([1.0]), eight)
    b = pred.update(pred.update(s, one, jnp.array([1.0]), eight), one,
                    jnp.array([0.0]), eight)
    assert float(pred.predict(a, one)[0]) > 0.6 > 0.4 > float(pred.predict(b, one)[0])


def test_beta_runs_inside_lax_scan_by_registry_name():
    """Pure and jittable: the update/predict loop inside one jitted scan
    (as simulate runs it) equals the step-by-step loop."""
    from vipcore._src.predict.registry import get_predictor

    rng = np.random.default_rng(7)
    q, b, t = 30, 8, 6
    emb = rng.normal(size=(q, 4)).astype(np.float32)
    pred = get_predictor("beta").factory(link="sigmoid")
    s0 = pred.init(q, emb)
    idx = jnp.asarray(rng.integers(0, q, (t, b)), jnp.int32)
    obs = jnp.asarray(rng.integers(0, 9, (t, b)) / 8, jnp.float32)
    w = jnp.full((t, b), 8.0, jnp.float32)

    def body(s, xs):
        i, o, ww = xs
        p = pred.predict(s, i)
        return pred.update(s, i, o, ww), p

    last, ps = jax.jit(lambda s: jax.lax.scan(body, s, (idx, obs, w)))(s0)
    s = s0
    for k in range(t):
        np.testing.assert_allclose(np.asarray(pred.predict(s, idx[k])),
                                   np.asarray(ps[k]), rtol=1e-5, atol=1e-6)
        s = pred.update(s, idx[k], obs[k], w[k])
    np.testing.assert_allclose(np.asarray(last.successes), np.asarray(s.successes),
                               rtol=1e-6)


@pytest.mark.parametrize("name", ["beta", "pooled", "moving_average", "ridge",
                                  "gp_binomial"])
def test_grow_keeps_old_prompts_and_gives_new_ones_the_prior(name):
    from vipcore._src.predict.registry import get_predictor

    rng = np.random.default_rng(8)
    emb = rng.normal(size=(12, 3)).astype(np.float32)
    spec = get_predictor(name)
    pred = spec.factory(link="sigmoid")
    use = emb[:8] if spec.uses_embeddings else None
    s = pred.init(8, use)
    s = pred.update(s, jnp.array([0, 1, 2], jnp.int32),
                    jnp.array([0.0, 1.0, 0.5], jnp.float32),
                    jnp.array([8.0, 8.0, 8.0], jnp.float32))
    fresh = pred.predict(s, jnp.arange(8))
    g = pred.grow(s, 4, emb[8:] if spec.uses_embeddings else None)
    np.testing.assert_allclose(np.asarray(pred.predict(g, jnp.arange(8))),
                               np.asarray(fresh), rtol=1e-6)
    new = np.asarray(pred.predict(g, jnp.arange(8, 12)))
    assert new.shape == (4,) and np.all(np.isfinite(new))
    if name in ("beta", "pooled"):  # a never-seen prompt gets the prior
        prior = (np.asarray(pred.predict(g, jnp.arange(3, 8))) if name == "pooled"
                 else None)
        if prior is not None:
            np.testing.assert_allclose(new, prior[:1].repeat(4), rtol=1e-6)


def test_beta_validates():
    with pytest.raises(ValueError, match=r"discount must lie in \[0, 1\]"):
        beta.beta_predictor(discount=1.5)
    with pytest.raises(ValueError, match="prior_strength must be > 0"):
        beta.beta_predictor(prior_strength=0)
    with pytest.raises(ValueError, match="link must be 'sigmoid'"):
        beta.beta_predictor(link="softplus")
    with pytest.raises(ValueError, match="prior must be one of"):
        beta.beta_predictor(prior="knn")
    with pytest.raises(ValueError, match="needs \\(Q, d\\) prompt embeddings"):
        beta.beta_predictor(prior="gp_binomial").init(4, None)


def _brute_force(p, budget, lower, upper):
    """The exact integer minimiser of sum 4p(1-p)/(n-1) by enumeration."""
    import itertools

    a = 4 * np.asarray(p) * (1 - np.asarray(p))
    best, arg = np.inf, None
    for n in itertools.product(range(lower, upper + 1), repeat=len(p)):
        if sum(n) == budget:
            v = float(np.sum(a / (np.asarray(n) - 1.0)))
            if v < best - 1e-12:
                best, arg = v, np.asarray(n)
    return best, arg


def test_allocation_metrics_definitions():
    """Objective at the true p of the allocation from p_hat, uniform and
    oracle (by enumeration), and the starved mid-range prompts: a mid-range
    prompt predicted saturated gets L; one predicted nearly saturated gets
    L + 1 and is not starved."""
    p_true = np.array([0.5, 0.45, 0.3, 0.97, 0.05])
    p_hat = np.array([0.01, 0.35, 0.06, 0.97, 0.5])
    budget, lower, upper = 20, 2, 7
    m = cal.allocation_metrics(p_hat, p_true, budget, lower, upper)
    n_hat = _brute_force(p_hat, budget, lower, upper)[1]
    a = 4 * p_true * (1 - p_true)
    assert m.objective == pytest.approx(np.sum(a / (n_hat - 1)), rel=1e-12)
    assert m.uniform == pytest.approx(np.sum(a / 3), rel=1e-12)
    assert m.oracle == pytest.approx(_brute_force(p_true, budget, lower, upper)[0],
                                     rel=1e-12)
    assert n_hat[0] == lower and n_hat[2] == lower + 1  # the setting bites
    assert (m.starved, m.mid) == (1, 3)
    assert m.starvation_rate == pytest.approx(1 / 3)
    assert m.vs_uniform == pytest.approx(m.objective / m.uniform)
    assert m.vs_oracle == pytest.approx(m.objective / m.oracle)
    with pytest.raises(ValueError, match=r"p_true must lie in \[0, 1\]"):
        cal.allocation_metrics(p_hat, p_true + 1, budget, lower, upper)
    with pytest.raises(ValueError, match="mid must be"):
        cal.allocation_metrics(p_hat, p_true, budget, lower, upper, mid=(0.8, 0.2))
