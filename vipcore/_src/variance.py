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

from vipcore._src._checks import as_float_array, check_choice, check_probabilities

__all__ = [
    "ESTIMATORS",
    "ADVANTAGE_ESTIMATORS",
    "gradient_variance",
    "gradient_variance_continuous",
    "variance_factor",
    "advantages",
    "zero_variance_probability",
    "grpo_gradient_variance",
]

#: Estimators with a closed-form gradient variance (Props 4.2/4.3, E.1/E.2).
ESTIMATORS = ("rloo", "drgrpo")
#: Estimators :func:`advantages` implements.
ADVANTAGE_ESTIMATORS = ("grpo", "drgrpo", "rloo")


def variance_factor(n: ArrayLike, estimator: str = "rloo") -> jax.Array:
    r"""The factor ``c(n)`` in ``Var(G) = c(n) * sigma_Z^2 * Var(R)``.

    .. math::

        c_{\mathrm{DrGRPO}}(n) = \frac{n-1}{n^2} \quad\text{(Prop 4.2)},
        \qquad c_{\mathrm{RLOO}}(n) = \frac{1}{n-1} \quad\text{(Prop 4.3)}.

    Pure and jittable. ``n`` may be an integer or float array; RLOO at
    ``n = 1`` gives ``inf`` (the leave-one-out baseline is undefined).
    """
    check_choice("estimator", estimator, ESTIMATORS)
    n = jnp.asarray(n)
    if not jnp.issubdtype(n.dtype, jnp.floating):
        n = n.astype(jnp.result_type(float))
    if estimator == "drgrpo":
        return (n - 1) / (n * n)
    return 1 / (n - 1)


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

    >>> float(gradient_variance_continuous(0.25, 5, estimator="rloo"))
    0.0625
    """
    check_choice("estimator", estimator, ESTIMATORS)
    var_r = as_float_array("reward_var", reward_var)
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
      p: success probabilities in [0, 1] (checked when concrete).
      n: rollouts per prompt (``>= 2`` for RLOO).
      estimator: ``"rloo"`` or ``"drgrpo"``.
      sigma_z2: ``Var(Z)``, the projected gradient variance.

    >>> float(gradient_variance(0.5, 4, "drgrpo"))
    0.1875
    """
    check_choice("estimator", estimator, ESTIMATORS)
    check_probabilities("p", p)
    p = as_float_array("p", p)
    return gradient_variance_continuous(
        4 * p * (1 - p), n, estimator=estimator, sigma_z2=sigma_z2
    )


@functools.partial(jax.jit, static_argnames=("estimator", "ddof"))
def _advantages(rewards, mask, eps, estimator, ddof):
    maskf = mask.astype(rewards.dtype)
    r = jnp.where(mask, rewards, 0)
    count = jnp.sum(maskf, axis=-1, keepdims=True)
    mean = jnp.sum(r, axis=-1, keepdims=True) / jnp.maximum(count, 1)
    centred = jnp.where(mask, r - mean, 0)
    if estimator == "drgrpo":
        out = centred
    elif estimator == "rloo":
        out = centred * count / (count - 1)
    else:
        ss = jnp.sum(centred * centred, axis=-1, keepdims=True)
        std = jnp.sqrt(ss / jnp.maximum(count - ddof, 1))
        out = centred / (std + eps)
    return jnp.where(mask, out, 0)


def advantages(
    rewards: ArrayLike,
    estimator: str = "rloo",
    *,
    mask: ArrayLike | None = None,
    ddof: int = 0,
    eps: float = 1e-6,
) -> jax.Array:
    r"""Group advantages ``A_j`` along the last axis.

    .. math::

        A^{\mathrm{DrGRPO}}_j = R_j - \bar R,\qquad
        A^{\mathrm{RLOO}}_j = R_j - \frac{1}{n-1}\sum_{k\ne j} R_k
          = \frac{n}{n-1}(R_j - \bar R),\qquad
        A^{\mathrm{GRPO}}_j = \frac{R_j - \bar R}{\mathrm{std}(R) + \epsilon}.

    Args:
      rewards: ``(..., n)``; each row along the last axis is one prompt's group.
      estimator: ``"grpo"``, ``"drgrpo"`` or ``"rloo"``.
      mask: optional boolean ``(..., n)`` marking real rollouts in padded
        groups; padded positions get advantage 0 and may hold NaN.
      ddof: GRPO only: 0 for the population std (divisor ``n``, the default of
        most trainers), 1 for the sample std (divisor ``n - 1``).
      eps: GRPO only: added to the std.

    Returns:
      Advantages with the shape and floating dtype of ``rewards``. For every
      group ``sum_j A_j = 0`` exactly (up to rounding). RLOO on a group with
      one rollout is undefined and gives NaN.

    Seed 001's worked example: rewards ``[1, 0, 1, 0]`` give ``±1.0`` with the
    population std and ``±0.87`` with the sample std.

    >>> advantages([1.0, 0.0, 1.0, 0.0], "grpo").round(2).tolist()
    [1.0, -1.0, 1.0, -1.0]
    """
    check_choice("estimator", estimator, ADVANTAGE_ESTIMATORS)
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (population) or 1 (sample); got {ddof!r}")
    r = as_float_array("rewards", rewards)
    if r.ndim == 0:
        raise ValueError("rewards must have at least one axis (the group axis)")
    if mask is None:
        m = jnp.ones(r.shape, dtype=bool)
    else:
        m = jnp.asarray(mask)
        if m.dtype != jnp.bool_:
            raise ValueError(f"mask must be boolean; got dtype {m.dtype}")
        if m.shape != r.shape:
            raise ValueError(
                f"mask must have the shape of rewards {r.shape}; got {m.shape}"
            )
    return _advantages(r, m, jnp.asarray(eps, r.dtype), estimator, ddof)


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
