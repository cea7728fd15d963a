"""The exact rows of ``vipcore verify`` pass on the library and fail on a
plausible bug (negative controls with a wrong function substituted).

The sections' own tests (tests/test_verify_*.py) run every exact row on the
real library; here each block is run on a stand-in module whose function has
one realistic error, and the row guarding it must fail. The mutation tool
(``tools/mutate.py``) does the same with edits of the source.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import jax
import numpy as np
import pytest

import vipcore
from vipcore import stats as S
from vipcore._src import montecarlo as mc
from vipcore._src import variance as vc
from vipcore._src.apps.verify import exact as E
from vipcore._src.apps.verify import sweep as sweep_section
from vipcore._src.apps.verify.variance import ALLOC_P


def _like(mod, **over):
    """A stand-in for ``mod`` with some attributes replaced."""
    names = {k: getattr(mod, k) for k in dir(mod) if not k.startswith("__")}
    return SimpleNamespace(**{**names, **over})


def _row(rows, start):
    (row,) = [r for r in rows if r.name.startswith(start)]
    return row


def test_worst_tracks_the_largest_relative_error():
    w = E.Worst()
    w.add([1.0, 2.0], [1.0, 2.2], "a")
    w.add(3.0, 3.0, "b")
    assert w.err == pytest.approx(0.2 / 2.2) and w.case == "a" and w.n == 3
    w.add(np.nan, 1.0, "nan")
    assert math.isinf(w.err) and w.case == "nan"
    assert not E.exact_check("x", w, 1e-9).passed
    assert E.exact_check("x", w, 1e-9, negative=True).passed


def test_formula_rows_catch_wrong_formulas():
    with jax.enable_x64(True):
        good = E._formula_rows(vc, mc)
        assert all(r.passed for r in good), [r.name for r in good if not r.passed]
        quarter = _like(vc, gradient_variance=lambda p, n, e="rloo", s=1.0:
                        0.25 * vc.gradient_variance(p, n, e, s))
        assert not _row(E._formula_rows(quarter, mc), "gradient_variance ").passed
        limit = _like(vc, grpo_gradient_variance=lambda p, n, ddof=0, sigma_z2=1.0,
                      eps=1e-6: vc.grpo_gradient_variance(p, n, ddof=ddof,
                                                          sigma_z2=sigma_z2, eps=0.0))
        assert not _row(E._formula_rows(limit, mc), "grpo_gradient").passed
        no_corr = _like(mc, correlated_gradient_moments=lambda p, n, c, **k:
                        mc.correlated_gradient_moments(p, n, 0.0, **k))
        assert not _row(E._formula_rows(vc, no_corr), "correlated").passed


def test_advantage_rows_catch_a_wrong_leave_one_out():
    rng = np.random.default_rng(0)
    good = E._advantage_rows(vc, rng, (np.float32,))
    assert all(r.passed for r in good)

    def wrong(r, estimator="rloo", **kw):  # RLOO scaled by n/n instead of n/(n-1)
        return vc.advantages(r, "drgrpo" if estimator == "rloo" else estimator, **kw)

    rows = E._advantage_rows(_like(vc, advantages=wrong), rng, (np.float32,))
    assert not _row(rows, "advantages rloo").passed
    assert _row(rows, "advantages drgrpo").passed


def _inst():
    return E.allocation_instances(0, np.asarray(ALLOC_P))[::4]


def test_solve_rows_catch_wrong_objective_and_multiplier(monkeypatch):
    inst = _inst()
    oracle = E._oracle(inst)
    good = E._solve_rows(inst, oracle, np.float32)
    assert all(r.passed for r in good), [r.note for r in good if not r.passed]
    real = vipcore.solve_allocation

    def paper_code_a(*args, **kw):  # a = p(1-p): same n, objective / 4, lam / 4
        res = real(*args, **kw)
        return res._replace(objective=res.objective / 4, lam=res.lam / 4)

    monkeypatch.setattr(vipcore, "solve_allocation", paper_code_a)
    rows = E._solve_rows(inst, oracle, np.float32)
    assert _row(rows, "solve_allocation n is").passed
    assert not _row(rows, "solve_allocation objective").passed
    assert not _row(rows, "solve_allocation lam").passed

    def budget_leak(*args, **kw):  # n_continuous off the budget, n repaired
        res = real(*args, **kw)
        return res._replace(n_continuous=res.n_continuous * 0.97)

    monkeypatch.setattr(vipcore, "solve_allocation", budget_leak)
    assert not _row(E._solve_rows(inst, oracle, np.float32),
                    "solve_allocation n_continuous").passed


def test_heuristic_rows_catch_wrong_weights(monkeypatch):
    inst = _inst()
    assert all(r.passed for r in E._heuristic_rows(inst))
    monkeypatch.setattr(vipcore, "allocate_inverse_variance", vipcore.allocate_uniform)
    rows = E._heuristic_rows(inst)
    assert not _row(rows, "allocate_inverse_variance").passed
    assert _row(rows, "allocate_uniform").passed


def test_stats_rows_catch_wrong_degrees_of_freedom():
    rng = np.random.default_rng(0)
    R, Z = E._stats_data(rng)
    with jax.enable_x64(True):
        rows, _ = E._pearson_rows(S, R, Z, E.F64_TOL)
        assert rows[0].passed, rows[0].note

        def pearson_n_minus_1(r, z, **kw):
            res = S.pearson_groups(r, z, **kw)
            rho = np.asarray(res.statistic)
            t = rho * np.sqrt(np.asarray(res.df) / ((1 - rho) * (1 + rho)))
            return res._replace(pvalue=S.t_sf_two_sided(t, np.asarray(res.df) + 1.0))

        rows, _ = E._pearson_rows(_like(S, pearson_groups=pearson_n_minus_1), R, Z,
                                  E.F64_TOL)
        assert not rows[0].passed
        good = E._variance_test_rows(S, Z, E.F64_TOL)
        assert all(r.passed for r in good)

        def swapped(g, **kw):  # F tail with dfn and dfd swapped
            res = S.levene(g, **kw)
            return res._replace(pvalue=S.f_sf(res.statistic, 1.0 * res.dfd,
                                              1.0 * res.dfn))

        rows = E._variance_test_rows(_like(S, levene=swapped), Z, E.F64_TOL)
        assert not _row(rows, "levene median").passed


def test_sweep_exact_rows_catch_a_biased_estimator(monkeypatch):
    rows = sweep_section.exact_rows(0)
    assert all(r.passed for r in rows)

    real = sweep_section.frac_reward_zero_std

    def plugin(scores, *, group_size=8, **kw):
        est = real(scores, group_size=group_size, **kw)
        ph = np.array([np.mean(s) for s in scores])
        return est._replace(per_prompt=ph**group_size + (1 - ph) ** group_size)

    monkeypatch.setattr(sweep_section, "frac_reward_zero_std", plugin)
    assert not _row(sweep_section.exact_rows(0), "frac_reward_zero_std").passed


def test_estimator_rows_catch_the_divisor_m():
    rng = np.random.default_rng(0)
    assert all(r.passed for r in E._estimator_rows(mc, rng))

    def biased(x, axis=-1):
        e = mc.estimate_variance(x, axis=axis)
        return e._replace(var=e.var * (e.trials - 1) / e.trials)

    rows = E._estimator_rows(_like(mc, estimate_variance=biased), rng)
    assert not rows[0].passed  # float64: the 1/M bias is far above 1e-9
