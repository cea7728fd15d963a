"""The VIP allocator: KKT conditions, exact integer optimality, baselines, errors."""

import heapq
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vipcore
from vipcore._src import allocation as A
from vipcore._src._padding import pad_to_bucket

EST = ["rloo", "drgrpo"]


def objective64(n, p, estimator):
    """Problem (5)'s objective in float64 NumPy (independent of the library)."""
    a = 4 * np.asarray(p, np.float64) * (1 - np.asarray(p, np.float64))
    n = np.asarray(n, np.float64)
    if estimator == "rloo":
        return float(np.sum(a / (n - 1)))
    return float(np.sum(a * (n - 1) / n**2))


def brute_force(p, C, L, U, estimator):
    best = np.inf
    for c in itertools.product(range(L, U + 1), repeat=len(p)):
        if sum(c) == C:
            best = min(best, objective64(c, p, estimator))
    return best


def greedy_from_lower(p, C, L, U, estimator):
    """Independent exact method: marginal allocation from n = L with a heap.

    For separable convex objectives under one sum constraint, giving each unit
    to the largest marginal decrease from the all-L start is optimal (Gross,
    1956; Ibaraki & Katoh, 1988). Float64, pure Python.
    """
    a = 4 * np.asarray(p, np.float64) * (1 - np.asarray(p, np.float64))

    def f(q, n):
        return a[q] / (n - 1) if estimator == "rloo" else a[q] * (n - 1) / n**2

    n = [L] * len(p)
    heap = [(-(f(q, L) - f(q, L + 1)), q) for q in range(len(p)) if L < U]
    heapq.heapify(heap)
    for _ in range(C - L * len(p)):
        _, q = heapq.heappop(heap)
        n[q] += 1
        if n[q] < U:
            heapq.heappush(heap, (-(f(q, n[q]) - f(q, n[q] + 1)), q))
    return np.array(n)


@st.composite
def problems(draw, max_b=40, max_span=30, estimator=None):
    est = estimator or draw(st.sampled_from(EST))
    B = draw(st.integers(1, max_b))
    L = draw(st.integers(A.MIN_LOWER[est], 6))
    U = L + draw(st.integers(0, max_span))
    C = draw(st.integers(B * L, B * U))
    p = draw(
        st.lists(
            st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1.0, 0.5])),
            min_size=B, max_size=B,
        )
    )
    return np.asarray(p), C, L, U, est


@given(problems())
def test_budget_and_bounds(prob):
    p, C, L, U, est = prob
    n = vipcore.allocate(p.astype(np.float32), C, L, U, est)
    assert n.dtype == np.int64 and n.shape == p.shape
    assert n.sum() == C
    assert n.min() >= L and n.max() <= U


@given(problems(max_b=4, max_span=5))
def test_integer_optimal_vs_brute_force(prob):
    p, C, L, U, est = prob
    with jax.enable_x64(True):
        n = vipcore.allocate(p, C, L, U, est)
    best = brute_force(p, C, L, U, est)
    assert objective64(n, p, est) <= best * (1 + 1e-12) + 1e-15


@settings(max_examples=25)
@given(problems(max_b=300, max_span=20))
def test_integer_optimal_vs_greedy_from_lower(prob):
    p, C, L, U, est = prob
    with jax.enable_x64(True):
        n = vipcore.allocate(p, C, L, U, est)
    ref = objective64(greedy_from_lower(p, C, L, U, est), p, est)
    assert objective64(n, p, est) <= ref * (1 + 1e-12) + 1e-15


def naive_rounding(p, C, L, U, est):
    """Deliberately wrong: nearest-integer rounding, budget fixed by index."""
    with jax.enable_x64(True):
        a = 4 * jnp.asarray(p) * (1 - jnp.asarray(p))
        x, _ = A.solve_continuous(a, C, L, U, estimator=est)
    n = np.clip(np.rint(np.asarray(x)), L, U).astype(int)
    i = 0
    while n.sum() != C:
        step = 1 if n.sum() < C else -1
        if L <= n[i % len(n)] + step <= U:
            n[i % len(n)] += step
        i += 1
    return n


def test_negative_control_brute_force_catches_naive_rounding():
    """The optimality tests have teeth: a plausible wrong rounding fails them."""
    rng = np.random.default_rng(0)
    failures = 0
    for _ in range(200):
        B = int(rng.integers(2, 5))
        p = rng.random(B)
        C = int(rng.integers(2 * B, 8 * B + 1))
        n = naive_rounding(p, C, 2, 8, "rloo")
        if objective64(n, p, "rloo") > brute_force(p, C, 2, 8, "rloo") * (1 + 1e-12):
            failures += 1
    assert failures > 0


def padded(p):
    """Pad to the allocator's bucket size (shared compilations across sizes)."""
    pp, mask = pad_to_bucket(jnp.asarray(p), fill=0.5)
    return pp, mask, 4 * pp * (1 - pp)


@given(problems(max_b=60))
def test_kkt_conditions_of_continuous_solution(prob):
    """Stationarity and complementary slackness of Theorems 5.1/5.2.

    Bisection runs 64 halvings of log(lam) in float64, far below the tolerance
    used here (1e-7 relative), which covers the rounding of the closed forms.
    """
    p, C, L, U, est = prob
    with jax.enable_x64(True):
        _, mask, a = padded(p)
        # The solution is invariant to a common scale of a (tested below);
        # normalising keeps lam out of the subnormal range, which XLA flushes
        # to zero (p = 2.2e-308 would give lam ~ 1e-308 -> 0).
        a = a / jnp.maximum(jnp.max(jnp.where(mask, a, 0)), 1e-300)
        x, lam = A.solve_continuous(a, C, L, U, estimator=est, mask=mask)
        B = len(p)
        x, lam, a = np.asarray(x)[:B], float(lam), np.asarray(a)[:B]
    assert abs(x.sum() - C) <= 1e-7 * C
    assert np.all(x >= L - 1e-9) and np.all(x <= U + 1e-9)
    g = 1 / (x - 1) ** 2 if est == "rloo" else (x - 2) / x**3
    marg = a * np.asarray(g)  # -f_q'(x_q)
    tol = 1e-7 * max(lam, 1e-300) + 1e-12
    # a_q below eps^2 max(a) counts as 0 (documented); accelerators also
    # flush subnormal p (e.g. 5e-324) to 0 (seen on an H100), hence tiny.
    f64 = np.finfo(np.float64)
    pos = a > max(f64.eps**2 * a.max(), f64.tiny)
    interior = pos & (x > L + 1e-7) & (x < U - 1e-7)
    if lam > 0:
        assert np.all(np.abs(marg[interior] - lam) <= tol + 1e-6 * lam)
        # (a prompt at both bounds, L == U, has no sign condition)
        at_L = pos & (x <= L + 1e-7) & (L < U)
        at_U = pos & (x >= U - 1e-7) & (L < U)
        assert np.all(marg[at_L] <= lam * (1 + 1e-6) + 1e-12)
        assert np.all(marg[at_U] >= lam * (1 - 1e-6) - 1e-12)
    else:  # excess budget: every prompt with a > 0 sits at U
        assert np.all(x[pos] >= U - 1e-9)


@given(problems(max_b=30), st.randoms(use_true_random=False))
def test_permutation_equivariance(prob, rnd):
    p, C, L, U, est = prob
    perm = np.arange(len(p))
    rnd.shuffle(perm)
    with jax.enable_x64(True):
        n = vipcore.allocate(p, C, L, U, est)
        n_perm = vipcore.allocate(p[perm], C, L, U, est)
        res = A.solve(*padded(p)[:1], C, L, U, estimator=est, mask=padded(p)[1])
        res_perm = A.solve(
            padded(p[perm])[0], C, L, U, estimator=est, mask=padded(p)[1]
        )
    # Integers may differ only among exact ties; the optimum value may not.
    np.testing.assert_allclose(
        objective64(n_perm, p[perm], est), objective64(n, p, est), rtol=1e-12
    )
    np.testing.assert_allclose(
        np.asarray(res_perm.n_continuous)[: len(p)],
        np.asarray(res.n_continuous)[: len(p)][perm],
        rtol=1e-9, atol=1e-9,
    )
    if len(set(np.round(4 * p * (1 - p), 9))) == len(p):
        np.testing.assert_array_equal(n_perm, n[perm])


@given(problems(max_b=40))
def test_monotone_in_a(prob):
    """A prompt with larger a_q never gets fewer rollouts."""
    p, C, L, U, est = prob
    with jax.enable_x64(True):
        n = vipcore.allocate(p, C, L, U, est)
    a = 4 * p * (1 - p)
    big = a[:, None] > a[None, :] * (1 + 1e-9) + 1e-12
    assert not np.any(big & (n[:, None] < n[None, :]))


@given(problems(max_b=40), st.floats(1e-3, 1e3))
def test_invariant_to_common_scale_of_a(prob, k):
    p, C, L, U, est = prob
    with jax.enable_x64(True):
        _, m, a = padded(p)
        x1, _ = A.solve_continuous(a, C, L, U, estimator=est, mask=m)
        x2, _ = A.solve_continuous(k * a, C, L, U, estimator=est, mask=m)
        n1 = A.round_allocation(x1, a, C, L, U, estimator=est, mask=m)[: len(p)]
        n2 = A.round_allocation(x2, k * a, C, L, U, estimator=est, mask=m)[: len(p)]
    np.testing.assert_allclose(
        np.asarray(x1)[: len(p)], np.asarray(x2)[: len(p)], rtol=1e-8, atol=1e-8
    )
    np.testing.assert_allclose(
        objective64(n1, p, est), objective64(n2, p, est), rtol=1e-12, atol=1e-15
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("est", EST)
def test_float32_equals_float64(seed, est):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, size=256)
    L = A.MIN_LOWER[est]
    C, U = 256 * 8, 32
    n32 = vipcore.allocate(p.astype(np.float32), C, L, U, est)
    with jax.enable_x64(True):
        n64 = vipcore.allocate(p, C, L, U, est)
    np.testing.assert_array_equal(n32, n64)


def test_jit_vmap_and_traced_budget():
    rng = np.random.default_rng(1)
    P = jnp.asarray(rng.random((5, 64)), jnp.float32)
    Cs = jnp.asarray([128, 200, 300, 640, 1000], jnp.int32)
    batched = jax.vmap(lambda p, c: A.solve(p, c, 2, 16).n)(P, Cs)
    for i in range(5):
        np.testing.assert_array_equal(
            batched[i], vipcore.allocate(P[i], int(Cs[i]), 2, 16)
        )
    jitted = jax.jit(lambda p: A.solve(p, 300, 2, 16, estimator="drgrpo"))
    np.testing.assert_array_equal(
        jitted(P[0]).n, A.solve(P[0], 300, 2, 16, estimator="drgrpo").n
    )


def test_status_codes_inside_jit():
    p = jnp.asarray([0.2, 0.5, 0.7], jnp.float32)
    f = jax.jit(lambda p, C, L, U: A.solve(p, C, L, U).status)
    assert int(f(p, 12, 2, 8)) == A.AllocationStatus.OK
    assert int(f(p, 5, 2, 8)) == A.AllocationStatus.INFEASIBLE
    assert int(f(p, 25, 2, 8)) == A.AllocationStatus.INFEASIBLE
    assert int(f(p, 12, 9, 8)) == A.AllocationStatus.BAD_BOUNDS
    assert int(f(p, 12, 1, 8)) == A.AllocationStatus.BAD_BOUNDS
    assert int(f(p.at[0].set(jnp.nan), 12, 2, 8)) == A.AllocationStatus.BAD_P
    res = A.solve(p, 5, 2, 8)
    assert np.all(np.asarray(res.n) == 0) and np.isnan(float(res.lam))


def test_degenerate_inputs():
    # all a_q = 0: the most even allocation, remainder to the lowest indices
    np.testing.assert_array_equal(
        vipcore.allocate([0.0, 1.0, 0.0, 1.0, 1.0], 23, 2, 16), [5, 5, 5, 4, 4]
    )
    # p in {0, 1} stays at L while others can absorb the budget ...
    n = vipcore.allocate([0.0, 0.5, 1.0, 0.3], 20, 2, 16)
    assert n[0] == 2 and n[2] == 2
    # ... and takes the excess once they cannot
    np.testing.assert_array_equal(vipcore.allocate([0.0, 0.5, 1.0], 40, 2, 16),
                                  [12, 16, 12])
    # C at the ends of the feasible range
    np.testing.assert_array_equal(vipcore.allocate([0.1, 0.9], 4, 2, 9), [2, 2])
    np.testing.assert_array_equal(vipcore.allocate([0.1, 0.9], 18, 2, 9), [9, 9])
    # L == U
    np.testing.assert_array_equal(vipcore.allocate([0.1, 0.5], 10, 5, 5), [5, 5])
    # ties are deterministic: equal p get allocations differing by at most 1,
    # the extra unit to the lowest index
    n = vipcore.allocate([0.5] * 4, 13, 2, 16)
    np.testing.assert_array_equal(n, [4, 3, 3, 3])


def test_accepts_array_likes():
    class Tensorish:
        def __array__(self, dtype=None, copy=None):
            return np.array([0.1, 0.6, 0.8], dtype=np.float32)

    ref = vipcore.allocate(np.array([0.1, 0.6, 0.8], np.float32), 12, 2, 8)
    for x in ([0.1, 0.6, 0.8], jnp.asarray([0.1, 0.6, 0.8]), Tensorish()):
        np.testing.assert_array_equal(vipcore.allocate(x, 12, 2, 8), ref)


@pytest.mark.parametrize(
    "args, match",
    [
        (([0.5, float("nan")], 8, 2, 8), "p_hat must not contain NaN"),
        (([0.5, 1.2], 8, 2, 8), r"p_hat must lie in \[0, 1\]; got 1.2 at index 1"),
        (([0.5, -0.1], 8, 2, 8), r"p_hat must lie in \[0, 1\]"),
        (([0.5, 0.5], 8.5, 2, 8), "C must be an integer"),
        (([0.5, 0.5], 3, 2, 8), r"C=3 is infeasible .* \[4, 16\]"),
        (([0.5, 0.5], 17, 2, 8), r"C=17 is infeasible .* \[4, 16\]"),
        (([0.5, 0.5], 8, 5, 4), "L must be <= U; got L=5 > U=4"),
        (([0.5, 0.5], 8, 1, 8), "L must be >= 2 for estimator 'rloo'"),
        (([], 8, 2, 8), "p_hat is empty"),
        (([[0.5]], 8, 2, 8), "p_hat must be one-dimensional"),
        ((["a"], 8, 2, 8), "p_hat must be"),
    ],
)
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        vipcore.allocate(*args)


def test_bad_input_estimator():
    with pytest.raises(ValueError, match="L must be >= 3 for estimator 'drgrpo'"):
        vipcore.allocate([0.5, 0.5], 8, 2, 8, "drgrpo")
    with pytest.raises(ValueError, match="estimator must be one of 'rloo', 'drgrpo'"):
        vipcore.allocate([0.5, 0.5], 8, 2, 8, "grpo")


# ---------------------------------------------------------------- baselines
HEURISTICS = [
    vipcore.allocate_uniform,
    vipcore.allocate_inverse_accuracy,
    vipcore.allocate_inverse_variance,
]


@pytest.mark.parametrize("fn", HEURISTICS)
@given(problems(max_b=50))
def test_heuristics_budget_bounds(fn, prob):
    p, C, L, U, _ = prob
    n = fn(p, C, L, U)
    assert n.sum() == C and n.min() >= L and n.max() <= U


def test_heuristic_shapes():
    np.testing.assert_array_equal(vipcore.allocate_uniform([0.3] * 5, 23, 2, 16),
                                  [5, 5, 5, 4, 4])
    p = np.array([0.1, 0.5, 0.9])
    ia = vipcore.allocate_inverse_accuracy(p, 24, 2, 16)
    assert ia[0] > ia[1] > ia[2]  # lower accuracy, more rollouts
    iv = vipcore.allocate_inverse_variance(np.array([0.5, 0.2, 0.02]), 24, 2, 16)
    assert iv[0] < iv[1] < iv[2]  # lower variance, more rollouts
    with pytest.raises(ValueError, match="eps must be > 0"):
        vipcore.allocate_inverse_accuracy(p, 24, 2, 16, eps=0)


def test_largest_remainder_matches_targets():
    """Inverse accuracy: the integers are within 1 of the scaled targets."""
    rng = np.random.default_rng(5)
    p = rng.random(100)
    n = vipcore.allocate_inverse_accuracy(p, 1000, 2, 40)
    w = 1 - p + 1e-2
    # recover the continuous target by bisection in float64 (independent)
    lo, hi = 0.0, 1e4
    for _ in range(200):
        s = 0.5 * (lo + hi)
        lo, hi = (s, hi) if np.clip(s * w, 2, 40).sum() <= 1000 else (lo, s)
    x = np.clip(s * w, 2, 40)
    assert np.all(np.abs(n - x) < 1 + 1e-4)


def test_vip_beats_uniform_and_heuristics_in_objective():
    rng = np.random.default_rng(11)
    p = rng.beta(0.5, 0.5, size=256)
    C, L, U = 256 * 8, 2, 32
    vip = objective64(vipcore.allocate(p, C, L, U), p, "rloo")
    for fn in HEURISTICS:
        assert vip <= objective64(fn(p, C, L, U), p, "rloo")


def test_objective_function_matches_props():
    p = np.array([0.2, 0.5])
    n = np.array([4, 6])
    want = float(np.sum(vipcore.gradient_variance(p, n, "drgrpo")))
    got = float(vipcore.allocation_objective(n, p, "drgrpo"))
    np.testing.assert_allclose(got, want, rtol=1e-6)


# ---------------------------------------------------------------- reference
@pytest.mark.parametrize("est", EST)
def test_never_worse_than_scipy_slsqp(est):
    """The paper's code solves the relaxation with SLSQP; ours is never worse."""
    scipy_opt = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(2)
    for _ in range(2):
        B = 64
        p = rng.beta(0.6, 0.6, size=B)
        L, U = A.MIN_LOWER[est], 32
        C = int(rng.integers(B * L + 1, B * U))
        a = 4 * p * (1 - p)

        def f(n, a=a):
            return np.sum(a / (n - 1)) if est == "rloo" else np.sum(a * (n - 1) / n**2)

        res = scipy_opt.minimize(
            f, np.full(B, C / B), method="SLSQP", bounds=[(L, U)] * B,
            constraints=[{"type": "eq", "fun": lambda n, C=C: n.sum() - C}],
            options={"maxiter": 500, "ftol": 1e-12},
        )
        with jax.enable_x64(True):
            x, _ = A.solve_continuous(jnp.asarray(a), C, L, U, estimator=est)
            n_int = vipcore.allocate(p, C, L, U, est)
        x = np.asarray(x)
        assert f(x) <= res.fun * (1 + 1e-9)
        # integer optimum is within the relaxation gap, never below it
        assert objective64(n_int, p, est) >= f(x) * (1 - 1e-12)


@pytest.mark.parametrize("est", EST)
def test_multisection_equals_bisection(est):
    """The accelerator default (64-section search) gives the CPU's answer."""
    rng = np.random.default_rng(7)
    p = jnp.asarray(rng.beta(0.4, 0.4, 128), jnp.float32)
    L = A.MIN_LOWER[est]
    r2 = A.solve(p, 1024, L, 32, estimator=est, sections=2)
    r64 = A.solve(p, 1024, L, 32, estimator=est, sections=64)
    np.testing.assert_array_equal(r2.n, r64.n)
    np.testing.assert_allclose(r2.n_continuous, r64.n_continuous, rtol=1e-5)
    np.testing.assert_allclose(float(r2.lam), float(r64.lam), rtol=1e-5)
