r"""The exact integer solver: one threshold on the marginal gains, no loop.

For a separable convex objective under one sum constraint, the integer
optimum hands out the ``K = C - sum_q L_q`` units above the lower bounds to
the ``K`` largest marginal gains ``g_q(n) = f_q(n) - f_q(n + 1)`` (Gross,
1956; Ibaraki and Katoh, 1988). Since each ``g_q`` decreases in ``n``, the
units a prompt receives are the ones whose gain clears a common threshold
``tau``, and their number has a closed form per prompt. So:

1. ``tau`` (the ``K``-th largest gain) is found by a fixed number of
   bisection (or multi-section) rounds over the bit patterns of
   ``u = tau^{-1/2}``, which reach the dtype's full resolution;
2. each prompt counts its units strictly above the tie band and inside it
   (closed form plus one exact check for RLOO, three for Dr. GRPO; no
   data-dependent loop);
3. the units still missing are shared out over the tie band in index order
   by one prefix sum.

.. math::

    \text{RLOO: } g_q(n) = \frac{a_q}{n (n - 1)}, \qquad
    \text{Dr. GRPO: } g_q(n) = a_q \frac{n^2 - n - 1}{n^2 (n + 1)^2},

with ``a_q = 4 p_q (1 - p_q)``: the marginal decreases of Props 4.3 and 4.2
of Nguyen et al. (2025), "Adaptive Rollout Allocation for Online
Reinforcement Learning with Verifiable Rewards" (problem (5)).

**Ties.** Gains that agree to within the relative tolerance
:data:`TIE_RTOL` are treated as equal, so that rounding differences between
float32 and float64 (``4 p (1 - p)`` and ``4 (1 - p) p`` differ in the last
bit) do not decide who gets a unit. Precisely: with ``tau`` the ``K``-th
largest gain, every unit with ``g >= tau (1 + TIE_RTOL)`` is given, every unit
with ``g < tau / (1 + TIE_RTOL)`` is not, and the units in between (the tie
band) go to the prompts in index order, all of one prompt's tied units
before the next prompt's. The objective is then within
``2 TIE_RTOL tau`` per tied unit of the exact optimum, and equal to it when
no two gains near ``tau`` are closer than that without being equal.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from vipcore._src.allocation.search import search_bits

__all__ = [
    "TIE_RTOL",
    "A_CUTOFF",
    "normalise_a",
    "Limits",
    "limits",
    "unit_counts",
    "saturating_sum",
    "sum_at_least",
    "share_ties",
    "default_sections",
    "solve_integer",
]

#: Relative tolerance under which two marginal gains count as tied (about
#: 840 float32 ulps): far above float32 rounding, far below any gap that
#: changes the objective noticeably.
TIE_RTOL = 1e-4

#: ``a_q`` below ``A_CUTOFF * max(a)`` counts as 0 (the same cutoff in float32
#: and float64, so both precisions see the same problem).
A_CUTOFF = 2.0**-46

#: Largest value a count or sum may take (``int32``).
_SAT = 2**31 - 1


def normalise_a(a, valid):
    """``a / max(a)`` over the valid prompts, with ``a < A_CUTOFF max(a)`` as 0.

    The allocation depends on ``a`` only up to a common scale; normalising
    keeps every threshold in range, and the cutoff keeps ``sqrt(a)`` normal.
    """
    a = jnp.where(valid, a, 0)
    scale = jnp.max(a)
    a = a / jnp.where(scale > 0, scale, 1)
    return jnp.where(a >= A_CUTOFF, a, 0)


def _pred(n, s2, estimator):
    """``g(n) >= a / s^2`` for unit ``n -> n+1``, without division."""
    if estimator == "rloo":
        return n * (n - 1) <= s2
    m = n * (n + 1)
    return m * m <= s2 * (n * n - n - 1)


class Limits(NamedTuple):
    """Per-prompt constants of :func:`unit_counts`, computed once per solve."""

    L: jax.Array  # int32
    span: jax.Array  # U - L, int32
    s_max: jax.Array  # U + 4 (float): larger s changes nothing
    s_full: jax.Array  # U + 3 (float): from here on every unit counts


def limits(L, U, dt) -> Limits:
    """The :class:`Limits` of bounds ``L``, ``U`` for float dtype ``dt``."""
    Uf = U.astype(dt)
    return Limits(L, U - L, Uf + 4, Uf + 3)


def unit_counts(s, L, U, estimator, lim: Limits | None = None):
    """Units ``n in [L, U)`` with ``g_q(n) >= a_q / s_q^2``, per prompt.

    ``s = sqrt(a) u``. A closed-form candidate ``n_c`` for the last unit is
    within one of the exact answer, and exact checks settle it: for RLOO
    ``n_c = floor(s)`` and ``n_max = n_c + [n_c + 1 ok]`` (one check, since
    ``n_c (n_c - 1) <= s^2 < (n_c + 2)(n_c + 1)``; in float32 the rounding
    of ``s^2`` keeps both sides of this bracket while ``s < 2**22``, and
    ``s <= U + 4``, so only ``U > 2**22`` can make a count one off); for
    Dr. GRPO
    ``n_max = n_c - 2 + [n_c - 1 ok] + [n_c ok] + [n_c + 1 ok]`` (a unit
    below ``L`` counts as ok). The count is non-decreasing in ``s`` whatever
    the rounding (a larger ``n_c`` adds one to the base and drops at most one
    check), so the bisection over it is well defined.
    """
    dt = s.dtype
    lim = lim or limits(L, U, dt)
    s = jnp.minimum(s, lim.s_max)
    if estimator == "rloo":  # n(n-1) <= s^2: n* = floor(1/2 + sqrt(1/4 + s^2))
        guess, window = s, (1,)  # n* lies in {floor(s), floor(s) + 1}
    else:  # n(n+1)/sqrt(n^2-n-1) = n + 3/2 + 11/(8n) + O(n^-2)
        guess = s - 1.5 - 1.375 / jnp.maximum(s - 1.5, 1)
        window = (-1, 0, 1)
    # Truncation is the floor here (guess >= 0); the top leaves room for
    # n_c + 1 below 2**31 (int32).
    top = 2.0**31 - (256 if jnp.finfo(dt).bits == 32 else 8)
    nc = jnp.clip(guess, 0, top).astype(jnp.int32)
    ncf = nc.astype(dt)
    s2 = s * s
    checks = [_pred(ncf + k, s2, estimator) for k in window]
    if estimator != "rloo":  # units below L are given anyway, and g is not
        # monotone there (the Dr. GRPO objective is convex only from n = 3)
        Lf = lim.L.astype(dt)
        checks = [c | (ncf + k < Lf) for c, k in zip(checks, window, strict=True)]
    hits = sum(c.astype(jnp.int32) for c in checks)
    # n_max = n_c + window[0] - 1 + hits; the count is n_max - L + 1.
    count = jnp.clip(nc + window[0] + hits - lim.L, 0, lim.span)
    return jnp.where(s >= lim.s_full, lim.span, count)


def saturating_sum(x, axis=-1):
    """``min(sum(x), 2**31 - 1)`` for non-negative ``int32`` ``x``, exactly.

    Counts summed over a batch can exceed ``int32`` when ``U`` is large;
    saturating keeps a comparison with a budget below ``2**31`` exact.
    """
    x = x.astype(jnp.uint32)
    sat = np.uint32(_SAT)
    out = lax.reduce(x, np.uint32(0), lambda p, q: jnp.minimum(p + q, sat),
                     (axis % x.ndim,))
    return out.astype(jnp.int32)


def sum_at_least(c, K, axis=-1, capped: bool = False):
    """``sum(c, axis) >= K`` exactly, for ``int32`` ``c >= 0`` and ``0 <= K < 2**31``.

    ``capped=True`` promises ``c <= K`` already (the solver's counts are at
    most ``U - L <= K``), which saves one operation per element.

    The sum may exceed ``int32``. One pass takes it twice: modulo ``2**32``
    (exact below ``2**32``) and in float32 (relative error below
    ``B 2**-24 < 1/4``): a float sum of at least ``3 * 2**30`` means a true
    sum above ``2**31 > K``, and otherwise the true sum is below ``2**32``.
    Batches of ``2**22`` prompts or more use a saturating sum instead.
    """
    c = c if capped else jnp.minimum(c, K)
    axis = axis % c.ndim
    if c.shape[axis] >= 2**22:
        return saturating_sum(c, axis) >= K
    wrapped, approx = lax.reduce(
        (c.astype(jnp.uint32), c.astype(jnp.float32)),
        (np.uint32(0), np.float32(0)),
        lambda x, y: (x[0] + y[0], x[1] + y[1]), (axis,))
    return (approx >= 3 * 2.0**30) | (wrapped >= K.astype(jnp.uint32))


def _totals(above, span_pos, zero):
    """``(sum(above), min(sum(span_pos), 2**31 - 1), sum(zero))`` in one pass."""
    sat = np.uint32(_SAT)

    def add(x, y):
        return x[0] + y[0], jnp.minimum(x[1] + y[1], sat), x[2] + y[2]

    A, cap, Z = lax.reduce(
        (above.astype(jnp.int32), span_pos.astype(jnp.uint32),
         zero.astype(jnp.int32)),
        (np.int32(0), np.uint32(0), np.int32(0)), add, (0,))
    return A, cap.astype(jnp.int32), Z


def share_ties(above, band, R, zero, extra, m):
    """The index-ordered share, with one prefix sum.

    * Tie band (``extra <= 0``): ``above[q]`` units are given for sure and
      ``band[q]`` are tied; prompt ``q`` takes
      ``clip(R - sum_{r < q} band[r], 0, band[q])``.
    * Excess (``extra > 0``) over the ``m`` prompts marked ``zero``: each gets
      ``extra // m`` and the first ``extra % m`` of them (by index) one more.

    ``int32`` is enough: the tie band holds at most about
    ``2 B + TIE_RTOL (K + B L)`` units (each prompt's band is about
    ``TIE_RTOL s_q / 2`` units wide, and ``sum_q s_q`` is bounded by the
    units given below the band), far below ``2**31``.
    """
    z = zero.astype(band.dtype)
    use_zero = extra > 0
    col = jnp.where(use_zero, z, band)
    before = jnp.cumsum(col, dtype=col.dtype) - col
    ties = above + jnp.clip(R - before, 0, band)
    m = jnp.maximum(m, 1).astype(band.dtype)
    e = jnp.maximum(extra, 0).astype(band.dtype)
    spread = lax.div(e, m) + (before < lax.rem(e, m))
    return jnp.where(use_zero, jnp.where(zero, spread, 0), ties)


def default_sections() -> int:
    """Grid points per search round: 2 (bisection) on CPU, 16 elsewhere.

    On CPU each round costs its arithmetic, so bisection is cheapest. On an
    accelerator each round is a kernel launch and the arithmetic is nearly
    free, so a 16-section search cuts the rounds fourfold.
    """
    return 2 if jax.default_backend() == "cpu" else 16


def solve_integer(a, valid, K, L, U, estimator: str, sections: int | None = None,
                  unroll: bool | None = None):
    """Exact integer allocation above the lower bounds (see the module doc).

    Args:
      a: ``a_q >= 0`` (``float[B]``, any common scale).
      valid: ``bool[B]``: real prompts; the others get ``n = 0``.
      K: ``int32`` units to hand out above ``L`` (``0 <= K <= B (U - L)``).
      L, U: ``int32`` scalars or ``[B]`` bounds (``L >= 2``; where ``valid``
        is False they are ignored and the prompt gets 0).
      estimator: ``"rloo"`` or ``"drgrpo"`` (static).
      sections: grid points per search round (static; None: by backend/B).
      unroll: unroll the search rounds (static; None: on accelerators only).

    Returns:
      ``int32[B]`` with ``sum == sum(L) + K`` and ``L <= n <= U``.
    """
    dt = a.dtype
    K = jnp.asarray(K).astype(jnp.int32)
    L0 = jnp.asarray(L).astype(jnp.int32)
    U0 = jnp.minimum(jnp.asarray(U).astype(jnp.int32), L0 + K)  # n <= L + K anyway
    a = normalise_a(a, valid)
    pos = a > 0
    sa = jnp.sqrt(a)
    # A prompt with a = 0 (every padded one among them) counts no unit
    # whatever its bounds (s = 0 and L >= 2), so the search may take the
    # bounds as given: scalar bounds stay scalars and each round reads one
    # array, sa. What follows the search uses the masked per-prompt bounds.
    lim0 = limits(L0, U0, dt)
    L = jnp.where(valid, L0, 0)
    U = jnp.where(valid, U0, 0)
    lim = limits(L, U, dt)

    def counts(u, L=L, U=U, lim=lim):
        return unit_counts(sa * u, L, U, estimator, lim)

    def enough(us):
        return sum_at_least(jax.vmap(lambda u: counts(u, L0, U0, lim0))(us),
                            K, axis=1, capped=True)  # counts <= U - L <= K

    # u = 1: no unit qualifies (s <= 1 < h(L)); u = 2**55: every a > 0 prompt
    # is at U (a >= 2**-46, so s >= 2**32 > U + 3).
    mant = jnp.finfo(dt).nmant
    u = search_bits(enough, 1.0, 2.0**55, dt, sections or default_sections(),
                    span_bits=mant + 6, unroll=unroll)
    # Band edges: u / tol (strictly below u, so fewer than K units are
    # above the band even when tol rounds to 1) and u * tol (at least u).
    tol = jnp.asarray(np.sqrt(1 + TIE_RTOL), dt)
    edges = jax.vmap(counts)(jnp.stack([
        jnp.minimum(u / tol, jnp.nextafter(u, jnp.zeros((), dt))),
        jnp.maximum(u * tol, u)]))
    above, band = edges[0], edges[1] - edges[0]
    zero = valid & ~pos
    A, cap, Z = _totals(above, jnp.where(pos, lim.span, 0), zero)
    # More units than the prompts with a > 0 can take: those sit at U and the
    # rest is spread evenly over the a = 0 prompts (the most even choice).
    excess = K - cap
    units = share_ties(above, band, K - A, zero, excess, Z)
    base = jnp.where(excess > 0, jnp.where(pos, U, L), L)
    return base + jnp.where(K > 0, units, 0)
