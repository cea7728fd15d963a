"""The allocator's outputs against their definitions, at the corners too.

Replaces a negative control that only showed the test's own wrong rounding
was wrong. Here every output a user reads is compared with an oracle
(``tests/helpers.py``): the integer ``n`` with brute force, ``objective``
with the dense sum, ``lam`` with the KKT conditions of the continuous
solution, ``n_continuous`` with the budget (including ``C = B*L`` and
``C = B*U``, which hypothesis rarely reaches), and the heuristics with their
exact continuous target and largest-remainder rounding. Each test is the one
a catalogue mutant of ``vipcore/_src/allocation`` fails
(``benchmarks/mutation/catalogue.py``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vipcore
from tests.helpers import (
    ALLOCATION_CORNERS,
    brute_force_allocation,
    greedy_from_lower,
    objective64,
)


def _random(seed, count=12):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        est, L = (("rloo", 2), ("drgrpo", 3))[int(rng.integers(2))]
        B = int(rng.integers(2, 5))
        U = int(rng.integers(L + 1, 9))
        p = rng.uniform(size=B)
        out.append((tuple(p), int(rng.integers(B * L, B * U + 1)), L, U, est))
    return out


CASES = ALLOCATION_CORNERS + _random(0)


def _solve(p, C, L, U, est, dtype=jnp.float32):
    pp = jnp.full(8, 0.5, dtype).at[: len(p)].set(jnp.asarray(p, dtype))
    return vipcore.solve_allocation(pp, C, L, U, estimator=est,
                                    mask=jnp.arange(8) < len(p))


def _marginal(n, est):
    n = np.asarray(n, np.float64)
    return 1 / (n - 1) ** 2 if est == "rloo" else (n - 2) / n**3


@pytest.mark.parametrize("case", CASES)
def test_every_output_of_solve_allocation(case):
    p, C, L, U, est = case
    B = len(p)
    p64 = np.asarray(p, np.float64)
    with jax.enable_x64(True):
        res = _solve(p, C, L, U, est, jnp.float64)
    n = np.asarray(res.n)[:B]
    assert int(res.status) == 0 and n.sum() == C and n.min() >= L and n.max() <= U
    best = brute_force_allocation(p, C, L, U, est)
    assert objective64(n, p, est) == pytest.approx(objective64(best, p, est),
                                                   rel=1e-12)
    assert float(res.objective) == pytest.approx(objective64(n, p, est), rel=1e-12)
    nc = np.asarray(res.n_continuous, np.float64)[:B]
    assert nc.sum() == pytest.approx(C, rel=1e-9)
    assert np.all(nc >= L - 1e-9) and np.all(nc <= U + 1e-9)
    a = 4 * p64 * (1 - p64)
    inner = (nc > L + 1e-6) & (nc < U - 1e-6) & (a > 0)
    lam = float(res.lam)
    if inner.any():  # KKT: interior marginals equal lam, bounds on either side
        np.testing.assert_allclose(a[inner] * _marginal(nc[inner], est), lam,
                                   rtol=1e-6)
        assert np.all(a[nc <= L + 1e-6] * _marginal(L, est) <= lam * (1 + 1e-6))
        assert np.all(a[(nc >= U - 1e-6) & (a > 0)] * _marginal(U, est)
                      >= lam * (1 - 1e-6))


@pytest.mark.parametrize("case", ALLOCATION_CORNERS)
def test_float32_matches_the_float64_outputs(case):
    p, C, L, U, est = case
    r32 = _solve(p, C, L, U, est)
    n = np.asarray(r32.n)[: len(p)]
    assert objective64(n, p, est) == pytest.approx(
        objective64(greedy_from_lower(p, C, L, U, est), p, est), rel=1e-6)
    assert float(r32.objective) == pytest.approx(objective64(n, p, est), rel=2e-6)
    # float32 Dr. GRPO roots near the bound lose digits (measured: sum 12.0018
    # for C = B*L = 12); a wrong marginal is off by percents
    assert float(np.sum(np.asarray(r32.n_continuous)[: len(p)])) == pytest.approx(
        C, rel=1e-3)


def test_allocation_objective_with_sigma():
    p, n = np.array([0.1, 0.5, 0.9]), np.array([3, 5, 9])
    for est in ("rloo", "drgrpo"):
        assert float(vipcore.allocation_objective(n, p, est, 2.5)) == pytest.approx(
            2.5 * objective64(n, p, est), rel=1e-6)


def _target(w, C, L, U):
    lo, hi = math.log(L / w.max()) - 1, math.log(U / w.min()) + 1
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.clip(math.exp(mid) * w, L, U).sum() <= C:
            lo = mid
        else:
            hi = mid
    return np.clip(math.exp(0.5 * (lo + hi)) * w, L, U)


HEURISTICS = {
    "inverse_accuracy": (vipcore.allocate_inverse_accuracy, lambda p: 1 - p + 1e-2),
    "inverse_variance": (vipcore.allocate_inverse_variance,
                         lambda p: 1 / (p * (1 - p) + 1e-2)),
    "uniform": (vipcore.allocate_uniform, np.ones_like),
}


@pytest.mark.parametrize("name", list(HEURISTICS))
def test_heuristics_hit_their_exact_target(name):
    """Weights scaled to the budget within [L, U] (exact target by bisection),
    then largest remainder: every n is floor(x) or floor(x) + 1, and the
    extra units go to the largest fractional parts."""
    fn, weights = HEURISTICS[name]
    rng = np.random.default_rng(1)
    for _ in range(20):
        B = int(rng.integers(3, 12))
        p = rng.uniform(size=B)
        L, U = 2, int(rng.integers(6, 20))
        C = int(rng.integers(B * L, B * U + 1))
        n = np.asarray(fn(p, C, L, U))
        x = _target(weights(p), C, L, U)
        assert n.sum() == C
        base = np.floor(x + 1e-9)
        extra = n - base
        assert set(np.unique(extra)) <= {0, 1}, (n, x)
        frac = x - base
        if 0 < extra.sum() < B:
            assert frac[extra == 1].min() >= frac[extra == 0].max() - 1e-5, (n, x)
