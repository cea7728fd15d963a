"""Gradient variance (Props 4.2/4.3, E.1/E.2) and the advantage estimators."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import vipcore
from tests.helpers import assert_allclose


def exact_group_variance(p, n, estimator):
    """Exact Var(G)/sigma_Z^2 for ±1 rewards, by enumerating the k successes.

    With Z independent of R (Assumption 4.1) and sum_j A_j = 0,
    Var(G) = sigma_Z^2 / n^2 * E[sum_j A_j^2]; the expectation is a finite sum
    over the binomial number of successes, so this is an independent, exact
    oracle for the closed forms (no Monte Carlo).
    """
    total = 0.0
    for k in range(n + 1):
        r = np.array([1.0] * k + [-1.0] * (n - k))
        a = np.asarray(vipcore.advantages(r, estimator))
        prob = math.comb(n, k) * p**k * (1 - p) ** (n - k)
        total += prob * np.sum(a.astype(np.float64) ** 2)
    return total / n**2


@pytest.mark.parametrize("estimator", ["rloo", "drgrpo"])
@pytest.mark.parametrize("n", [2, 3, 5, 8, 16])
@pytest.mark.parametrize("p", [0.01, 0.3, 0.5, 0.99])
def test_props_4_2_4_3_exact_enumeration(estimator, n, p):
    with jax.enable_x64(True):
        want = exact_group_variance(p, n, estimator)
        got = float(vipcore.gradient_variance(np.float64(p), n, estimator))
    assert_allclose(got, want, rtol=1e-9, atol=1e-15)


def test_exact_oracle_rejects_wrong_formula():
    """Negative control: the enumeration oracle tells (n-1)/n^2 from 1/n."""
    with jax.enable_x64(True):
        exact = exact_group_variance(0.3, 6, "drgrpo")
    wrong = 4 * 0.3 * 0.7 / 6
    assert abs(wrong - exact) / exact > 0.1


def test_continuous_form_and_sigma():
    v = vipcore.gradient_variance_continuous(0.2, np.array([3, 9]), estimator="rloo",
                                             sigma_z2=2.0)
    assert_allclose(v, [2.0 * 0.2 / 2, 2.0 * 0.2 / 8])
    v = vipcore.gradient_variance_continuous(0.2, 4, estimator="drgrpo")
    assert_allclose(v, 0.2 * 3 / 16)
    # binary form is the continuous form at Var(R) = 4p(1-p)
    assert_allclose(vipcore.gradient_variance(0.25, 7, "drgrpo"),
                    vipcore.gradient_variance_continuous(0.75, 7, estimator="drgrpo"))


def test_gradient_variance_dtype_and_jit():
    p = jnp.linspace(0, 1, 11, dtype=jnp.float32)
    out = jax.jit(lambda p: vipcore.gradient_variance(p, 8))(p)
    assert out.dtype == jnp.float32
    assert_allclose(out, 4 * p * (1 - p) / 7)


def test_gradient_variance_bad_input():
    with pytest.raises(ValueError, match="estimator must be one of"):
        vipcore.gradient_variance(0.5, 4, "grpo")
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]"):
        vipcore.gradient_variance(1.5, 4)
    with pytest.raises(ValueError, match="p must not contain NaN"):
        vipcore.gradient_variance([0.5, float("nan")], 4)


rewards_strategy = st.lists(
    st.floats(-1, 1, allow_nan=False, width=32), min_size=2, max_size=24
)


@given(rewards_strategy)
def test_advantage_identities(r):
    r = np.asarray(r, np.float32)
    dr = np.asarray(vipcore.advantages(r, "drgrpo"))
    rl = np.asarray(vipcore.advantages(r, "rloo"))
    gr = np.asarray(vipcore.advantages(r, "grpo"))
    n = len(r)
    scale = max(1.0, float(np.abs(r).max()))
    # RLOO = n/(n-1) * Dr.GRPO exactly; and the leave-one-out definition.
    assert_allclose(rl, n / (n - 1) * dr, atol=1e-6 * scale)
    loo = r - (r.sum() - r) / (n - 1)
    assert_allclose(rl, loo, atol=2e-6 * scale)
    for a in (dr, rl, gr):
        assert abs(a.sum()) <= 1e-4 * n * max(1.0, np.abs(a).max())


def test_seed_001_worked_example():
    r = [1.0, 0.0, 1.0, 0.0]
    assert_allclose(vipcore.advantages(r, "grpo"), [1, -1, 1, -1], atol=1e-5)
    assert_allclose(
        vipcore.advantages(r, "grpo", ddof=1), np.array([1, -1, 1, -1]) * 0.866025,
        atol=1e-5,
    )
    assert np.round(np.asarray(vipcore.advantages(r, "grpo", ddof=1))[0], 2) == 0.87


def test_zero_variance_group_gives_zero_advantage():
    for est in ("grpo", "drgrpo", "rloo"):
        assert np.all(np.asarray(vipcore.advantages([1.0] * 5, est)) == 0)


@given(st.integers(2, 9), st.integers(0, 7), st.integers(0, 2**31 - 1))
def test_padded_batch_equals_per_group(width, pad, seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, width + 1, size=4)
    W = width + pad
    R = np.full((4, W), np.nan, np.float32)
    mask = np.zeros((4, W), bool)
    for i, m in enumerate(lengths):
        R[i, :m] = rng.integers(0, 2, m)
        mask[i, :m] = True
    for est in ("grpo", "drgrpo", "rloo"):
        batch = np.asarray(vipcore.advantages(R, est, mask=mask))
        assert np.all(batch[~mask] == 0)
        for i, m in enumerate(lengths):
            assert_allclose(batch[i, :m], vipcore.advantages(R[i, :m], est))


def test_advantages_bad_input():
    with pytest.raises(ValueError, match="estimator must be one of"):
        vipcore.advantages([1.0, 0.0], "ppo")
    with pytest.raises(ValueError, match="ddof must be 0"):
        vipcore.advantages([1.0, 0.0], "grpo", ddof=2)
    with pytest.raises(ValueError, match="mask must have the shape"):
        vipcore.advantages([1.0, 0.0], mask=np.ones(3, bool))
    with pytest.raises(ValueError, match="mask must be boolean"):
        vipcore.advantages([1.0, 0.0], mask=np.ones(2))
    with pytest.raises(ValueError, match="at least one axis"):
        vipcore.advantages(1.0)


def test_advantages_float64_matches_float32():
    rng = np.random.default_rng(3)
    r = rng.random((8, 6))
    with jax.enable_x64(True):
        ref = np.asarray(vipcore.advantages(r.astype(np.float64), "grpo"))
    got = vipcore.advantages(r.astype(np.float32), "grpo")
    assert got.dtype == jnp.float32
    assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
