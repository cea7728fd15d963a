r"""The exact VIP allocation: problem (5) solved over the integers.

Given success probabilities ``p_q`` for a batch of ``B`` prompts, minimise the
predicted total gradient variance

.. math::

    \min_{n} \sum_q a_q\, c(n_q) \quad\text{s.t.}\quad \sum_q n_q = C,\;
    n_q \in \{L, \dots, U\}, \qquad a_q = 4 p_q (1 - p_q),

with ``c(n) = 1/(n - 1)`` (RLOO, Prop 4.3; convex for ``n > 1``, so ``L >= 2``)
or ``c(n) = (n - 1)/n^2`` (Dr. GRPO, Prop 4.2; convex for ``n >= 3``). This is
problem (5) of Nguyen et al. (2025), "Adaptive Rollout Allocation for Online
Reinforcement Learning with Verifiable Rewards" (App. A.2 restates the RLOO
objective as ``a_q / n_q``; that is a typo, the objective is ``a_q/(n_q - 1)``
as in their eq. (8)).

Two pure, jittable stages: :func:`~vipcore._src.allocation.continuous.solve_continuous`
(the KKT solution, Theorems 5.1/5.2) and
:func:`~vipcore._src.allocation.rounding.round_allocation` (Algorithm 2 with an
exchange pass that makes the integer result exactly optimal).

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

from vipcore._src._checks import check_choice
from vipcore._src._padding import pad_to_bucket
from vipcore._src.allocation.continuous import solve_continuous
from vipcore._src.allocation.objective import objective_terms
from vipcore._src.allocation.rounding import round_allocation
from vipcore._src.allocation.status import (
    MIN_LOWER,
    AllocationStatus,
    check_allocation_args,
    traced_status,
)
from vipcore._src.variance import ESTIMATORS

__all__ = ["Allocation", "solve", "allocate"]


class Allocation(NamedTuple):
    """Result of :func:`solve` (a pytree: works under ``jit`` and ``vmap``).

    Attributes:
      n: ``int32[B]`` integer allocation, ``sum(n) == C``, ``L <= n <= U``.
        All zeros when ``status != 0``; 0 for padded prompts.
      n_continuous: ``float[B]`` KKT solution of the continuous relaxation.
      lam: the Lagrange multiplier ``lam*`` of the budget constraint (``0``
        when the budget exceeds what the prompts with ``a_q > 0`` can use at
        ``U``; NaN when ``status != 0``).
      objective: ``sum_q f_q(n_q)`` over the real (unmasked) prompts at the
        integer solution, with ``a_q = 4 p_q (1 - p_q)`` and ``sigma_Z^2 = 1``.
      status: ``int32`` scalar, an :class:`~vipcore.AllocationStatus` code
        (0 = ok).
    """

    n: jax.Array
    n_continuous: jax.Array
    lam: jax.Array
    objective: jax.Array
    status: jax.Array


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
    [0, 1]) do not raise here: they set ``status`` (an
    :class:`~vipcore.AllocationStatus`), so that batched callers get a code per
    batch. :func:`allocate` is the eager, validating API; both apply the same
    rule table.

    Args:
      p_hat: ``float[B]`` success probabilities; the dtype sets the precision.
      C: total budget; ``L``, ``U``: per-prompt bounds (Python or traced numbers).
      estimator: ``"rloo"`` or ``"drgrpo"`` (static).
      mask: optional ``bool[B]`` marking real prompts in a padded batch
        (ragged batches under ``vmap``, or fixed shapes to avoid recompiling);
        padded prompts get ``n = 0`` and do not count in ``B``.
      sections: search width (static), see ``solve_continuous``.

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
    status = traced_status(p, valid, C, L, U, estimator)
    ok = status == AllocationStatus.OK
    p_safe = jnp.where(ok & valid, p, 0.5)
    a = jnp.where(valid, 4 * p_safe * (1 - p_safe), 0)
    B = jnp.sum(valid).astype(jnp.int32)
    # Safe stand-ins keep the traced computation finite when status != 0.
    lo = MIN_LOWER[estimator]
    Ls = jnp.where(ok, jnp.asarray(L).astype(jnp.int32), lo)
    Us = jnp.where(ok, jnp.asarray(U).astype(jnp.int32), lo)
    Cs = jnp.where(ok, jnp.asarray(C).astype(jnp.int32), B * lo)
    n_c, lam = solve_continuous(
        a, Cs, Ls, Us, estimator=estimator, mask=valid, sections=sections
    )
    n = round_allocation(n_c, a, Cs, Ls, Us, estimator=estimator, mask=valid)
    obj = jnp.sum(objective_terms(a, n, estimator))
    nan = jnp.asarray(jnp.nan, a.dtype)
    return Allocation(
        n=jnp.where(ok, n, 0),
        n_continuous=jnp.where(ok & valid, n_c, jnp.where(valid, nan, 0)),
        lam=jnp.where(ok, lam, nan),
        objective=jnp.where(ok, obj, nan),
        status=status,
    )


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
    (Theorems 5.1/5.2 + exact rounding).

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

    Batches are padded internally to a few bucket sizes (masked), so varying
    batch sizes reuse a handful of compilations.

    Raises:
      ValueError: naming the argument and its valid range; nothing is clipped.

    >>> allocate([0.5, 0.9, 0.99, 0.0], C=32, L=2, U=16).tolist()
    [16, 10, 4, 2]
    """
    check_choice("estimator", estimator, ESTIMATORS)
    p, C, L, U = check_allocation_args(p_hat, C, L, U, estimator)
    pp, mask = pad_to_bucket(p, fill=0.5)
    res = solve(pp, C, L, U, estimator=estimator, mask=mask)
    return np.asarray(res.n)[: p.shape[0]].astype(np.int64)
