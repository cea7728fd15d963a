r"""Rollout allocation for GRPO (group advantages divided by the group's std).

GRPO, the default of TRL and verl, uses :math:`A_j = (R_j - \bar R)/(s + \epsilon)`
with :math:`s` the std of the group's rewards (divisor :math:`n - d`, ``ddof``
:math:`d`; TRL and verl use :math:`d = 1`). Problem (5) of Nguyen et al. (2025),
"Adaptive Rollout Allocation for Online Reinforcement Learning with Verifiable
Rewards", minimises the summed gradient variance, which is the right target
for RLOO because RLOO's group gradient has the same mean whatever :math:`n`.
GRPO's does not: its mean *and* its variance depend on :math:`n`, and its raw
variance :math:`\sigma_Z^2 (n-d)/n^2\,(1 - p^n - (1-p)^n)` is not even monotone
in :math:`n` (small groups are more often all-equal and carry no gradient), so
minimising it rewards allocations that destroy signal. This module measures
each prompt's noise in units of its own signal instead.

**Setting.** One prompt, :math:`n` i.i.d. rollouts, rewards :math:`R_j \in
\{-1, +1\}` with success probability :math:`p` (0/1 rewards give the same
advantages: GRPO is invariant to affine maps of the reward), projected score
:math:`Z_j` with :math:`\mu_\pm = E[Z \mid R = \pm 1]`, group gradient
:math:`G = \frac1n \sum_j A_j Z_j`, successes :math:`K \sim \mathrm{Bin}(n, p)`,
and the limit :math:`\epsilon \to 0` (a constant group has :math:`A = 0`).

**Signal.** Given the rewards, :math:`E[Z_j \mid R] = \mu_{R_j}`, and
:math:`\sum_j A_j = 0`, so :math:`E[G \mid K] = (\mu_+ - \mu_-)\,\frac1n
\sum_{R_j = 1} A_j`. The std of a group with :math:`K` successes is
:math:`s_K = 2\sqrt{K(n-K)}/\sqrt{n(n-d)}`, and the prompt's true projected
gradient is :math:`g = \mathrm{Cov}(R, Z) = 2p(1-p)(\mu_+ - \mu_-)` (what RLOO
estimates without bias). Hence

.. math::

    E[G] = \omega_n(p)\, g, \qquad
    \omega_n(p) = \sqrt{\frac{n-d}{n}}\;
      \frac{E\big[\sqrt{K(n-K)}\big]}{2 n p (1-p)} .

**Noise** (Assumption 4.1 of the paper: :math:`Z` independent of :math:`R`,
variance :math:`\sigma_Z^2`): :math:`\sum_j A_j^2 = n - d` for a non-constant
group, so :math:`\mathrm{Var}(G) = \sigma_Z^2 \frac{n-d}{n^2}
P(0 < K < n)`.

**Objective.** :math:`G/\omega_n(p)` is unbiased for :math:`g`, the target of
RLOO. Its variance, with :math:`X = \sqrt{K(n-K)}` (proportional to the group's
std), is

.. math::

    V_n(p) = \frac{\mathrm{Var}(G)}{\omega_n(p)^2}
      = \frac{\sigma_Z^2\, 4p(1-p)}{n-1}
        \cdot \frac{E[X^2 \mid X > 0]}{E[X \mid X > 0]^2}
      = \frac{\sigma_Z^2\, 4p(1-p)}{n-1}\,\big(1 + \mathrm{CV}^2_n(p)\big),

where :math:`\mathrm{CV}_n(p)` is the coefficient of variation of the group
std given that the group is not constant. The same normalisation gives
exactly :math:`\sigma_Z^2 4p(1-p)/(n-1)` for RLOO and for Dr. GRPO (Props 4.2
and 4.3 divided by their squared signal weights 1 and :math:`((n-1)/n)^2`),
so :math:`V_n \ge V_n^{\mathrm{RLOO}}` (Cauchy–Schwarz), with equality exactly
for :math:`n \le 3`, and :math:`V_n` does not depend on :math:`d` (the std's
divisor rescales :math:`G` and its signal alike). Dividing a prompt's gradient
by :math:`\omega` does not change its direction, so :math:`V_n(p)/g^2` is also
the noise-to-signal ratio of the gradient GRPO itself computes for the prompt.

The allocation minimises :math:`\sum_q V_{n_q}(p_q)` over integers with
:math:`\sum_q n_q = C`, :math:`2 \le L \le n_q \le U` (:math:`n = 1` has
:math:`s = 0`, no gradient). It does not optimise the prompt weights
:math:`\omega_{n_q}(p_q)` that GRPO applies as a side effect of :math:`n`
(they rise with :math:`n` for hard and easy prompts); no choice of weights is
right without the per-prompt gradient norms.

**Solver.** Writing :math:`E[\cdot]` over :math:`0 < K < n` with the weights
:math:`w_{n,k} = \binom nk p^{k-1}(1-p)^{n-k-1}` (no cancellation, finite at
:math:`p \in \{0, 1\}`), :math:`u_n = \sum_k w_{n,k}`,
:math:`t_n = \sum_k w_{n,k}\sqrt{k(n-k)}`, we get :math:`P(0<K<n) = p(1-p)
u_n`, :math:`\omega_n = \sqrt{(n-d)/n}\, t_n/(2n)` and :math:`V_n = 4p(1-p)\,n
u_n/t_n^2`; Pascal's rule updates :math:`w` from :math:`n` to :math:`n+1` with
positive terms only (a fixed-length ``lax.scan``). :math:`V_n(p)` is convex and
decreasing in :math:`n`: checked in float64 on 3,400 values of :math:`p` in
:math:`[10^{-8}, 1 - 10^{-8}]` for every :math:`n \le 1024` (smallest second
difference 0.19 % of the first), and re-checked at run time for every prompt
(``GrpoAllocation.convex``). For a separable convex objective with one sum
constraint the units with the largest marginal decreases form an optimum
(Gross's greedy), so :func:`solve_grpo` takes the top :math:`C - BL` of the
:math:`B(U-L)` marginal decreases, finding the :math:`(C - BL)`-th largest
by a fixed number of bisection rounds on the integer images of the floats:
exact, no data-dependent loop, no sort.
:func:`solve_separable_dp`, an exact dynamic programme for any separable
objective, is the fallback of :func:`allocate_grpo` if a check ever fails.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from vipcore._src._checks import as_float_array, check_probabilities, is_concrete
from vipcore._src._padding import bucket_size, pad_to_bucket
from vipcore._src.allocation.status import (
    MIN_LOWER,
    AllocationStatus,
    check_allocation_args,
    traced_status,
)

__all__ = [
    "GRPO_MAX_N",
    "GRPO_MIN_LOWER",
    "GrpoAllocation",
    "GrpoTerms",
    "allocate_grpo",
    "grpo_terms",
    "solve_grpo",
    "solve_separable_dp",
]

#: Smallest ``L``: a group of one rollout has std 0, hence no GRPO gradient.
GRPO_MIN_LOWER = 2
#: Largest group size the cost table covers (its cost is ``O(B U^2)``).
GRPO_MAX_N = 1024
#: The rule-table key for the lower bound: ``"grpo"`` once the table knows it.
_RULE_KEY = "grpo" if "grpo" in MIN_LOWER else None


# --------------------------------------------------------------------------
# The per-prompt quantities
# --------------------------------------------------------------------------


def _interior_sums(p: jax.Array, n_hi: int) -> tuple[jax.Array, jax.Array]:
    """``(u_n, t_n)`` for ``n = 2 .. n_hi``, each of shape ``(n_hi - 1, B)``.

    ``w[k] = C(n, k) p^(k-1) (1-p)^(n-k-1)`` for ``0 < k < n`` (0 elsewhere);
    Pascal's rule ``w'[k] = (1-p) w[k] + p w[k-1]`` plus the boundary terms
    ``(1-p)^(n-1)`` at ``k = 1`` and ``p^(n-1)`` at ``k = n``.
    """
    q = 1 - p
    k = jnp.arange(n_hi + 1)
    kf = k.astype(p.dtype)
    w0 = jnp.zeros((p.shape[0], n_hi + 1), p.dtype).at[:, 1].set(2)
    two = jnp.full(p.shape, 2, p.dtype)

    def step(carry, n):
        w, alpha, beta = carry  # weights of size n; alpha = q^(n-1), beta = p^(n-1)
        shifted = jnp.pad(w[:, :-1], ((0, 0), (1, 0)))
        new = q[:, None] * w + p[:, None] * shifted
        new = new + jnp.where(k == 1, 1, 0)[None, :] * alpha[:, None]
        new = new + jnp.where(k == n, 1, 0)[None, :] * beta[:, None]
        m = (n + 1).astype(p.dtype)
        root = jnp.sqrt(jnp.maximum(kf * (m - kf), 0))
        return (new, alpha * q, beta * p), (jnp.sum(new, 1), new @ root)

    if n_hi == 2:
        return two[None, :], two[None, :]
    _, (u, t) = jax.lax.scan(step, (w0, q, p), jnp.arange(2, n_hi))
    return (jnp.concatenate([two[None, :], u]), jnp.concatenate([two[None, :], t]))


class GrpoTerms(NamedTuple):
    """Per-prompt GRPO quantities of :func:`grpo_terms` (±1 or 0/1 rewards).

    Attributes:
      signal: ``omega_n(p) = E[G] / Cov(R, Z)``, GRPO's weight on the
        prompt's true projected gradient (RLOO's is 1, Dr. GRPO's
        ``(n - 1)/n``).
      variance: ``Var(G) = sigma_Z^2 (n - d)/n^2 P(0 < K < n)``.
      normalized_variance: ``V_n(p) = Var(G) / omega^2``, the allocation
        objective (does not depend on ``ddof``).
      factor: ``c_n(p) = V_n(p) / (sigma_Z^2 4 p (1 - p)) = (1 + CV^2)/(n - 1)``,
        RLOO's ``1/(n - 1)`` times GRPO's excess.
      nonzero: ``P(0 < K < n) = 1 - p^n - (1 - p)^n``, the probability that
        the group is not constant (carries a gradient).
    """

    signal: jax.Array
    variance: jax.Array
    normalized_variance: jax.Array
    factor: jax.Array
    nonzero: jax.Array


def _terms_from_sums(p, n, u, t, ddof, sigma_z2):
    """:class:`GrpoTerms` from ``u_n``, ``t_n`` (all arrays of one shape)."""
    nf = n.astype(p.dtype)
    pq = p * (1 - p)
    nonzero = pq * u
    factor = nf * u / (t * t)
    return GrpoTerms(
        signal=jnp.sqrt((nf - ddof) / nf) * t / (2 * nf),
        variance=sigma_z2 * (nf - ddof) / (nf * nf) * nonzero,
        normalized_variance=sigma_z2 * 4 * pq * factor,
        factor=factor,
        nonzero=nonzero,
    )


@functools.partial(jax.jit, static_argnames=("n_max",))
def _grpo_terms(p, n, sigma_z2, ddof, *, n_max):
    # One table per distinct entry of p (not per broadcast element), then gather.
    shape = jnp.broadcast_shapes(p.shape, n.shape)
    u, t = _interior_sums(p.reshape(-1), n_max)
    col = jnp.broadcast_to(jnp.arange(p.size).reshape(p.shape), shape)
    row = jnp.clip(jnp.broadcast_to(n, shape) - 2, 0, n_max - 2)
    pb = jnp.broadcast_to(p, shape)
    nb = jnp.broadcast_to(n, shape)
    return _terms_from_sums(pb, nb, u[row, col], t[row, col],
                            jnp.asarray(ddof, p.dtype), jnp.asarray(sigma_z2, p.dtype))


def grpo_terms(
    p: ArrayLike,
    n: ArrayLike,
    *,
    ddof: int = 1,
    sigma_z2: float = 1.0,
    n_max: int | None = None,
) -> GrpoTerms:
    r"""Signal, noise and the allocation objective of GRPO for one prompt.

    .. math::

        \omega_n(p) = \sqrt{\tfrac{n-d}{n}}\,\frac{E\sqrt{K(n-K)}}{2np(1-p)},
        \quad
        \mathrm{Var}(G) = \sigma_Z^2 \tfrac{n-d}{n^2}\big(1-p^n-(1-p)^n\big),
        \quad
        V_n(p) = \frac{\mathrm{Var}(G)}{\omega_n(p)^2}
          = \frac{\sigma_Z^2 4p(1-p)}{n-1}\big(1 + \mathrm{CV}_n^2(p)\big),

    with :math:`K \sim \mathrm{Bin}(n, p)` and :math:`\epsilon \to 0`; the
    derivation is in this module's documentation. Exact (sums over
    :math:`K`), pure and jittable; ``p`` and ``n`` broadcast.

    Args:
      p: success probabilities in [0, 1]; the floating dtype sets the precision.
      n: integer group sizes ``>= 2``.
      ddof: 0 (population std) or 1 (sample std: TRL, verl).
      sigma_z2: ``Var(Z)``.
      n_max: largest ``n`` (static); needed when ``n`` is traced.

    >>> t = grpo_terms(0.5, 4)
    >>> round(float(t.normalized_variance), 4), round(1 / 3, 4)  # RLOO: 1/(n-1)
    (0.3351, 0.3333)
    """
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (population) or 1 (sample); got {ddof!r}")
    p = as_float_array("p", p)
    check_probabilities("p", p)
    n = jnp.asarray(n)
    if not jnp.issubdtype(n.dtype, jnp.integer):
        raise ValueError(f"n must be an integer array; got dtype {n.dtype}")
    if is_concrete(n) and n.size:
        if int(jnp.min(n)) < 2:
            raise ValueError(f"n must be >= 2 everywhere; got min {int(jnp.min(n))}")
        n_max = max(int(jnp.max(n)), n_max or 2)
    if n_max is None:
        raise ValueError("n_max is required when n is traced (inside jit/vmap)")
    if not 2 <= n_max <= GRPO_MAX_N:
        raise ValueError(f"n_max must lie in [2, {GRPO_MAX_N}]; got {n_max}")
    n_max = min(bucket_size(int(n_max)), GRPO_MAX_N)  # few compilations
    return _grpo_terms(p, n, sigma_z2, ddof, n_max=n_max)


# --------------------------------------------------------------------------
# The exact solvers
# --------------------------------------------------------------------------


class GrpoAllocation(NamedTuple):
    """Result of :func:`solve_grpo` (a pytree: works under ``jit`` and ``vmap``).

    Attributes:
      n: ``int32[B]`` allocation, ``sum(n) == C``, ``L <= n <= U``; 0 for
        padded prompts, all zeros when ``status != 0``.
      lam: the smallest marginal decrease ``V_n - V_{n+1}`` among the units
        given above ``L`` (the discrete Lagrange multiplier); NaN when
        ``C = B L`` or ``status != 0``.
      objective: ``sum_q V_{n_q}(p_q)`` (``sigma_Z^2 = 1``), the minimised
        total: the variance of the batch's signal-normalised GRPO gradient.
      variance: ``sum_q Var(G_q)`` for the given ``ddof`` (not minimised).
      zero_groups: expected number of constant groups,
        ``sum_q p_q^n + (1 - p_q)^n`` (TRL's ``frac_reward_zero_std`` times B).
      convex: every prompt's cost was convex in ``n`` on ``[L, U]`` up to
        rounding, which makes ``n`` an exact optimum (see the module docs).
      status: ``int32`` :class:`~vipcore.AllocationStatus` code (0 = ok).
    """

    n: jax.Array
    lam: jax.Array
    objective: jax.Array
    variance: jax.Array
    zero_groups: jax.Array
    convex: jax.Array
    status: jax.Array


def _order_key(x):
    """Unsigned integers in the order of the floats ``x`` (no NaN)."""
    bits = jnp.finfo(x.dtype).bits
    udt = jnp.uint32 if bits == 32 else jnp.uint64
    u = jax.lax.bitcast_convert_type(x, udt)
    sign = u >> (bits - 1)
    return jnp.where(sign == 1, ~u, u | (udt(1) << (bits - 1))), bits


def _kth_largest(key, K, bits):
    """The ``K``-th largest entry of the unsigned ``key`` (``K >= 1``).

    Bisection over the integers: ``bits`` rounds, each one count of
    ``key >= t`` (a fixed-length loop, no sort: XLA's CPU sort is slow).
    """
    def body(_, lo_hi):
        lo, hi = lo_hi  # invariant: count(key >= lo) >= K > count(key > hi)
        gap = hi - lo
        mid = lo + gap // 2 + gap % 2
        ok = jnp.sum(key >= mid, dtype=jnp.int32) >= K
        return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid - 1)

    lo, _ = jax.lax.fori_loop(0, bits + 1, body, (jnp.min(key), jnp.max(key)))
    return lo


def _greedy(cost, K, valid):
    """Top-``K`` marginal decreases of a ``(W, B)`` cost table (exact if convex).

    The ``K``-th largest decrease ``lam`` is found exactly by bisection on
    the integer images of the floats; every unit above ``lam`` is taken and
    the units equal to it are taken in level-major order (level ``m``, then
    prompt), so equal prompts share units evenly, lowest index first. All
    decisions compare one materialised integer array. Returns ``(extra
    units per prompt, lam)``.
    """
    W, B = cost.shape
    gain = jnp.where(valid[None, :], cost[:-1] - cost[1:], -jnp.inf).reshape(-1)
    key, bits = _order_key(gain)
    key = jax.lax.optimization_barrier(key)
    Kp = jnp.maximum(K, 1)
    kth = _kth_largest(key, Kp, bits)
    above = key > kth
    ties = key == kth
    rank = jnp.cumsum(ties, dtype=jnp.int32)
    take = (above | (ties & (rank <= Kp - jnp.sum(above, dtype=jnp.int32)))) & (K > 0)
    extra = jnp.sum(take.reshape(W - 1, B), axis=0, dtype=jnp.int32)
    lam = jnp.max(jnp.where(ties, gain, -jnp.inf))
    return extra, jnp.where(K > 0, lam, jnp.nan)


def _is_convex(cost, lower, valid):
    """Marginal decreases non-increasing up to rounding, for every real prompt."""
    W = cost.shape[0]
    if W < 3:
        return jnp.asarray(True)
    gain = cost[:-1] - cost[1:]
    level = (lower + jnp.arange(W - 2) + 1).astype(cost.dtype)[:, None]
    tol = 8 * jnp.finfo(cost.dtype).eps * level * jnp.abs(cost[:-2])
    ok = gain[1:] <= gain[:-1] + tol
    return jnp.all(ok | ~valid[None, :])


@functools.partial(jax.jit, static_argnames=("L", "U"))
def _solve_grpo(p, C, valid, ddof, *, L, U):
    status = traced_status(p, valid, C, L, U, _RULE_KEY)
    status = jnp.where((status == 0) & (L < GRPO_MIN_LOWER),
                       jnp.int32(AllocationStatus.BAD_BOUNDS), status)
    ok = status == AllocationStatus.OK
    # Static stand-ins keep the table small when the bounds are bad.
    good = (isinstance(L, int) and isinstance(U, int)
            and GRPO_MIN_LOWER <= L <= U <= GRPO_MAX_N)
    lo, hi = (L, U) if good else (GRPO_MIN_LOWER, GRPO_MIN_LOWER)
    p_safe = jnp.where(ok & valid, p, 0.5)
    B = jnp.sum(valid).astype(jnp.int32)
    K = jnp.where(ok, jnp.asarray(C, jnp.int32) - B * lo, 0)
    u, t = (x[lo - 2:] for x in _interior_sums(p_safe, hi))
    levels = jnp.arange(lo, hi + 1, dtype=jnp.int32)[:, None]
    terms = _terms_from_sums(p_safe[None, :], levels, u, t,
                             jnp.asarray(ddof, p.dtype), 1.0)
    cost = jnp.where(valid[None, :], terms.normalized_variance, 0)
    if hi > lo:
        extra, lam = _greedy(cost, K, valid)
    else:
        extra, lam = jnp.zeros(p.shape, jnp.int32), jnp.asarray(jnp.nan, p.dtype)
    n = jnp.where(valid, lo + extra, 0)
    pick = jnp.clip(n - lo, 0, hi - lo)[None, :]

    def total(x):
        return jnp.sum(jnp.where(valid, jnp.take_along_axis(x, pick, 0)[0], 0))

    nan = jnp.asarray(jnp.nan, p.dtype)
    return GrpoAllocation(
        n=jnp.where(ok, n, 0),
        lam=jnp.where(ok, lam, nan),
        objective=jnp.where(ok, total(cost), nan),
        variance=jnp.where(ok, total(terms.variance), nan),
        zero_groups=jnp.where(ok, total(1 - terms.nonzero), nan),
        convex=_is_convex(cost, lo, valid),
        status=status,
    )


def _static_bound(name: str, x: Any) -> int | float:
    """A concrete bound as a Python number (traced bounds are refused)."""
    if not is_concrete(x):
        raise ValueError(
            f"{name} must be a concrete integer for GRPO allocation (it fixes "
            f"the width of the cost table); got a traced value"
        )
    if isinstance(x, bool | np.bool_) or np.asarray(x).dtype.kind not in "iuf":
        raise ValueError(f"{name} must be an integer; got {x!r}")
    if np.asarray(x).shape != ():
        raise ValueError(f"{name} must be a scalar; got shape {np.shape(x)}")
    v = np.asarray(x).item()
    return int(v) if float(v).is_integer() else float(v)


def solve_grpo(
    p_hat: ArrayLike,
    C: ArrayLike,
    L: int,
    U: int,
    *,
    ddof: int = 1,
    mask: ArrayLike | None = None,
) -> GrpoAllocation:
    r"""Exact GRPO allocation as a pure function (jittable, ``vmap``-able).

    .. math::

        \min_n \sum_q V_{n_q}(p_q) \quad\text{s.t.}\quad \sum_q n_q = C,\;
        n_q \in \{L, \dots, U\}, \qquad
        V_n(p) = \frac{4p(1-p)}{n-1}\big(1 + \mathrm{CV}_n^2(p)\big),

    the variance of the signal-normalised GRPO group gradient (module docs).
    Value problems (``p`` outside [0, 1] or NaN, a bad budget, ``L < 2``,
    ``L > U``, an infeasible budget) set ``status`` instead of raising, with
    the rule table of :func:`vipcore.allocate`.

    Args:
      p_hat: ``float[B]`` success probabilities; the dtype sets the precision.
      C: total budget (may be traced, e.g. ``vmap`` over budgets).
      L, U: per-prompt bounds, concrete integers (static: they set the cost
        table's width ``U - L + 1``), ``U <=`` :data:`GRPO_MAX_N`.
      ddof: the trainer's std divisor (1 for TRL and verl). The allocation
        does not depend on it; it sets the reported ``variance``.
      mask: optional ``bool[B]`` marking real prompts of a padded batch.

    >>> res = solve_grpo(jnp.array([0.5, 0.9, 0.99, 0.0]), 32, 2, 16)
    >>> res.n.tolist(), int(res.status), bool(res.convex)
    ([16, 10, 4, 2], 0, True)
    """
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (population) or 1 (sample); got {ddof!r}")
    L, U = _static_bound("L", L), _static_bound("U", U)
    if isinstance(U, int) and isinstance(L, int) and L <= U and U > GRPO_MAX_N:
        raise ValueError(
            f"U must be <= {GRPO_MAX_N} for GRPO allocation (the cost table has "
            f"U - L + 1 columns); got U={U}. allocate_grpo lowers U to "
            "C - (B-1) L, the most one prompt can receive, automatically"
        )
    p = jnp.asarray(p_hat)
    if not jnp.issubdtype(p.dtype, jnp.floating):
        p = p.astype(jnp.result_type(float))
    elif jnp.finfo(p.dtype).bits < 32:  # float16/bfloat16: too coarse for the table
        p = p.astype(jnp.float32)
    if p.ndim != 1:
        raise ValueError(f"p_hat must be one-dimensional (B,); got shape {p.shape}")
    valid = jnp.ones(p.shape, bool) if mask is None else jnp.asarray(mask, bool)
    return _solve_grpo(p, C, valid, ddof, L=L, U=U)


@jax.jit
def solve_separable_dp(costs: ArrayLike, K: ArrayLike) -> tuple[jax.Array, jax.Array]:
    r"""Exact minimiser of any separable objective by dynamic programming.

    .. math::

        \min_{m} \sum_q f_q(m_q) \quad\text{s.t.}\quad
        \sum_q m_q = K,\; m_q \in \{0, \dots, W - 1\},

    with ``costs[q, m] = f_q(m)`` (``+inf`` forbids a level). One fixed-size
    ``lax.scan`` over prompts (the min-plus convolution of the running table
    with ``f_q``) and one backwards to read the choice: ``O(B^2 W^2)`` time,
    ``O(B^2 W)`` memory, no convexity needed. For bounds ``L..U`` pass
    ``f_q(m) = cost(L + m)`` and ``K = C - B L``; add ``L`` to the result.
    Assumes ``0 <= K <= B (W - 1)``. Ties go to fewer units for later prompts.

    Returns:
      ``(m, total)``: ``int32[B]`` levels summing to ``K`` and their total
      cost. ``total = inf`` means that no allocation has a finite cost (then
      ``m`` means nothing).

    >>> m, total = solve_separable_dp(jnp.array([[3.0, 1.0, 0.0], [2.0, 0.5, 0.4]]), 2)
    >>> m.tolist(), float(total)
    ([1, 1], 1.5)
    """
    costs = jnp.asarray(costs)
    B, W = costs.shape
    S = B * (W - 1) + 1
    inf = jnp.asarray(jnp.inf, costs.dtype)
    start = jnp.where(jnp.arange(S) == 0, 0, inf).astype(costs.dtype)
    src = jnp.arange(S)[None, :] - jnp.arange(W)[:, None]  # (W, S): s - m

    def forward(best, f):
        cand = jnp.where(src >= 0, best[jnp.maximum(src, 0)], inf) + f[:, None]
        return jnp.min(cand, axis=0), jnp.argmin(cand, axis=0).astype(jnp.int32)

    best, choice = jax.lax.scan(forward, start, costs)

    def backward(s, row):
        m = row[s]
        return s - m, m

    K = jnp.asarray(K, jnp.int32)
    _, m = jax.lax.scan(backward, K, choice, reverse=True)
    return m, best[K]


def _check_grpo_args(p_hat, C, L, U):
    """The eager rule table plus GRPO's ``L >= 2``; returns ``(p, C, L, U)``."""
    why = "(a group of one rollout has std 0 and no gradient)"
    try:
        p, C, L, U = check_allocation_args(p_hat, C, L, U, _RULE_KEY)
    except ValueError as err:
        msg = str(err)
        if _RULE_KEY is None and msg.startswith("L must be an integer in [1,"):
            msg = msg.replace("[1,", f"[{GRPO_MIN_LOWER},", 1)
        elif _RULE_KEY is None and msg.startswith("L must be >= 1"):
            msg = msg.replace(">= 1", f">= {GRPO_MIN_LOWER} for estimator 'grpo' "
                              f"{why}", 1)
        raise ValueError(msg) from None
    if L < GRPO_MIN_LOWER:
        raise ValueError(
            f"L must be >= {GRPO_MIN_LOWER} for estimator 'grpo' {why}; got L={L}"
        )
    return p, C, L, U


def allocate_grpo(
    p_hat: ArrayLike, C: int, L: int, U: int, *, ddof: int = 1
) -> np.ndarray:
    """How many rollouts each prompt gets under GRPO: the exact allocation.

    Minimises the total signal-normalised GRPO gradient variance
    ``sum_q V_{n_q}(p_q)`` (module docs) over integers with ``sum_q n_q = C``
    and ``L <= n_q <= U``. ``U`` is first lowered to ``C - (B - 1) L``, the
    most one prompt can receive, so ``U = 2**31 - 1`` means "no upper bound".

    Args:
      p_hat: predicted success probabilities in [0, 1], shape ``(B,)``.
      C: total rollout budget, ``B L <= C <= B U``.
      L, U: per-prompt bounds, ``L >= 2``; at most :data:`GRPO_MAX_N` rollouts
        per prompt after lowering ``U``.
      ddof: the trainer's std divisor (0 or 1); the allocation does not
        depend on it.

    Returns:
      ``np.ndarray`` of ``int64``, shape ``(B,)``, summing to ``C``.

    Raises:
      ValueError: naming the argument and its valid range; nothing is clipped.

    >>> allocate_grpo([0.5, 0.9, 0.99, 0.0], C=32, L=2, U=16).tolist()
    [16, 10, 4, 2]
    """
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (population) or 1 (sample); got {ddof!r}")
    p, C, L, U = _check_grpo_args(p_hat, C, L, U)
    B = p.shape[0]
    U_eff = min(U, C - (B - 1) * L)
    if U_eff > GRPO_MAX_N:
        raise ValueError(
            f"GRPO allocation supports at most {GRPO_MAX_N} rollouts per prompt; "
            f"with U={U}, C={C}, B={B}, L={L} one prompt could get {U_eff}: "
            f"lower U to at most {GRPO_MAX_N}"
        )
    U_tab = min(U, bucket_size(U_eff))  # few compilations as C varies
    pp, mask = pad_to_bucket(p, fill=0.5)
    res = solve_grpo(pp, C, L, U_tab, ddof=ddof, mask=mask)
    n = np.asarray(res.n)[:B].astype(np.int64)
    if not bool(res.convex):  # never seen; keeps the result exact regardless
        levels = jnp.arange(L, U_tab + 1)
        cost = grpo_terms(p[:, None], levels[None, :], n_max=U_tab)
        m, _ = solve_separable_dp(cost.normalized_variance, C - B * L)
        n = np.asarray(m).astype(np.int64) + L
    return n
