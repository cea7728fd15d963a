r"""Heuristic baselines (App. C.1 of the VIP paper) and the uniform split.

Each heuristic gives prompt ``q`` a weight ``w_q``, scales the weights to the
budget inside the bounds, ``x_q = clip(s w_q, L, U)`` with ``sum_q x_q = C``
(water-filling over the scale ``s``), and rounds by largest remainder to
integers summing to ``C``:

* uniform: ``w_q = 1`` (``C // B`` each, the remainder to the lowest indices);
* inverse accuracy: ``w_q = 1 - p_q + eps``;
* inverse variance: ``w_q = 1 / (p_q (1 - p_q) + eps)``.

Nguyen et al. (2025), "Adaptive Rollout Allocation for Online Reinforcement
Learning with Verifiable Rewards", App. C.1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from vipcore._src._padding import pad_to_bucket
from vipcore._src.allocation.continuous import (
    apply_mask,
    as_row,
    bracket_search,
    default_sections,
)
from vipcore._src.allocation.rounding import fix_budget
from vipcore._src.allocation.status import check_allocation_args

__all__ = [
    "allocate_uniform",
    "allocate_inverse_accuracy",
    "allocate_inverse_variance",
]


@jax.jit
def _scale_to_budget(w, C, L, U, mask):
    """``clip(s w, L, U)`` with the scale ``s`` such that the sum is ``C``."""
    dt = w.dtype
    Cf = jnp.asarray(C, dt)
    lo = jnp.log(jnp.asarray(L, dt) / jnp.max(jnp.where(mask, w, 0)))  # all at L
    hi = jnp.log(jnp.asarray(U, dt) / jnp.min(jnp.where(mask, w, jnp.inf)))  # at U
    _, L, U = apply_mask(w, L, U, mask)
    Lf, Uf = jnp.asarray(L, dt), jnp.asarray(U, dt)

    def S_at_most_C(t):  # S is non-decreasing in the scale exp(t)
        x = jnp.clip(jnp.exp(t)[:, None] * w[None, :], as_row(Lf), as_row(Uf))
        return jnp.sum(x, axis=1) <= Cf

    lo, hi = bracket_search(S_at_most_C, lo, hi, dt, default_sections())
    x = jnp.clip(jnp.exp(0.5 * (lo + hi)) * w, Lf, Uf)
    n = jnp.clip(jnp.floor(x).astype(jnp.int32), L, U)
    return fix_budget(
        n, jnp.asarray(C, jnp.int32), jnp.asarray(L, jnp.int32),
        jnp.asarray(U, jnp.int32),
        lambda m: x - m,           # furthest below target first
        lambda m: x - m + 1,       # furthest above target first
    )


def _heuristic(p_hat, C, L, U, weights_fn):
    p, C, L, U = check_allocation_args(p_hat, C, L, U, None)
    pp, mask = pad_to_bucket(p, fill=0.5)
    n = _scale_to_budget(weights_fn(jnp.asarray(pp)), C, L, U, mask)
    return np.asarray(n)[: p.shape[0]].astype(np.int64)


def _check_eps(eps):
    if not (isinstance(eps, int | float | np.floating | np.integer)
            and not isinstance(eps, bool) and 0 < eps < np.inf):
        raise ValueError(f"eps must be > 0 and finite; got {eps!r}")


def allocate_uniform(p_hat: ArrayLike, C: int, L: int, U: int) -> np.ndarray:
    """Uniform baseline: ``C // B`` each, the remainder to the lowest indices.

    >>> allocate_uniform([0.5, 0.9, 0.99], 10, 2, 8).tolist()
    [4, 3, 3]
    """
    return _heuristic(p_hat, C, L, U, jnp.ones_like)


def allocate_inverse_accuracy(
    p_hat: ArrayLike, C: int, L: int, U: int, *, eps: float = 1e-2
) -> np.ndarray:
    """Inverse-accuracy baseline (App. C.1): ``w_q ∝ 1 - acc_q + eps``.

    ``acc_q = p_hat_q``; weights are scaled to the budget within ``[L, U]``
    and rounded by largest remainder to integers summing to ``C``.
    """
    _check_eps(eps)
    return _heuristic(p_hat, C, L, U, lambda p: 1 - p + eps)


def allocate_inverse_variance(
    p_hat: ArrayLike, C: int, L: int, U: int, *, eps: float = 1e-2
) -> np.ndarray:
    """Inverse-variance baseline (App. C.1): ``w_q ∝ 1 / (sigma_q^2 + eps)``.

    ``sigma_q^2 = p_q (1 - p_q)`` (the 0/1 reward variance); scaled and rounded
    as :func:`allocate_inverse_accuracy`.
    """
    _check_eps(eps)
    return _heuristic(p_hat, C, L, U, lambda p: 1 / (p * (1 - p) + eps))
