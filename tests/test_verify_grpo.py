"""The GRPO section of ``vipcore verify`` (quick settings) and its mutations.

The section passes with every negative control detected; a wrong signal
weight, RLOO's objective in place of GRPO's, or a simulator that uses the
wrong std divisor must each make a positive check fail.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from vipcore._src.apps.verify import grpo as vg
from vipcore._src.apps.verify import runner
from vipcore._src.apps.verify.report import VerifyConfig, bonferroni_z


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify_grpo")
    cfg = VerifyConfig(mode="quick", out=out, n_sections=5)
    return cfg, vg.section(cfg)


def test_registered_in_the_runner():
    assert "vipcore._src.apps.verify.grpo" in runner.SECTIONS


def test_quick_section_passes_with_negative_controls(quick):
    cfg, res = quick
    assert res.title == vg.TITLE
    failed = [c.name for c in res.checks if not c.passed]
    assert not failed, failed
    exact = [c for c in res.checks if "exact, no Monte Carlo" in c.note]
    assert [c.name.split(" ")[0] for c in exact] == [
        "grpo_terms", "allocate_grpo", "NEGATIVE:"]
    mc = res.checks[len(exact):]
    pos = [c for c in mc if not c.negative]
    neg = [c for c in mc if c.negative]
    zstar = bonferroni_z(cfg.section_fwer, len(pos))
    assert all(c.threshold == pytest.approx(zstar) for c in mc)
    assert any("Var(G) (raw)" in c.name and "ddof=0" in c.name for c in pos)
    names = " | ".join(c.name for c in neg)
    for what in ("RLOO's Var(G)", "taken as unbiased", "RLOO's objective",
                 "uniform as good", "minimiser as good"):
        assert what in names, what
    assert all(abs(c.z) > zstar for c in neg)
    assert res.data["false_failure_bound"] < 2 * cfg.section_fwer
    assert (cfg.out / res.figures[0][0]).read_bytes()[:4] == b"\x89PNG"


def test_allocation_comparison(quick):
    _, res = quick
    rows = res.data["allocation"]["rows"]
    best = rows["GRPO allocation"]
    assert best["theory"] <= rows["RLOO allocation"]["theory"] + 1e-6
    assert rows["uniform"]["theory"] > 1.05 * best["theory"]
    raw = rows["raw Var(G) minimiser"]
    assert raw["raw_theory"] < best["raw_theory"] and raw["theory"] > 2 * best["theory"]
    for r in rows.values():
        assert sum(r["n"]) == vg.ALLOC_C
    assert "| GRPO allocation |" in res.markdown


def _formula(cfg, **kw):
    s = dict(p=(0.5,), n=(4,), trials=20000) | kw
    pos, _, _ = vg._formula_rows(cfg, s, jax.random.key(7))
    return pos


def _failing(specs, zstar):
    return [name for kind, name, th, em, se, _ in specs
            if not vg.moment_check(kind, name, th, em, se, zstar).passed]


def test_mutation_wrong_signal_weight_is_caught(quick, monkeypatch):
    cfg, res = quick
    zstar = res.data["threshold"]
    assert not _failing(_formula(cfg), zstar)
    real = vg._terms

    def wrong(p, n, ddof=1):
        t = real(p, n, ddof)
        return t | {"signal": 1.1 * t["signal"]}

    monkeypatch.setattr(vg, "_terms", wrong)
    bad = _failing(_formula(cfg), zstar)
    assert any("E[G]" in b for b in bad) and any("omega^2" in b for b in bad)


def test_mutation_rloo_objective_is_caught_by_the_large_m_row(quick, monkeypatch):
    cfg, res = quick
    zstar = res.data["threshold"]
    s = dict(subtle_trials=300_000)
    pos, _ = vg._subtle_control(cfg, s, jax.random.key(3))
    assert not _failing(pos, zstar)
    real = vg._terms

    def rloo(p, n, ddof=1):
        t = real(p, n, ddof)
        p, n = np.broadcast_arrays(np.asarray(p, float), np.asarray(n, float))
        return t | {"normalized_variance": 4 * p * (1 - p) / (n - 1)}

    monkeypatch.setattr(vg, "_terms", rloo)
    pos, _ = vg._subtle_control(cfg, s, jax.random.key(3))
    assert _failing(pos, zstar)


def test_mutation_simulator_with_the_wrong_std_is_caught(quick, monkeypatch):
    """Advantages with the population std while the theory says ddof = 1."""
    cfg, res = quick
    real = vg.advantages

    def population(r, est, *, mask, ddof, eps):
        return real(r, est, mask=mask, ddof=0, eps=eps)

    monkeypatch.setattr(vg, "advantages", population)
    inner = vg._simulate.__wrapped__  # a new function object forces a new trace
    monkeypatch.setattr(vg, "_simulate", jax.jit(
        lambda *a, **k: inner(*a, **k), static_argnames=("n_max", "trials")))
    bad = _failing(_formula(cfg), res.data["threshold"])
    assert any("ddof=1" in b for b in bad)
