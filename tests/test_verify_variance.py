"""Tests of the variance section of ``vipcore verify`` (quick settings).

The section's own checks are z-tests at a Bonferroni threshold; here they run
with fixed seeds, including the negative controls, and mutations of the theory
and of the simulator must make the section fail.
"""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pytest

from vipcore._src.apps.verify import variance as vv
from vipcore._src.apps.verify.report import VerifyConfig, bonferroni_z
from vipcore._src.variance import grpo_gradient_variance, zero_variance_probability


def _run(tmp_path, seed=0, **kw):
    cfg = VerifyConfig(mode="quick", seed=seed, out=tmp_path, n_sections=3, **kw)
    return cfg, vv.section(cfg)


@pytest.fixture
def no_plots(monkeypatch):
    """Skip the PNGs and the exact rows in tests that only look at the
    Monte-Carlo checks (the exact rows have their own tests)."""
    monkeypatch.setattr(vv, "plot_grid", lambda *a: ("none.png", ""))
    monkeypatch.setattr(vv, "plot_allocation", lambda *a: ("none.png", ""))
    monkeypatch.setattr(vv.exact, "variance_checks", lambda *a, **k: [])
    monkeypatch.setattr(vv.exact, "allocation_checks", lambda *a, **k: [])
    monkeypatch.setattr(vv.exact_alloc, "padding_checks", lambda *a, **k: [])
    monkeypatch.setattr(vv.exact_alloc, "corner_checks", lambda *a, **k: [])


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("verify_variance"))


def _has_allocation():
    try:
        import vipcore._src.allocation  # noqa: F401
    except ImportError:
        return False
    return True


def _mc(res):
    """The Monte-Carlo rows (the exact rows come first)."""
    return res.checks[res.data["exact_checks"]:]


def test_quick_section_passes_with_negative_controls(quick):
    cfg, res = quick
    assert res.title == vv.TITLE
    failed = [c.name for c in res.checks if not c.passed]
    assert not failed, failed
    mc = _mc(res)
    pos = [c for c in mc if not c.negative]
    neg = [c for c in mc if c.negative]
    assert len(neg) >= 6
    names = " ".join(c.name for c in neg)
    assert "correlated" in names and "wrong formula" in names
    # one Bonferroni threshold over the positive Monte-Carlo checks
    zstar = bonferroni_z(cfg.section_fwer, len(pos))
    assert all(c.threshold == pytest.approx(zstar) for c in mc)
    assert res.data["positive_checks"] == len(pos)
    assert all(abs(c.z) > zstar for c in neg)
    # the exact rows come first, each with a tolerance and a negative control
    n_exact = res.data["exact_checks"]
    assert len(res.checks) == n_exact + len(mc)
    exact_rows = res.checks[:n_exact]
    assert all("exact" in c.note or "within 1" in c.name for c in exact_rows)
    assert sum(c.negative for c in exact_rows) >= 2
    # the grid covers the extremes and both estimators
    grid = res.data["grid"]
    assert {0.01, 0.99} <= {r["p"] for r in grid}
    assert {r["estimator"] for r in grid} == {"drgrpo", "rloo"}
    # the report states the false-failure probability
    assert "fails a correct implementation with probability" in res.markdown
    assert res.data["false_failure_bound"] < 1e-6
    json.dumps(res.data)


def test_negative_controls_state_their_power(quick):
    cfg, res = quick
    zstar = res.data["threshold"]
    for ctl in res.data["negative_controls"]:
        assert ctl["power"] == pytest.approx(
            vv.detection_power(ctl["expected_z"], zstar))
        assert ctl["power"] > 1 - 1e-7, ctl
    for c in _mc(res):
        if c.negative:
            assert "power" in c.note


def test_figures_written(quick):
    cfg, res = quick
    names = [f for f, _ in res.figures]
    assert "variance_vs_n.png" in names
    if _has_allocation():
        assert "allocation_variance.png" in names
    for f in names:
        data = (cfg.out / f).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


@pytest.mark.skipif(not _has_allocation(), reason="allocation module not merged")
def test_allocation_comparison(quick):
    _, res = quick
    alloc = res.data["allocation"]["allocations"]
    for est in ("drgrpo", "rloo"):
        vip, uni = alloc[f"{est}/VIP"], alloc[f"{est}/uniform"]
        assert vip["theory"] < uni["theory"]
        assert sum(vip["n"]) == sum(uni["n"]) == res.data["allocation"]["C"]
    rows = [c for c in res.checks if "predicted reduction" in c.name]
    assert len(rows) == 6 and all(c.passed for c in rows)


def test_another_seed_passes(tmp_path, no_plots):
    _, res = _run(tmp_path, seed=12345)
    assert res.passed, [c.name for c in res.checks if not c.passed]


def test_wrong_formula_in_theory_fails(tmp_path, monkeypatch, no_plots):
    """Mutation: the theory uses 1/n for both estimators -> positive checks fail."""
    monkeypatch.setattr(vv, "gradient_variance", lambda p, n, est="rloo", s=1.0:
                        s * 4 * np.asarray(p) * (1 - np.asarray(p)) / np.asarray(n))
    _, res = _run(tmp_path)
    failed = [c for c in res.checks if not c.passed and not c.negative]
    assert any(c.name.startswith("Var(G) Dr.GRPO p=0.5 n=2") for c in failed)
    assert any(c.name.startswith("Var(G) RLOO p=0.5 n=2") for c in failed)
    assert not res.passed


def test_biased_simulator_fails(tmp_path, monkeypatch, no_plots):
    """Mutation: G scaled by 1.1 (e.g. a wrong 1/n normalisation) is detected."""
    real = vv.simulate_cells
    monkeypatch.setattr(vv, "simulate_cells", lambda *a, **k: 1.1 * real(*a, **k))
    _, res = _run(tmp_path)
    assert not res.passed
    assert sum(not c.passed for c in res.checks if not c.negative) >= 5


def test_ignored_correlation_switch_fails(tmp_path, monkeypatch, no_plots):
    """Mutation: a simulator that silently drops ``corr`` makes the negative
    controls (and the exact correlated moments) fail."""
    real = vv.simulate_cells

    def no_corr(keys, p, n, e, zm, zv, corr, **k):
        return real(keys, p, n, e, zm, zv, 0 * corr, **k)

    monkeypatch.setattr(vv, "simulate_cells", no_corr)
    _, res = _run(tmp_path)
    bad = [c for c in res.checks if not c.passed]
    assert any(c.negative and "correlated" in c.name for c in bad)
    assert any(not c.negative and "exact (correlated)" in c.name for c in bad)


def test_detection_power():
    z = 5.0
    assert vv.detection_power(0.0, z) == pytest.approx(2 * (1 - NormalDist().cdf(z)))
    assert vv.detection_power(z, z) == pytest.approx(0.5, abs=1e-6)
    ps = [vv.detection_power(e, z) for e in (0, 2, 4, 6, 8, -8)]
    assert ps[:5] == sorted(ps[:5]) and ps[5] == pytest.approx(ps[4])


def test_trial_multiplier():
    for p in (0.001, 0.01, 0.1, 0.5, 0.99):
        for n in (2, 3, 4, 8, 64):
            m = vv._trial_multiplier(p, n, "pm1")
            assert m in (1, 2, 4, 8, 16)
            q = 1 - float(zero_variance_probability(p, n))
            assert m == 16 or m * q >= 0.1
            assert m == 1 or (m // 2) * q < 0.1
    assert vv._trial_multiplier(0.01, 2, "gaussian") == 1


def test_settings_by_mode():
    for mode in ("quick", "default", "full"):
        s = vv._settings(VerifyConfig(mode=mode))
        assert {0.01, 0.99} <= set(s["grid_p"]) and 0.5 in s["grid_p"]
        assert {2, 3} <= set(s["grid_n"])
    d = vv._settings(VerifyConfig(mode="default"))
    assert 64 in d["grid_n"] and len(d["families"]) == 3
    assert vv._settings(VerifyConfig(trials=777))["trials"] == 777


def test_grpo_variance_limits():
    # eps -> 0 limit: sigma^2/n * P(group not constant)
    for p, n in ((0.3, 4), (0.01, 2), (0.5, 16)):
        approx = (1 - p**n - (1 - p) ** n) / n
        got = float(grpo_gradient_variance(p, n, eps=0.0))
        assert got == pytest.approx(approx, rel=1e-12)
    assert float(grpo_gradient_variance(0.0, 5)) == 0.0
    assert math.isfinite(float(grpo_gradient_variance(0.5, 64)))


def test_estimator_on_constant_draws():
    from vipcore._src.montecarlo import estimate_variance

    est = estimate_variance(np.full(10, 3.0))
    assert (est.var, est.se, est.mean, est.mean_se) == (0.0, 0.0, 3.0, 0.0)


def test_log_z():
    assert vv.log_z(1.0, 1.0, 0.1) == 0.0
    assert vv.log_z(0.0, 0.0, 0.0) == 0.0
    assert vv.log_z(0.0, 0.1, 0.01) == math.inf
    assert vv.log_z(1.0, 0.0, 0.01) == -math.inf
    # agrees with the linear z to first order near the theory
    th, se = 2.0, 0.01
    for emp in (1.99, 2.0, 2.01):
        assert vv.log_z(th, emp, se) == pytest.approx((emp - th) / se, abs=0.02)
    assert vv.log_z(1.0, 2.0, 0.5) == pytest.approx(math.log(2.0) * 4.0)


@pytest.mark.slow
@pytest.mark.parametrize("p, n, estimator, trials", [
    (0.01, 2, "drgrpo", 32000),  # the quick grid's most skewed cell
    (0.5, 2, "rloo", 4000),
])
def test_log_z_calibration(p, n, estimator, trials):
    """Over 2048 independent replicates of one cell, the log-scale z of the
    variance check is N(0, 1) (KS test, and its skewness within 4 s.e. of 0)."""
    import jax
    import jax.numpy as jnp
    import scipy.stats

    from vipcore._src.montecarlo import estimate_variance, simulate_cells
    from vipcore._src.variance import gradient_variance

    th = float(gradient_variance(p, n, estimator))
    e = vv._EST_INDEX[estimator]
    zs = []
    K = 64
    for b in range(2048 // K):
        keys = jax.random.split(jax.random.fold_in(jax.random.key(2024), b), K)
        g = simulate_cells(
            keys, jnp.full(K, p), jnp.full(K, n, jnp.int32), jnp.full(K, e, jnp.int32),
            jnp.zeros(K), jnp.ones(K), jnp.zeros(K), n_max=n, trials=trials)
        for row in np.asarray(g, np.float64):
            est = estimate_variance(row)
            zs.append(vv.log_z(th, est.var, est.se))
    zs = np.asarray(zs)
    assert scipy.stats.kstest(zs, "norm").pvalue > 1e-4
    assert abs(scipy.stats.skew(zs)) < 4 * math.sqrt(6 / zs.size)
