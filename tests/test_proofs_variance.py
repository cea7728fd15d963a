"""The variance formulas and advantages against independent exact oracles.

The oracle (``tests/helpers.py``) enumerates every ``±1`` reward sequence of a
group and computes the advantages rollout by rollout, without vipcore; the
library's closed forms must agree to float64 rounding. Each test is the one
a catalogue mutant of ``vipcore/_src/variance.py`` fails
(``benchmarks/mutation/catalogue.py``).
"""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest

import vipcore
from tests.helpers import advantages_reference, exact_var_g_sequences

P = (0.0, 0.01, 0.3, 0.5, 0.99, 1.0)


@pytest.mark.parametrize("estimator", ["rloo", "drgrpo"])
@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_props_4_2_4_3_against_enumeration(estimator, n):
    with jax.enable_x64(True):
        for p in P:
            want = exact_var_g_sequences(p, n, estimator, z_var=1.7)
            got = float(vipcore.gradient_variance(np.float64(p), n, estimator, 1.7))
            assert got == pytest.approx(want, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("ddof, eps", [(0, 1e-6), (1, 1e-6), (0, 0.1), (1, 0.1)])
def test_grpo_variance_against_enumeration(ddof, eps):
    for p, n in itertools.product((0.05, 0.5, 0.8), (2, 3, 6)):
        want = exact_var_g_sequences(p, n, "grpo", z_var=2.0, ddof=ddof, eps=eps)
        got = float(vipcore.grpo_gradient_variance(p, n, ddof=ddof, sigma_z2=2.0,
                                                   eps=eps))
        assert got == pytest.approx(want, rel=1e-12)


def test_continuous_form_is_the_binary_form_at_var_r():
    with jax.enable_x64(True):
        for p, n, est in itertools.product((0.2, 0.7), (3, 9), ("rloo", "drgrpo")):
            want = exact_var_g_sequences(p, n, est)  # Var(R) = 4p(1-p)
            got = vipcore.gradient_variance_continuous(np.float64(4 * p * (1 - p)), n,
                                                       estimator=est)
            assert float(got) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("estimator, ddof", [("drgrpo", 0), ("rloo", 0),
                                             ("grpo", 0), ("grpo", 1)])
def test_advantages_against_rollout_by_rollout_formula(estimator, ddof):
    rng = np.random.default_rng(0)
    groups = [np.asarray(s) for n in range(2, 6)
              for s in itertools.product((1.0, -1.0), repeat=n)]
    groups += [rng.uniform(-1, 1, n) for n in (3, 7) for _ in range(4)]
    width = 8
    r = np.full((len(groups), width), np.nan)
    m = np.zeros(r.shape, bool)
    for i, g in enumerate(groups):
        r[i, : g.size], m[i, : g.size] = g, True
    with jax.enable_x64(True):
        got = np.asarray(vipcore.advantages(r, estimator, ddof=ddof, mask=m))
        for i, g in enumerate(groups):
            np.testing.assert_allclose(got[i, : g.size],
                                       advantages_reference(g, estimator, ddof=ddof),
                                       rtol=1e-12, atol=1e-12)
        assert np.all(got[~m] == 0)  # padding (NaN in the input) gives 0
        full = np.asarray(vipcore.advantages(r[:4, :2], estimator, ddof=ddof))
        for i in range(4):
            np.testing.assert_allclose(full[i], advantages_reference(
                r[i, :2], estimator, ddof=ddof), rtol=1e-12, atol=1e-12)


def test_zero_variance_probability_against_enumeration():
    for p, n in itertools.product((0.0, 0.1, 0.5, 0.97, 1.0), (1, 2, 5)):
        want = sum(p ** s.count(1) * (1 - p) ** s.count(0)
                   for s in itertools.product((0, 1), repeat=n) if len(set(s)) == 1)
        assert float(vipcore.zero_variance_probability(p, n)) == pytest.approx(
            want, abs=1e-15)
