"""Variance-minimising rollout allocation (SPEC §2; paper §5.2, Thms 5.1/5.2, App. D).

Problem (5): given success probabilities ``p_q`` for a batch of ``B`` prompts,

.. math::

    \\min_{n} \\sum_q f_q(n_q) \\quad\\text{s.t.}\\quad \\sum_q n_q = C,\\;
    n_q \\in \\{L, \\dots, U\\},

with ``a_q = 4 p_q (1 - p_q)`` (±1 rewards, ``sigma_Z^2 = 1``) and

* RLOO (Prop 4.3): ``f_q(n) = a_q / (n - 1)``, convex for ``n > 1`` (``L >= 2``);
* Dr. GRPO (Prop 4.2): ``f_q(n) = a_q (n - 1) / n^2``, convex for ``n >= 3``
  (``L >= 3``).

(App. A.2 writes the RLOO objective as ``a_q / n_q``: a typo, see SPEC §2.)

The solver has two pure, jittable stages:

1. :func:`solve_continuous` — the KKT solution of the relaxation. For a
   multiplier ``lam``, ``n_q(lam) = clip(root_q(lam), L, U)`` where ``root_q``
   solves ``-f_q'(n) = lam`` in closed form: ``1 + sqrt(a_q / lam)`` (RLOO), the
   largest root of the cubic ``lam n^3 - a_q n + 2 a_q = 0`` (Dr. GRPO,
   trigonometric form). ``S(lam) = sum_q n_q(lam)`` is non-increasing, and
   ``lam*`` with ``S(lam*) = C`` is found by a fixed number of unrolled
   bisection steps in ``log lam`` (no data-dependent loop, so one fused
   program on accelerators), then polished in closed form for RLOO.
2. :func:`round_allocation` — Algorithm 2: floor, then hand out the remaining
   units to the largest decreases ``f_q(n) - f_q(n + 1)``. Because every
   ``f_q`` is convex and the constraint is a single sum, an allocation where no
   single exchange of one rollout between two prompts lowers the objective is
   a global optimum of the *integer* problem; the rounding ends with an
   exchange pass that enforces exactly that condition (it makes no move in
   practice, and is what makes the result provably optimal rather than
   near-optimal).

Degenerate inputs: prompts with ``p in {0, 1}`` (``a_q = 0``) stay at ``L``
unless the budget cannot be spent otherwise, in which case the excess is spread
over them as evenly as possible (lowest index first for the remainder); if every
``a_q = 0`` the result is the most even allocation. Ties in the rounding go to
the lowest index. Everything is deterministic.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from vipcore._src._checks import (
    as_float_array,
    check_choice,
    check_int,
    check_probabilities,
)
from vipcore._src.variance import ESTIMATORS, variance_factor

__all__ = [
    "Allocation",
    "STATUS_OK",
    "STATUS_INFEASIBLE",
    "STATUS_BAD_BOUNDS",
    "STATUS_BAD_P",
    "MIN_LOWER",
    "solve",
    "solve_continuous",
    "round_allocation",
    "allocate",
    "allocate_uniform",
    "allocate_inverse_accuracy",
    "allocate_inverse_variance",
    "allocation_objective",
    "check_allocation_args",
]

#: ``Allocation.status`` codes.
STATUS_OK = 0
#: ``C < B*L`` or ``C > B*U``.
STATUS_INFEASIBLE = 1
#: ``L > U`` or ``L`` below the estimator's minimum (:data:`MIN_LOWER`).
STATUS_BAD_BOUNDS = 2
#: some ``p_hat`` is NaN or outside [0, 1].
STATUS_BAD_P = 3

#: Smallest lower bound for which each objective is convex.
MIN_LOWER = {"rloo": 2, "drgrpo": 3}


class Allocation(NamedTuple):
    """Result of :func:`solve` (a pytree: works under ``jit`` and ``vmap``).

    Attributes:
      n: ``int32[B]`` integer allocation, ``sum(n) == C``, ``L <= n <= U``.
        All zeros when ``status != 0``.
      n_continuous: ``float[B]`` KKT solution of the continuous relaxation.
      lam: the Lagrange multiplier ``lam*`` of the budget constraint (``0``
        when the budget exceeds what the prompts with ``a_q > 0`` can use at
        ``U``; NaN when ``status != 0``).
      objective: ``sum_q f_q(n_q)`` at the integer solution, with
        ``a_q = 4 p_q (1 - p_q)`` and ``sigma_Z^2 = 1``.
      status: ``int32`` scalar, one of the ``STATUS_*`` codes (0 = ok).
    """

    n: jax.Array
    n_continuous: jax.Array
    lam: jax.Array
    objective: jax.Array
    status: jax.Array


def _default_sections() -> int:
    """Grid points per search round: 2 (bisection) on CPU, 16 elsewhere.

    On CPU each round costs its arithmetic, so bisection is cheapest. On an
    accelerator each round is a kernel launch and the arithmetic is nearly
    free, so a 16-section search cuts 32 rounds to 8 (float32). Measured on an
    H100 (``benchmarks/results/allocate_gpu_h100.json``): 16 sections gave the
    best ``vmap`` throughput (64 was slower, 256 compiled for minutes).
    """
    return 2 if jax.default_backend() == "cpu" else 16


def _row(x):
    """A scalar or ``(B,)`` bound as a ``(1, B)`` row (no implicit rank promotion)."""
    return jnp.reshape(x, (1, -1))


def _bracket_search(pred, lo, hi, dtype, sections: int):
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


def _marginal(n, estimator):
    """``-f'(n) / a``: the marginal decrease of the objective per unit ``a``."""
    if estimator == "rloo":
        return 1 / ((n - 1) * (n - 1))
    return (n - 2) / (n * n * n)


def _n_of_lam(a, lam, L, U, estimator, sqrt_a=None):
    """Continuous KKT allocation ``clip(root(lam), L, U)`` for ``lam > 0``."""
    safe_a = jnp.where(a > 0, a, 1)
    if estimator == "rloo":
        # sqrt(a / lam) = sqrt(a) * lam**-0.5: one scalar power per call.
        sa = jnp.sqrt(safe_a) if sqrt_a is None else sqrt_a
        root = 1 + sa * jax.lax.rsqrt(lam)
    else:
        # Largest root of lam n^3 - a n + 2a = 0, valid when lam < a/27.
        ratio = jnp.clip(3 * jnp.sqrt(3 * lam / safe_a), 0, 1)
        root = 2 * jnp.sqrt(safe_a / (3 * lam)) * jnp.cos(jnp.arccos(-ratio) / 3)
        # Outside the cubic's range the clip below decides: lam >= a g(L)
        # means the marginal at L is already below lam, so n = L.
        root = jnp.where(lam >= safe_a * _marginal(L, estimator), L, root)
    n = jnp.clip(root, L, U)
    return jnp.where(a > 0, n, L)


def _objective_terms(a, n, estimator):
    nf = n.astype(a.dtype)
    pos = a > 0
    safe_n = jnp.where(pos, nf, 3)
    return jnp.where(pos, a * variance_factor(safe_n, estimator).astype(a.dtype), 0)


def _apply_mask(a, L, U, mask):
    """Padded prompts (``mask == False``) get ``a = 0`` and bounds ``[0, 0]``."""
    if mask is None:
        return a, L, U
    mask = jnp.asarray(mask, bool)
    return (
        jnp.where(mask, a, 0),
        jnp.where(mask, L, 0),
        jnp.where(mask, U, 0),
    )


@functools.partial(jax.jit, static_argnames=("estimator", "sections"))
def solve_continuous(
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
    a, L, U = _apply_mask(a, L, U, mask)
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
    g_L = _marginal(Lf, estimator)
    g_U = _marginal(Uf, estimator)
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
        n = _n_of_lam(a[None, :], lam, _row(Lf), _row(Uf), estimator, sqrt_a[None, :])
        return jnp.sum(n, axis=1) >= Cf

    if sections is None:
        sections = _default_sections()
    # Invariant: S(exp(lo)) >= C >= S(exp(hi)).
    lo, hi = _bracket_search(S_at_least_C, lo, hi, dt, sections)
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
    up = _objective_terms(a, n, estimator) - _objective_terms(a, n + 1, estimator)
    return jnp.where(n < U, up, -jnp.inf)


def _loss_remove(a, n, L, estimator):
    """``f(n - 1) - f(n)`` (``+inf`` where ``n <= L``)."""
    down = _objective_terms(a, n - 1, estimator) - _objective_terms(a, n, estimator)
    return jnp.where(n > L, down, jnp.inf)


def _step_units() -> int:
    """Units moved per step of the budget fix (a static ``top_k`` width).

    ``top_k`` costs grow with ``k`` on CPU, where a few cheap steps are better;
    on an accelerator every loop step is a host round trip, so take more units
    per step (the start point is usually within a few dozen units).
    """
    return 32 if jax.default_backend() == "cpu" else 256


def _fix_budget(n, C, L, U, add_score, remove_score):
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
def round_allocation(
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
    a, L, U = _apply_mask(a, L, U, mask)
    x = jnp.asarray(n_continuous, a.dtype)
    L = jnp.asarray(L, jnp.int32)
    U = jnp.asarray(U, jnp.int32)
    C = jnp.asarray(C, jnp.int32)
    n = jnp.clip(jnp.floor(x).astype(jnp.int32), L, U)
    marginal_at_x = a * _marginal(jnp.maximum(x, L.astype(a.dtype)), estimator)
    take = (a > 0) & (_gain_add(a, n, U, estimator) >= marginal_at_x)
    n = n + take.astype(jnp.int32)
    n = _fix_budget(
        n, C, L, U,
        lambda m: _gain_add(a, m, U, estimator),
        lambda m: _loss_remove(a, m, L, estimator),
    )
    return _exchange(n, a, L, U, estimator)


def _status(p, valid, C, L, U, estimator):
    B = jnp.sum(valid)
    C = jnp.asarray(C)
    L = jnp.asarray(L)
    U = jnp.asarray(U)
    bad_p = ~jnp.all(((p >= 0) & (p <= 1)) | ~valid)
    bad_bounds = (L > U) | (L < MIN_LOWER[estimator])
    infeasible = (C < B * L) | (C > B * U)
    return jnp.where(
        bad_p, STATUS_BAD_P,
        jnp.where(bad_bounds, STATUS_BAD_BOUNDS,
                  jnp.where(infeasible, STATUS_INFEASIBLE, STATUS_OK)),
    ).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("estimator", "sections"))
def solve(
    p_hat: ArrayLike,
    C: ArrayLike,
    L: ArrayLike,
    U: ArrayLike,
    *,
    estimator: str = "rloo",
    mask: ArrayLike | None = None,
    sections: int | None = None,
) -> Allocation:
    """Exact VIP allocation as a pure jitted function (``vmap``-able).

    Solves problem (5) with ``a_q = 4 p_q (1 - p_q)``: the continuous KKT
    solution (Theorems 5.1/5.2) and its exact integer rounding (Algorithm 2 +
    exchange pass). Value problems (infeasible budget, bad bounds, p outside
    [0, 1]) do not raise here: they set ``status`` (see ``STATUS_*``), so that
    batched callers get a code per batch. Use :func:`allocate` for the eager,
    validating API.

    Args:
      p_hat: ``float[B]`` success probabilities; the dtype sets the precision.
      C: total budget; ``L``, ``U``: per-prompt bounds (Python or traced ints).
      estimator: ``"rloo"`` or ``"drgrpo"`` (static).
      mask: optional ``bool[B]`` marking real prompts in a padded batch
        (ragged batches under ``vmap``, or fixed shapes to avoid recompiling);
        padded prompts get ``n = 0`` and do not count in ``B``.
      sections: search width (static), see :func:`solve_continuous`.

    >>> import jax.numpy as jnp
    >>> res = solve(jnp.array([0.5, 0.9, 0.99, 0.0]), 32, 2, 16)
    >>> res.n.tolist(), int(res.status)
    ([16, 10, 4, 2], 0)
    """
    check_choice("estimator", estimator, ESTIMATORS)
    p = jnp.asarray(p_hat)
    if not jnp.issubdtype(p.dtype, jnp.floating):
        p = p.astype(jnp.result_type(float))
    valid = jnp.ones(p.shape, bool) if mask is None else jnp.asarray(mask, bool)
    status = _status(p, valid, C, L, U, estimator)
    ok = status == STATUS_OK
    p_safe = jnp.where(ok & valid, p, 0.5)
    a = 4 * p_safe * (1 - p_safe)
    B = jnp.sum(valid).astype(jnp.int32)
    # Safe stand-ins keep the traced computation finite when status != 0.
    Ls = jnp.where(ok, jnp.asarray(L, jnp.int32), MIN_LOWER[estimator])
    Us = jnp.where(ok, jnp.asarray(U, jnp.int32), MIN_LOWER[estimator])
    Cs = jnp.where(ok, jnp.asarray(C, jnp.int32), B * MIN_LOWER[estimator])
    n_c, lam = solve_continuous(
        a, Cs, Ls, Us, estimator=estimator, mask=valid, sections=sections
    )
    n = round_allocation(n_c, a, Cs, Ls, Us, estimator=estimator, mask=valid)
    obj = jnp.sum(_objective_terms(a, n, estimator))
    nan = jnp.asarray(jnp.nan, a.dtype)
    return Allocation(
        n=jnp.where(ok, n, 0),
        n_continuous=jnp.where(ok & valid, n_c, jnp.where(valid, nan, 0)),
        lam=jnp.where(ok, lam, nan),
        objective=jnp.where(ok, obj, nan),
        status=status,
    )


def check_allocation_args(p_hat, C, L, U, estimator: str | None):
    """Validate eager arguments; return ``(p as jax.Array, C, L, U)``.

    Raises ``ValueError`` naming the argument and the valid range.
    """
    if estimator is not None:
        check_choice("estimator", estimator, ESTIMATORS)
    p = as_float_array("p_hat", p_hat)
    if p.ndim != 1:
        raise ValueError(f"p_hat must be one-dimensional (B,); got shape {p.shape}")
    B = p.shape[0]
    if B == 0:
        raise ValueError("p_hat is empty: the batch needs at least one prompt")
    check_probabilities("p_hat", p)
    C = check_int("C", C)
    L = check_int("L", L)
    U = check_int("U", U)
    if estimator is not None and L < MIN_LOWER[estimator]:
        raise ValueError(
            f"L must be >= {MIN_LOWER[estimator]} for estimator {estimator!r} "
            f"(its objective is convex only there); got L={L}"
        )
    if L < 1:
        raise ValueError(f"L must be >= 1; got L={L}")
    if L > U:
        raise ValueError(f"L must be <= U; got L={L} > U={U}")
    if not B * L <= C <= B * U:
        raise ValueError(
            f"C={C} is infeasible for B={B} prompts with L={L}, U={U}: "
            f"C must lie in [B*L, B*U] = [{B * L}, {B * U}]"
        )
    if C > np.iinfo(np.int32).max:
        raise ValueError(f"C must be < 2**31; got {C}")
    return p, C, L, U


def _bucket(B: int) -> int:
    """Padded batch size: the next power of two, at least 8."""
    return max(8, 1 << (B - 1).bit_length())


def _pad_to_bucket(p: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Pad ``p`` to :func:`_bucket` size so that batch sizes share compilations."""
    B = p.shape[0]
    size = _bucket(B)
    mask = jnp.arange(size) < B
    return jnp.pad(p, (0, size - B), constant_values=0.5), mask


def allocate(
    p_hat: ArrayLike,
    C: int,
    L: int,
    U: int,
    estimator: str = "rloo",
) -> np.ndarray:
    """How many rollouts each prompt gets: the exact VIP allocation.

    Minimises the predicted total gradient variance ``sum_q f_q(n_q)`` of
    problem (5) over integers with ``sum_q n_q = C`` and ``L <= n_q <= U``
    (Theorems 5.1/5.2 + exact rounding; see :mod:`vipcore._src.allocation`).

    Args:
      p_hat: predicted success probabilities in [0, 1], shape ``(B,)``; a list,
        NumPy or JAX array, or anything with ``__array__`` (a CPU torch tensor).
        Its floating dtype sets the solver precision.
      C: total rollout budget, ``B*L <= C <= B*U``.
      L, U: per-prompt bounds; ``L >= 2`` for ``"rloo"``, ``L >= 3`` for
        ``"drgrpo"``.
      estimator: ``"rloo"`` (Prop 4.3) or ``"drgrpo"`` (Prop 4.2).

    Returns:
      ``np.ndarray`` of ``int64``, shape ``(B,)``, summing to ``C``.

    Batches are padded internally to the next power of two (masked), so
    varying batch sizes reuse a handful of compilations.

    Raises:
      ValueError: naming the argument and its valid range; nothing is clipped.

    >>> allocate([0.5, 0.9, 0.99, 0.0], C=32, L=2, U=16).tolist()
    [16, 10, 4, 2]
    """
    p, C, L, U = check_allocation_args(p_hat, C, L, U, estimator)
    pp, mask = _pad_to_bucket(p)
    res = solve(pp, C, L, U, estimator=estimator, mask=mask)
    return np.asarray(res.n)[: p.shape[0]].astype(np.int64)


def allocation_objective(
    n: ArrayLike, p_hat: ArrayLike, estimator: str = "rloo", sigma_z2: float = 1.0
) -> jax.Array:
    """Predicted total gradient variance ``sum_q c(n_q) sigma_Z^2 4 p_q (1-p_q)``.

    The objective of problem (5), i.e. the sum of Props 4.2/4.3 over the batch.
    """
    check_choice("estimator", estimator, ESTIMATORS)
    p = as_float_array("p_hat", p_hat)
    a = 4 * p * (1 - p) * sigma_z2
    return jnp.sum(_objective_terms(a, jnp.asarray(n), estimator))


# --------------------------------------------------------------------------
# Heuristic baselines (App. C.1): weights scaled to the budget inside [L, U]
# by water-filling, then largest-remainder rounding to integers summing to C.


@jax.jit
def _scale_to_budget(w, C, L, U, mask):
    """``clip(s w, L, U)`` with the scale ``s`` such that the sum is ``C``."""
    dt = w.dtype
    Cf = jnp.asarray(C, dt)
    lo = jnp.log(jnp.asarray(L, dt) / jnp.max(jnp.where(mask, w, 0)))  # all at L
    hi = jnp.log(jnp.asarray(U, dt) / jnp.min(jnp.where(mask, w, jnp.inf)))  # at U
    _, L, U = _apply_mask(w, L, U, mask)
    Lf, Uf = jnp.asarray(L, dt), jnp.asarray(U, dt)

    def S_at_most_C(t):  # S is non-decreasing in the scale exp(t)
        x = jnp.clip(jnp.exp(t)[:, None] * w[None, :], _row(Lf), _row(Uf))
        return jnp.sum(x, axis=1) <= Cf

    lo, hi = _bracket_search(S_at_most_C, lo, hi, dt, _default_sections())
    x = jnp.clip(jnp.exp(0.5 * (lo + hi)) * w, Lf, Uf)
    n = jnp.clip(jnp.floor(x).astype(jnp.int32), L, U)
    return _fix_budget(
        n, jnp.asarray(C, jnp.int32), jnp.asarray(L, jnp.int32),
        jnp.asarray(U, jnp.int32),
        lambda m: x - m,           # furthest below target first
        lambda m: x - m + 1,       # furthest above target first
    )


def _heuristic(p_hat, C, L, U, weights_fn):
    p, C, L, U = check_allocation_args(p_hat, C, L, U, None)
    pp, mask = _pad_to_bucket(p)
    n = _scale_to_budget(weights_fn(pp), C, L, U, mask)
    return np.asarray(n)[: p.shape[0]].astype(np.int64)


def allocate_uniform(p_hat: ArrayLike, C: int, L: int, U: int) -> np.ndarray:
    """Uniform baseline: ``C // B`` each, the remainder to the lowest indices."""
    return _heuristic(p_hat, C, L, U, jnp.ones_like)


def allocate_inverse_accuracy(
    p_hat: ArrayLike, C: int, L: int, U: int, *, eps: float = 1e-2
) -> np.ndarray:
    """Inverse-accuracy baseline (App. C.1): ``w_q ∝ 1 - acc_q + eps``.

    ``acc_q = p_hat_q``; weights are scaled to the budget within ``[L, U]``
    and rounded by largest remainder to integers summing to ``C``.
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0; got {eps}")
    return _heuristic(p_hat, C, L, U, lambda p: 1 - p + eps)


def allocate_inverse_variance(
    p_hat: ArrayLike, C: int, L: int, U: int, *, eps: float = 1e-2
) -> np.ndarray:
    """Inverse-variance baseline (App. C.1): ``w_q ∝ 1 / (sigma_q^2 + eps)``.

    ``sigma_q^2 = p_q (1 - p_q)`` (the 0/1 reward variance); scaled and rounded
    as :func:`allocate_inverse_accuracy`.
    """
    if not eps > 0:
        raise ValueError(f"eps must be > 0; got {eps}")
    return _heuristic(p_hat, C, L, U, lambda p: 1 / (p * (1 - p) + eps))
