"""The VIP allocator: exact integer optimality, the tie rule, float32 == float64,
no data-dependent loop, KKT conditions, baselines, errors.

Oracles (``tests/alloc_oracles.py``, pure Python): brute-force enumeration,
the heap greedy from ``L``, and the documented tie rule with exact
``Fraction`` gains. The solver must equal the tie-rule oracle integer for
integer, stay within the documented slack of the brute-force optimum, and
equal it exactly when no two distinct gains near the threshold are closer
than the tie tolerance.
"""

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from alloc_oracles import (
    TIE_RTOL,
    brute_force,
    exact_a,
    greedy_from_lower,
    near_band_edge,
    objective64,
    tie_rule,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import vipcore
from vipcore._src import allocation as A
from vipcore._src._padding import pad_to_bucket

EST = ["rloo", "drgrpo"]


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


def slack(tau, tied):
    """Largest objective excess the tie rule allows: each tied unit given may
    be worth ``2 TIE_RTOL tau`` (plus rounding) less than one it skipped."""
    return float(2.001 * TIE_RTOL * (tau or 0)) * tied + 1e-15


def scaled_tau(p, tau):
    """``tau`` of the oracle is on ``a / max(a)``: back to the ``a`` scale."""
    return float(tau or 0) * float(np.max(4 * p * (1 - p)))


@given(problems(max_b=5, max_span=8))
def test_equals_tie_rule_oracle(prob):
    """Integer for integer, the documented rule computed by listing every unit
    with its exact gain (no threshold search, no closed forms)."""
    p, C, L, U, est = prob
    with jax.enable_x64(True):
        n = vipcore.allocate(p, C, L, U, est)
    want, _, _ = tie_rule(exact_a(p), C, L, U, est)
    np.testing.assert_array_equal(n, want)


@given(problems(max_b=4, max_span=5))
def test_integer_optimal_vs_brute_force(prob):
    """The optimum up to the documented tie slack; exactly the optimum
    whenever the tie band changed nothing (the usual case)."""
    p, C, L, U, est = prob
    with jax.enable_x64(True):
        n = vipcore.allocate(p, C, L, U, est)
    best = brute_force(p, C, L, U, est)
    _, tau, tied = tie_rule(exact_a(p), C, L, U, est)
    got = objective64(n, p, est)
    assert got >= best * (1 - 1e-12) - 1e-15  # (fails if sum or bounds break)
    assert got <= best * (1 + 1e-12) + slack(scaled_tau(p, tau), tied)
    strict, _, _ = tie_rule(exact_a(p), C, L, U, est, rtol=Fraction(0))
    if np.array_equal(strict, n):
        assert got <= best * (1 + 1e-12) + 1e-15


@settings(max_examples=25)
@given(problems(max_b=300, max_span=20))
def test_integer_optimal_vs_greedy_from_lower(prob):
    p, C, L, U, est = prob
    with jax.enable_x64(True):
        n = vipcore.allocate(p, C, L, U, est)
    ref = objective64(greedy_from_lower(p, C, L, U, est), p, est)
    # The tied units given are worth at least tau / (1 + r) each and sum to
    # less than the objective at L, so the tie slack is below 2.001 r f(L).
    at_L = objective64(np.full(len(p), L), p, est)
    got = objective64(n, p, est)
    assert got <= ref * (1 + 1e-12) + 2.001 * float(TIE_RTOL) * at_L + 1e-15
    assert got >= ref * (1 - 1e-12) - 1e-15


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
    # a_q below 2**-46 max(a) counts as 0 (documented); accelerators also
    # flush subnormal p (e.g. 5e-324) to 0 (seen on an H100), hence tiny.
    pos = a > max(2.0**-46 * a.max(), np.finfo(np.float64).tiny)
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


def gains_well_separated(p, L, U, est, factor):
    """No two gains of different prompts within ``factor`` of each other, and
    at most one prompt with ``a = 0`` (those are spread in index order), so
    the tie rule has nothing to break."""
    a = 4 * p * (1 - p)
    if np.sum(a == 0) > 1:
        return False
    m = np.arange(L, U, dtype=np.float64)
    d = 1 / (m * (m - 1)) if est == "rloo" else (m * m - m - 1) / (m * m * (m + 1) ** 2)
    g = (a[:, None] * d[None, :]).ravel()
    who = np.repeat(np.arange(len(p)), len(m))
    keep = g > 0
    g, who = g[keep], who[keep]
    order = np.argsort(g)
    g, who = g[order], who[order]
    close = (g[1:] <= g[:-1] * factor) & (who[1:] != who[:-1])
    return not np.any(close)


@settings(max_examples=30)
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
    # Integers may differ only among ties (by index); the value only by the
    # tie slack (2.001 r f(L), see test_integer_optimal_vs_greedy_from_lower).
    at_L = objective64(np.full(len(p), L), p, est)
    assert abs(objective64(n_perm, p[perm], est) - objective64(n, p, est)) <= (
        1e-12 * at_L + 2.001 * float(TIE_RTOL) * at_L)
    np.testing.assert_allclose(
        np.asarray(res_perm.n_continuous)[: len(p)],
        np.asarray(res.n_continuous)[: len(p)][perm],
        rtol=1e-9, atol=1e-9,
    )
    if gains_well_separated(p, L, U, est, 1 + 3 * float(TIE_RTOL)):
        np.testing.assert_array_equal(n_perm, n[perm])


@given(problems(max_b=40))
def test_monotone_in_a(prob):
    """A prompt with larger a_q never gets fewer rollouts (larger by more than
    the tie tolerance: ``(1 + r)^2 < 1 + 3r``, see the tie rule)."""
    p, C, L, U, est = prob
    with jax.enable_x64(True):
        n = vipcore.allocate(p, C, L, U, est)
    a = 4 * p * (1 - p)
    big = a[:, None] > a[None, :] * (1 + 3 * float(TIE_RTOL)) + 1e-12
    assert not np.any(big & (n[:, None] < n[None, :]))


@given(problems(max_b=40), st.floats(1e-3, 1e3))
def test_invariant_to_common_scale_of_a(prob, k):
    p, C, L, U, est = prob
    with jax.enable_x64(True):
        _, m, a = padded(p)
        # k * a must stay normal: XLA flushes subnormals to zero (p = 2.2e-308
        # with k < 1 would turn the only positive a into 0).
        a_np = np.asarray(a)
        assume(np.all((a_np == 0) | (k * a_np >= np.finfo(np.float64).tiny)))
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


def _both_precisions(p, C, L, U, est):
    n32 = vipcore.allocate(np.asarray(p, np.float32), C, L, U, est)
    with jax.enable_x64(True):
        n64 = vipcore.allocate(np.asarray(p, np.float64), C, L, U, est)
    return n32, n64


@settings(max_examples=30)
@given(st.sampled_from(EST), st.integers(4, 40), st.integers(0, 2**32 - 1))
def test_float32_equals_float64_well_conditioned(est, B, seed):
    """Random instances: identical integers unless some gain lies within
    1e-5 (relative) of a tie-band edge, where float32 rounding (at most a few
    1e-6 for p in [0.01, 0.99]) could move it across; that condition is
    checked exactly and holds for nearly all draws."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.99, size=B)
    L = A.MIN_LOWER[est]
    U = L + int(rng.integers(1, 20))
    C = int(rng.integers(B * L, B * U + 1))
    assume(not near_band_edge(exact_a(p), C, L, U, est))
    n32, n64 = _both_precisions(p, C, L, U, est)
    np.testing.assert_array_equal(n32, n64)


@given(st.sampled_from(EST), st.lists(st.floats(0.01, 0.99), min_size=1,
                                      max_size=12),
       st.integers(0, 2**32 - 1))
def test_float32_equals_float64_symmetric_pairs(est, xs, seed):
    """``p`` and ``1 - p`` give ``4 p (1 - p)`` values that differ in the last
    bits, differently in each precision: they are ties, and both precisions
    give the unit to the lower index. Duplicated prompts likewise."""
    rng = np.random.default_rng(seed)
    p = np.array([v for x in xs for v in (x, 1 - x, x)])
    L = A.MIN_LOWER[est]
    U = L + int(rng.integers(1, 40))
    C = int(rng.integers(len(p) * L, len(p) * U + 1))
    assume(not near_band_edge(exact_a(p), C, L, U, est))
    n32, n64 = _both_precisions(p, C, L, U, est)
    np.testing.assert_array_equal(n32, n64)


@pytest.mark.parametrize("est", EST)
def test_float32_equals_float64_on_decimal_grids(est):
    """Probabilities with two decimals (duplicates and pairs x, 1 - x abound):
    the previous exact-tie rule split 38% of such instances differently."""
    rng = np.random.default_rng(3)
    L = A.MIN_LOWER[est]
    for _ in range(20):
        p = np.round(rng.uniform(0, 1, 64), 2)
        C = int(rng.integers(64 * L, 64 * 32 + 1))
        n32, n64 = _both_precisions(p, C, L, 32, est)
        np.testing.assert_array_equal(n32, n64)


def _p_for_a(a):
    """The p in [0, 1/2] with 4 p (1 - p) = a."""
    return (1 - np.sqrt(1 - a)) / 2


@pytest.mark.parametrize("ratio, tied", [(1 + 5e-5, True), (1 + 9e-5, True),
                                         (1 + 1.2e-4, False), (1 + 5e-4, False)])
def test_tie_tolerance_is_1e_minus_4(ratio, tied):
    """Two prompts whose gains differ by a factor ``ratio``: a tie (the unit
    goes to index 0) below 1 + 1e-4, the larger gain wins above it."""
    with jax.enable_x64(True):
        p = np.array([_p_for_a(0.5), _p_for_a(0.5 * ratio)])
        n = vipcore.allocate(p, 5, 2, 8)
    np.testing.assert_array_equal(n, [3, 2] if tied else [2, 3])


@pytest.mark.parametrize("rel, positive", [(2.0**-45, True), (2.0**-47, False)])
def test_a_cutoff_is_2_to_the_minus_46(rel, positive):
    """Below 2**-46 max(a) a prompt counts as a = 0: with the others full, the
    leftover unit is spread over a = 0 prompts by index instead of going to
    the prompt with the tiny positive a."""
    with jax.enable_x64(True):
        p = np.array([0.5, 0.0, _p_for_a(rel)])
        n = vipcore.allocate(p, 8, 2, 3)
    np.testing.assert_array_equal(n, [3, 2, 3] if positive else [3, 3, 2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("est, L", [("rloo", 2), ("drgrpo", 3)])
def test_units_below_the_tie_band_are_never_given(est, L, dtype):
    """The tie band sits around the K-th largest gain ``tau``: a unit with
    gain below ``tau / (1 + TIE_RTOL)`` is never given, even when it lies
    within the tolerance of the next-largest gain. One unit above ``L`` for
    three prompts with gains ``g0 < g1 < g2``: ``g1`` is tied with ``g2``
    (ratio ``1 + 6e-5``) and ``g0`` is not (ratio ``1 + 1.4e-4``), so the
    unit goes to index 1, the lowest index in the band, not to index 0."""
    with jax.enable_x64(dtype == np.float64):
        a = np.array([1 / (1 + 1.4e-4), 1 / (1 + 6e-5), 1.0])
        p = _p_for_a(a).astype(dtype)
        n = vipcore.allocate(p, 3 * L + 1, L, L + 4, estimator=est)
    np.testing.assert_array_equal(n, [L, L + 1, L])


@pytest.mark.parametrize("est", EST)
def test_the_smallest_positive_a_reaches_u(est):
    """The threshold search covers every positive ``a`` down to the cutoff
    ``2**-46 max(a)``: with a budget that fills every prompt, a prompt with
    ``a = 2**-45.5 max(a)`` is filled to ``U`` like the others (its units
    need ``u`` near ``2**22.75 (U + 1/2)``)."""
    with jax.enable_x64(True):
        p = np.array([0.5, _p_for_a(2.0**-45.5), 0.3])
        n = vipcore.allocate(p, 3 * 40, 3, 40, estimator=est)
    np.testing.assert_array_equal(n, [40, 40, 40])


def test_symmetric_pair_examples():
    for est, L in (("rloo", 2), ("drgrpo", 3)):
        for C in range(2 * L, 2 * 32 + 1):
            n32, n64 = _both_precisions([0.7, 0.3], C, L, 32, est)
            np.testing.assert_array_equal(n32, n64)
            assert n32[0] - n32[1] in (0, 1)  # the tie goes to index 0
    np.testing.assert_array_equal(vipcore.allocate([0.7, 0.3], 5, 2, 32), [3, 2])


def test_negative_control_exact_ties_break_float32_equals_float64(monkeypatch):
    """Without the tolerance (ties only when exactly equal) symmetric pairs
    ``(x, 1 - x)`` split differently in float32 and float64 for many x: the
    tests above can fail. With it, none do."""
    from vipcore._src.allocation import threshold

    grid = np.round(np.arange(0.01, 0.5, 0.01), 2)

    def splits(dt):  # a fresh jit, so it sees the current TIE_RTOL
        with jax.enable_x64(dt == np.float64):
            p = jnp.asarray(np.stack([grid, 1 - grid], axis=1).astype(dt))
            fn = jax.jit(jax.vmap(lambda a: threshold.solve_integer(
                a, jnp.ones(2, bool), jnp.int32(1), jnp.int32(2), jnp.int32(32),
                "rloo")))
            return np.asarray(fn(4 * p * (1 - p)))

    np.testing.assert_array_equal(splits(np.float32), splits(np.float64))
    monkeypatch.setattr(threshold, "TIE_RTOL", 0.0)
    s32, s64 = splits(np.float32), splits(np.float64)
    assert np.all(s32.sum(axis=1) == 5) and np.all(s64.sum(axis=1) == 5)
    differ = np.any(s32 != s64, axis=1)
    assert differ.sum() >= 5


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
    assert int(f(p, 12.5, 2, 8)) == A.AllocationStatus.BAD_BUDGET
    assert int(f(p, jnp.nan, 2, 8)) == A.AllocationStatus.BAD_BUDGET
    assert int(f(p, -3, 2, 8)) == A.AllocationStatus.BAD_BUDGET
    assert int(f(p, 12, 2.5, 8)) == A.AllocationStatus.BAD_BOUNDS
    assert int(f(p, 12, 2, 8.5)) == A.AllocationStatus.BAD_BOUNDS
    res = A.solve(p, 5, 2, 8)
    assert np.all(np.asarray(res.n) == 0) and np.isnan(float(res.lam))


@pytest.mark.parametrize("est", EST)
def test_bounds_ok_is_the_status_without_p(est):
    """The solver's stand-ins follow ``traced_bounds_ok``: it must say OK
    exactly when the status of a valid ``p`` is OK, bad ``p`` or not."""
    from vipcore._src.allocation.status import (
        traced_bounds_ok,
        traced_scalar,
        traced_status,
    )

    good = jnp.asarray([0.2, 0.5, 0.7], jnp.float32)
    valid = jnp.ones(3, bool)
    cases = [(C, L, U) for C in (-3, 0, 5, 9, 12, 12.5, 25, 2**31, float("nan"))
             for L in (1, 2, 2.5, 3, 5) for U in (2, 4, 8, 8.5, 2**40)]
    for raw in cases:
        C, L, U = (traced_scalar(n, v) for n, v in zip("CLU", raw, strict=True))
        want = int(traced_status(good, valid, C, L, U, est)) == 0
        assert bool(traced_bounds_ok(valid, C, L, U, est)) == want, raw
        bad_p = good.at[1].set(jnp.nan)  # the status sees p; bounds_ok takes none
        assert int(traced_status(bad_p, valid, C, L, U, est)) != 0


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


def test_docs_status_table_lists_every_code():
    """docs/allocation.md's table of status codes is the enum, row for row."""
    import re
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "allocation.md").read_text()
    rows = dict(re.findall(r"^\| (\d+) \| `([A-Z_]+)` \|", doc, flags=re.M))
    assert rows == {str(int(c)): c.name for c in A.AllocationStatus}


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
    with pytest.raises(ValueError,
                       match="estimator must be one of 'rloo', 'drgrpo', 'grpo'"):
        vipcore.allocate([0.5, 0.5], 8, 2, 8, "dr_grpo")


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
    with pytest.raises(ValueError, match="eps must be a number > 0"):
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
def test_search_settings_do_not_change_the_answer(est):
    """Bisection or 16/64-section rounds, unrolled or a scan: same integers,
    the same relaxation up to rounding."""
    rng = np.random.default_rng(7)
    p = jnp.asarray(rng.beta(0.4, 0.4, 64), jnp.float32)
    L = A.MIN_LOWER[est]
    ref = A.solve(p, 512, L, 32, estimator=est, sections=2, unroll=False)
    for sections, unroll in ((16, True), (64, False)):
        r = A.solve(p, 512, L, 32, estimator=est, sections=sections, unroll=unroll)
        np.testing.assert_array_equal(ref.n, r.n)
        np.testing.assert_allclose(ref.n_continuous, r.n_continuous, rtol=1e-5)
        np.testing.assert_allclose(float(ref.lam), float(r.lam), rtol=1e-5)


@pytest.mark.parametrize("sections, unroll", [(2, False), (2, True), (16, False)])
def test_search_bits_reaches_the_exact_float(sections, unroll):
    """The threshold search ends on adjacent floats: for ``pred(u) = u >= t0``
    it returns ``t0`` itself, at every scale the solver uses, so the tie band
    is centred on the K-th gain to the last bit (not on a bracket)."""
    from vipcore._src.allocation.search import search_bits

    rng = np.random.default_rng(5)
    for dt, bits in ((np.float32, 23 + 6), (np.float64, 52 + 6)):
        with jax.enable_x64(dt == np.float64):
            t0 = (2.0 ** rng.uniform(0, 55, 40)).astype(dt)
            fn = jax.jit(jax.vmap(lambda t, dt=dt, bits=bits: search_bits(
                lambda u: u >= t, 1.0, 2.0**55, dt, sections, bits, unroll)))
            np.testing.assert_array_equal(np.asarray(fn(jnp.asarray(t0))), t0)


# ------------------------------------------------------ no data-dependent loop
def _primitives(jaxpr):
    """Every primitive name in a (closed) jaxpr, sub-jaxprs included."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    for eqn in jaxpr.eqns:
        yield eqn.primitive.name
        for v in eqn.params.values():
            for sub in v if isinstance(v, list | tuple) else [v]:
                if hasattr(sub, "eqns") or hasattr(sub, "jaxpr"):
                    yield from _primitives(sub)


def test_primitive_walker_sees_nested_while():
    """Negative control: a while_loop inside a nested jit is found."""
    inner = jax.jit(lambda x: jax.lax.while_loop(lambda c: c < 3, lambda c: c + 1, x))
    names = set(_primitives(jax.make_jaxpr(lambda x: inner(x) + 1)(0)))
    assert "while" in names


@pytest.mark.parametrize("unroll", [None, True, False])
@pytest.mark.parametrize("est", EST)
def test_solver_has_no_while(est, unroll):
    """solve_allocation, allocate's core and round_allocation: no while loop."""
    import importlib

    S = importlib.import_module("vipcore._src.allocation.solve")
    p = jnp.asarray([0.5, 0.9, 0.2, 0.0], jnp.float32)
    m = jnp.asarray([True, True, True, False])
    L = A.MIN_LOWER[est]
    jaxprs = [
        jax.make_jaxpr(lambda p: vipcore.solve_allocation(
            p, 12, L, 8, estimator=est, unroll=unroll))(p),
        jax.make_jaxpr(lambda p: S._solve_n(p, 12 - 3 * L, L, 8, m, estimator=est))(p),
        jax.make_jaxpr(lambda a: A.round_allocation(a, a, 12, L, 8,
                                                    estimator=est))(p),
    ]
    for jx in jaxprs:
        names = set(_primitives(jx))
        assert "while" not in names, names
        assert "cumsum" in names  # the walker reached the solver's core


def test_unrolled_program_has_no_loop_at_all():
    """Unrolled (the accelerator default), the compiled program has no loop
    of any kind: no while, no scan, in the jaxpr or the lowered HLO."""
    p = jnp.asarray([0.5, 0.9, 0.2, 0.1], jnp.float32)
    fn = jax.jit(lambda p: vipcore.solve_allocation(p, 12, 2, 8, unroll=True,
                                                    sections=16))
    names = set(_primitives(jax.make_jaxpr(fn)(p)))
    assert not names & {"while", "scan"}, names
    assert "while" not in fn.lower(p).as_text()


def test_heuristics_have_no_while():
    from vipcore._src.allocation import heuristics as H

    lw = jnp.zeros(8, jnp.float32)
    m = jnp.arange(8) < 5
    for unroll in (None, True):
        jx = jax.make_jaxpr(lambda lw, u=unroll: H._scale_and_round(
            lw, 23, 2, 16, m, unroll=u))(lw)
        assert "while" not in set(_primitives(jx))


def test_docstring_examples_run():
    import doctest
    import importlib

    for name in ("solve", "heuristics", "objective", "registry", "status"):
        mod = importlib.import_module(f"vipcore._src.allocation.{name}")
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert res.failed == 0, name


def test_allocate_program_options_fall_back(monkeypatch):
    """``allocate`` compiles its CPU program with XLA options of that program
    only (no global setting); the integers equal the default-compiled
    program's, and an XLA that lacks the option falls back to the defaults
    while any other error still surfaces."""
    import importlib

    S = importlib.import_module("vipcore._src.allocation.solve")
    rng = np.random.default_rng(3)
    for est in ("rloo", "drgrpo"):
        L = A.MIN_LOWER[est]
        for _ in range(5):
            p = jnp.asarray(rng.beta(0.4, 0.4, 64), jnp.float32)
            m = jnp.ones(64, bool)
            args = (p, 64 * 8 - 64 * L, L, 32, m)
            np.testing.assert_array_equal(S._solve_n_eager(*args, estimator=est),
                                          S._solve_n(*args, estimator=est))
    if jax.default_backend() == "cpu":
        assert S._solve_n_cpu is not S._solve_n  # the options are in use here
    calls = []

    def unknown(*a, **k):
        calls.append(1)
        raise RuntimeError("INVALID_ARGUMENT: No such compile option: 'xla_x'")

    monkeypatch.setattr(S, "_solve_n_cpu", unknown)
    got = vipcore.allocate([0.5, 0.9, 0.99, 0.0], C=32, L=2, U=16)
    assert got.tolist() == [16, 10, 4, 2]
    assert calls == ([1] if jax.default_backend() == "cpu" else [])

    def broken(*a, **k):
        raise RuntimeError("something else")

    monkeypatch.setattr(S, "_solve_n_cpu", broken)
    if jax.default_backend() == "cpu":
        with pytest.raises(RuntimeError, match="something else"):
            vipcore.allocate([0.5, 0.9, 0.99, 0.0], C=32, L=2, U=16)


def test_documented_round_counts():
    """docs/allocation.md's round counts are the solver's: bisection over
    the float32 bit patterns (29 rounds; 58 in float64) and 16-point rounds
    on accelerators (8 in float32)."""
    from pathlib import Path

    from vipcore._src.allocation.search import rounds_for

    doc = (Path(__file__).parents[1] / "docs" / "allocation.md").read_text()
    bits32, bits64 = (np.finfo(t).nmant + 6 for t in (np.float32, np.float64))
    r2, r2_64 = rounds_for(bits32, 2), rounds_for(bits64, 2)  # as solve_integer
    r16 = rounds_for(bits32, 16)
    assert f"({r2} in float32, {r2_64} in float64" in doc
    assert f"solver is {r2} bisection rounds (float32)" in doc
    assert f"arithmetic of {r2}\ncount evaluations" in doc
    assert f"{r16} rounds of 16 points in float32" in doc
    assert f"{r16} rounds in float32" in doc


@pytest.mark.parametrize("x64", [False, True])
def test_rloo_multiplier_to_the_working_precision(x64):
    """RLOO's lam within 16 eps of its closed form on the active set, where
    the search bracket alone is least precise (one interior prompt with a
    small a, the others at U: up to ~300 eps off without the closed-form
    polish)."""
    from vipcore._src.apps.verify import exact_alloc, oracles

    dt = np.float64 if x64 else np.float32
    with jax.enable_x64(x64):
        for p, C, L, U in exact_alloc.lam_instances():
            res = A.solve(jnp.asarray(p, dt), C, L, U, estimator="rloo")
            pr = np.asarray(p, dt).astype(np.float64)
            a = 4 * pr * (1 - pr)
            active = oracles.kkt_solution(a, C, L, U, "rloo")[0]
            ref = oracles.rloo_lam_on_active_set(a, active, C, L, U)
            assert abs(float(res.lam) - ref) <= 16 * np.finfo(dt).eps * ref, (U, C)


def _brute_rloo_count(s, L, U, dtype):
    """Units ``n in [L, U)`` passing the solver's float test
    ``n (n - 1) <= s**2`` (products in ``dtype``), found by trying every ``n``
    near ``s``; the test must hold on a prefix of them."""
    s = dtype(s)
    s2 = s * s
    base = int(np.floor(s))
    ns = np.arange(max(base - 3, 0), base + 5).astype(dtype)
    ok = ns * (ns - dtype(1)) <= s2
    assert ok[0] and not ok[-1] and np.all(np.diff(ok.astype(int)) <= 0), s
    n_max = int(ns[ok][-1])
    return min(max(n_max - L + 1, 0), U - L)


@pytest.mark.parametrize("dtype, s_top", [(np.float32, 2.0**22), (np.float64, 2.0**30)])
def test_rloo_unit_counts_equal_brute_force(dtype, s_top):
    """One check after the candidate ``floor(s)`` gives the count of every
    ``n`` tried, also at the floats right beside each boundary
    ``s = sqrt(n (n - 1))``, up to ``s = 2**22`` in float32."""
    from vipcore._src.allocation.threshold import limits, unit_counts

    rng = np.random.default_rng(7)
    n = np.unique(np.concatenate([
        rng.integers(2, 5000, 300),
        np.exp(rng.uniform(np.log(2), np.log(s_top), 300)).astype(np.int64)]))
    n = n.astype(np.float64)
    edge = np.sqrt(n * (n - 1)).astype(dtype)
    up, down = np.full_like(edge, np.inf), np.zeros_like(edge)
    s = np.concatenate([edge, np.nextafter(edge, up), np.nextafter(edge, down),
                        np.exp(rng.uniform(-3, np.log(s_top), 400)).astype(dtype),
                        np.arange(0, 40, 0.125, dtype=dtype)]).astype(dtype)
    L, U = 2, int(s_top) + 8
    with jax.enable_x64(dtype == np.float64):
        Lb = jnp.full(s.shape, L, jnp.int32)
        Ub = jnp.full(s.shape, U, jnp.int32)
        got = np.asarray(unit_counts(jnp.asarray(s), Lb, Ub, "rloo",
                                     limits(Lb, Ub, dtype)))
    want = np.array([_brute_rloo_count(x, L, U, dtype) for x in s])
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (s[bad[:5]], got[bad[:5]], want[bad[:5]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("est, L", [("rloo", 2), ("drgrpo", 3)])
def test_unit_counts_are_non_decreasing_in_s(est, L, dtype):
    """The bisection needs a monotone count, whatever the rounding: checked on
    consecutive floats up to ``U + 4`` with ``U`` near ``2**31``."""
    from vipcore._src.allocation.threshold import limits, unit_counts

    U = 2**31 - 2
    grids = [np.geomspace(1e-3, 2.0**31 + 64, 20_000)]
    for c in (3.0, 1e3, 2.0**22, 2.0**30):  # runs of adjacent floats
        x = np.asarray(c, dtype)
        run = [x]
        for _ in range(300):
            run.append(np.nextafter(run[-1], np.asarray(np.inf, dtype)))
        grids.append(np.asarray(run, np.float64))
    s = np.unique(np.concatenate(grids).astype(dtype))
    with jax.enable_x64(dtype == np.float64):
        Lb = jnp.full(s.shape, L, jnp.int32)
        Ub = jnp.full(s.shape, U, jnp.int32)
        got = np.asarray(unit_counts(jnp.asarray(s), Lb, Ub, est,
                                     limits(Lb, Ub, dtype)))
    assert np.all(np.diff(got) >= 0)
    assert got[0] == 0 and got[-1] == U - L
