"""Per-prompt gradient variance and group advantage estimators.

Conventions
-----------
* Rewards in the paper are ``R in {-1, +1}`` with success probability ``p``,
  so ``Var(R) = 4 p (1 - p)``. For ``{0, 1}`` rewards divide by 4; a constant
  factor never changes an allocation.
* ``Z_j = 1^T H(o_j)`` is the projected log-likelihood gradient of rollout
  ``j`` and ``sigma_z2 = Var(Z)``.
* The projected group gradient is ``G = (1/n) sum_j A_j Z_j``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from vipcore._src._checks import (
    as_float_array,
    as_numpy_float,
    check_choice,
    check_probabilities,
    is_concrete,
)
from vipcore._src._padding import bucket_size, pad_to

__all__ = [
    "ESTIMATORS",
    "ADVANTAGE_ESTIMATORS",
    "gradient_variance",
    "gradient_variance_continuous",
    "variance_factor",
    "advantages",
    "SINGLETON_POLICIES",
    "zero_variance_probability",
    "grpo_gradient_variance",
]

#: Estimators with a closed-form gradient variance (Props 4.2/4.3, E.1/E.2).
ESTIMATORS = ("rloo", "drgrpo")
#: Estimators :func:`advantages` implements.
ADVANTAGE_ESTIMATORS = ("grpo", "drgrpo", "rloo")


#: What :func:`advantages` does with a group of exactly one real reward.
SINGLETON_POLICIES = ("raise", "zero")
#: Smallest group size with a defined gradient variance, per estimator.
_MIN_N = {"drgrpo": 1, "rloo": 2}


def variance_factor(n: ArrayLike, estimator: str = "rloo") -> jax.Array:
    r"""The factor ``c(n)`` in ``Var(G) = c(n) * sigma_Z^2 * Var(R)``.

    .. math::

        c_{\mathrm{DrGRPO}}(n) = \frac{n-1}{n^2} \quad\text{(Prop 4.2)},
        \qquad c_{\mathrm{RLOO}}(n) = \frac{1}{n-1} \quad\text{(Prop 4.3)}.

    Pure and jittable, with no value checks (the allocator calls it on traced
    counts): ``n`` may be an integer or float array; RLOO at ``n = 1`` gives
    ``inf`` and Dr. GRPO at ``n = 0`` gives ``-inf``. The eager entry points
    :func:`gradient_variance` and :func:`gradient_variance_continuous` refuse
    such ``n``.

    >>> float(variance_factor(5, "rloo"))
    0.25
    """
    check_choice("estimator", estimator, ESTIMATORS)
    n = jnp.asarray(n)
    if not jnp.issubdtype(n.dtype, jnp.floating):
        n = n.astype(jnp.result_type(float))
    if estimator == "drgrpo":
        return (n - 1) / (n * n)
    return 1 / (n - 1)


def _first_bad(name: str, arr: np.ndarray, bad: np.ndarray, rule: str) -> None:
    """Raise naming ``name``, the rule and the first offending entry."""
    if bad.any():
        idx = int(np.flatnonzero(bad.ravel())[0])
        where = f" at index {idx}" if arr.ndim else ""
        got = arr.ravel()[idx].item()
        raise ValueError(f"{name} must be {rule}; got {got!r}{where}")


def _numeric(name: str, x: ArrayLike) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be array-like of numbers: {err}") from None
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be real numbers; got dtype {arr.dtype}")
    return arr


def _check_variance_args(n, sigma_z2, estimator) -> None:
    """Eager checks of ``n`` and ``sigma_z2`` (skipped for traced values)."""
    if is_concrete(n):
        arr = _numeric("n", n)
        low = _MIN_N[estimator]
        why = ("a leave-one-out baseline needs a second rollout"
               if estimator == "rloo" else "a group needs at least one rollout")
        _first_bad("n", arr, ~np.isfinite(arr), "finite")
        _first_bad("n", arr, arr < low, f">= {low} for estimator={estimator!r} ({why})")
    if is_concrete(sigma_z2):
        arr = _numeric("sigma_z2", sigma_z2)
        _first_bad("sigma_z2", arr, ~np.isfinite(arr) | (arr < 0), "finite and >= 0")


@functools.partial(jax.jit, static_argnames=("estimator",))
def _gradient_variance(var_r, n, sigma_z2, estimator):
    return variance_factor(n, estimator).astype(var_r.dtype) * sigma_z2 * var_r


def gradient_variance_continuous(
    reward_var: ArrayLike,
    n: ArrayLike,
    *,
    estimator: str = "rloo",
    sigma_z2: ArrayLike = 1.0,
) -> jax.Array:
    r"""Variance of the projected group gradient for any reward distribution.

    Props E.1 (Dr. GRPO) and E.2 (RLOO), valid under Assumption 4.1
    (i.i.d. rollouts; ``R`` and ``Z`` uncorrelated up to second order):

    .. math::

        \mathrm{Var}(G) = c(n)\, \sigma_Z^2\, \mathrm{Var}(R),

    with ``c(n)`` from :func:`variance_factor`. Broadcasts over ``reward_var``,
    ``n`` and ``sigma_z2``; the result has ``reward_var``'s floating dtype.

    Args:
      reward_var: ``Var(R) >= 0``.
      n: rollouts per prompt, real-valued allowed (the continuous relaxation):
        ``n >= 2`` for RLOO, ``n >= 1`` for Dr. GRPO.
      estimator: ``"rloo"`` or ``"drgrpo"``.
      sigma_z2: ``Var(Z) >= 0``.

    Raises:
      ValueError: for concrete arguments outside those ranges, naming the
        argument (NaN and infinities included). Traced arguments (inside the
        caller's ``jit``) are not checked: RLOO at ``n = 1`` then gives ``inf``
        and negative inputs give negative "variances".

    >>> float(gradient_variance_continuous(0.25, 5, estimator="rloo"))
    0.0625
    """
    check_choice("estimator", estimator, ESTIMATORS)
    if is_concrete(reward_var):
        as_numpy_float("reward_var", reward_var)
    var_r = as_float_array("reward_var", reward_var)
    if is_concrete(var_r):
        arr = np.asarray(var_r)
        _first_bad("reward_var", arr, ~np.isfinite(arr) | (arr < 0), "finite and >= 0")
    _check_variance_args(n, sigma_z2, estimator)
    return _gradient_variance(var_r, jnp.asarray(n), jnp.asarray(sigma_z2), estimator)


def gradient_variance(
    p: ArrayLike,
    n: ArrayLike,
    estimator: str = "rloo",
    sigma_z2: ArrayLike = 1.0,
) -> jax.Array:
    r"""Variance of the projected group gradient for ±1 Bernoulli rewards.

    Prop 4.2 (Dr. GRPO) and Prop 4.3 (RLOO) with ``Var(R) = 4 p (1 - p)``:

    .. math::

        \mathrm{Var}(G_{\mathrm{DrGRPO}}) = \frac{n-1}{n^2}\,\sigma_Z^2\,4p(1-p),
        \qquad
        \mathrm{Var}(G_{\mathrm{RLOO}}) = \frac{\sigma_Z^2\,4p(1-p)}{n-1}.

    Args:
      p: success probabilities in [0, 1].
      n: rollouts per prompt: ``n >= 2`` for RLOO, ``n >= 1`` for Dr. GRPO
        (real values allowed, for the continuous relaxation).
      estimator: ``"rloo"`` or ``"drgrpo"``.
      sigma_z2: ``Var(Z) >= 0``, the projected gradient variance.

    Raises:
      ValueError: for concrete arguments outside those ranges, naming the
        argument. Traced arguments are not checked (see
        :func:`gradient_variance_continuous`).

    >>> float(gradient_variance(0.5, 4, "drgrpo"))
    0.1875
    """
    check_choice("estimator", estimator, ESTIMATORS)
    if is_concrete(p):
        check_probabilities("p", as_numpy_float("p", p))
    p = as_float_array("p", p)
    return gradient_variance_continuous(
        4 * p * (1 - p), n, estimator=estimator, sigma_z2=sigma_z2
    )


def _finish(centred, count, ss, valid, eps, estimator, ddof):
    """Advantages from the centred rewards and per-entry group statistics."""
    if estimator == "drgrpo":
        out = centred
    elif estimator == "rloo":
        out = centred * count / jnp.maximum(count - 1, 1)
    else:
        std = jnp.sqrt(ss / jnp.maximum(count - ddof, 1))
        out = centred / (std + eps)
    # Padding, groups of one and constant groups (0/0 for GRPO at eps = 0) give 0.
    return jnp.where(valid & (count > 1) & (ss > 0), out, 0)


@functools.partial(jax.jit, static_argnames=("estimator", "ddof"))
def _advantages(rewards, mask, eps, estimator, ddof):
    """Padded groups along the last axis; ``mask=False`` or NaN is missing."""
    valid = mask & ~jnp.isnan(rewards)
    # Shift each group by its largest reward: equal rewards then centre to an
    # exact 0 (a float32 mean of equal values need not equal them).
    ref = jnp.max(jnp.where(valid, rewards, -jnp.inf), axis=-1, keepdims=True)
    r = jnp.where(valid, rewards - jnp.where(jnp.isfinite(ref), ref, 0), 0)
    count = jnp.sum(valid.astype(r.dtype), axis=-1, keepdims=True)
    mean = jnp.sum(r, axis=-1, keepdims=True) / jnp.maximum(count, 1)
    centred = jnp.where(valid, r - mean, 0)
    ss = jnp.sum(centred * centred, axis=-1, keepdims=True)
    return _finish(centred, count, ss, valid, eps, estimator, ddof)


@functools.partial(jax.jit, static_argnames=("estimator", "ddof"))
def _segment_advantages(rewards, seg, eps, estimator, ddof):
    """Ragged groups: rollout ``i`` belongs to group ``seg[i]`` in ``[0, N)``."""
    n = rewards.shape[0]
    valid = ~jnp.isnan(rewards)

    def seg_sum(x):
        return jax.ops.segment_sum(x, seg, num_segments=n)

    ref = jax.ops.segment_max(jnp.where(valid, rewards, -jnp.inf), seg, num_segments=n)
    r = jnp.where(valid, rewards - jnp.where(jnp.isfinite(ref), ref, 0)[seg], 0)

    count_g = seg_sum(valid.astype(r.dtype))
    mean = (seg_sum(r) / jnp.maximum(count_g, 1))[seg]
    centred = jnp.where(valid, r - mean, 0)
    ss = seg_sum(centred * centred)[seg]
    return _finish(centred, count_g[seg], ss, valid, eps, estimator, ddof)


def _segments(r, mask, groups, sizes):
    """Segment ids ``(N,)`` in ``[0, N)`` and a namer for group ``k``."""
    if mask is not None:
        raise ValueError("mask is for padded (..., n) rewards; with groups= or "
                         "sizes=, mark missing rewards with NaN")
    if groups is not None and sizes is not None:
        raise ValueError("give groups or sizes, not both")
    if r.ndim != 1:
        raise ValueError("rewards must be 1-D (one entry per rollout) with groups= "
                         f"or sizes=; got shape {r.shape}")
    n = r.shape[0]
    if sizes is not None:
        if not is_concrete(sizes):
            s = jnp.asarray(sizes)
            return jnp.repeat(jnp.arange(s.shape[0]), s, total_repeat_length=n), str
        s = np.asarray(sizes)
        if s.ndim != 1 or (s.size and (s.dtype.kind not in "iu" or s.min() < 0)):
            raise ValueError("sizes must be a 1-D array of non-negative integers")
        if int(s.sum()) != n:
            raise ValueError(f"sizes must sum to len(rewards) = {n}; "
                             f"got {int(s.sum())}")
        return jnp.asarray(np.repeat(np.arange(s.size), s)), str
    if not is_concrete(groups):
        g = jnp.asarray(groups)
        if g.shape != (n,) or not jnp.issubdtype(g.dtype, jnp.integer):
            raise ValueError(f"traced groups must be integer ids of shape ({n},)")
        return g, str
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must have one id per reward, shape ({n},); "
                         f"got {g.shape}")
    try:
        labels, inv = np.unique(g, return_inverse=True)
    except TypeError as err:
        raise ValueError(f"groups must be comparable ids: {err}") from None
    return jnp.asarray(inv.reshape(-1)), lambda k: repr(labels[k].item())


def _refuse_singletons(counts: np.ndarray, name) -> None:
    ones = np.flatnonzero(counts.ravel() == 1)
    if ones.size:
        k = int(ones[0])
        raise ValueError(
            f"group {name(k)} has a single reward; groups need at least 2 "
            "non-missing rewards (one reward has no group baseline). Pass "
            "singleton='zero' to give such groups advantage 0"
        )


def advantages(
    rewards: ArrayLike,
    estimator: str = "rloo",
    *,
    mask: ArrayLike | None = None,
    groups: ArrayLike | None = None,
    sizes: ArrayLike | None = None,
    ddof: int = 1,
    eps: float = 1e-6,
    singleton: str = "raise",
) -> jax.Array:
    r"""Group advantages ``A_j``, for padded or ragged groups.

    .. math::

        A^{\mathrm{DrGRPO}}_j = R_j - \bar R,\qquad
        A^{\mathrm{RLOO}}_j = R_j - \frac{1}{n-1}\sum_{k\ne j} R_k
          = \frac{n}{n-1}(R_j - \bar R),\qquad
        A^{\mathrm{GRPO}}_j = \frac{R_j - \bar R}{s + \epsilon},\quad
        s^2 = \frac{1}{n - d}\sum_k (R_k - \bar R)^2,

    with ``n`` the group's number of non-missing rewards and ``d = ddof``
    (Dr. GRPO and RLOO as in Nguyen et al. (2025), "Adaptive Rollout
    Allocation for Online Reinforcement Learning with Verifiable Rewards",
    §4; GRPO as in Shao et al. (2024), "DeepSeekMath: Pushing the Limits of
    Mathematical Reasoning in Open Language Models").

    Layouts:

    * padded (default): ``rewards`` is ``(..., n)``; each row along the last
      axis is one prompt's group. ``mask=False`` marks padding.
    * ragged by id: ``rewards`` is ``(N,)`` and ``groups`` gives each
      rollout's prompt id (any comparable ids: integers, strings such as
      verl's ``uid``), in any order.
    * ragged by size: ``rewards`` is ``(N,)``, grouped into consecutive runs
      of ``sizes`` (the layout of ``numpy.repeat(prompts, sizes)``, as
      OpenRLHF and :func:`vipcore.planner.repeat_index` produce).

    Missing rewards: NaN marks a missing reward (as TRL's reward functions
    returning ``None``); it is left out of its group's mean, count and std and
    gets advantage 0, as padding does. Infinite rewards are refused.

    Args:
      rewards: rewards, see the layouts above.
      estimator: ``"grpo"``, ``"drgrpo"`` or ``"rloo"``.
      mask: padded layout only: boolean, the shape of ``rewards``.
      groups: ragged layout: one id per reward. Inside a caller's ``jit`` the
        ids must be integers in ``[0, N)`` (ids outside are not counted).
      sizes: ragged layout: non-negative group sizes summing to ``N``.
      ddof: GRPO only: ``1`` (default) for the sample std (divisor
        ``n - 1``, Bessel's correction), as TRL (``nanstd``), verl and
        OpenRLHF (``torch.std``) use; ``0`` for the population std.
      eps: GRPO only: added to the std (TRL uses ``1e-4``, verl ``1e-6``,
        OpenRLHF ``1e-9``); finite and ``>= 0``.
      singleton: a group with exactly one non-missing reward has no group
        baseline. ``"raise"`` (default) refuses it with a ``ValueError``
        naming the group; ``"zero"`` gives it advantage 0 (what TRL ends up
        with, via NaN; verl instead gives such a group its raw score). Groups
        with no reward at all (pure padding) always get 0.

    Returns:
      Advantages with the shape and floating dtype of ``rewards``. Every
      group's advantages sum to 0 (up to rounding); a group whose rewards are
      all equal gets 0.

    Raises:
      ValueError: bad estimator, ``ddof``, ``eps``, shapes, infinite rewards,
        or (``singleton="raise"``) a group of one, for concrete inputs. Under
        the caller's ``jit`` only static facts are checked, and groups of one
        get advantage 0.

    Worked example (rewards ``[1, 0, 1, 0]``): ``±0.87`` with the sample
    std, ``±1.0`` with the population std.

    >>> [round(float(a), 2) for a in advantages([1.0, 0.0, 1.0, 0.0], "grpo")]
    [0.87, -0.87, 0.87, -0.87]
    >>> advantages([1.0, 0.0, 5.0, 1.0, 0.0], "rloo", sizes=[2, 3]).tolist()
    [1.0, -1.0, 4.5, -1.5, -3.0]
    """
    check_choice("estimator", estimator, ADVANTAGE_ESTIMATORS)
    check_choice("singleton", singleton, SINGLETON_POLICIES)
    if isinstance(ddof, bool) or ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (population) or 1 (sample); got {ddof!r}")
    if not (isinstance(eps, int | float | np.floating) and math.isfinite(eps)
            and eps >= 0):
        raise ValueError(f"eps must be a finite number >= 0; got {eps!r}")
    if is_concrete(rewards):
        as_numpy_float("rewards", rewards)  # names the argument for text input
    r = as_float_array("rewards", rewards)
    if r.ndim == 0:
        raise ValueError("rewards must have at least one axis (the group axis)")
    if is_concrete(r):
        arr = np.asarray(r)
        _first_bad("rewards", arr, np.isinf(arr), "finite (NaN marks a missing reward)")
    eps_arr = jnp.asarray(eps, r.dtype)
    if groups is None and sizes is None:
        m = _padded_mask(r, mask)
        out = _advantages(r, m, eps_arr, estimator, ddof)
        if singleton == "raise" and is_concrete(r, m):
            counts = np.sum(np.asarray(m) & ~np.isnan(np.asarray(r)), axis=-1)
            _refuse_singletons(counts, _row_namer(counts.shape))
        return out
    seg, name = _segments(r, mask, groups, sizes)
    n = r.shape[0]
    if n == 0:
        return r
    if is_concrete(r, seg):  # bucket the length: few compilations across batches
        size = bucket_size(n)
        out = _segment_advantages(pad_to(r, (size,), jnp.nan), pad_to(seg, (size,)),
                                  eps_arr, estimator, ddof)[:n]
    else:
        out = _segment_advantages(r, seg, eps_arr, estimator, ddof)
    if singleton == "raise" and is_concrete(r, seg):
        valid = ~np.isnan(np.asarray(r))
        _refuse_singletons(np.bincount(np.asarray(seg), weights=valid), name)
    return out


def _row_namer(shape):
    if not shape:
        return lambda k: "(the only row)"
    return lambda k: "at row " + str(tuple(int(i) for i in np.unravel_index(k, shape)))


def _padded_mask(r, mask):
    if mask is None:
        return jnp.ones(r.shape, dtype=bool)
    m = jnp.asarray(mask)
    if m.dtype != jnp.bool_:
        raise ValueError(f"mask must be boolean; got dtype {m.dtype}")
    if m.shape != r.shape:
        raise ValueError(
            f"mask must have the shape of rewards {r.shape}; got {m.shape}")
    return m


def zero_variance_probability(p: ArrayLike, n: ArrayLike) -> np.ndarray:
    r"""Probability that ``n`` Bernoulli(``p``) rewards are all equal.

    .. math:: P(\text{all equal}) = p^n + (1 - p)^n .

    Such a group has zero reward variance and contributes no gradient under
    GRPO, Dr. GRPO and RLOO (TRL logs its share as ``frac_reward_zero_std``).
    NumPy float64, broadcasting over ``p`` and ``n``.

    >>> float(zero_variance_probability(0.5, 4))
    0.125
    """
    p = np.asarray(p, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    return p**n + (1 - p) ** n


def grpo_gradient_variance(
    p: ArrayLike,
    n: int,
    *,
    ddof: int = 0,
    sigma_z2: float = 1.0,
    eps: float = 1e-6,
) -> np.ndarray:
    r"""Exact ``Var(G)`` for GRPO (std-normalised advantages), ±1 rewards.

    Under Assumption 4.1, ``Var(G) = sigma_Z^2 / n^2 * E[sum_j A_j^2]``. With
    ``k`` successes the population variance of the rewards is
    ``s_0^2 = 4 k (n - k) / n^2``, the std used is
    ``s = s_0 sqrt(n / (n - ddof))``, and ``sum_j A_j^2 = n s_0^2 / (s + eps)^2``,
    so, summing over the binomial distribution of ``k``,

    .. math::

        \mathrm{Var}(G) = \frac{\sigma_Z^2}{n}
          \sum_{k=0}^{n} \binom{n}{k} p^k (1-p)^{n-k}
          \frac{s_{0,k}^2}{(s_k + \epsilon)^2}
        \xrightarrow{\epsilon \to 0} \sigma_Z^2\,\frac{n - d}{n^2}
          \big(1 - p^n - (1-p)^n\big),

    with ``d = ddof``. A constant group has ``A = 0 / (0 + eps) = 0``. Not
    monotone in ``n``: small groups are all-equal more often. NumPy float64,
    vectorised over ``p``.

    >>> round(float(grpo_gradient_variance(0.5, 4, eps=0.0)), 6)  # (1 - 2/16)/4
    0.21875
    """
    if isinstance(n, bool) or int(n) != n or n < 2:
        raise ValueError(f"n must be an integer >= 2; got {n!r}")
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (population) or 1 (sample); got {ddof!r}")
    if not (eps >= 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be finite and >= 0; got {eps!r}")
    n = int(n)
    p = np.asarray(p, dtype=np.float64)
    check_probabilities("p", p)
    k = np.arange(n + 1, dtype=np.float64)
    logc = np.array([math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1)
                     for j in range(n + 1)])
    pk = p[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        pmf = np.exp(logc + k * np.log(pk) + (n - k) * np.log1p(-pk))
    pmf = np.where(np.isnan(pmf), 0.0, pmf)
    pmf = np.where((pk == 0) & (k == 0) | (pk == 1) & (k == n), 1.0, pmf)
    s0 = np.sqrt(4 * k * (n - k)) / n
    s = s0 * math.sqrt(n / (n - ddof))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(s0 > 0, s0**2 / (s + eps) ** 2, 0.0)
    return sigma_z2 / n * np.sum(pmf * ratio, axis=-1)
