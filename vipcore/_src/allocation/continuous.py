r"""The continuous relaxation of problem (5): KKT solution by a bracketed search.

Theorems 5.1 (Dr. GRPO) and 5.2 (RLOO) of Nguyen et al. (2025), "Adaptive
Rollout Allocation for Online Reinforcement Learning with Verifiable Rewards":
for a multiplier ``lam``, ``n_q(lam) = clip(root_q(lam), L, U)`` where
``root_q`` solves ``-f_q'(n) = lam`` in closed form,

.. math::

    \text{RLOO: } n = 1 + \sqrt{a_q / \lambda}, \qquad
    \text{Dr. GRPO: the largest root of } \lambda n^3 - a_q n + 2 a_q = 0,

and ``S(lam) = sum_q n_q(lam)`` is non-increasing, so ``lam*`` with
``S(lam*) = C`` is found by a fixed number of unrolled search rounds in
``log lam`` (no data-dependent loop), then polished in closed form for RLOO.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from vipcore._src.allocation.objective import marginal

__all__ = [
    "apply_mask", "as_row", "bracket_search", "default_sections", "solve_continuous",
]


def default_sections() -> int:
    """Grid points per search round: 2 (bisection) on CPU, 16 elsewhere.

    On CPU each round costs its arithmetic, so bisection is cheapest. On an
    accelerator each round is a kernel launch and the arithmetic is nearly
    free, so a 16-section search cuts 32 rounds to 8 (float32). Measured on an
    H100 (``benchmarks/results/allocate_gpu_h100.json``): 16 sections gave the
    best ``vmap`` throughput (64 was slower, 256 compiled for minutes).
    """
    return 2 if jax.default_backend() == "cpu" else 16


def as_row(x):
    """A scalar or ``(B,)`` bound as a ``(1, B)`` row (no implicit rank promotion)."""
    return jnp.reshape(x, (1, -1))


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
