r"""Integer allocations from the threshold solver: exact VIP and largest remainder.

* :func:`round_allocation`: the exact integer optimum of problem (5) of
  Nguyen et al. (2025), "Adaptive Rollout Allocation for Online Reinforcement
  Learning with Verifiable Rewards" (Algorithm 2's floor-then-greedy, made
  exact), computed by :func:`~vipcore._src.allocation.threshold.solve_integer`.
* :func:`round_to_targets`: integers summing to ``C`` within the bounds
  that are nearest to real targets ``x`` (largest remainder), for the
  heuristic baselines.

Both are a threshold on marginal gains plus one prefix sum: no
data-dependent loop.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from vipcore._src.allocation.continuous import apply_mask, as_row
from vipcore._src.allocation.search import bracket_search
from vipcore._src.allocation.threshold import (
    default_sections,
    share_ties,
    solve_integer,
    sum_at_least,
)

__all__ = ["round_allocation", "round_to_targets"]


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
    r"""The exact integer optimum of problem (5) (Algorithm 2, made exact).

    Algorithm 2 floors the continuous solution and hands the remaining units
    one at a time to the largest decrease ``f_q(n) - f_q(n + 1)``. For
    separable convex ``f_q`` the result is the set of the ``K = C - B L``
    largest marginal gains above ``L``, whatever the starting point; it is
    computed directly by a threshold on the gains
    (:mod:`~vipcore._src.allocation.threshold`), so ``n_continuous`` is
    accepted for compatibility and not needed. Gains within a relative
    ``TIE_RTOL`` of the threshold are ties, which go to the lowest index.

    .. math::

        \min_n \sum_q a_q c(n_q) \;\text{s.t.}\; \sum_q n_q = C,\;
        L \le n_q \le U .

    Returns:
      ``int32[B]`` with ``sum == C`` and ``L <= n <= U`` (for feasible input);
      0 where ``mask`` is False.
    """
    del n_continuous
    a = jnp.asarray(a)
    valid = jnp.ones(a.shape, bool) if mask is None else jnp.asarray(mask, bool)
    a, L, U = apply_mask(a, L, U, valid)
    L = jnp.asarray(L, jnp.int32)
    U = jnp.asarray(U, jnp.int32)
    K = jnp.asarray(C, jnp.int32) - jnp.sum(jnp.broadcast_to(L, a.shape),
                                            dtype=jnp.int32)
    return solve_integer(a, valid, K, L, U, estimator)


def round_to_targets(x, C, L, U, valid, *, sections: int | None = None,
                     unroll: bool | None = None):
    r"""Integers nearest to ``x``: ``min sum_q (n_q - x_q)^2`` over the bounds.

    The marginal gain of unit ``n -> n + 1`` is ``2 (x_q - n) - 1``, so the
    optimum gives the units with the largest ``x_q - n - 1/2``: the floors of
    ``x`` and then the largest remainders (exactly equal remainders go to
    the lowest index), whatever the sum of ``x``. A threshold ``theta`` on
    ``x_q - n - 1/2`` is found by a fixed-length search; each prompt has
    ``clip(floor(x_q - 1/2 - theta) - L + 1, 0, U - L)`` units above it.

    .. math::

        \min_n \sum_q (n_q - x_q)^2 \;\text{s.t.}\; \sum_q n_q = C,\;
        L \le n_q \le U .
    """
    dt = x.dtype
    L = jnp.broadcast_to(jnp.asarray(L, jnp.int32), x.shape)
    U = jnp.broadcast_to(jnp.asarray(U, jnp.int32), x.shape)
    K = jnp.asarray(C, jnp.int32) - jnp.sum(L, dtype=jnp.int32)
    xh = as_row(x - 0.5)

    def counts(theta):
        n_max = jnp.floor(xh - theta)
        c = jnp.clip(n_max - as_row(L).astype(dt) + 1, 0,
                     as_row(U - L).astype(dt))
        return c.astype(jnp.int32)

    def enough(thetas):  # true for small theta (a prefix)
        return sum_at_least(counts(thetas[:, None]), K, axis=1)

    span = jnp.max(jnp.where(valid, U - L, 0)).astype(dt) + 1
    lo, hi = bracket_search(enough, -span, span, dt,
                            sections or default_sections(), unroll)
    above = counts(hi[None, None])[0]
    band = counts(lo[None, None])[0] - above
    n = share_ties(above, band, K - jnp.sum(above, dtype=jnp.int32),
                   valid & False, 0, 1)
    return jnp.where(valid, L + jnp.where(K > 0, n, 0), 0)
