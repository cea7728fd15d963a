r"""Integer rounding of the continuous allocation (Algorithm 2), made exact.

Floor the continuous solution, hand the remaining units to the largest
decreases ``f_q(n) - f_q(n + 1)``, then exchange single units while one
lowers the objective. For separable convex ``f_q`` and one sum constraint,
the absence of an improving exchange is necessary and sufficient for
optimality of the integer problem (5) of Nguyen et al. (2025), "Adaptive
Rollout Allocation for Online Reinforcement Learning with Verifiable Rewards".
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from vipcore._src.allocation.continuous import apply_mask
from vipcore._src.allocation.objective import marginal, objective_terms

__all__ = ["fix_budget", "round_allocation"]


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
