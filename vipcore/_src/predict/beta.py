r"""A discounted Beta–Bernoulli posterior per prompt, with an embedding prior.

Each prompt ``q`` keeps its own binomial evidence, successes ``s_q`` and
failures ``f_q`` summed over the rollouts it received, discounted by a factor
``lambda`` per update step so that the posterior follows the policy's drift
(``lambda = 1``: no forgetting). The prior for a prompt comes from a model
over all prompts (the *prior model*: a GP with binomial noise on the
embeddings, ridge regression, or the pooled success rate when there are no
embeddings), worth ``kappa`` pseudo-rollouts, so that a prompt never seen, or
seen long ago, borrows strength from similar prompts:

.. math::

    p_q \mid \text{data} \sim \operatorname{Beta}(\alpha_q, \beta_q), \quad
    \alpha_q = \kappa \mu_q + \sum_t \lambda^{T - t} s_{q,t}, \quad
    \beta_q = \kappa (1 - \mu_q) + \sum_t \lambda^{T - t} f_{q,t},

where ``T`` is the current step, ``t`` the step of each observation and
``mu_q`` the prior model's prediction (clipped to ``[eps, 1 - eps]``). The
prediction is the posterior mean ``alpha/(alpha + beta)`` and the posterior
variance ``alpha beta / ((alpha + beta)^2 (alpha + beta + 1))`` is exposed
through the predictor protocol's ``variance``.

This is the model of MoPPS (Qu et al., 2025, "Can Prompt Difficulty be
Online Predicted for Accelerating RL Finetuning of Reasoning Models?"), whose
posteriors decay toward a fixed prior, with the fixed prior replaced by an
embedding model; the allocation it feeds is problem (5) of Nguyen et al.
(2025), "Adaptive Rollout Allocation for Online Reinforcement Learning with
Verifiable Rewards". Graded rewards in ``[0, 1]`` enter as fractional
evidence (``s = n y``, ``f = n (1 - y)`` for a mean reward ``y`` over ``n``
rollouts).

The discount is applied lazily: each prompt stores the step of its last
update, and ``lambda^(T - t)`` is evaluated when it is read, so an update
costs ``O(B)`` (plus the prior model's update), not ``O(Q)``.

:func:`pooled_predictor` is the prior model without embeddings (and a
baseline of its own): the discounted, rollout-weighted mean of every
observation so far.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vipcore._src._checks import as_float_array, check_choice, check_int
from vipcore._src.predict._batch import pool
from vipcore._src.predict._state_io import check_kinds
from vipcore._src.predict.protocol import Predictor

__all__ = [
    "PRIOR_MODELS",
    "BetaState",
    "PooledState",
    "beta_predictor",
    "pooled_predictor",
    "beta_posterior",
    "check_beta_state",
    "check_pooled_state",
]

#: Prior models of :func:`beta_predictor` (``"auto"``: ``"gp_binomial"`` when
#: embeddings are given, ``"pooled"`` otherwise).
PRIOR_MODELS = ("auto", "gp_binomial", "ridge", "pooled")


class PooledState(NamedTuple):
    """State of :func:`pooled_predictor`.

    Attributes:
      count: ``(Q,)`` int32, how many updates observed each prompt.
      weighted_sum: scalar, discounted ``sum w * observation``.
      weight: scalar, discounted ``sum w`` (rollouts).
    """

    count: jax.Array
    weighted_sum: jax.Array
    weight: jax.Array


class BetaState(NamedTuple):
    """State of :func:`beta_predictor` (a pytree).

    Attributes:
      successes: ``(Q,)`` discounted success evidence ``sum lambda^(t' - t) s``
        as of step ``last``.
      failures: ``(Q,)`` discounted failure evidence, as of step ``last``.
      last: ``(Q,)`` int32, the step at which each prompt's evidence was last
        brought up to date (0 = never observed).
      clock: int32 scalar, the number of updates so far (the current step).
      prior: the state of the prior model (a :class:`GPState`,
        :class:`RidgeState` or :class:`PooledState`).
    """

    successes: jax.Array
    failures: jax.Array
    last: jax.Array
    clock: jax.Array
    prior: Any


def _check_discount(discount) -> float:
    d = float(discount)
    if not 0 <= d <= 1:
        raise ValueError(f"discount must lie in [0, 1]; got {discount!r}")
    return d


def _default_dtype(embeddings):
    if embeddings is None:
        return jnp.result_type(float)
    return as_float_array("embeddings", embeddings).dtype


def pooled_predictor(
    *, link: str = "sigmoid", discount: float = 1.0, prior: float | None = None,
    prior_weight: float = 1.0,
) -> Predictor:
    r"""The pooled mean of all observations as a :class:`Predictor`.

    .. math::

        \hat p_q = \frac{w_0 p_0 + \sum_t \lambda^{T-t} \sum_{i \in B_t} n_i y_i}
                        {w_0 + \sum_t \lambda^{T-t} \sum_{i \in B_t} n_i},

    the same for every prompt (``p_0 = 1/2``, or 0 for reward variances,
    worth ``w_0 = prior_weight`` rollouts). Needs no embeddings.

    >>> pred = pooled_predictor()
    >>> s = pred.init(3, None)
    >>> s = pred.update(s, jnp.array([0, 1]), jnp.array([1.0, 0.5]),
    ...                 jnp.array([3.0, 4.0]))
    >>> round(float(pred.predict(s, jnp.array([2]))[0]), 4)  # (0.5 + 5) / 8
    0.6875
    """
    from vipcore._src.predict.gp import LINKS

    check_choice("link", link, LINKS)
    lam = _check_discount(discount)
    p0 = (0.5 if link == "sigmoid" else 0.0) if prior is None else float(prior)
    w0 = float(prior_weight)
    if not (np.isfinite(w0) and w0 > 0):
        raise ValueError(f"prior_weight must be > 0; got {prior_weight!r}")

    def init_fn(num_prompts, embeddings=None):
        q = check_int("num_prompts", num_prompts, minimum=1)
        dt = _default_dtype(embeddings)
        return PooledState(jnp.zeros((q,), jnp.int32), jnp.zeros((), dt),
                           jnp.zeros((), dt))

    def update_fn(state, idx, obs, weights):
        q = state.count.shape[0]
        uniq, _, valid, _ = pool(idx, obs, weights, q)
        count = state.count.at[jnp.where(valid, uniq, q)].add(1, mode="drop")
        dt = state.weight.dtype
        w = jnp.where(weights > 0, weights, 0).astype(dt)
        s = jnp.sum(w * jnp.where(weights > 0, obs, 0).astype(dt))
        return PooledState(count, lam * state.weighted_sum + s,
                           lam * state.weight + jnp.sum(w))

    def predict_fn(state, idx):
        dt = state.weight.dtype
        m = (w0 * p0 + state.weighted_sum) / (w0 + state.weight)
        return jnp.full(jnp.shape(idx), m, dt)

    def grow_fn(state, num_new, embeddings=None):
        return state._replace(count=jnp.concatenate(
            [state.count, jnp.zeros((num_new,), jnp.int32)]))

    return Predictor(init=init_fn, update=jax.jit(update_fn),
                     predict=jax.jit(predict_fn), grow=grow_fn)


def _prior_predictor(name: str, *, eps, bandwidth, jitter, block_size, seed,
                     ridge_capacity, ridge_lam, discount) -> Predictor:
    from vipcore._src.predict import baselines, gp

    if name == "gp_binomial":
        return gp.gp_predictor(noise="binomial", eps=eps, bandwidth=bandwidth,
                               jitter=jitter, block_size=block_size, seed=seed)
    if name == "ridge":
        return baselines.ridge_predictor(capacity=ridge_capacity, lam=ridge_lam)
    return pooled_predictor(discount=discount)


def beta_posterior(state: BetaState, idx, prior_mean, discount, strength, eps):
    """``(alpha, beta)`` of the posterior of prompts ``idx`` (pure, jittable)."""
    dt = state.successes.dtype
    mu = jnp.clip(prior_mean.astype(dt), eps, 1 - eps)
    age = (state.clock - state.last[idx]).astype(dt)
    decay = jnp.power(jnp.asarray(discount, dt), age)
    alpha = strength * mu + decay * state.successes[idx]
    beta = strength * (1 - mu) + decay * state.failures[idx]
    return alpha, beta


def beta_predictor(
    *,
    link: str = "sigmoid",
    discount: float = 0.95,
    prior_strength: float = 4.0,
    prior: str = "auto",
    eps: float = 1e-2,
    bandwidth: float | str = "median",
    jitter: float | None = None,
    block_size: int | None = None,
    seed: int = 0,
    ridge_capacity: int = 1024,
    ridge_lam: float = 1.0,
) -> Predictor:
    r"""The discounted Beta–Bernoulli posterior as a :class:`Predictor`.

    Args:
      link: ``"sigmoid"`` only (the model is of success probabilities; graded
        rewards in [0, 1] are fine).
      discount: ``lambda`` in ``[0, 1]``, the factor applied to a prompt's
        evidence per update step (1 = no forgetting).
      prior_strength: ``kappa > 0``, the prior model's weight in rollouts.
      prior: the prior model, one of :data:`PRIOR_MODELS`.
      eps: the prior mean is clipped to ``[eps, 1 - eps]``; also the GP's
        clipping ``epsilon``.
      bandwidth, jitter, block_size, seed: the GP prior's settings.
      ridge_capacity, ridge_lam: the ridge prior's settings.

    ``init(num_prompts, embeddings)``: embeddings are optional with
    ``prior="auto"`` or ``"pooled"``.

    >>> pred = beta_predictor(discount=1.0, prior_strength=2.0, prior="pooled")
    >>> s = pred.init(2, None)
    >>> s = pred.update(s, jnp.array([0]), jnp.array([0.75]), jnp.array([4.0]))
    >>> # prompt 0: Beta(2 * mu + 3, 2 * (1 - mu) + 1), mu = (0.5 + 3) / 5 = 0.7
    >>> [round(float(v), 4) for v in pred.predict(s, jnp.array([0, 1]))]
    [0.7333, 0.7]
    """
    if link != "sigmoid":
        raise ValueError("the beta predictor models success probabilities: link "
                         f"must be 'sigmoid'; got {link!r}")
    check_choice("prior", prior, PRIOR_MODELS)
    lam = _check_discount(discount)
    kappa = float(prior_strength)
    if not (np.isfinite(kappa) and kappa > 0):
        raise ValueError(f"prior_strength must be > 0; got {prior_strength!r}")
    if not 0 < eps < 0.5:
        raise ValueError(f"eps must lie in (0, 0.5); got {eps!r}")
    opts = dict(eps=eps, bandwidth=bandwidth, jitter=jitter,
                block_size=block_size, seed=seed, ridge_capacity=ridge_capacity,
                ridge_lam=ridge_lam, discount=lam)
    models = {name: _prior_predictor(name, **opts) for name in PRIOR_MODELS[1:]}
    return _beta_functions(models, prior, lam, kappa, eps)


def _model_of(models, prior_state):
    """The prior model whose state ``prior_state`` is (static dispatch)."""
    from vipcore._src.predict.baselines import RidgeState
    from vipcore._src.predict.gp import GPState

    for name, cls in (("gp_binomial", GPState), ("ridge", RidgeState),
                      ("pooled", PooledState)):
        if isinstance(prior_state, cls):
            return models[name]
    raise ValueError(f"unknown prior state {type(prior_state).__name__}")


def _beta_functions(models, prior, lam, kappa, eps) -> Predictor:
    def init_fn(num_prompts, embeddings=None):
        q = check_int("num_prompts", num_prompts, minimum=1)
        name = prior
        if name == "auto":
            name = "pooled" if embeddings is None else "gp_binomial"
        if name != "pooled" and embeddings is None:
            raise ValueError(f"the beta predictor's prior {name!r} needs (Q, d) "
                             "prompt embeddings (or use prior='pooled')")
        inner = models[name].init(q, embeddings)
        dt = _default_dtype(embeddings)
        z = jnp.zeros((q,), dt)
        return BetaState(z, z, jnp.zeros((q,), jnp.int32),
                         jnp.zeros((), jnp.int32), inner)

    def _posterior(state, idx):
        mu = _model_of(models, state.prior).predict(state.prior, idx)
        return beta_posterior(state, idx, mu, lam, kappa, eps)

    def update_fn(state, idx, obs, weights):
        q = state.successes.shape[0]
        dt = state.successes.dtype
        uniq, pooled, valid, wsum = pool(idx, obs.astype(dt), weights.astype(dt), q)
        clock = state.clock + 1
        cols = jnp.where(valid, uniq, 0)
        rows = jnp.where(valid, uniq, q)
        decay = jnp.power(jnp.asarray(lam, dt),
                          (clock - state.last[cols]).astype(dt))
        succ = decay * state.successes[cols] + pooled * wsum
        fail = decay * state.failures[cols] + (1 - pooled) * wsum
        model = _model_of(models, state.prior)
        return BetaState(
            state.successes.at[rows].set(succ, mode="drop"),
            state.failures.at[rows].set(jnp.maximum(fail, 0), mode="drop"),
            state.last.at[rows].set(clock, mode="drop"), clock,
            model.update(state.prior, idx, obs, weights))

    def predict_fn(state, idx):
        a, b = _posterior(state, idx)
        return a / (a + b)

    def variance_fn(state, idx):
        a, b = _posterior(state, idx)
        s = a + b
        return a * b / (s * s * (s + 1))

    def grow_fn(state, num_new, embeddings=None):
        z = jnp.zeros((num_new,), state.successes.dtype)
        model = _model_of(models, state.prior)
        return BetaState(
            jnp.concatenate([state.successes, z]),
            jnp.concatenate([state.failures, z]),
            jnp.concatenate([state.last, jnp.zeros((num_new,), jnp.int32)]),
            state.clock, model.grow(state.prior, num_new, embeddings))

    # jitted, so that eager callers (the Planner) run one compiled program per
    # call instead of dispatching every operation; inside a user's jit or
    # scan they inline as usual.
    return Predictor(init=init_fn, update=jax.jit(update_fn),
                     predict=jax.jit(predict_fn), variance=jax.jit(variance_fn),
                     grow=grow_fn)


def check_pooled_state(s: PooledState, options: dict) -> None:
    """Raise ``ValueError`` unless a (loaded) :class:`PooledState` is valid."""
    if not (s.count.ndim == 1 and s.weighted_sum.shape == () and s.weight.shape == ()):
        raise ValueError("inconsistent array shapes in the pooled state")
    check_kinds("pooled state", s, ("weighted_sum", "weight"), ("count",))
    if not (np.all(np.asarray(s.count) >= 0) and float(s.weight) >= 0
            and np.isfinite(float(s.weighted_sum))):
        raise ValueError("pooled state: counts and weights must be >= 0")


def check_beta_state(s: BetaState, options: dict) -> None:
    """Raise ``ValueError`` unless a (loaded) :class:`BetaState` is valid."""
    q = s.successes.shape[0] if s.successes.ndim == 1 else -1
    if not (q >= 1 and s.failures.shape == (q,) and s.last.shape == (q,)
            and s.clock.shape == ()):
        raise ValueError("inconsistent array shapes in the beta state")
    check_kinds("beta state", s, ("successes", "failures"), ("last", "clock"))
    ev = np.concatenate([np.asarray(s.successes), np.asarray(s.failures)])
    if not (np.all(np.isfinite(ev)) and np.all(ev >= 0)):
        raise ValueError("beta state: evidence must be finite and >= 0")
    last, clock = np.asarray(s.last), int(s.clock)
    if not (np.all(last >= 0) and np.all(last <= clock)):
        raise ValueError("beta state: steps must lie in [0, clock]")
    _check_prior_state(s.prior, q, options)


def _check_prior_state(prior, q, options) -> None:
    """The prior model's state: of the configured kind, for ``q`` prompts, and
    valid by its own check."""
    from vipcore._src.predict import baselines, gp

    kinds = {gp.GPState: ("gp_binomial", gp.check_state,
                          {"bandwidth": options.get("bandwidth"),
                           "jitter": options.get("jitter")}),
             baselines.RidgeState: ("ridge", baselines.check_ridge_state,
                                    {"capacity": options.get("ridge_capacity"),
                                     "lam": options.get("ridge_lam")}),
             PooledState: ("pooled", check_pooled_state, {})}
    kind = kinds.get(type(prior))
    if kind is None:
        raise ValueError(f"beta state: unknown prior state {type(prior).__name__}")
    name, check, inner = kind
    want = options.get("prior", "auto")
    if want not in ("auto", name):
        raise ValueError(f"beta state: the prior model is {name!r}, the setting "
                         f"says {want!r}")
    check(prior, {k: v for k, v in inner.items() if v is not None})
    if np.shape(prior[0])[0] != q:
        raise ValueError("beta state: the prior model has a different number of "
                         "prompts")
