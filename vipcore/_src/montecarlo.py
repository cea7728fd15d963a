r"""Monte-Carlo simulation of the projected group gradient.

A prompt with success probability ``p`` gets ``n`` rollouts; each rollout
``j`` has a reward ``R_j`` and a projected log-likelihood gradient ``Z_j``.
The group gradient is

.. math::

    G = \frac{1}{n} \sum_{j=1}^{n} A_j Z_j ,

with the advantages ``A_j`` of :func:`vipcore._src.variance.advantages`.
Under Assumption 4.1 (i.i.d. rollouts, ``R`` and ``Z`` independent)
``E[G] = 0`` and ``Var(G) = c(n) sigma_Z^2 Var(R)`` (Props 4.2/4.3/E.1/E.2).
This module draws ``(R, Z)`` from several families, including ones that break
Assumption 4.1 on purpose (negative controls), and estimates ``Var(G)`` with
its standard error so every comparison with theory is a z-score.

Reward families (``reward=``), all with ``E[R]`` and ``Var(R)`` given by
:func:`reward_mean` / :func:`reward_variance`:

=============  ==========================================  =========================
``reward``     distribution                                ``Var(R)``
=============  ==========================================  =========================
``"pm1"``      ``2 Bernoulli(p) - 1`` (the paper's ±1)      ``4 p (1 - p)``
``"binary"``   ``Bernoulli(p)`` (0/1 scores)                ``p (1 - p)``
``"beta"``     ``Beta(kappa p, kappa (1 - p))``, mean p     ``p (1 - p) / (kappa + 1)``
``"gaussian"`` ``Normal(2p - 1, reward_sd^2)``              ``reward_sd^2``
=============  ==========================================  =========================

(``kappa`` is ``concentration``; ``beta`` at ``p in {0, 1}`` is the point
mass at ``p``.)

``Z`` families (``z_dist=``), each standardised to mean ``z_mean`` and variance
``z_var``: ``"normal"``; ``"student_t"`` (``t_df`` scaled by
``sqrt((df - 2) / df)``; heavy tails, ``df > 4`` so the fourth moment, and
hence the standard error of a variance estimate, exists); ``"exponential"``
(``Exp(1) - 1``, skewness 2); ``"two_point"`` (``±1`` with probability 1/2,
the smallest possible kurtosis).

Breaking Assumption 4.1: with ``corr = c != 0`` the gradient is
``Z_j = eps_j + c R_j`` where ``eps_j`` is the standardised draw above, so
``E[Z] = z_mean + c E[R]`` and ``Var(Z) = z_var + c^2 Var(R)``. For Dr. GRPO
``sum_j A_j R_j = (n - 1) S^2`` (``S^2`` the unbiased sample variance of the
rewards), hence

.. math::

    G = G_\varepsilon + c \frac{n-1}{n} S^2, \qquad
    E[G] = c \frac{n-1}{n} \mathrm{Var}(R), \qquad
    \mathrm{Var}(G) = \frac{n-1}{n^2} z_{var} \mathrm{Var}(R)
      + c^2 \Big(\frac{n-1}{n}\Big)^2 \mathrm{Var}(S^2),

with ``Var(S^2) = mu_4 / n - Var(R)^2 (n - 3) / (n (n - 1))``; RLOO's ``G`` is
``n / (n - 1)`` times Dr. GRPO's. :func:`correlated_gradient_moments` returns
these exact values. Heteroscedastic ``Z`` across prompts (another negative
control, for batch totals) is a per-prompt ``z_var`` in
:func:`simulate_batch`.

The distribution settings (reward family, ``Z`` family, ``z_mean``, ``z_var``,
``corr``, ``df``, ``concentration``, ``reward_sd``) live in one
:class:`RolloutModel`. Every simulator takes ``model=`` and, for
convenience, any of its fields as keywords
(``sample_rollouts(key, p, n, trials, reward="beta")`` is
``sample_rollouts(key, p, n, trials, RolloutModel(reward="beta"))``).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from vipcore._src._checks import (
    as_float_array,
    check_choice,
    check_int,
    check_probabilities,
    is_concrete,
)
from vipcore._src.variance import ADVANTAGE_ESTIMATORS, advantages

__all__ = [
    "REWARDS",
    "Z_DISTS",
    "RolloutModel",
    "VarianceEstimate",
    "sample_rollouts",
    "group_gradient",
    "simulate_gradient",
    "simulate_batch",
    "simulate_cells",
    "estimate_variance",
    "reward_mean",
    "reward_variance",
    "reward_central_moment4",
    "correlated_gradient_moments",
]

#: Reward families of :func:`sample_rollouts`.
REWARDS = ("pm1", "binary", "beta", "gaussian")
#: Families of the projected gradient ``Z``.
Z_DISTS = ("normal", "student_t", "exponential", "two_point")


# --------------------------------------------------------------------------
# Reward moments (exact)
# --------------------------------------------------------------------------


def reward_mean(p: ArrayLike, reward: str = "pm1") -> jax.Array:
    """``E[R]`` for the reward family ``reward`` (see the module table)."""
    check_choice("reward", reward, REWARDS)
    p = as_float_array("p", p)
    if reward in ("pm1", "gaussian"):
        return 2 * p - 1
    return p


def reward_variance(
    p: ArrayLike,
    reward: str = "pm1",
    *,
    concentration: ArrayLike = 2.0,
    reward_sd: ArrayLike = 1.0,
) -> jax.Array:
    r"""Exact ``Var(R)`` of the reward family ``reward``.

    .. math::

        \mathrm{pm1}: 4p(1-p),\quad \mathrm{binary}: p(1-p),\quad
        \mathrm{beta}: \frac{p(1-p)}{\kappa + 1},\quad
        \mathrm{gaussian}: \sigma_R^2 .

    >>> float(reward_variance(0.5, "pm1")), float(reward_variance(0.5, "beta"))
    (1.0, 0.0833333358168602)
    """
    check_choice("reward", reward, REWARDS)
    p = as_float_array("p", p)
    q = p * (1 - p)
    if reward == "pm1":
        return 4 * q
    if reward == "binary":
        return q
    if reward == "beta":
        return q / (jnp.asarray(concentration, p.dtype) + 1)
    return jnp.broadcast_to(jnp.asarray(reward_sd, p.dtype) ** 2, p.shape)


def reward_central_moment4(
    p: ArrayLike,
    reward: str = "pm1",
    *,
    concentration: ArrayLike = 2.0,
    reward_sd: ArrayLike = 1.0,
) -> jax.Array:
    r"""Exact fourth central moment ``mu_4 = E[(R - E R)^4]``.

    Bernoulli(p): ``p q (q^3 + p^3)`` with ``q = 1 - p`` (times 16 for ±1);
    Gaussian: ``3 sigma^4``; Beta(a, b):
    ``3 a b (a b (s - 6) + 2 s^2) / (s^4 (s + 1)(s + 2)(s + 3))`` with
    ``s = a + b`` (0 at ``p in {0, 1}``).
    """
    check_choice("reward", reward, REWARDS)
    p = as_float_array("p", p)
    q = 1 - p
    bern = p * q * (q**3 + p**3)
    if reward == "pm1":
        return 16 * bern
    if reward == "binary":
        return bern
    if reward == "gaussian":
        return jnp.broadcast_to(3 * jnp.asarray(reward_sd, p.dtype) ** 4, p.shape)
    s = jnp.asarray(concentration, p.dtype)
    a, b = s * p, s * q
    return 3 * a * b * (a * b * (s - 6) + 2 * s * s) / (
        s**4 * (s + 1) * (s + 2) * (s + 3)
    )


def correlated_gradient_moments(
    p: ArrayLike,
    n: ArrayLike,
    corr: ArrayLike,
    *,
    estimator: str = "drgrpo",
    reward: str = "pm1",
    z_var: ArrayLike = 1.0,
    concentration: ArrayLike = 2.0,
    reward_sd: ArrayLike = 1.0,
) -> tuple[jax.Array, jax.Array]:
    r"""Exact ``(E[G], Var(G))`` when ``Z_j = eps_j + corr R_j`` (module docs).

    Valid for Dr. GRPO and RLOO (RLOO multiplies ``G`` by ``n/(n-1)``). At
    ``corr = 0`` this is Prop 4.2/4.3 with ``sigma_Z^2 = z_var``.
    """
    check_choice("estimator", estimator, ("drgrpo", "rloo"))
    kw = dict(concentration=concentration, reward_sd=reward_sd)
    v = reward_variance(p, reward, **kw)
    mu4 = reward_central_moment4(p, reward, **kw)
    n = jnp.asarray(n, v.dtype)
    c = jnp.asarray(corr, v.dtype)
    var_s2 = mu4 / n - v * v * (n - 3) / (n * (n - 1))
    mean = c * (n - 1) / n * v
    var = (n - 1) / n**2 * z_var * v + c * c * ((n - 1) / n) ** 2 * var_s2
    if estimator == "rloo":
        k = n / (n - 1)
        mean, var = k * mean, k * k * var
    return mean, var


# --------------------------------------------------------------------------
# The rollout model
# --------------------------------------------------------------------------


class RolloutModel(NamedTuple):
    """How one rollout's reward ``R`` and projected gradient ``Z`` are drawn.

    ``Z = z_mean + sqrt(z_var) eps + corr R`` with ``eps`` standardised from
    ``z_dist`` and ``R`` from ``reward`` (module docs). The numeric fields may
    be arrays (per prompt in :func:`simulate_batch`) or traced.

    Attributes:
      reward: ``"pm1"``, ``"binary"``, ``"beta"`` or ``"gaussian"``.
      z_dist: ``"normal"``, ``"student_t"``, ``"exponential"``, ``"two_point"``.
      z_mean: mean of the ``eps`` part of ``Z``.
      z_var: variance of the ``eps`` part of ``Z`` (``>= 0``).
      corr: ``c`` in ``Z = ... + c R``; 0 is Assumption 4.1.
      df: Student-t degrees of freedom (``> 4``, finite fourth moment).
      concentration: ``kappa`` of the Beta reward (``> 0``).
      reward_sd: standard deviation of the Gaussian reward (``>= 0``).

    >>> RolloutModel(reward="beta")._replace(z_var=2.0).z_var
    2.0
    """

    reward: str = "pm1"
    z_dist: str = "normal"
    z_mean: ArrayLike = 0.0
    z_var: ArrayLike = 1.0
    corr: ArrayLike = 0.0
    df: ArrayLike = 8.0
    concentration: ArrayLike = 2.0
    reward_sd: ArrayLike = 1.0

    def numbers(self) -> tuple:
        """The numeric fields, in order: a pytree for jitted code."""
        return (self.z_mean, self.z_var, self.corr, self.df, self.concentration,
                self.reward_sd)


def _model(model: RolloutModel | None, settings: dict) -> RolloutModel:
    """``model`` (default :class:`RolloutModel`) with keyword overrides."""
    if model is None:
        model = RolloutModel()
    elif not isinstance(model, RolloutModel):
        raise ValueError(f"model must be a RolloutModel; got {type(model).__name__}")
    unknown = sorted(set(settings) - set(RolloutModel._fields))
    if unknown:
        raise TypeError(
            f"unexpected keyword argument {unknown[0]!r}; the rollout settings "
            f"are {', '.join(RolloutModel._fields)}"
        )
    return model._replace(**settings)


def _check_model(m: RolloutModel) -> None:
    check_choice("reward", m.reward, REWARDS)
    check_choice("z_dist", m.z_dist, Z_DISTS)
    for name, val in (("z_var", m.z_var), ("reward_sd", m.reward_sd)):
        if is_concrete(val) and bool(np.any(np.asarray(val) < 0)):
            raise ValueError(f"{name} must be >= 0; got {val!r}")
    if (m.z_dist == "student_t" and is_concrete(m.df)
            and not bool(np.all(np.asarray(m.df) > 4))):
        raise ValueError(
            f"df must be > 4 for z_dist='student_t' (finite fourth moment); "
            f"got {m.df!r}"
        )
    if (m.reward == "beta" and is_concrete(m.concentration)
            and not bool(np.all(np.asarray(m.concentration) > 0))):
        raise ValueError(f"concentration must be > 0; got {m.concentration!r}")


def _float_dtype(dtype) -> np.dtype:
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype must be a floating dtype; got {dtype}")
    return dtype


# --------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------


def _standard_z(key, z_dist, shape, dtype, df):
    """Draws with mean 0 and variance 1 from the family ``z_dist``."""
    if z_dist == "normal":
        return jax.random.normal(key, shape, dtype)
    if z_dist == "student_t":
        df = jnp.asarray(df, dtype)
        return jax.random.t(key, df, shape, dtype) * jnp.sqrt((df - 2) / df)
    if z_dist == "exponential":
        return jax.random.exponential(key, shape, dtype) - 1
    return jax.random.rademacher(key, shape, dtype)


def _rewards(key, p, reward, shape, dtype, concentration, reward_sd):
    p = jnp.asarray(p, dtype)
    if reward in ("pm1", "binary"):
        b = jax.random.bernoulli(key, p, shape).astype(dtype)
        return 2 * b - 1 if reward == "pm1" else b
    if reward == "gaussian":
        return (2 * p - 1) + jnp.asarray(reward_sd, dtype) * jax.random.normal(
            key, shape, dtype
        )
    kappa = jnp.asarray(concentration, dtype)
    inner = (p > 0) & (p < 1)
    ps = jnp.where(inner, p, 0.5)
    x = jax.random.beta(key, kappa * ps, kappa * (1 - ps), shape, dtype)
    return jnp.where(inner, x, p)


def _draw(key, p, numbers, *, n, trials, reward, z_dist, dtype):
    """``(R, Z)`` of shape ``(trials, n)``; ``numbers`` is ``model.numbers()``."""
    z_mean, z_var, corr, df, concentration, reward_sd = numbers
    kr, kz = jax.random.split(key)
    shape = (trials, n)
    r = _rewards(kr, p, reward, shape, dtype, concentration, reward_sd)
    eps = _standard_z(kz, z_dist, shape, dtype, df)
    z = (jnp.asarray(z_mean, dtype) + jnp.sqrt(jnp.asarray(z_var, dtype)) * eps
         + jnp.asarray(corr, dtype) * r)
    return r, z


_sample = jax.jit(_draw, static_argnames=("n", "trials", "reward", "z_dist", "dtype"))


def sample_rollouts(
    key: jax.Array,
    p: ArrayLike,
    n: int,
    trials: int,
    model: RolloutModel | None = None,
    *,
    dtype=jnp.float32,
    **settings,
) -> tuple[jax.Array, jax.Array]:
    r"""Draw rewards and projected gradients for ``trials`` groups of ``n``.

    .. math::

        R_{tj} \sim \mathcal{R}(p), \qquad
        Z_{tj} = \mu_Z + \sigma_Z \varepsilon_{tj} + c\, R_{tj},

    i.i.d. over trials ``t`` and rollouts ``j``, with ``eps`` standardised
    (mean 0, variance 1) from ``z_dist`` and independent of ``R``. With
    ``corr = c = 0`` this is Assumption 4.1 of Nguyen et al. (2025),
    "Adaptive Rollout Allocation for Online Reinforcement Learning with
    Verifiable Rewards"; ``c != 0`` breaks it (module docs).

    Args:
      key: a ``jax.random`` key.
      p: scalar success probability in [0, 1]; ``jax.vmap`` for many prompts
        (the numeric model settings may be traced and vmapped too).
      n: rollouts per group (static).
      trials: independent groups (static).
      model: a :class:`RolloutModel` (default: ±1 rewards, standard normal Z).
      dtype: floating dtype of the outputs.
      **settings: any :class:`RolloutModel` field, overriding ``model``'s.

    Returns:
      ``(R, Z)``, each of shape ``(trials, n)`` and dtype ``dtype``.

    >>> R, Z = sample_rollouts(jax.random.key(0), 0.5, 4, 3)
    >>> R.shape, Z.shape, sorted(set(R.ravel().tolist())) <= [-1.0, 1.0]
    ((3, 4), (3, 4), True)
    """
    n = check_int("n", n, minimum=1)
    trials = check_int("trials", trials, minimum=1)
    m = _model(model, settings)
    _check_model(m)
    check_probabilities("p", p)
    dtype = _float_dtype(dtype)
    if jnp.ndim(p) != 0:
        raise ValueError(
            f"p must be a scalar (use jax.vmap for many prompts); got shape "
            f"{jnp.shape(p)}"
        )
    return _sample(key, p, m.numbers(), n=n, trials=trials, reward=m.reward,
                   z_dist=m.z_dist, dtype=dtype)


def group_gradient(
    rewards: ArrayLike,
    z: ArrayLike,
    estimator: str = "rloo",
    *,
    mask: ArrayLike | None = None,
    ddof: int = 0,
    eps: float = 1e-6,
) -> jax.Array:
    r"""Projected group gradient ``G = (1/n) sum_j A_j Z_j`` over the last axis.

    .. math::

        G = \frac{1}{n}\sum_{j=1}^{n} A_j Z_j,

    with ``A`` from :func:`vipcore._src.variance.advantages` (``"grpo"``,
    ``"drgrpo"`` or ``"rloo"``) and ``n`` the number of real rollouts (the
    count of ``mask``, for padded groups).

    >>> float(group_gradient([1.0, -1.0], [1.0, 0.0], "drgrpo"))
    0.5
    """
    check_choice("estimator", estimator, ADVANTAGE_ESTIMATORS)
    a = advantages(rewards, estimator, mask=mask, ddof=ddof, eps=eps)
    z = jnp.asarray(z, a.dtype)
    if z.shape != a.shape:
        raise ValueError(f"z must have the shape of rewards {a.shape}; got {z.shape}")
    if mask is None:
        count = jnp.asarray(a.shape[-1], a.dtype)
        az = a * z
    else:
        m = jnp.asarray(mask)
        count = jnp.sum(m, axis=-1).astype(a.dtype)
        az = jnp.where(m, a * z, 0)
    return jnp.sum(az, axis=-1) / count


# --------------------------------------------------------------------------
# The variance estimator
# --------------------------------------------------------------------------


class VarianceEstimate(NamedTuple):
    """Sample variance of Monte-Carlo draws, with standard errors.

    Attributes:
      var: unbiased sample variance ``s^2`` (divisor ``M - 1``).
      se: standard error of ``s^2``,
        ``sqrt((m_4 - (M-3)/(M-1) s^4) / M)`` with ``m_4`` the fourth sample
        central moment (divisor ``M``).
      mean: sample mean.
      mean_se: standard error of the mean, ``s / sqrt(M)``.
      trials: ``M``, the number of draws.
    """

    var: jax.Array
    se: jax.Array
    mean: jax.Array
    mean_se: jax.Array
    trials: int


def _moments(xp, x, axis: int, m: int) -> VarianceEstimate:
    mean = xp.mean(x, axis=axis, keepdims=True)
    d2 = (x - mean) ** 2
    s2 = xp.sum(d2, axis=axis) / (m - 1)
    m4 = xp.mean(d2 * d2, axis=axis)
    var_s2 = (m4 - (m - 3) / (m - 1) * s2 * s2) / m
    return VarianceEstimate(
        var=s2,
        se=xp.sqrt(xp.maximum(var_s2, 0)),
        mean=xp.squeeze(mean, axis=axis),
        mean_se=xp.sqrt(s2 / m),
        trials=m,
    )


def estimate_variance(draws: ArrayLike, *, axis: int = -1) -> VarianceEstimate:
    r"""Estimate ``Var(X)`` and its standard error from ``M`` i.i.d. draws.

    .. math::

        s^2 = \frac{1}{M-1}\sum_t (x_t - \bar x)^2,\qquad
        \widehat{\mathrm{se}}(s^2) =
          \sqrt{\frac{m_4 - \frac{M-3}{M-1} s^4}{M}},

    which is the plug-in version of the exact
    ``Var(s^2) = (mu_4 - (M-3)/(M-1) sigma^4) / M`` (for normal data
    ``2 sigma^4 / (M - 1)``). Needs a finite fourth moment; reduces over
    ``axis``.

    A float64 NumPy array is reduced in NumPy float64 (whatever the JAX x64
    setting), and the fields are NumPy values; anything else in JAX, pure and
    jittable, in the input's floating dtype.

    >>> est = estimate_variance(jnp.array([1.0, -1.0, 1.0, -1.0]))
    >>> round(float(est.var), 4), round(float(est.mean), 4)
    (1.3333, 0.0)
    >>> type(estimate_variance(np.array([1.0, 2.0])).var).__name__
    'float64'
    """
    if isinstance(draws, np.ndarray) and draws.dtype == np.float64:
        x, xp = draws, np
    else:
        x, xp = as_float_array("draws", draws), jnp
    if x.ndim == 0:
        raise ValueError("draws must have at least one axis; got a scalar")
    m = x.shape[axis]
    if m < 2:
        raise ValueError(f"need at least 2 draws along axis {axis}; got {m}")
    est = _moments(xp, x, axis, m)
    if xp is np:  # 0-d arrays -> NumPy scalars, like any NumPy reduction
        est = est._replace(**{f: getattr(est, f)[()] for f in est._fields[:4]})
    return est


# --------------------------------------------------------------------------
# Simulators of G
# --------------------------------------------------------------------------


@functools.partial(
    jax.jit,
    static_argnames=("n", "trials", "estimator", "reward", "z_dist", "dtype"),
)
def _simulate_gradient(key, p, numbers, *, n, trials, estimator, reward, z_dist,
                       dtype):
    r, z = _draw(key, p, numbers, n=n, trials=trials, reward=reward,
                 z_dist=z_dist, dtype=dtype)
    return group_gradient(r, z, estimator)


def simulate_gradient(
    key: jax.Array,
    p: ArrayLike,
    n: int,
    trials: int,
    model: RolloutModel | None = None,
    *,
    estimator: str = "rloo",
    dtype=jnp.float32,
    **settings,
) -> jax.Array:
    """``trials`` independent group gradients ``G`` for one prompt.

    :func:`sample_rollouts` followed by :func:`group_gradient` in one jitted
    call (GRPO uses the population std and ``eps = 1e-6``). ``model`` and
    ``settings`` as for :func:`sample_rollouts`. Returns shape ``(trials,)``.

    >>> g = simulate_gradient(jax.random.key(0), 0.5, 8, 1000, estimator="drgrpo")
    >>> g.shape
    (1000,)
    """
    n = check_int("n", n, minimum=2)
    trials = check_int("trials", trials, minimum=1)
    check_choice("estimator", estimator, ADVANTAGE_ESTIMATORS)
    m = _model(model, settings)
    _check_model(m)
    check_probabilities("p", p)
    return _simulate_gradient(
        key, p, m.numbers(), n=n, trials=trials, estimator=estimator,
        reward=m.reward, z_dist=m.z_dist, dtype=_float_dtype(dtype),
    )


def _masked_group_gradient(key, p, n_real, numbers, *, n_max, trials, reward,
                           z_dist, dtype, estimators):
    """G of ``estimators`` (stacked) for one prompt padded to ``n_max``."""
    r, z = _draw(key, p, numbers, n=n_max, trials=trials, reward=reward,
                 z_dist=z_dist, dtype=dtype)
    mask = jnp.broadcast_to(jnp.arange(n_max) < n_real, r.shape)
    r = jnp.where(mask, r, 0)
    return jnp.stack([group_gradient(r, z, e, mask=mask) for e in estimators])


@functools.partial(
    jax.jit,
    static_argnames=("n_max", "trials", "estimator", "reward", "z_dist", "dtype"),
)
def _simulate_batch(key, p, n, numbers, *, n_max, trials, estimator, reward,
                    z_dist, dtype):
    keys = jax.random.split(key, p.shape[0])
    z_mean, z_var, *shared = numbers

    def one(k, pq, nq, zm, zv):
        return _masked_group_gradient(
            k, pq, nq, (zm, zv, *shared), n_max=n_max, trials=trials,
            reward=reward, z_dist=z_dist, dtype=dtype, estimators=(estimator,))[0]

    return jax.vmap(one)(keys, p, n, z_mean, z_var).T  # (trials, B)


def _check_counts(n_arr, p_shape, n_max):
    """Validate per-prompt counts; returns the static ``n_max``."""
    if n_arr.shape != p_shape:
        raise ValueError(f"n must have the shape of p {p_shape}; got {n_arr.shape}")
    if is_concrete(n_arr):
        if not jnp.issubdtype(n_arr.dtype, jnp.integer):
            raise ValueError(f"n must be integer; got dtype {n_arr.dtype}")
        if n_arr.size and int(jnp.min(n_arr)) < 2:
            raise ValueError(f"n must be >= 2 everywhere; got min {int(n_arr.min())}")
    if n_max is None:
        if not is_concrete(n_arr):
            raise ValueError("n_max is required when n is traced (inside jit/vmap)")
        n_max = int(jnp.max(n_arr))
    n_max = check_int("n_max", n_max, minimum=2)
    if is_concrete(n_arr) and int(jnp.max(n_arr)) > n_max:
        raise ValueError(f"n_max={n_max} is below max(n)={int(jnp.max(n_arr))}")
    return n_max


def simulate_batch(
    key: jax.Array,
    p: ArrayLike,
    n: ArrayLike,
    trials: int,
    model: RolloutModel | None = None,
    *,
    estimator: str = "rloo",
    n_max: int | None = None,
    dtype=jnp.float32,
    **settings,
) -> jax.Array:
    """Group gradients for a batch of prompts with per-prompt rollout counts.

    Prompt ``q`` has success probability ``p[q]`` and ``n[q]`` rollouts; its
    groups are padded to ``n_max`` (default ``max(n)``) and masked, so one
    compiled program serves any allocation. The model's ``z_mean`` and
    ``z_var`` may be per prompt (shape ``(B,)``): a non-constant ``z_var``
    makes ``Z`` heteroscedastic across prompts (breaks the equal ``sigma_Z``
    of the paper's App. B.3). Prompts are independent.

    Returns:
      ``G`` of shape ``(trials, B)``.

    >>> g = simulate_batch(jax.random.key(0), jnp.array([0.2, 0.5]),
    ...                    jnp.array([2, 6]), 100, estimator="rloo")
    >>> g.shape
    (100, 2)
    """
    p = as_float_array("p", p)
    if p.ndim != 1:
        raise ValueError(f"p must have shape (B,); got {p.shape}")
    check_probabilities("p", p)
    n_arr = jnp.asarray(n)
    n_max = _check_counts(n_arr, p.shape, n_max)
    trials = check_int("trials", trials, minimum=1)
    check_choice("estimator", estimator, ADVANTAGE_ESTIMATORS)
    m = _model(model, settings)
    _check_model(m)
    dtype = _float_dtype(dtype)
    m = m._replace(z_mean=jnp.broadcast_to(jnp.asarray(m.z_mean, dtype), p.shape),
                   z_var=jnp.broadcast_to(jnp.asarray(m.z_var, dtype), p.shape))
    return _simulate_batch(
        key, p.astype(dtype), n_arr, m.numbers(), n_max=n_max, trials=trials,
        estimator=estimator, reward=m.reward, z_dist=m.z_dist, dtype=dtype,
    )


@functools.partial(
    jax.jit, static_argnames=("n_max", "trials", "reward", "z_dist", "dtype")
)
def simulate_cells(
    keys: jax.Array,
    p: jax.Array,
    n: jax.Array,
    estimator_index: jax.Array,
    z_mean: jax.Array,
    z_var: jax.Array,
    corr: jax.Array,
    *,
    n_max: int,
    trials: int,
    reward: str = "pm1",
    z_dist: str = "normal",
    dtype=jnp.float32,
    df: ArrayLike = 8.0,
    concentration: ArrayLike = 2.0,
    reward_sd: ArrayLike = 1.0,
) -> jax.Array:
    """Many independent simulation cells in one compiled program.

    Cell ``k`` draws ``trials`` groups of ``n[k] <= n_max`` rollouts (padded to
    ``n_max`` and masked) with key ``keys[k]``, success probability ``p[k]``,
    ``Z`` mean/variance ``z_mean[k]``/``z_var[k]`` and correlation ``corr[k]``,
    and returns ``G`` for the estimator
    ``ADVANTAGE_ESTIMATORS[estimator_index[k]]`` (0 GRPO, 1 Dr. GRPO, 2 RLOO).
    All per-cell arguments have shape ``(K,)``; the result is ``(K, trials)``.
    The remaining settings are those of :class:`RolloutModel`. This is the
    workhorse of ``vipcore verify``: one compilation per
    ``(n_max, trials, reward, z_dist)`` serves any grid of cells. No argument
    checks (it is the jittable core; see :func:`simulate_gradient`).
    """

    def one(k, pq, nq, eq, zm, zv, c):
        gs = _masked_group_gradient(
            k, pq, nq, (zm, zv, c, df, concentration, reward_sd), n_max=n_max,
            trials=trials, reward=reward, z_dist=z_dist, dtype=dtype,
            estimators=ADVANTAGE_ESTIMATORS)
        return gs[eq]

    return jax.vmap(one)(keys, p, n, estimator_index, z_mean, z_var, corr)
