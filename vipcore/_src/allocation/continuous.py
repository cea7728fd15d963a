r"""The continuous relaxation of problem (5): KKT solution by a bracketed search.

Theorems 5.1 (Dr. GRPO) and 5.2 (RLOO) of Nguyen et al. (2025), "Adaptive
Rollout Allocation for Online Reinforcement Learning with Verifiable Rewards":
for a multiplier ``lam``, ``n_q(lam) = clip(root_q(lam), L, U)`` where
``root_q`` solves ``-f_q'(n) = lam`` in closed form,

.. math::

    \text{RLOO: } n = 1 + \sqrt{a_q / \lambda}, \qquad
    \text{Dr. GRPO: the largest root of } \lambda n^3 - a_q n + 2 a_q = 0,

and ``S(lam) = sum_q n_q(lam)`` is non-increasing, so ``lam*`` with
``S(lam*) = C`` is found by a fixed number of search rounds in ``log lam``
(no data-dependent loop), then polished in closed form for RLOO.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from vipcore._src.allocation.objective import marginal
from vipcore._src.allocation.search import bracket_search
from vipcore._src.allocation.threshold import default_sections, normalise_a

__all__ = ["apply_mask", "as_row", "solve_continuous"]


def as_row(x):
    """A scalar or ``(B,)`` bound as a ``(1, B)`` row (no implicit rank promotion)."""
    return jnp.reshape(x, (1, -1))


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
        root = jnp.where(lam >= safe_a * marginal(L, estimator), L, root)
    n = jnp.clip(root, L, U)
    return jnp.where(a > 0, n, L)


def apply_mask(a, L, U, mask):
    """Padded prompts (``mask == False``) get ``a = 0`` and bounds ``[0, 0]``."""
    if mask is None:
        return a, L, U
    mask = jnp.asarray(mask, bool)
    return (
        jnp.where(mask, a, 0),
        jnp.where(mask, L, 0),
        jnp.where(mask, U, 0),
    )


def _bracket(a, Lf, Uf, estimator):
    """``log lam`` where every prompt sits at ``L`` (hi) or at ``U`` (lo)."""
    pos = a > 0
    any_pos = jnp.any(pos)
    lam_hi = jnp.max(jnp.where(pos, a * marginal(Lf, estimator), 0))
    big = jnp.finfo(a.dtype).max
    lam_lo = jnp.min(jnp.where(pos, a * marginal(Uf, estimator), big))
    return (jnp.log(jnp.where(any_pos, lam_lo, 1)),
            jnp.log(jnp.where(any_pos, lam_hi, 1)))


def _polish_rloo(a, sqrt_a, lam, lo, hi, Cf, Lf, Uf):
    """Closed-form ``lam`` on the active set at ``lam`` (RLOO only).

    Interior prompts have ``n = 1 + sqrt(a / lam)``, so
    ``sqrt(1/lam) = (C - fixed - |I|) / sum_I sqrt(a)``; kept only when it
    falls inside the bracket (the active set was right).
    """
    dt = a.dtype
    n_mid = _n_of_lam(a, lam, Lf, Uf, "rloo", sqrt_a)
    interior = (a > 0) & (n_mid > Lf) & (n_mid < Uf)
    fixed = jnp.sum(jnp.where(interior, 0, n_mid))
    k = jnp.sum(interior).astype(dt)
    sa = jnp.sum(jnp.where(interior, sqrt_a, 0))
    inv_sqrt = (Cf - fixed - k) / jnp.where(sa > 0, sa, 1)
    lam_polish = 1 / (inv_sqrt * inv_sqrt)
    log_p = jnp.log(lam_polish)
    ok = (sa > 0) & (inv_sqrt > 0) & (log_p >= lo - 1e-3) & (log_p <= hi + 1e-3)
    return jnp.where(ok, lam_polish, lam)


def _spread_excess(n, lam, a, valid, Cf, Lf, Uf, s_at_U):
    """Budget that the ``a > 0`` prompts cannot absorb even at ``U``: spread
    evenly over the ``a == 0`` prompts; the multiplier is then 0."""
    dt = a.dtype
    pos = a > 0
    zero = valid & ~pos
    n_zero = jnp.sum(zero).astype(dt)
    excess = Cf - s_at_U
    use = (excess > 0) & (n_zero > 0)
    n_even = Lf + excess / jnp.maximum(n_zero, 1)
    n = jnp.where(use, jnp.where(zero, n_even, jnp.where(pos, Uf, n)), n)
    lam = jnp.where(use, 0, lam)
    return n, jnp.where(jnp.any(pos), lam, 0)


@functools.partial(jax.jit, static_argnames=("estimator", "sections", "unroll"))
def solve_continuous(
    a: ArrayLike,
    C: ArrayLike,
    L: ArrayLike,
    U: ArrayLike,
    *,
    estimator: str = "rloo",
    mask: ArrayLike | None = None,
    sections: int | None = None,
    unroll: bool | None = None,
) -> tuple[jax.Array, jax.Array]:
    """KKT solution of the continuous relaxation of problem (5).

    Theorems 5.1 (Dr. GRPO) and 5.2 (RLOO): ``n_q* = n_q*(lam*)`` with
    ``sum_q n_q*(lam*) = C``.

    Args:
      a: ``a_q >= 0`` (any common scale; ``4 p (1 - p)`` in the paper).
        Values below ``2**-46 * max(a)`` count as 0, in float32 and float64
        alike (the integer solver uses the same cutoff).
      C, L, U: budget and bounds (may be traced). Assumes
        ``B*L <= C <= B*U``; :func:`solve` checks it.
      estimator: ``"rloo"`` or ``"drgrpo"`` (static).
      mask: optional ``bool[B]``; ``False`` marks padding, which gets 0.
      sections: grid points per search round (static): 2 is bisection; None
        picks 2 on CPU and 16 on accelerators. The answer does not depend on
        it beyond rounding.
      unroll: unroll the search rounds (static; None: on accelerators only).

    Returns:
      ``(n_continuous, lam)``.
    """
    a = jnp.asarray(a)
    dt = a.dtype
    valid = jnp.ones(a.shape, bool) if mask is None else jnp.asarray(mask, bool)
    a, L, U = apply_mask(a, L, U, mask)
    # The solution depends on a only up to scale: normalise so that the
    # bracket below cannot underflow (a_q < 2**-46 max(a) counts as 0).
    scale = jnp.max(a)
    scale = jnp.where(scale > 0, scale, 1)
    a = normalise_a(a, valid)
    Lf, Uf, Cf = (jnp.asarray(x, dt) for x in (L, U, C))
    sqrt_a = jnp.sqrt(jnp.where(a > 0, a, 1))

    def S_at_least_C(t):  # S is non-increasing in lam = exp(t)
        lam = jnp.exp(t)[:, None]
        n = _n_of_lam(a[None, :], lam, as_row(Lf), as_row(Uf), estimator,
                      sqrt_a[None, :])
        return jnp.sum(n, axis=1) >= Cf

    lo, hi = _bracket(a, Lf, Uf, estimator)
    # Invariant: S(exp(lo)) >= C >= S(exp(hi)).
    lo, hi = bracket_search(S_at_least_C, lo, hi, dt,
                            sections or default_sections(), unroll)
    lam = jnp.exp(0.5 * (lo + hi))
    if estimator == "rloo":
        lam = _polish_rloo(a, sqrt_a, lam, lo, hi, Cf, Lf, Uf)
    n = _n_of_lam(a, lam, Lf, Uf, estimator, sqrt_a)
    s_at_U = jnp.sum(_n_of_lam(a, jnp.exp(_bracket(a, Lf, Uf, estimator)[0]),
                               Lf, Uf, estimator, sqrt_a))
    n, lam = _spread_excess(n, lam, a, valid, Cf, Lf, Uf, s_at_U)
    return n, lam * scale
