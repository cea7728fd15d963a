"""Gradient variance (Props 4.2/4.3, E.1/E.2) and the advantage estimators.

The oracles here are written in plain NumPy from the definitions (loops over
groups, an explicit leave-one-out mean, ``numpy.std`` with ``ddof``); none of
them calls :func:`vipcore.advantages`.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vipcore
from tests.helpers import assert_allclose

# --------------------------------------------------------------------------
# Independent NumPy oracles


def oracle_group(r, estimator, *, ddof=1, eps=1e-6):
    """Advantages of one group from the definitions; NaN = missing -> 0."""
    r = np.asarray(r, np.float64)
    out = np.zeros_like(r)
    ok = ~np.isnan(r)
    x = r[ok]
    n = x.size
    if n < 2:
        return out
    if estimator == "drgrpo":
        a = x - x.mean()
    elif estimator == "rloo":
        a = np.array([x[j] - (x.sum() - x[j]) / (n - 1) for j in range(n)])
    else:
        a = (x - x.mean()) / (np.std(x, ddof=ddof) + eps)
    out[ok] = a
    return out


def oracle_ragged(r, ids, estimator, **kw):
    r = np.asarray(r, np.float64)
    ids = np.asarray(ids)
    out = np.zeros_like(r)
    for g in set(ids.tolist()):
        sel = ids == g
        out[sel] = oracle_group(r[sel], estimator, **kw)
    return out


def exact_group_variance(p, n, estimator):
    """Exact Var(G)/sigma_Z^2 for ±1 rewards, by enumerating the k successes.

    With Z independent of R (Assumption 4.1) and sum_j A_j = 0,
    Var(G) = sigma_Z^2 / n^2 * E[sum_j A_j^2]; the expectation is a finite sum
    over the binomial number of successes, with the advantages from
    :func:`oracle_group` (no Monte Carlo, no library code).
    """
    total = 0.0
    for k in range(n + 1):
        r = np.array([1.0] * k + [-1.0] * (n - k))
        a = oracle_group(r, estimator)
        total += math.comb(n, k) * p**k * (1 - p) ** (n - k) * np.sum(a**2)
    return total / n**2


# --------------------------------------------------------------------------
# Gradient variance


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


@pytest.mark.parametrize("call, match", [
    (lambda: vipcore.gradient_variance(0.3, -3, "drgrpo"),
     r"n must be >= 1 for estimator='drgrpo'.*got -3"),
    (lambda: vipcore.gradient_variance(0.3, 0, "drgrpo"), r"n must be >= 1"),
    (lambda: vipcore.gradient_variance(0.3, 1, "rloo"),
     r"n must be >= 2 for estimator='rloo'.*got 1"),
    (lambda: vipcore.gradient_variance(0.3, [4, 1.5], "rloo"),
     r"n must be >= 2.*got 1.5 at index 1"),
    (lambda: vipcore.gradient_variance(0.3, float("nan")), r"n must be finite"),
    (lambda: vipcore.gradient_variance(0.3, 4, sigma_z2=-1),
     r"sigma_z2 must be finite and >= 0; got -1"),
    (lambda: vipcore.gradient_variance(0.3, 4, sigma_z2=float("inf")),
     r"sigma_z2 must be finite"),
    (lambda: vipcore.gradient_variance(0.3, "4"), r"n must be real numbers"),
    (lambda: vipcore.gradient_variance_continuous(-0.1, 4),
     r"reward_var must be finite and >= 0; got -0.1"),
    (lambda: vipcore.gradient_variance_continuous([0.1, float("nan")], 4),
     r"reward_var must be finite and >= 0; got nan at index 1"),
])
def test_gradient_variance_refuses_out_of_range(call, match):
    """Issue-11 item 7: no negative or infinite 'variance' from the eager API."""
    with pytest.raises(ValueError, match=match):
        call()


def test_gradient_variance_edges_that_are_valid():
    # Dr. GRPO with one rollout: the advantage is 0, so is the variance.
    assert float(vipcore.gradient_variance(0.3, 1, "drgrpo")) == 0.0
    assert float(vipcore.gradient_variance(0.3, 4, sigma_z2=0.0)) == 0.0


def test_traced_variance_is_unchecked_as_documented():
    """Inside the caller's jit the values are not inspected: RLOO at n = 1 is inf."""
    f = jax.jit(lambda n: vipcore.gradient_variance(0.5, n, "rloo"))
    assert math.isinf(float(f(1.0)))
    assert math.isinf(float(vipcore.variance_factor(1.0, "rloo")))


# --------------------------------------------------------------------------
# Advantages: agreement with the oracle

ESTS = ("grpo", "drgrpo", "rloo")


@st.composite
def ragged_batches(draw, nan_frac=0.0):
    """Group sizes in [2, 9], integer or float rewards, optional NaN holes."""
    sizes = draw(st.lists(st.integers(2, 9), min_size=1, max_size=6))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    binary = draw(st.booleans())
    n = sum(sizes)
    r = (rng.integers(0, 2, n) if binary else rng.normal(size=n)).astype(np.float64)
    if nan_frac:
        r[rng.random(n) < nan_frac] = np.nan
    return np.asarray(sizes), r, rng


@given(ragged_batches(), st.sampled_from(ESTS), st.sampled_from([0, 1]))
def test_ragged_sizes_match_oracle(batch, estimator, ddof):
    sizes, r, _ = batch
    ids = np.repeat(np.arange(sizes.size), sizes)
    got = vipcore.advantages(r.astype(np.float32), estimator, sizes=sizes, ddof=ddof)
    want = oracle_ragged(r, ids, estimator, ddof=ddof)
    assert got.dtype == jnp.float32
    assert_allclose(got, want, rtol=2e-5, atol=2e-5)


@given(ragged_batches(nan_frac=0.15), st.sampled_from(ESTS))
def test_ragged_ids_any_order_with_missing(batch, estimator):
    """Shuffled string ids; NaN rewards are missing (out of mean/count/std)."""
    sizes, r, rng = batch
    ids = np.repeat(np.array([f"uid-{k}" for k in range(sizes.size)]), sizes)
    perm = rng.permutation(r.size)
    r, ids = r[perm], ids[perm]
    want = oracle_ragged(r, ids, estimator, eps=1e-4)
    got = vipcore.advantages(r.astype(np.float32), estimator, groups=ids, eps=1e-4,
                             singleton="zero")
    assert_allclose(got, want, rtol=2e-5, atol=2e-5)
    assert np.all(np.asarray(got)[np.isnan(r)] == 0)


def test_ragged_float64_agrees_to_1e12():
    rng = np.random.default_rng(7)
    sizes = np.array([2, 5, 3, 8])
    r = rng.normal(size=sizes.sum())
    ids = np.repeat(np.arange(4), sizes)
    with jax.enable_x64(True):
        for est in ESTS:
            got = vipcore.advantages(r, est, sizes=sizes)
            assert got.dtype == jnp.float64
            assert_allclose(got, oracle_ragged(r, ids, est), rtol=1e-12, atol=1e-12)


@given(st.integers(2, 9), st.integers(0, 2**31 - 1))
def test_padded_with_mask_matches_oracle(width, seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, width + 1, size=4)
    W = 12  # one shape: one compilation per estimator
    R = np.full((4, W), np.nan, np.float32)
    mask = np.zeros((4, W), bool)
    for i, m in enumerate(lengths):
        R[i, :m] = rng.integers(0, 2, m)
        mask[i, :m] = True
    R[~mask] = rng.normal(size=(~mask).sum())  # padding may hold anything finite
    for est in ESTS:
        batch = np.asarray(vipcore.advantages(R, est, mask=mask))
        assert np.all(batch[~mask] == 0)
        for i, m in enumerate(lengths):
            assert_allclose(batch[i, :m], oracle_group(R[i, :m], est), atol=2e-6)


@settings(max_examples=30)
@given(st.lists(st.floats(-1, 1, allow_nan=False, width=32), min_size=2, max_size=12))
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


def test_worked_example_sample_and_population_std():
    """Rewards [1, 0, 1, 0]: ±0.87 with the sample std (the trainers' default,
    ddof = 1), ±1.0 with the population std (ddof = 0)."""
    r = [1.0, 0.0, 1.0, 0.0]
    sample = np.asarray(vipcore.advantages(r, "grpo"))
    assert_allclose(sample, np.array([1, -1, 1, -1]) * math.sqrt(3) / 2, atol=1e-5)
    assert np.round(sample[0], 2) == 0.87
    assert_allclose(vipcore.advantages(r, "grpo", ddof=0), [1, -1, 1, -1], atol=1e-5)


def test_trl_convention():
    """TRL: (r - nanmean) / (nanstd with Bessel + 1e-4), NaN rows -> 0."""
    r = np.array([1.0, 0.0, 0.0, np.nan, 1.0, 1.0, 0.0], np.float32)
    ids = np.array([0, 0, 0, 0, 1, 1, 1])
    got = np.asarray(vipcore.advantages(r, "grpo", groups=ids, eps=1e-4))
    g0 = np.array([1.0, 0.0, 0.0])
    want0 = (g0 - g0.mean()) / (g0.std(ddof=1) + 1e-4)
    assert_allclose(got[:3], want0, rtol=1e-5)
    assert got[3] == 0


def test_zero_variance_group_gives_zero_advantage():
    """Exactly 0, also where the float32 mean of equal values is not that value."""
    x = np.float32(1.8103302)
    assert np.float32(x + x + x) / np.float32(3) != x  # the trap
    for est in ESTS:
        assert np.all(np.asarray(vipcore.advantages([x] * 3, est)) == 0)
        assert np.all(np.asarray(vipcore.advantages([x] * 3, est, sizes=[3])) == 0)
        assert np.all(np.asarray(vipcore.advantages([1.0] * 5, est)) == 0)
        assert np.all(np.asarray(vipcore.advantages([3.0] * 4, est, sizes=[2, 2])) == 0)


# --------------------------------------------------------------------------
# Groups of one, jit, dtypes


@pytest.mark.parametrize("est", ESTS)
def test_groups_of_one_are_refused_by_default(est):
    with pytest.raises(ValueError, match=r"group \(the only row\) has a single"):
        vipcore.advantages([1.0], est)
    with pytest.raises(ValueError, match=r"group 'b' has a single reward"):
        vipcore.advantages([1.0, 0.0, 1.0], est, groups=["a", "a", "b"])
    with pytest.raises(ValueError, match=r"group 1 has a single reward"):
        vipcore.advantages([1.0, 0.0, 1.0, np.nan], est, sizes=[2, 2])
    with pytest.raises(ValueError, match=r"group at row \(1,\) has a single"):
        vipcore.advantages([[1.0, 0.0], [1.0, 0.0]], est,
                           mask=np.array([[True, True], [True, False]]))


@pytest.mark.parametrize("est", ESTS)
def test_groups_of_one_zero_and_empty_groups(est):
    r = np.array([5.0, 1.0, 0.0, np.nan, np.nan])
    out = np.asarray(vipcore.advantages(r, est, sizes=[1, 2, 2], singleton="zero"))
    assert out[0] == 0 and np.all(out[3:] == 0)
    assert_allclose(out[1:3], oracle_group([1.0, 0.0], est), atol=1e-6)
    # a group with no reward at all (padding) is never an error
    pad = np.asarray(vipcore.advantages([[1.0, 0.0], [np.nan, np.nan]], est))
    assert np.all(pad[1] == 0)


def test_jitted_paths_give_zero_for_groups_of_one():
    """Documented: under the caller's jit, groups of one get 0 (no error)."""
    f = jax.jit(lambda r: vipcore.advantages(r, "rloo", sizes=np.array([1, 2])))
    out = np.asarray(f(jnp.array([3.0, 1.0, 0.0])))
    assert_allclose(out, [0.0, 1.0, -1.0])
    g = jax.jit(lambda r: vipcore.advantages(r, "rloo"))
    assert np.asarray(g(jnp.array([[4.0], [2.0]]))).tolist() == [[0.0], [0.0]]


def test_traced_groups_and_sizes_match_eager():
    rng = np.random.default_rng(1)
    sizes = np.array([3, 2, 4])
    r = rng.normal(size=9).astype(np.float32)
    ids = np.repeat(np.arange(3), sizes)
    eager = np.asarray(vipcore.advantages(r, "grpo", sizes=sizes))
    by_sizes = jax.jit(lambda r, s: vipcore.advantages(r, "grpo", sizes=s))(r, sizes)
    by_ids = jax.jit(lambda r, g: vipcore.advantages(r, "grpo", groups=g))(r, ids)
    assert_allclose(by_sizes, eager)
    assert_allclose(by_ids, eager)


def test_advantages_float64_matches_float32():
    rng = np.random.default_rng(3)
    r = rng.random((8, 6))
    with jax.enable_x64(True):
        ref = np.asarray(vipcore.advantages(r.astype(np.float64), "grpo"))
    got = vipcore.advantages(r.astype(np.float32), "grpo")
    assert got.dtype == jnp.float32
    assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(estimator="ppo"), "estimator must be one of"),
    (dict(ddof=2), "ddof must be 0"),
    (dict(ddof=True), "ddof must be 0"),
    (dict(eps=-1e-3), "eps must be a finite number >= 0"),
    (dict(eps=float("nan")), "eps must be a finite number >= 0"),
    (dict(singleton="keep"), "singleton must be one of"),
    (dict(mask=np.ones(3, bool)), "mask must have the shape"),
    (dict(mask=np.ones(2)), "mask must be boolean"),
    (dict(groups=[0, 0, 1]), r"groups must have one id per reward, shape \(2,\)"),
    (dict(groups=[0, 0], sizes=[2]), "give groups or sizes, not both"),
    (dict(sizes=[1, 2]), r"sizes must sum to len\(rewards\) = 2; got 3"),
    (dict(sizes=[3, -1]), "sizes must be a 1-D array of non-negative integers"),
    (dict(sizes=[1.0, 1.0]), "sizes must be a 1-D array of non-negative integers"),
    (dict(sizes=[2], mask=np.ones(2, bool)), "mask is for padded"),
])
def test_advantages_bad_input(kwargs, match):
    est = kwargs.pop("estimator", "grpo")
    with pytest.raises(ValueError, match=match):
        vipcore.advantages([1.0, 0.0], est, **kwargs)


def test_advantages_bad_rewards():
    with pytest.raises(ValueError, match="at least one axis"):
        vipcore.advantages(1.0)
    with pytest.raises(ValueError, match=r"rewards must be finite .*inf at index 1"):
        vipcore.advantages([1.0, np.inf, 0.0])
    with pytest.raises(ValueError, match="rewards must be 1-D"):
        vipcore.advantages(np.ones((2, 2)), sizes=[2, 2])
    with pytest.raises(ValueError, match="rewards must be numeric"):
        vipcore.advantages(np.array(["a", "b"]))


def test_text_input_names_the_argument():
    with pytest.raises(ValueError, match="p must be numeric"):
        vipcore.gradient_variance("a", 4)
    with pytest.raises(ValueError, match="reward_var must be numeric"):
        vipcore.gradient_variance_continuous(["x"], 4)


def test_group_of_one_is_zero_even_without_eps():
    """0/(0 + eps) would be NaN at eps = 0: groups of one are set to 0 explicitly."""
    out = np.asarray(vipcore.advantages([2.0, 1.0, 0.0], "grpo", sizes=[1, 2], eps=0.0,
                                        singleton="zero"))
    assert out[0] == 0 and np.all(np.isfinite(out))


def test_docstring_examples():
    import doctest

    from vipcore._src import variance

    assert doctest.testmod(variance).failed == 0
