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

Two pure, jittable parts, each a fixed number of rounds (no data-dependent
loop): :func:`~vipcore._src.allocation.continuous.solve_continuous` (the KKT
solution, Theorems 5.1/5.2) and
:func:`~vipcore._src.allocation.threshold.solve_integer` (the exact integer
optimum: a threshold on the marginal gains, ties shared by one prefix sum).

Degenerate inputs: prompts with ``p in {0, 1}`` (``a_q = 0``) stay at ``L``
unless the budget cannot be spent otherwise, in which case the excess is spread
over them as evenly as possible (lowest index first for the remainder); if every
``a_q = 0`` the result is the most even allocation. Marginal gains within a
relative ``TIE_RTOL = 1e-4`` are ties and go to the lowest index, so that
float32 and float64 agree. Everything is deterministic.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from vipcore._src._checks import as_numpy_float, check_choice
from vipcore._src._padding import pad_to_bucket
from vipcore._src.allocation.continuous import solve_continuous
from vipcore._src.allocation.objective import objective_terms
from vipcore._src.allocation.status import (
    MIN_LOWER,
    AllocationStatus,
    check_allocation_args,
    traced_bounds_ok,
    traced_scalar,
    traced_status,
)
from vipcore._src.allocation.threshold import solve_integer
from vipcore._src.variance import ESTIMATORS

#: What :func:`allocate` accepts as ``estimator``.
ALLOCATION_ESTIMATORS = (*ESTIMATORS, "grpo")

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


def _prepare(p, valid, C, L, U, estimator):
    """Status code, ``a``, and safe ``int32`` stand-ins for ``C, L, U``.

    When the budget or a bound breaks a rule, the stand-ins keep the traced
    computation finite (a bad ``p`` is replaced by 0.5 element-wise);
    otherwise ``U`` is capped at ``C - (B - 1) L``, which no allocation can
    exceed (so any integer ``U``, however large, is exact).
    """
    status = traced_status(p, valid, C, L, U, estimator)
    ok = status == AllocationStatus.OK
    p_safe = jnp.where(ok & valid, p, 0.5)
    a = jnp.where(valid, 4 * p_safe * (1 - p_safe), 0)
    B = jnp.sum(valid).astype(jnp.int32)
    lo = MIN_LOWER[estimator]
    # The stand-ins follow the budget and bound rules only, not p: bounds
    # given as Python numbers then stay constants that XLA folds into every
    # search round (a bad p is replaced element-wise above).
    fine = traced_bounds_ok(valid, C, L, U, estimator)
    C, L, U = jnp.asarray(C), jnp.asarray(L), jnp.asarray(U)
    Cs = jnp.where(fine, C, B * lo).astype(jnp.int32)
    Ls = jnp.where(fine, L, lo).astype(jnp.int32)
    Us = jnp.where(fine, jnp.where(U > C, C, U), lo).astype(jnp.int32)
    Us = jnp.minimum(Us, Cs - (B - 1) * Ls)
    return status, a, Cs, Ls, Us


def _integer(a, valid, C, L, U, estimator, sections, unroll):
    K = C - jnp.sum(valid).astype(jnp.int32) * L
    return solve_integer(a, valid, K, L, U, estimator, sections, unroll)


@functools.partial(jax.jit, static_argnames=("estimator", "sections", "unroll"))
def _solve(p, C, L, U, valid, *, estimator, sections, unroll) -> Allocation:
    status, a, Cs, Ls, Us = _prepare(p, valid, C, L, U, estimator)
    ok = status == AllocationStatus.OK
    n = _integer(a, valid, Cs, Ls, Us, estimator, sections, unroll)
    n_c, lam = solve_continuous(a, Cs, Ls, Us, estimator=estimator, mask=valid,
                                sections=sections, unroll=unroll)
    obj = jnp.sum(objective_terms(a, n, estimator))
    nan = jnp.asarray(jnp.nan, a.dtype)
    return Allocation(
        n=jnp.where(ok, n, 0),
        n_continuous=jnp.where(ok & valid, n_c, jnp.where(valid, nan, 0)),
        lam=jnp.where(ok, lam, nan),
        objective=jnp.where(ok, obj, nan),
        status=status,
    )


def _integers_only(p, K, L, U, valid, *, estimator):
    """The integers only, for :func:`allocate`, which has validated the
    arguments: ``K = C - B L`` units above ``L``, ``U`` already capped at
    ``C - (B - 1) L``. No status rules and no relaxation, so the program is
    small (it is compiled on the first call of a process)."""
    a = jnp.where(valid, 4 * p * (1 - p), 0)
    return solve_integer(a, valid, K, L, U, estimator)


_solve_n = jax.jit(_integers_only, static_argnames=("estimator",))

#: XLA options for :func:`allocate`'s program on CPU: the elemental emitters
#: compile it faster than the fusion emitters (the first call of a process is
#: mostly compilation; ``vipcore bench`` times both) and run it as fast.
#: Options of this one program, never a global setting.
_CPU_FAST_COMPILE = {"xla_cpu_use_fusion_emitters": False}


try:
    _solve_n_cpu = jax.jit(_integers_only, static_argnames=("estimator",),
                           compiler_options=_CPU_FAST_COMPILE)
except TypeError:  # a JAX without per-program compiler options
    _solve_n_cpu = _solve_n


def _solve_n_eager(p, K, L, U, valid, *, estimator):
    """:func:`_solve_n`, compiled with :data:`_CPU_FAST_COMPILE` on CPU where
    XLA knows the option (otherwise with the defaults)."""
    if jax.default_backend() == "cpu":
        try:
            return _solve_n_cpu(p, K, L, U, valid, estimator=estimator)
        except RuntimeError as err:  # an XLA without this option
            if "No such compile option" not in str(err):
                raise
    return _solve_n(p, K, L, U, valid, estimator=estimator)


def _static_checks(p_hat, mask):
    """Shape and dtype facts of :func:`solve` (``ValueError`` naming them).

    A NumPy or list ``p_hat`` is range-checked in its own precision before
    the cast to the solver's dtype: a value outside [0, 1] becomes NaN, so
    the status is ``BAD_P`` even if the cast would round it into range
    (``1 + 1e-9`` in float64 is 1.0 in float32).
    """
    if isinstance(p_hat, jax.Array):
        p = p_hat
        if not (jnp.issubdtype(p.dtype, jnp.floating)
                or jnp.issubdtype(p.dtype, jnp.integer) or p.dtype == jnp.bool_):
            raise ValueError(f"p_hat must be numeric; got dtype {p.dtype}")
    else:
        arr = as_numpy_float("p_hat", p_hat)
        inside = (arr >= 0) & (arr <= 1)
        p = jnp.asarray(np.where(inside, arr, np.nan).astype(arr.dtype))
    if p.ndim != 1:
        raise ValueError(f"p_hat must be one-dimensional (B,); got shape {p.shape} "
                         "(use jax.vmap for a batch of batches)")
    if p.shape[0] == 0:
        raise ValueError("p_hat is empty: the batch needs at least one prompt")
    if not jnp.issubdtype(p.dtype, jnp.floating):
        p = p.astype(jnp.result_type(float))
    if mask is None:
        return p, jnp.ones(p.shape, bool)
    m = mask if isinstance(mask, jax.Array) else jnp.asarray(np.asarray(mask))
    if m.shape != p.shape:
        raise ValueError(f"mask must have the shape of p_hat {p.shape}; "
                         f"got {m.shape}")
    return p, m.astype(bool)


def solve(
    p_hat: ArrayLike,
    C: ArrayLike,
    L: ArrayLike,
    U: ArrayLike,
    *,
    estimator: str = "rloo",
    mask: ArrayLike | None = None,
    sections: int | None = None,
    unroll: bool | None = None,
) -> Allocation:
    """Exact VIP allocation as a pure jitted function (``vmap``-able).

    Solves problem (5) with ``a_q = 4 p_q (1 - p_q)``: the continuous KKT
    solution (Theorems 5.1/5.2) and the exact integer optimum (a threshold on
    the marginal gains, Algorithm 2 made exact), each a fixed number of
    rounds: no data-dependent loop. Value problems (infeasible budget, bad
    bounds, p outside [0, 1]) do not raise here: they set ``status`` (an
    :class:`~vipcore.AllocationStatus`), so that batched callers get a code per
    batch. :func:`allocate` is the eager, validating API; both apply the same
    rule table. Shapes and dtypes are checked at call time (``ValueError``).

    Args:
      p_hat: ``float[B]`` success probabilities; the dtype sets the precision.
      C: total budget; ``L``, ``U``: per-prompt bounds (Python or traced
        numbers). A concrete integer outside ``int32`` gives a status code
        (``U``: is capped, which changes nothing), never a wrapped value.
      estimator: ``"rloo"`` or ``"drgrpo"`` (static).
      mask: optional ``bool[B]`` marking real prompts in a padded batch
        (ragged batches under ``vmap``, or fixed shapes to avoid recompiling);
        padded prompts get ``n = 0`` and do not count in ``B``.
      sections: search points per round (static; None: 2 on CPU, 16 on
        accelerators). The integers do not depend on it.
      unroll: unroll the fixed search rounds (static; None: on accelerators,
        a fixed-length ``scan`` on CPU). The results do not depend on it.

    >>> import jax.numpy as jnp
    >>> res = solve(jnp.array([0.5, 0.9, 0.99, 0.0]), 32, 2, 16)
    >>> res.n.tolist(), int(res.status)
    ([16, 10, 4, 2], 0)
    """
    check_choice("estimator", estimator, ESTIMATORS)
    p, valid = _static_checks(p_hat, mask)
    C, L, U = (traced_scalar(n, v) for n, v in (("C", C), ("L", L), ("U", U)))
    return _solve(p, C, L, U, valid, estimator=estimator, sections=sections,
                  unroll=unroll)


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
      C: total rollout budget, ``B*L <= C <= B*U``, below ``2**31``.
      L, U: per-prompt bounds; ``L >= 2`` for ``"rloo"``, ``L >= 3`` for
        ``"drgrpo"``; ``U`` may be any integer ``>= L``.
      estimator: ``"rloo"`` (Prop 4.3), ``"drgrpo"`` (Prop 4.2) or
        ``"grpo"``: std-normalised advantages (the TRL and verl default), whose
        objective is the signal-normalised variance of
        :func:`~vipcore.allocate_grpo` (this call delegates to it; ``U`` is
        then limited to ``GRPO_MAX_N`` rollouts per prompt after lowering it
        to ``C - (B - 1) L``).

    Returns:
      ``np.ndarray`` of ``int64``, shape ``(B,)``, summing to ``C``.

    Batches are padded internally to a few bucket sizes (masked), so varying
    batch sizes reuse a handful of compilations. Marginal gains within a
    relative ``1e-4`` of each other are ties, which go to the lowest index,
    so float32 and float64 give the same integers.

    Raises:
      ValueError: naming the argument and its valid range; nothing is clipped.

    >>> allocate([0.5, 0.9, 0.99, 0.0], C=32, L=2, U=16).tolist()
    [16, 10, 4, 2]
    """
    check_choice("estimator", estimator, ALLOCATION_ESTIMATORS)
    if estimator == "grpo":
        from vipcore._src.allocation.grpo import allocate_grpo

        return allocate_grpo(p_hat, C, L, U)
    p, C, L, U = check_allocation_args(p_hat, C, L, U, estimator)
    B = p.shape[0]
    pp, mask = pad_to_bucket(p, fill=0.5)
    n = _solve_n_eager(pp, C - B * L, L, min(U, C - (B - 1) * L), mask,
                       estimator=estimator)
    return np.asarray(n)[:B].astype(np.int64)
