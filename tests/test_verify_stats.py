"""Tests for the Appendix B section of ``vipcore verify``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.stats as ss

from vipcore._src.apps.verify import stats as V
from vipcore._src.apps.verify.report import VerifyConfig
from vipcore._src.apps.verify.runner import run_verify
from vipcore._src.apps.verify.stats_sim import TESTS


def test_quick_section_passes_and_writes_report(tmp_path):
    ok, results = run_verify(out=tmp_path, mode="quick",
                             sections=("vipcore._src.apps.verify.stats",))
    (res,) = results
    assert ok and res.passed, [c for c in res.checks if not c.passed]
    names = [c.name for c in res.checks]
    n_exact = res.data["exact_checks"]
    exact_rows, mc = res.checks[:n_exact], res.checks[n_exact:]
    assert sum(c.negative for c in mc) == 8  # broken-assumption controls
    assert sum(c.negative for c in exact_rows) == 1 and n_exact >= 9
    assert any("Levene, median" in n and "conservative" in c.note
               for n, c in zip(names, res.checks, strict=True))
    assert (tmp_path / "stats_null_pvalues.png").stat().st_size > 10_000
    payload = json.loads((tmp_path / "results.json").read_text())
    data = payload["sections"][res.title]["data"]
    assert set(data) == {"tables_5_8", "size", "power", "paper_recalibrated",
                         "exact_checks"}
    assert len(data["paper_recalibrated"]) == 4 * 2 * 3
    report = (tmp_path / "report.md").read_text()
    for text in ("Tables 5–8", "Size at α = 0.05", "re-read", "0.3847 →"):
        assert text in report


@pytest.fixture
def no_exact(monkeypatch):
    """The fakes below replace the simulations only; the exact rows have their
    own tests (tests/test_verify_exact.py)."""
    monkeypatch.setattr(V.exact, "stats_checks", lambda *a, **k: [])


def _fake(pfun):
    """A stand-in for simulate_pvalues returning pfun(trials, kw) p-values."""
    def sim(key, *, trials, **kw):
        rng = np.random.default_rng(0)
        return pfun(rng, trials, kw)
    return sim


def test_section_fails_when_tests_cannot_detect(monkeypatch, tmp_path, no_exact):
    """Uniform p-values everywhere (tests with no power): every negative
    control must fail and every null check must still pass."""
    monkeypatch.setattr(V, "simulate_pvalues", _fake(
        lambda rng, t, kw: rng.uniform(size=(t, len(TESTS)))))
    res = V.section(VerifyConfig(mode="quick", out=tmp_path))
    neg = [c for c in res.checks if c.negative]
    assert neg and not any(c.passed for c in neg)
    conservative = [c for c in res.checks if "conservative" in c.note]
    assert conservative and all(c.passed for c in conservative)
    assert all(c.passed for c in res.checks if not c.negative
               and "conservative" not in c.note)


def test_section_fails_when_tests_always_reject(monkeypatch, tmp_path, no_exact):
    """p = 1e-12 everywhere (tests that always reject): null checks fail."""
    monkeypatch.setattr(V, "simulate_pvalues", _fake(
        lambda rng, t, kw: np.full((t, len(TESTS)), 1e-12)))
    res = V.section(VerifyConfig(mode="quick", out=tmp_path))
    assert not res.passed
    holds = [c for c in res.checks if c.name.startswith("4.1 holds")]
    sizes = [c for c in res.checks if c.name.startswith("size at 5%")]
    assert holds and not any(c.passed for c in holds)
    assert sizes and not any(c.passed for c in sizes)
    assert all(c.passed for c in res.checks if c.negative)


@pytest.mark.parametrize("t", [20, 100, 1000])
def test_binomial_z_matches_scipy_tails(t):
    for k in range(0, t + 1, max(1, t // 25)):
        tail = min(1.0, 2 * min(ss.binom.cdf(k, t, 0.05), ss.binom.sf(k - 1, t, 0.05)))
        if tail < 1e-300:  # binomial_z floors the tail at 1e-300
            assert V.binomial_z(k, t, 0.05) >= 37
            continue
        want = 0.0 if tail >= 1 else math.copysign(ss.norm.isf(tail / 2), k - t * 0.05)
        np.testing.assert_allclose(V.binomial_z(k, t, 0.05), want, rtol=1e-6,
                                   atol=1e-9)


@pytest.mark.slow
def test_default_section_passes(tmp_path):
    ok, (res,) = run_verify(out=tmp_path, mode="default",
                            sections=("vipcore._src.apps.verify.stats",))
    assert ok, [c for c in res.checks if not c.passed]
