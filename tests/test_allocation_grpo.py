"""GRPO allocation: the signal/noise formulas, the objective, the exact solvers.

Oracles are independent of the module under test: the per-prompt quantities
are enumerated over the number of successes with scipy's binomial pmf and the
advantages the trainer computes (``vipcore.advantages(..., "grpo")`` on an
explicit group); the solvers are compared with brute force, a heap greedy,
scipy's MILP solver and the dynamic programme.
"""

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

import vipcore
from vipcore._src.allocation import grpo as G
from vipcore._src.allocation.status import AllocationStatus

# --------------------------------------------------------------------------
# Oracles
# --------------------------------------------------------------------------


@functools.cache
def enumerate_grpo(p: float, n: int, ddof: int) -> dict:
    """Exact E[G]/Cov(R,Z), Var(G), P(non-constant) by enumerating K.

    For each k the group [+1]*k + [-1]*(n-k) gets the library's GRPO
    advantages (eps = 1e-12, far below the smallest std 2 sqrt(n-1)/n);
    ``E[G | K] = (mu_+ - mu_-) sum_{R=+1} A / n`` and ``Cov(R, Z) = 2 p q
    (mu_+ - mu_-)``; ``Var(G) = E[sum A^2] / n^2`` under Assumption 4.1.
    """
    k = np.arange(n + 1)
    success = np.arange(n)[None, :] < k[:, None]  # row k: k successes
    with jax.enable_x64(True):
        a = np.asarray(vipcore.advantages(np.where(success, 1.0, -1.0), "grpo",
                                          ddof=ddof, eps=1e-12))
    sum_a2 = np.sum(a * a, axis=1)
    sum_pos = np.sum(np.where(success, a, 0), axis=1)
    pmf = stats.binom.pmf(k, n, p)
    var = float(pmf @ sum_a2) / n**2
    signal = float(pmf @ sum_pos) / (2 * n * p * (1 - p))
    nonzero = 1 - pmf[0] - pmf[n]
    # p so small that the pmf underflows: V -> 4p/(n-1) ~ 0
    norm = var / signal**2 if signal > 0 else 0.0
    return dict(signal=signal, variance=var, normalized_variance=norm,
                nonzero=nonzero)


def cv2_of_std(p: float, n: int) -> float:
    """Squared coefficient of variation of sqrt(K (n - K)) given 0 < K < n."""
    k = np.arange(1, n)
    w = stats.binom.pmf(k, n, p)
    w = w / w.sum()
    x = np.sqrt(k * (n - k))
    mean = w @ x
    return float(w @ (x - mean) ** 2) / mean**2


def objective64(n, p) -> float:
    """The GRPO objective sum_q V_{n_q}(p_q) in float64 from the enumeration."""
    # V <= 4p(1-p) * 1.1: below 1e-250 it is 0 for any tolerance (and scipy's
    # pmf overflows on subnormal p)
    return sum(enumerate_grpo(float(pq), int(nq), 1)["normalized_variance"]
               if pq * (1 - pq) > 1e-250 else 0.0
               for pq, nq in zip(p, n, strict=True))


def cost_table64(p, L, U) -> np.ndarray:
    """(B, U - L + 1) table of V_n(p_q) from the library (float64)."""
    with jax.enable_x64(True):
        levels = jnp.arange(L, U + 1)
        t = G.grpo_terms(jnp.asarray(p, jnp.float64)[:, None], levels[None, :])
        return np.asarray(t.normalized_variance)


def brute_force(costs: np.ndarray, K: int) -> float:
    B, W = costs.shape
    best = math.inf
    for m in itertools.product(range(W), repeat=B):
        if sum(m) == K:
            best = min(best, float(sum(costs[q, m[q]] for q in range(B))))
    return best


@st.composite
def problems(draw, max_b=5, bounds=((3, 7), (2, 2))):
    """Small problems; few distinct (L, U) pairs keep compilations few."""
    B = draw(st.integers(1, max_b))
    L, U = draw(st.sampled_from(bounds))
    C = draw(st.integers(B * L, B * U))
    p = draw(st.lists(
        st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1.0, 0.5, 1e-6])),
        min_size=B, max_size=B))
    return np.array(p), C, L, U


# --------------------------------------------------------------------------
# The per-prompt quantities
# --------------------------------------------------------------------------


P_GRID = np.array([1e-4, 0.03, 0.2, 0.5, 0.77, 0.999])


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 13, 32])
def test_terms_match_enumeration(n):
    for ddof in (0, 1):
        with jax.enable_x64(True):
            t = G.grpo_terms(P_GRID, n, ddof=ddof, n_max=32)
            t = {k: np.asarray(v) for k, v in t._asdict().items()}
        for i, p in enumerate(P_GRID):
            ref = enumerate_grpo(float(p), n, ddof)
            for name in ("signal", "variance", "normalized_variance", "nonzero"):
                np.testing.assert_allclose(t[name][i], ref[name], rtol=1e-9,
                                           err_msg=f"{name} p={p} ddof={ddof}")
            np.testing.assert_allclose(
                t["factor"][i], ref["normalized_variance"] / (4 * p * (1 - p)),
                rtol=1e-9)


@settings(max_examples=40)
@given(p=st.floats(1e-3, 1 - 1e-3), n=st.integers(2, 64), ddof=st.sampled_from([0, 1]))
def test_variance_matches_library_exact_variance(p, n, ddof):
    """Var(G) agrees with vipcore.grpo_gradient_variance (its own enumeration)."""
    with jax.enable_x64(True):
        t = G.grpo_terms(np.float64(p), n, ddof=ddof, n_max=64)
    ref = vipcore.grpo_gradient_variance(p, n, ddof=ddof, eps=0.0)
    np.testing.assert_allclose(float(t.variance), float(ref), rtol=1e-9)


@settings(max_examples=40)
@given(p=st.floats(1e-4, 1 - 1e-4), n=st.integers(2, 64))
def test_factor_is_rloo_times_one_plus_cv2(p, n):
    """c_n(p) (n - 1) = 1 + CV^2 of the group std given a non-constant group:
    never below RLOO's 1/(n-1) (Cauchy-Schwarz), equal to it for n <= 3."""
    with jax.enable_x64(True):
        c = float(G.grpo_terms(np.float64(p), n, n_max=64).factor)
    np.testing.assert_allclose(c * (n - 1), 1 + cv2_of_std(p, n), rtol=1e-9)
    assert c * (n - 1) >= 1 - 1e-12
    if n <= 3:
        np.testing.assert_allclose(c * (n - 1), 1.0, rtol=1e-12)
    else:
        assert c * (n - 1) > 1


def test_normalized_variance_ignores_ddof_and_is_symmetric():
    p = np.linspace(0, 1, 41)
    with jax.enable_x64(True):
        n = jnp.arange(2, 40)[:, None]
        v0 = G.grpo_terms(p[None, :], n, ddof=0)
        v1 = G.grpo_terms(p[None, :], n, ddof=1)
        vs = G.grpo_terms(1 - p[None, :], n, ddof=1)
    v0, v1, vs = ({k: np.asarray(x) for k, x in v._asdict().items()}
                  for v in (v0, v1, vs))
    np.testing.assert_allclose(v0["normalized_variance"], v1["normalized_variance"],
                               rtol=1e-12)
    np.testing.assert_allclose(v1["normalized_variance"], vs["normalized_variance"],
                               rtol=1e-9, atol=1e-15)
    # ddof changes the signal and the raw variance by (n-1)/n, not the ratio
    nn = np.arange(2, 40)[:, None]
    np.testing.assert_allclose(v1["variance"], v0["variance"] * (nn - 1) / nn,
                               rtol=1e-12)
    np.testing.assert_allclose(v1["signal"] ** 2, v0["signal"] ** 2 * (nn - 1) / nn,
                               rtol=1e-12)


def test_endpoints():
    """p in {0, 1}: no signal, no noise, objective 0; the factor is RLOO's."""
    with jax.enable_x64(True):
        t = G.grpo_terms(jnp.array([0.0, 1.0]), jnp.array([[2], [5], [64]]))
    assert np.all(np.asarray(t.normalized_variance) == 0)
    assert np.all(np.asarray(t.nonzero) == 0)
    np.testing.assert_allclose(t.factor, np.broadcast_to(1 / np.array([[1], [4], [63]]),
                                                         (3, 2)), rtol=1e-12)


def _convexity_margin(p: np.ndarray, n_hi: int) -> tuple[float, float, float]:
    """(largest first difference, smallest second/first difference ratio,
    largest excess over RLOO (n - 1) c_n(p)) of c_n(p) over n <= n_hi."""
    with jax.enable_x64(True):
        n = jnp.arange(2, n_hi + 1)[:, None]
        v = np.asarray(G.grpo_terms(jnp.asarray(p)[None, :], n).factor)
    d = np.diff(v, axis=0)
    dd = np.diff(d, axis=0)
    excess = v * (np.arange(2, n_hi + 1)[:, None] - 1)
    return float(d.max()), float((dd / -d[:-1]).min()), float(excess.max())


def test_factor_decreasing_and_convex_in_n():
    """The premise of the exact greedy: V_n(p) decreasing and convex in n."""
    p = np.concatenate([np.logspace(-6, np.log10(0.5), 60), [0.0]])
    p = np.concatenate([p, 1 - p])
    dmax, margin, _ = _convexity_margin(p, 256)
    assert dmax < 0
    assert margin > 1e-3  # second difference > 0.1 % of the first


@pytest.mark.slow
def test_factor_convex_on_dense_grid():
    """The docs' claims: 3,400 values of p, every n <= 1024, float64: V_n(p)
    decreasing and convex in n (second difference > 0.15 % of the first), and
    at most 7.5 % above RLOO's 4p(1-p)/(n-1)."""
    p = np.concatenate([np.logspace(-8, np.log10(0.499), 1500),
                        0.5 - np.logspace(-8, -1, 200)])
    p = np.unique(np.concatenate([p, 1 - p]))
    assert p.size == 3400
    dmax, margin, excess = _convexity_margin(p, G.GRPO_MAX_N)
    assert dmax < 0
    assert margin > 1.5e-3
    assert 1.07 < excess < 1.075


def test_terms_float32_close_to_float64():
    p = np.linspace(0, 1, 33)
    n = np.arange(2, 65)[:, None]
    t32 = G.grpo_terms(p.astype(np.float32)[None, :], n)
    assert t32.factor.dtype == jnp.float32
    with jax.enable_x64(True):
        t64 = G.grpo_terms(p[None, :], n)
    np.testing.assert_allclose(t32.normalized_variance, t64.normalized_variance,
                               rtol=2e-5, atol=1e-7)


def test_terms_under_jit_and_vmap():
    f = jax.jit(lambda p, n: G.grpo_terms(p, n, n_max=16).normalized_variance)
    p = jnp.array([0.1, 0.5, 0.9])
    n = jnp.array([2, 7, 16])
    loop = [float(G.grpo_terms(float(a), int(b), n_max=16).normalized_variance)
            for a, b in zip(p, n, strict=True)]
    np.testing.assert_allclose(f(p, n), loop, rtol=1e-5)
    np.testing.assert_allclose(jax.vmap(f)(p, n), loop, rtol=1e-5)


@pytest.mark.parametrize("kw, match", [
    (dict(p=0.5, n=1), "n must be >= 2"),
    (dict(p=1.5, n=4), "p must lie in"),
    (dict(p=0.5, n=4.0), "n must be an integer"),
    (dict(p=0.5, n=4, ddof=2), "ddof must be 0"),
    (dict(p=0.5, n=G.GRPO_MAX_N + 1), "n_max must lie in"),
])
def test_terms_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        G.grpo_terms(**kw)


def test_terms_traced_n_needs_n_max():
    with pytest.raises(ValueError, match="n_max is required"):
        jax.jit(lambda n: G.grpo_terms(0.5, n).factor)(jnp.array(3))


# --------------------------------------------------------------------------
# The dynamic programme
# --------------------------------------------------------------------------


@settings(max_examples=50)
@given(data=st.data())
def test_dp_equals_brute_force_on_any_costs(data):
    """Arbitrary (non-convex, with forbidden levels) separable costs."""
    B = data.draw(st.integers(1, 4))
    W = data.draw(st.integers(1, 5))
    vals = st.one_of(st.floats(-5, 5), st.just(math.inf))
    costs = np.array(data.draw(st.lists(st.lists(vals, min_size=W, max_size=W),
                                        min_size=B, max_size=B)))
    K = data.draw(st.integers(0, B * (W - 1)))
    best = brute_force(costs, K)
    # one compiled shape: padding prompts may take only level 0, padding
    # levels are forbidden
    padded = np.full((4, 5), math.inf)
    padded[:, 0] = 0.0
    padded[:B, :W] = costs
    with jax.enable_x64(True):
        m, total = G.solve_separable_dp(padded, K)
    m = np.asarray(m)
    if math.isinf(best):
        assert math.isinf(float(total))
        return
    assert m.sum() == K and np.all(m[B:] == 0) and m.max() <= W - 1
    got = float(sum(costs[q, m[q]] for q in range(B)))
    np.testing.assert_allclose(got, best, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(float(total), best, rtol=1e-12, atol=1e-12)


@settings(max_examples=40)
@given(data=st.data())
def test_greedy_exact_on_convex_tables_with_ties(data):
    """Integer convex tables (many exact ties): the greedy's top-K selection
    equals the DP optimum, uses exactly K units and keeps each prompt's units
    a prefix; equal rows differ by at most one unit."""
    B, W = 6, 7
    steps = data.draw(st.lists(st.lists(st.integers(0, 3), min_size=W - 1,
                                        max_size=W - 1), min_size=B, max_size=B))
    # decreases d_0 >= d_1 >= ... (sorted descending): a convex cost table
    dec = -np.sort(-np.array(steps, float), axis=1)
    costs = np.concatenate([np.zeros((B, 1)), -np.cumsum(dec, axis=1)], axis=1)
    if data.draw(st.booleans()):
        costs[B // 2:] = costs[0]  # equal prompts
    K = data.draw(st.integers(0, B * (W - 1)))
    extra, lam = _greedy_jit(jnp.asarray(costs.T, jnp.float32), K)
    extra = np.asarray(extra)
    _, best = G.solve_separable_dp(jnp.asarray(costs, jnp.float32), K)
    assert extra.sum() == K
    assert costs[np.arange(B), extra].sum() == float(best)
    if K:
        taken = [dec[q, m] for q in range(B) for m in range(extra[q])]
        assert float(lam) == min(taken)
    if np.all(costs[B // 2:] == costs[0]):
        same = extra[np.all(costs == costs[0], axis=1)]
        assert same.max() - same.min() <= 1


_greedy_jit = jax.jit(lambda c, K: G._greedy(c, K, jnp.ones(c.shape[1], bool)))


def test_dp_negative_control_detects_greedy_on_nonconvex_costs():
    """The greedy is exact only for convex costs: on a concave table it is not,
    and the DP and brute force (which agree) both see it."""
    costs = np.array([[0.0, 0.0, -3.0], [0.0, -1.0, -1.5]])  # prompt 0 concave
    K = 2
    with jax.enable_x64(True):
        extra, _ = jax.jit(G._greedy)(jnp.asarray(costs.T), K, jnp.ones(2, bool))
        m = np.asarray(G.solve_separable_dp(costs, K)[0])
        convex = bool(jax.jit(G._is_convex, static_argnums=1)(
            jnp.asarray(costs.T), 2, jnp.ones(2, bool)))
    greedy_obj = costs[0, extra[0]] + costs[1, extra[1]]
    dp_obj = costs[0, m[0]] + costs[1, m[1]]
    assert dp_obj == brute_force(costs, K) == -3.0
    assert greedy_obj > dp_obj
    assert not convex


# --------------------------------------------------------------------------
# The GRPO solver
# --------------------------------------------------------------------------


def _check_feasible(n, C, L, U):
    n = np.asarray(n)
    assert n.sum() == C and n.min() >= L and n.max() <= U


@settings(max_examples=40)
@given(prob=problems())
def test_solve_grpo_equals_brute_force(prob):
    p, C, L, U = prob
    B = p.size
    padded = np.pad(p, (0, 5 - B), constant_values=0.5)  # one shape per (L, U)
    costs = cost_table64(padded, L, U)[:B]
    best = brute_force(costs, C - B * L)
    with jax.enable_x64(True):
        res = G.solve_grpo(jnp.asarray(padded), C, L, U, mask=jnp.arange(5) < B)
    assert int(res.status) == 0 and bool(res.convex)
    n = np.asarray(res.n)
    assert np.all(n[B:] == 0)
    _check_feasible(n[:B], C, L, U)
    np.testing.assert_allclose(float(res.objective), best, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(objective64(n[:B], p), best, rtol=1e-8, atol=1e-14)


@settings(max_examples=25)
@given(seed=st.integers(0, 2**31 - 1))
def test_solve_grpo_equals_dp_and_heap_greedy(seed):
    rng = np.random.default_rng(seed)
    B, L, U = 16, 2, 24  # fixed shapes: one compilation
    C = int(rng.integers(B * L, B * U + 1))
    p = np.where(rng.random(B) < 0.15, rng.integers(0, 2, B), rng.beta(0.4, 0.4, B))
    costs = cost_table64(p, L, U)
    with jax.enable_x64(True):
        res = G.solve_grpo(jnp.asarray(p), C, L, U)
        m = np.asarray(G.solve_separable_dp(costs, C - B * L)[0])
    _check_feasible(res.n, C, L, U)
    dp_obj = costs[np.arange(B), m].sum()
    np.testing.assert_allclose(float(res.objective), dp_obj, rtol=1e-11, atol=1e-14)
    # independent exact method: units one at a time to the largest decrease
    n = np.full(B, L)
    for _ in range(C - B * L):
        gain = [costs[q, n[q] - L] - costs[q, n[q] - L + 1] if n[q] < U else -np.inf
                for q in range(B)]
        n[int(np.argmax(gain))] += 1
    np.testing.assert_allclose(costs[np.arange(B), n - L].sum(), dp_obj, rtol=1e-11,
                               atol=1e-14)


def test_never_worse_than_scipy_milp():
    """A general MILP solver (HiGHS) on the one-level-per-prompt formulation."""
    rng = np.random.default_rng(5)
    B, L, U, C = 16, 2, 24, 16 * 7  # the shapes of the test above
    p = rng.beta(0.5, 0.5, B)
    costs = cost_table64(p, L, U)
    W = U - L + 1
    c = costs.reshape(-1)
    one = np.kron(np.eye(B), np.ones(W))
    units = np.tile(np.arange(W), B)[None, :]
    cons = [optimize.LinearConstraint(one, 1, 1),
            optimize.LinearConstraint(units, C - B * L, C - B * L)]
    milp = optimize.milp(c, constraints=cons, integrality=np.ones_like(c),
                         bounds=optimize.Bounds(0, 1))
    assert milp.success
    with jax.enable_x64(True):
        res = G.solve_grpo(jnp.asarray(p), C, L, U)
    assert float(res.objective) <= milp.fun * (1 + 1e-9)


@pytest.mark.slow  # follows from test_factor_is_rloo_times_one_plus_cv2 (n <= 3)
def test_equals_rloo_allocation_where_the_objectives_coincide():
    """For n <= 3, V_n(p) = 4p(1-p)/(n-1) exactly: same optimum as RLOO."""
    rng = np.random.default_rng(2)
    p = rng.uniform(0.01, 0.99, 16)
    C = 40
    with jax.enable_x64(True):
        g = G.allocate_grpo(p, C, 2, 3)
        r = vipcore.allocate(p, C, 2, 3, "rloo")
        obj = [float(vipcore.allocation_objective(x, p, "rloo")) for x in (g, r)]
    np.testing.assert_allclose(obj[0], obj[1], rtol=1e-12)


@pytest.fixture(scope="module")
def comparison():
    """A Beta(0.5, 0.5) batch of 16 prompts, C = 128, L = 2, U = 24 (the
    shapes of the solver tests above: no new compilation), scored in float64
    under every allocation."""
    p = np.random.default_rng(0).beta(0.5, 0.5, 16)
    C, L, U = 128, 2, 24
    with jax.enable_x64(True):
        table = G.grpo_terms(p[:, None], jnp.arange(L, U + 1)[None, :])
        raw, _ = G.solve_separable_dp(table.variance, C - 16 * L)
        allocs = {
            "grpo": G.allocate_grpo(p, C, L, U),
            "rloo": vipcore.allocate(p, C, L, U, "rloo"),
            "uniform": vipcore.allocate_uniform(p, C, L, U),
            "raw": np.asarray(raw) + L,
        }
        terms = {k: {f: float(np.sum(getattr(G.grpo_terms(p, v), f)))
                     for f in ("normalized_variance", "variance", "nonzero")}
                 for k, v in allocs.items()}
    return allocs, terms


def test_grpo_beats_uniform_and_rloo_is_close(comparison):
    """The GRPO optimum is below uniform and below RLOO's allocation (scored
    with the GRPO objective), and RLOO's is within 1e-3 of it."""
    allocs, t = comparison
    obj = {k: v["normalized_variance"] for k, v in t.items()}
    assert all(a.sum() == 128 and a.min() >= 2 and a.max() <= 24
               for a in allocs.values())
    assert obj["grpo"] <= obj["rloo"] <= obj["grpo"] * (1 + 1e-3)
    assert obj["uniform"] > 1.1 * obj["grpo"]


def test_raw_variance_is_the_wrong_target(comparison):
    """Minimising GRPO's raw Var(G) (non-convex, solved by the DP) lowers the
    raw variance by starving groups: more constant groups and a far larger
    signal-normalised variance than even uniform."""
    _, t = comparison
    assert t["raw"]["variance"] < t["grpo"]["variance"] < t["uniform"]["variance"]
    obj = {k: v["normalized_variance"] for k, v in t.items()}
    assert obj["raw"] > 2 * obj["uniform"] > 2 * obj["grpo"]
    assert t["raw"]["nonzero"] < t["uniform"]["nonzero"] - 2  # 2 more constant groups


def test_degenerate_prompts_stay_at_l_and_flat_batches_are_even():
    with jax.enable_x64(True):  # all with the compiled shape (8 prompts, 2..8)
        p = np.array([0.0, 0.5, 1.0, 0.3])
        n = G.allocate_grpo(p, 14, 2, 8)
        assert n[0] == 2 and n[2] == 2  # p in {0, 1} stay at L
        costs = cost_table64(p, 2, 8)
        assert costs[np.arange(4), n - 2].sum() == pytest.approx(
            brute_force(costs, 14 - 8), rel=1e-12)
        # every p in {0, 1}: the objective is flat, the most even allocation
        assert G.allocate_grpo([0.0, 1.0, 0.0], 10, 2, 8).tolist() == [4, 3, 3]
        # excess that the p = 0.5 prompt cannot absorb at U is spread evenly
        # over the degenerate prompts, lowest index first
        assert G.allocate_grpo([0.5, 0.0, 1.0, 0.0], 16, 2, 8).tolist() == [8, 3, 3, 2]


def test_equal_prompts_share_evenly():
    with jax.enable_x64(True):
        n = G.allocate_grpo([0.3] * 5, 17, 2, 8)
    assert n.tolist() == [4, 4, 3, 3, 3]


@settings(max_examples=20)
@given(prob=problems(max_b=6, bounds=((2, 8),)), seed=st.integers(0, 1000))
def test_permutation_equivariance(prob, seed):
    p, C, L, U = prob
    perm = np.random.default_rng(seed).permutation(p.size)
    with jax.enable_x64(True):
        a = G.allocate_grpo(p, C, L, U)
        b = G.allocate_grpo(p[perm], C, L, U)
    np.testing.assert_allclose(objective64(a, p), objective64(b, p[perm]),
                               rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("seed", range(3))
def test_float32_gives_the_float64_integers(seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, 16)
    a = G.allocate_grpo(p.astype(np.float32), 16 * 10, 2, 24)
    with jax.enable_x64(True):
        b = G.allocate_grpo(p, 16 * 10, 2, 24)
    if not np.array_equal(a, b):  # a float32 near-tie: the objective must agree
        costs = cost_table64(p, 2, 24)
        rows = np.arange(p.size)
        np.testing.assert_allclose(costs[rows, a - 2].sum(), costs[rows, b - 2].sum(),
                                   rtol=1e-6)


def test_padding_mask_and_vmap():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, (3, 16))
    with jax.enable_x64(True):  # the compiled shapes of the solver tests above
        C = jnp.array([60, 100, 160])
        direct = [G.solve_grpo(jnp.asarray(p[i]), int(C[i]), 2, 24) for i in range(3)]
        batched = jax.vmap(lambda pp, c: G.solve_grpo(pp, c, 2, 24))(jnp.asarray(p),
                                                                      C)
        for i in range(3):
            np.testing.assert_array_equal(batched.n[i], direct[i].n)
        # 10 real prompts padded to 16: the optimum of the 10 alone (by the DP,
        # with the padding rows forced to level 0)
        padded = np.concatenate([p[0, :10], np.full(6, 0.5)])
        res = G.solve_grpo(jnp.asarray(padded), 60, 2, 24, mask=jnp.arange(16) < 10)
        costs = cost_table64(padded, 2, 24).copy()
        costs[10:, 1:] = np.inf
        _, best = G.solve_separable_dp(costs, 60 - 20)
        best = float(best) - costs[10:, 0].sum()
        n = np.asarray(res.n)
        assert np.all(n[10:] == 0) and n.sum() == 60
        np.testing.assert_allclose(float(res.objective), best, rtol=1e-10)


def test_result_fields():
    p = np.random.default_rng(4).uniform(0.05, 0.97, 16)
    L, U = 2, 24
    with jax.enable_x64(True):
        res = G.solve_grpo(jnp.asarray(p), 16 * 8, L, U, ddof=0)
        t = G.grpo_terms(p, np.asarray(res.n), ddof=0, n_max=32)
        res, t = (jax.tree.map(np.asarray, x) for x in (res, t))
        costs = cost_table64(p, L, U)
    n = res.n
    np.testing.assert_allclose(res.objective, t.normalized_variance.sum())
    np.testing.assert_allclose(res.variance, t.variance.sum())
    np.testing.assert_allclose(res.zero_groups, np.sum(p**n + (1 - p) ** n))
    # lam is the smallest decrease given; no unit not given decreases more
    given = [costs[q, m - 1] - costs[q, m]
             for q in range(16) for m in range(1, n[q] - L + 1)]
    not_given = [costs[q, n[q] - L] - costs[q, n[q] - L + 1]
                 for q in range(16) if n[q] < U]
    np.testing.assert_allclose(float(res.lam), min(given))
    assert max(not_given) <= float(res.lam)


@pytest.mark.parametrize("args, status", [
    ((jnp.array([0.5, jnp.nan]), 8, 2, 8), AllocationStatus.BAD_P),
    ((jnp.array([0.5, 1.5]), 8, 2, 8), AllocationStatus.BAD_P),
    ((jnp.array([0.5, 0.5]), 8.5, 2, 8), AllocationStatus.BAD_BUDGET),
    ((jnp.array([0.5, 0.5]), 8, 1, 8), AllocationStatus.BAD_BOUNDS),
    ((jnp.array([0.5, 0.5]), 8, 5, 4), AllocationStatus.BAD_BOUNDS),
    ((jnp.array([0.5, 0.5]), 8, 2.5, 8), AllocationStatus.BAD_BOUNDS),
    ((jnp.array([0.5, 0.5]), 3, 2, 8), AllocationStatus.INFEASIBLE),
    ((jnp.array([0.5, 0.5]), 17, 2, 8), AllocationStatus.INFEASIBLE),
])
def test_status_codes(args, status):
    res = G.solve_grpo(*args)
    assert int(res.status) == status
    assert np.all(np.asarray(res.n) == 0) and np.isnan(float(res.objective))


def test_status_codes_with_traced_budget():
    res = jax.jit(lambda c: G.solve_grpo(jnp.array([0.5, 0.2]), c, 2, 8))(
        jnp.array(40))
    assert int(res.status) == AllocationStatus.INFEASIBLE


@pytest.mark.parametrize("kw, match", [
    (dict(ddof=2), "ddof must be 0"),
    (dict(U=G.GRPO_MAX_N + 1), "U must be <= 1024"),
])
def test_solve_grpo_static_errors(kw, match):
    args = dict(p_hat=jnp.array([0.5, 0.5]), C=8, L=2, U=8) | kw
    with pytest.raises(ValueError, match=match):
        G.solve_grpo(**args)


def test_solve_grpo_refuses_traced_bounds():
    with pytest.raises(ValueError, match="L must be a concrete integer"):
        jax.jit(lambda L: G.solve_grpo(jnp.array([0.5, 0.5]), 8, L, 8))(2)


@pytest.mark.parametrize("args, match", [
    (([0.5, float("nan")], 8, 2, 8),
     r"p_hat must not contain NaN \(first NaN at index 1\)"),
    (([0.5, 1.2], 8, 2, 8), r"p_hat must lie in \[0, 1\]; got 1.2 at index 1"),
    (([0.5, 0.5], 3, 2, 8), r"C=3 is infeasible .* \[4, 16\]"),
    (([0.5, 0.5], 8, 1, 8), "L must be >= 2 for estimator 'grpo'"),
    (([0.5, 0.5], 8, 0, 8), r"L must be >= 2 for estimator 'grpo' .*; got L=0"),
    (([0.5, 0.5], 8, 2.5, 8), r"L must be an integer in \[2, 2\*\*31\)"),
    (([0.5, 0.5], 8, 5, 4), "L must be <= U"),
    (([0.5, 0.5], 8.5, 2, 8), "C must be an integer"),
    (([[0.5, 0.5]], 8, 2, 8), "p_hat must be one-dimensional"),
    (([0.5] * 4, 4 * 2000, 2, 2**31 - 1), "at most 1024 rollouts per prompt"),
])
def test_allocate_grpo_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        G.allocate_grpo(*args)


def test_allocate_grpo_ddof_checked_and_irrelevant():
    p = [0.1, 0.5, 0.9]
    with jax.enable_x64(True):
        assert G.allocate_grpo(p, 20, 2, 8, ddof=0).tolist() == \
            G.allocate_grpo(p, 20, 2, 8, ddof=1).tolist()
    with pytest.raises(ValueError, match="ddof must be 0"):
        G.allocate_grpo(p, 20, 2, 8, ddof=-1)


def test_allocate_grpo_unbounded_u_and_types():
    p = np.array([0.5, 0.05, 0.95, 0.3], np.float32)
    half = G.solve_grpo(jnp.asarray(p, jnp.float16), 20, 2, 16)
    assert half.objective.dtype == jnp.float32  # float16 is promoted
    n = G.allocate_grpo(p, 20, 2, 2**31 - 1)  # U lowered to C - (B-1) L = 14
    assert n.dtype == np.int64 and n.sum() == 20 and n.min() >= 2
    assert n.tolist() == G.allocate_grpo(p, 20, 2, 16).tolist()


def test_allocate_grpo_falls_back_to_the_dp(monkeypatch):
    """If the convexity check ever failed, the eager API would still be exact."""
    p = np.array([0.1, 0.5, 0.7, 0.93, 0.25])
    with jax.enable_x64(True):
        expected = G.allocate_grpo(p, 30, 2, 8)
        real = G.solve_grpo
        calls = []

        def not_convex(*a, **k):
            calls.append(1)
            return real(*a, **k)._replace(n=jnp.zeros(8, jnp.int32),
                                          convex=jnp.asarray(False))

        monkeypatch.setattr(G, "solve_grpo", not_convex)
        got = G.allocate_grpo(p, 30, 2, 8)
    assert calls
    np.testing.assert_allclose(objective64(got, p), objective64(expected, p),
                               rtol=1e-12)
    _check_feasible(got, 30, 2, 8)


@pytest.mark.slow  # four more compilations; the values are pinned by tests above
def test_docstring_examples():
    import doctest

    res = doctest.testmod(G, optionflags=doctest.ELLIPSIS)
    assert res.attempted >= 5 and res.failed == 0


# --------------------------------------------------------------------------
# The public entry points: allocate(estimator="grpo"), the CLI, the Planner


def test_allocate_estimator_grpo_is_allocate_grpo():
    """``vipcore.allocate(..., estimator="grpo")`` solves the GRPO problem, not
    the RLOO one: on an instance where the two differ it returns the brute
    force GRPO optimum (and not the RLOO integers)."""
    p = np.array([0.05, 0.5, 0.95, 0.3])
    C, L, U = 20, 2, 10
    got = vipcore.allocate(p, C, L, U, estimator="grpo")
    np.testing.assert_array_equal(got, vipcore.allocate_grpo(p, C, L, U))
    def obj(n):
        return float(G.grpo_terms(p, np.asarray(n)).normalized_variance.sum())

    best = min((n for n in itertools.product(range(L, U + 1), repeat=4)
                if sum(n) == C), key=obj)
    assert obj(got) <= obj(best) * (1 + 1e-6)
    assert not np.array_equal(got, vipcore.allocate(p, C, L, U, estimator="rloo"))
    vip = vipcore.get_allocator("vip")
    assert vip(p, C, L, U, estimator="grpo").tolist() == got.tolist()
    with pytest.raises(ValueError, match="'rloo', 'drgrpo', 'grpo'"):
        vipcore.allocate(p, C, L, U, estimator="GRPO")


def test_cli_estimator_grpo(tmp_path, capsys):
    import json

    from vipcore._src.apps.cli import main

    p = [0.05, 0.5, 0.95, 0.3]
    f = tmp_path / "p.txt"
    f.write_text("".join(f"{x}\n" for x in p))
    assert main(["allocate", str(f), "-C", "20", "-U", "10", "--estimator", "grpo",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    want = vipcore.allocate_grpo(p, 20, 2, 10)
    assert out["n"] == want.tolist() and out["estimator"] == "grpo"
    obj = float(G.grpo_terms(np.array(p), want).normalized_variance.sum())
    assert out["objective"] == pytest.approx(obj, rel=1e-6)
    assert out["objective"] < out["objective_uniform"]
    assert main(["allocate", str(f), "-C", "20", "-U", "10", "--estimator", "grpo",
                 "-L", "1"]) == 2
    assert "--lower must be >= 2" in capsys.readouterr().err


def test_planner_estimator_grpo():
    """The Planner plans with the GRPO allocation and reports its metrics
    under the GRPO objective (the ratio is the plan's over a uniform split)."""
    pl = vipcore.Planner(num_prompts=4, estimator="grpo", upper=10,
                         predictor="moving_average")
    pl.observe([0, 1, 2, 3], successes=[0, 1, 2, 1], counts=[2, 2, 2, 2])
    counts = pl.plan([0, 1, 2, 3], 20)
    p = np.asarray(pl.predict([0, 1, 2, 3]), np.float64)
    np.testing.assert_array_equal(counts, vipcore.allocate_grpo(p, 20, 2, 10))
    m = pl.metrics
    v = lambda n: float(G.grpo_terms(p, np.asarray(n)).normalized_variance.sum())  # noqa: E731
    assert m["vip/pred_var_ratio_vs_uniform"] == pytest.approx(v(counts) / v([5] * 4),
                                                              rel=1e-5)
    assert m["vip/rollouts_saved_vs_uniform"] >= -1e-6
    with pytest.raises(ValueError, match="estimator='grpo' needs reward='binary'"):
        vipcore.Planner(num_prompts=4, estimator="grpo", reward="continuous",
                        predictor="moving_average")


@pytest.mark.parametrize("succ", [[0, 1, 2, 1], [1, 1, 2, 0]])
def test_planner_grpo_rollouts_saved_is_the_uniform_equivalent(succ):
    """``vip/rollouts_saved_vs_uniform`` is ``B n_u - C`` with ``n_u`` the
    uniform group size (linear between integers) whose summed objective
    equals the plan's; found here by scanning the integer levels one by one,
    each objective from its own ``grpo_terms`` call."""
    pl = vipcore.Planner(num_prompts=4, estimator="grpo", upper=10,
                         predictor="moving_average")
    pl.observe([0, 1, 2, 3], successes=succ, counts=[2, 2, 2, 2])
    budget = 20
    counts = pl.plan([0, 1, 2, 3], budget)
    p = np.asarray(pl.predict([0, 1, 2, 3]), np.float64)

    def total(n):  # sum_q V_n(p_q) for one uniform group size n
        return float(np.sum(G.grpo_terms(p, np.full(4, n)).normalized_variance))

    v_plan = float(G.grpo_terms(p, counts).normalized_variance.sum())
    n = 2
    while total(n + 1) > v_plan:
        n += 1
    lo, hi = total(n), total(n + 1)  # lo >= v_plan >= hi
    n_u = n + (lo - v_plan) / (lo - hi)
    m = pl.metrics
    assert m["vip/rollouts_saved_vs_uniform"] == pytest.approx(4 * n_u - budget,
                                                               rel=1e-6, abs=1e-6)
    assert m["vip/rollouts_saved_frac"] == pytest.approx((4 * n_u - budget) / budget,
                                                         rel=1e-6, abs=1e-6)
    assert 4 * n_u - budget > 1  # the plan beats the uniform split clearly
