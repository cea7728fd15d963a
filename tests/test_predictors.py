"""Baselines (moving average, ridge) and calibration metrics vs plain oracles."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from vipcore._src.predict import baselines as pr
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
    for mod in (pr, cal, synthetic):
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert res.failed == 0, mod.__name__
