r"""Heuristic baselines (App. C.1 of the VIP paper) and the uniform split.

Each heuristic gives prompt ``q`` a weight ``w_q``, scales the weights to the
budget inside the bounds, ``x_q = clip(s w_q, L, U)`` with ``sum_q x_q = C``
(water-filling over the scale ``s``, a fixed-length search), and rounds to
the nearest integers summing to ``C`` (largest remainder, by a threshold and
one prefix sum; no data-dependent loop):

* uniform: ``w_q = 1`` (``C // B`` each, the remainder to the lowest indices);
* inverse accuracy: ``w_q = 1 - p_q + eps``;
* inverse variance: ``w_q = 1 / (p_q (1 - p_q) + eps)``.

Nguyen et al. (2025), "Adaptive Rollout Allocation for Online Reinforcement
Learning with Verifiable Rewards", App. C.1.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from vipcore._src._padding import pad_to_bucket
from vipcore._src.allocation.continuous import apply_mask, as_row
from vipcore._src.allocation.rounding import round_to_targets
from vipcore._src.allocation.search import bracket_search
from vipcore._src.allocation.status import check_allocation_args
from vipcore._src.allocation.threshold import default_sections

__all__ = [
    "allocate_uniform",
    "allocate_inverse_accuracy",
    "allocate_inverse_variance",
]


@functools.partial(jax.jit, static_argnames=("unroll",))
def _scale_and_round(log_w, C, L, U, mask, unroll=None):
    """``x = clip(s w, L, U)`` with ``sum(x) = C``, then the nearest integers.

    Works with ``log w`` (normalised to a maximum of 0), so weights that
    differ by hundreds of orders of magnitude stay finite in float32.
    """
    dt = log_w.dtype
    B = jnp.sum(mask).astype(jnp.int32)
    U = jnp.minimum(U, C - (B - 1) * L)  # no allocation can exceed it
    _, Lq, Uq = apply_mask(log_w, L, U, mask)
    Lf, Uf, Cf = (jnp.asarray(v, dt) for v in (Lq, Uq, C))
    lw = jnp.where(mask, log_w, 0)
    lo = jnp.log(jnp.asarray(L, dt))  # max(lw) = 0: everyone at L
    hi = jnp.log(jnp.asarray(U, dt)) - jnp.min(jnp.where(mask, lw, 0))  # at U

    def S_at_most_C(t):  # S is non-decreasing in the scale exp(t)
        x = jnp.clip(jnp.exp(t[:, None] + as_row(lw)), as_row(Lf), as_row(Uf))
        return jnp.sum(x, axis=1) <= Cf

    lo, hi = bracket_search(S_at_most_C, lo, hi, dt, default_sections(), unroll)
    x = jnp.clip(jnp.exp(0.5 * (lo + hi) + lw), Lf, Uf)
    return round_to_targets(x, C, Lq, Uq, mask, unroll=unroll)


def _heuristic(p_hat, C, L, U, log_weights):
    p, C, L, U = check_allocation_args(p_hat, C, L, U, None)
    with np.errstate(all="ignore"):
        lw = log_weights(p.astype(np.float64))
    lw = (lw - lw.max()).astype(p.dtype)
    padded, mask = pad_to_bucket(lw, fill=0.0)
    n = _scale_and_round(jnp.asarray(padded), C, L, U, mask)
    return np.asarray(n)[: p.shape[0]].astype(np.int64)


def _check_eps(eps):
    if (isinstance(eps, bool | np.bool_)
            or not isinstance(eps, int | float | np.floating | np.integer)
            or not 0 < eps < np.inf):
        raise ValueError(f"eps must be a number > 0 and finite; got {eps!r}")
    return float(eps)


def allocate_uniform(p_hat: ArrayLike, C: int, L: int, U: int) -> np.ndarray:
    """Uniform baseline: ``C // B`` each, the remainder to the lowest indices.

    >>> allocate_uniform([0.5, 0.9, 0.99], 10, 2, 8).tolist()
    [4, 3, 3]
    """
    return _heuristic(p_hat, C, L, U, np.zeros_like)


def allocate_inverse_accuracy(
    p_hat: ArrayLike, C: int, L: int, U: int, *, eps: float = 1e-2
) -> np.ndarray:
    """Inverse-accuracy baseline (App. C.1): ``w_q ∝ 1 - acc_q + eps``.

    ``acc_q = p_hat_q``; weights are scaled to the budget within ``[L, U]``
    and rounded by largest remainder to integers summing to ``C``.

    >>> allocate_inverse_accuracy([0.1, 0.5, 0.9], 24, 2, 16).tolist()
    [14, 8, 2]
    """
    eps = _check_eps(eps)
    return _heuristic(p_hat, C, L, U, lambda p: np.log(1 - p + eps))


def allocate_inverse_variance(
    p_hat: ArrayLike, C: int, L: int, U: int, *, eps: float = 1e-2
) -> np.ndarray:
    """Inverse-variance baseline (App. C.1): ``w_q ∝ 1 / (sigma_q^2 + eps)``.

    ``sigma_q^2 = p_q (1 - p_q)`` (the 0/1 reward variance); scaled and rounded
    as :func:`allocate_inverse_accuracy`.
    """
    eps = _check_eps(eps)
    return _heuristic(p_hat, C, L, U, lambda p: -np.log(p * (1 - p) + eps))
