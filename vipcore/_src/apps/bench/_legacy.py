"""A loop-based exact allocator, kept as a private baseline for the benchmark.

It solves the relaxation by an unrolled search in ``log lam`` and rounds with
two data-dependent ``lax.while_loop`` passes (a budget fix of up to 32 units
per step, then single-unit exchanges until none improves): exact, with ties
only between exactly equal gains, but each loop step is a host round trip on
an accelerator and the loops dominate on CPU at large ``B``. The library's
solver has no such loop; the benchmark runs this one in the same process for
the ratio (JSON key ``previous_solver``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

# The KKT allocation at a given multiplier is the same in both solvers; the
# baseline differs in its search and its rounding loops.
from vipcore._src.allocation.continuous import _n_of_lam, apply_mask, as_row
from vipcore._src.allocation.objective import marginal, objective_terms
from vipcore._src.allocation.status import MIN_LOWER, AllocationStatus, traced_status

__all__ = ["legacy_solve"]


def default_sections() -> int:
    return 2 if jax.default_backend() == "cpu" else 16


def bracket_search(pred, lo, hi, dtype, sections: int):
    """Narrow ``[lo, hi]`` around the point where ``pred`` turns false.

    ``pred(t)`` maps a vector of points to booleans that are true on a prefix
    of ``[lo, hi]`` (monotone). Each round evaluates ``sections - 1`` interior
    points at once; the rounds are unrolled at trace time (no data-dependent
    loop, one fused program per round), enough to shrink the bracket by
    ``2**-32`` (float32) or ``2**-60`` (float64): the log-brackets used here
    are at most ~2 log(1/eps) + 2 log(U) wide, so this reaches the dtype's
    resolution.
    """
    bits = 60 if jnp.finfo(dtype).bits >= 64 else 32
    K = max(2, int(sections))
    rounds = -(-bits // (K.bit_length() - 1))  # ceil(bits / floor(log2 K))
    frac = jnp.arange(1, K, dtype=dtype) / K
    for _ in range(rounds):
        t = lo + (hi - lo) * frac
        cnt = jnp.sum(pred(t))
        lo, hi = (
            jnp.where(cnt > 0, t[jnp.maximum(cnt - 1, 0)], lo),
            jnp.where(cnt < K - 1, t[jnp.minimum(cnt, K - 2)], hi),
        )
    return lo, hi


@functools.partial(jax.jit, static_argnames=("estimator", "sections"))
def legacy_continuous(
    a: ArrayLike,
    C: ArrayLike,
    L: ArrayLike,
    U: ArrayLike,
    *,
    estimator: str = "rloo",
    mask: ArrayLike | None = None,
    sections: int | None = None,
) -> tuple[jax.Array, jax.Array]:
    """KKT solution of the continuous relaxation of problem (5).

    Theorems 5.1 (Dr. GRPO) and 5.2 (RLOO): ``n_q* = n_q*(lam*)`` with
    ``sum_q n_q*(lam*) = C``.

    Args:
      a: ``a_q >= 0`` (any common scale; ``4 p (1 - p)`` in the paper).
        Values below ``eps(dtype)**2 * max(a)`` count as 0 (so do subnormal
        values on accelerators that flush them to zero).
      C, L, U: budget and bounds (may be traced). Assumes
        ``B*L <= C <= B*U``; :func:`solve` checks it.
      estimator: ``"rloo"`` or ``"drgrpo"`` (static).
      mask: optional ``bool[B]``; ``False`` marks padding, which gets 0.
      sections: grid points per search round (static): 2 is bisection; None
        picks 2 on CPU and 64 on accelerators. The answer does not depend on
        it beyond rounding.

    Returns:
      ``(n_continuous, lam)``.
    """
    a = jnp.asarray(a)
    dt = a.dtype
    valid = jnp.ones(a.shape, bool) if mask is None else jnp.asarray(mask, bool)
    a, L, U = apply_mask(a, L, U, mask)
    # The solution depends on a only up to scale: normalise so that the
    # bracket below cannot underflow, and treat a_q < eps^2 max(a) as 0.
    scale = jnp.max(a)
    scale = jnp.where(scale > 0, scale, 1)
    a = a / scale
    a = jnp.where(a >= jnp.finfo(dt).eps ** 2, a, 0)
    Lf = jnp.asarray(L, dt)
    Uf = jnp.asarray(U, dt)
    Cf = jnp.asarray(C, dt)
    pos = a > 0
    big = jnp.finfo(dt).max
    g_L = marginal(Lf, estimator)
    g_U = marginal(Uf, estimator)
    # Bracket: at lam_hi every prompt sits at L, at lam_lo every a>0 prompt at U.
    lam_hi = jnp.max(jnp.where(pos, a * g_L, 0))
    lam_lo = jnp.min(jnp.where(pos, a * g_U, big))
    any_pos = jnp.any(pos)
    lam_hi = jnp.where(any_pos, lam_hi, 1)
    lam_lo = jnp.where(any_pos, lam_lo, 1)
    lo = jnp.log(lam_lo)
    hi = jnp.log(lam_hi)

    sqrt_a = jnp.sqrt(jnp.where(pos, a, 1))

    def S(lam):
        return jnp.sum(_n_of_lam(a, lam, Lf, Uf, estimator, sqrt_a))

    def S_at_least_C(t):  # S is non-increasing in lam = exp(t)
        lam = jnp.exp(t)[:, None]
        n = _n_of_lam(a[None, :], lam, as_row(Lf), as_row(Uf), estimator,
                      sqrt_a[None, :])
        return jnp.sum(n, axis=1) >= Cf

    if sections is None:
        sections = default_sections()
    # Invariant: S(exp(lo)) >= C >= S(exp(hi)).
    lo, hi = bracket_search(S_at_least_C, lo, hi, dt, sections)
    lam = jnp.exp(0.5 * (lo + hi))
    if estimator == "rloo":
        # Closed-form polish on the active set at lam: interior prompts have
        # n = 1 + sqrt(a / lam), so sqrt(1/lam) = (C - fixed - |I|) / sum sqrt(a_I).
        n_mid = _n_of_lam(a, lam, Lf, Uf, estimator, sqrt_a)
        interior = pos & (n_mid > Lf) & (n_mid < Uf)
        fixed = jnp.sum(jnp.where(interior, 0, n_mid))
        k = jnp.sum(interior).astype(dt)
        sa = jnp.sum(jnp.where(interior, sqrt_a, 0))
        inv_sqrt = (Cf - fixed - k) / jnp.where(sa > 0, sa, 1)
        lam_polish = 1 / (inv_sqrt * inv_sqrt)
        ok = (sa > 0) & (inv_sqrt > 0) & (jnp.log(lam_polish) >= lo - 1e-3) & (
            jnp.log(lam_polish) <= hi + 1e-3
        )
        lam = jnp.where(ok, lam_polish, lam)
    n = _n_of_lam(a, lam, Lf, Uf, estimator, sqrt_a)
    # Excess budget that prompts with a > 0 cannot absorb (all at U): spread
    # evenly over a == 0 prompts; the multiplier is then 0.
    s_lo = S(lam_lo)
    zero = valid & ~pos
    n_zero = jnp.sum(zero).astype(dt)
    excess = Cf - s_lo
    use_excess = (excess > 0) & (n_zero > 0)
    n_even = Lf + excess / jnp.maximum(n_zero, 1)
    n = jnp.where(use_excess, jnp.where(zero, n_even, jnp.where(pos, Uf, n)), n)
    lam = jnp.where(use_excess, 0, lam)
    lam = jnp.where(any_pos, lam, 0)
    return n, lam * scale


def _gain_add(a, n, U, estimator):
    """``f(n) - f(n + 1)`` (``-inf`` where ``n >= U``)."""
    up = objective_terms(a, n, estimator) - objective_terms(a, n + 1, estimator)
    return jnp.where(n < U, up, -jnp.inf)


def _loss_remove(a, n, L, estimator):
    """``f(n - 1) - f(n)`` (``+inf`` where ``n <= L``)."""
    down = objective_terms(a, n - 1, estimator) - objective_terms(a, n, estimator)
    return jnp.where(n > L, down, jnp.inf)


def _step_units() -> int:
    """Units moved per step of the budget fix (a static ``top_k`` width).

    ``top_k`` costs grow with ``k`` on CPU, where a few cheap steps are better;
    on an accelerator every loop step is a host round trip, so take more units
    per step (the start point is usually within a few dozen units).
    """
    return 32 if jax.default_backend() == "cpu" else 256


def fix_budget(n, C, L, U, add_score, remove_score):
    """Move ``n`` to ``sum(n) == C``, up to :func:`_step_units` units per step.

    Each step gives one unit to each of the ``min(R, k)`` prompts with the
    largest ``add_score(n)`` among those below ``U`` (or takes one from the
    smallest ``remove_score(n)`` above ``L`` when ``R < 0``); ties go to the
    lowest index (the order of ``lax.top_k``). ``lax.top_k`` with a small
    static ``k`` avoids a full sort, which is slow on CPU.
    """
    B = n.shape[0]
    k = min(B, _step_units())
    ranks = jnp.arange(k)

    def cond(state):
        n, it = state
        return (jnp.sum(n) != C) & (it < 2 * B + 2)

    def body(state):
        n, it = state
        R = C - jnp.sum(n)
        score = jnp.where(
            R > 0,
            jnp.where(n < U, add_score(n), -jnp.inf),
            jnp.where(n > L, -remove_score(n), -jnp.inf),
        )
        top, idx = jax.lax.top_k(score, k)
        use = (ranks < jnp.abs(R)) & (top > -jnp.inf)
        step = jnp.where(use, jnp.sign(R), 0).astype(n.dtype)
        return n + jnp.zeros_like(n).at[idx].add(step), it + 1

    n, _ = jax.lax.while_loop(cond, body, (n, jnp.asarray(0)))
    return n


def _exchange(n, a, L, U, estimator):
    """Single-unit exchanges while one strictly lowers the objective."""
    tol = 16 * jnp.finfo(a.dtype).eps

    def best(n):
        g = _gain_add(a, n, U, estimator)
        r = _loss_remove(a, n, L, estimator)
        i, j = jnp.argmax(g), jnp.argmin(r)
        gain = g[i] - r[j]
        ok = (gain > tol * jnp.maximum(jnp.abs(g[i]), jnp.abs(r[j]))) & (i != j)
        return ok, i, j

    def cond(state):
        return state[1] & (state[2] < 4 * n.shape[0] + 4)

    def body(state):
        n, _, it = state
        _, i, j = best(n)
        n = n.at[i].add(1).at[j].add(-1)
        return n, best(n)[0], it + 1

    n, _, _ = jax.lax.while_loop(cond, body, (n, best(n)[0], jnp.asarray(0)))
    return n


@functools.partial(jax.jit, static_argnames=("estimator",))
def legacy_round(
    n_continuous: ArrayLike,
    a: ArrayLike,
    C: ArrayLike,
    L: ArrayLike,
    U: ArrayLike,
    *,
    estimator: str = "rloo",
    mask: ArrayLike | None = None,
) -> jax.Array:
    """Integer rounding (Algorithm 2), ending at an exact integer optimum.

    Start from the continuous solution rounded *at the threshold*: prompt
    ``q`` keeps the unit ``floor(x_q) -> floor(x_q) + 1`` when its decrease
    ``f_q(n) - f_q(n + 1)`` is at least its marginal ``-f_q'(x_q)`` (``= lam*``
    for interior prompts), which is Algorithm 2's floor-then-greedy in one
    step up to a few units near the threshold. Then, one unit at a time:
    while ``sum(n) < C`` add a unit where ``f_q(n_q) - f_q(n_q + 1)`` is largest
    (Alg. 2, lines 6-11); while ``sum(n) > C`` remove where ``f_r(n_r - 1) -
    f_r(n_r)`` is smallest; then exchange a unit while ``max_q [f_q(n_q) -
    f_q(n_q + 1)] > min_r [f_r(n_r - 1) - f_r(n_r)]``. For separable convex
    ``f_q`` and one sum constraint, the absence of an improving exchange is
    necessary and sufficient for optimality of the integer problem. Ties go
    to the lowest index (``argmax``/``argmin`` return the first).

    Returns:
      ``int32[B]`` with ``sum == C`` and ``L <= n <= U`` (for feasible input);
      0 where ``mask`` is False.
    """
    a = jnp.asarray(a)
    a, L, U = apply_mask(a, L, U, mask)
    x = jnp.asarray(n_continuous, a.dtype)
    L = jnp.asarray(L, jnp.int32)
    U = jnp.asarray(U, jnp.int32)
    C = jnp.asarray(C, jnp.int32)
    n = jnp.clip(jnp.floor(x).astype(jnp.int32), L, U)
    marginal_at_x = a * marginal(jnp.maximum(x, L.astype(a.dtype)), estimator)
    take = (a > 0) & (_gain_add(a, n, U, estimator) >= marginal_at_x)
    n = n + take.astype(jnp.int32)
    n = fix_budget(
        n, C, L, U,
        lambda m: _gain_add(a, m, U, estimator),
        lambda m: _loss_remove(a, m, L, estimator),
    )
    return _exchange(n, a, L, U, estimator)


@functools.partial(jax.jit, static_argnames=("estimator",))
def legacy_solve(p, C, L, U, *, estimator="rloo", mask=None):
    """The previous ``solve_allocation``: integers ``n`` (0 when status != 0)."""
    valid = jnp.ones(p.shape, bool) if mask is None else jnp.asarray(mask, bool)
    status = traced_status(p, valid, C, L, U, estimator)
    ok = status == AllocationStatus.OK
    p_safe = jnp.where(ok & valid, p, 0.5)
    a = jnp.where(valid, 4 * p_safe * (1 - p_safe), 0)
    B = jnp.sum(valid).astype(jnp.int32)
    lo = MIN_LOWER[estimator]
    Ls = jnp.where(ok, jnp.asarray(L).astype(jnp.int32), lo)
    Us = jnp.where(ok, jnp.asarray(U).astype(jnp.int32), lo)
    Cs = jnp.where(ok, jnp.asarray(C).astype(jnp.int32), B * lo)
    n_c, _ = legacy_continuous(a, Cs, Ls, Us, estimator=estimator, mask=valid)
    n = legacy_round(n_c, a, Cs, Ls, Us, estimator=estimator, mask=valid)
    return jnp.where(ok, n, 0)
