r"""Baseline success-probability predictors (the paper's Fig. 2 / Table 3).

Reference: Nguyen et al. (2025), "Adaptive Rollout Allocation for Online
Reinforcement Learning with Verifiable Rewards", Fig. 2 and Table 3.

Both share the GP's interface (pure functions of a NamedTuple pytree):
``*_init``, ``*_update(state, idx, observations, *, weights=None)``,
``*_predict(state, idx)``. Observations are success rates in [0, 1] (or
reward variances, with ``link="softplus"``); repeated indices in one batch
are pooled with ``weights`` (rollout counts) exactly as in :mod:`gp`.

* **Moving average** (per prompt): the mean of each prompt's last ``window``
  observations; prompts never observed get the pooled mean of the most recent
  batch (``1/2`` before any observation).

  .. math:: \hat p_q = \frac{1}{|W_q|}\sum_{s \in W_q} \hat p_{q,s}.

* **Ridge regression** on the embeddings, refitted after every batch on the
  most recent ``capacity`` (1024) observations (one per prompt and batch):

  .. math::

      (w, b) = \arg\min_{w, b} \sum_i (y_i - x_i^\top w - b)^2
          + \lambda \lVert w \rVert^2, \qquad
      \hat p_q = \operatorname{clip}(x_q^\top w + b, 0, 1).

  (The paper's code uses an unregularised linear regression; ``lam=1``, the
  scikit-learn default, keeps the ``d = 384`` fit on 1024 points stable.)

Neither baseline clips predictions away from 0 and 1: they are used as they
are (the allocator accepts ``p in [0, 1]``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from vipcore._src._checks import as_float_array, check_choice, check_int
from vipcore._src.predict._batch import check_idx, pool, prepare_batch
from vipcore._src.predict._state_io import check_kinds
from vipcore._src.predict.gp import LINKS
from vipcore._src.predict.protocol import Predictor

__all__ = [
    "MovingAverageState",
    "RidgeState",
    "moving_average_init",
    "moving_average_update",
    "moving_average_predict",
    "ridge_init",
    "ridge_update",
    "ridge_predict",
    "moving_average_predictor",
    "ridge_predictor",
    "check_moving_average_state",
    "check_ridge_state",
]


class MovingAverageState(NamedTuple):
    """Per-prompt ring buffers of recent observations.

    Attributes:
      history: ``(Q, window)`` the last ``window`` pooled observations of each
        prompt (slot ``count % window`` is written next).
      count: ``(Q,)`` int32, how many batches have observed each prompt.
      fallback: scalar prediction for never-observed prompts: the pooled
        (``weights``-weighted) mean observation of the most recent batch.
    """

    history: jax.Array
    count: jax.Array
    fallback: jax.Array


def moving_average_init(
    num_prompts: int, *, window: int = 3, dtype=jnp.float32, prior: float = 0.5
) -> MovingAverageState:
    """Empty buffers for ``num_prompts`` prompts (``window`` from the paper's
    code, ``window_size=3``).

    >>> s = moving_average_init(4, window=2)
    >>> s = moving_average_update(s, [1, 1, 2], [1.0, 0.0, 0.25])  # 1 pooled
    >>> moving_average_predict(s, [1, 2, 3]).tolist()  # 3 never seen: batch mean
    [0.5, 0.25, 0.4166666...]
    """
    q = check_int("num_prompts", num_prompts, minimum=1)
    w = check_int("window", window, minimum=1)
    return MovingAverageState(
        jnp.zeros((q, w), dtype), jnp.zeros((q,), jnp.int32),
        jnp.asarray(prior, dtype),
    )


@jax.jit
def _ma_update(state, idx, obs, weights):
    q, window = state.history.shape
    dtype = state.history.dtype  # the state's precision, whatever obs is in
    obs, weights = jnp.asarray(obs, dtype), jnp.asarray(weights, dtype)
    uniq, pooled, valid, _ = pool(idx, obs, weights, q)
    rows = jnp.where(valid, uniq, q)
    slot = state.count[jnp.where(valid, uniq, 0)] % window
    history = state.history.at[rows, slot].set(pooled, mode="drop")
    count = state.count.at[rows].add(1, mode="drop")
    wv = jnp.where(weights > 0, weights, 0)
    wsum = jnp.sum(wv)
    osum = jnp.sum(wv * jnp.where(weights > 0, obs, 0))
    fallback = jnp.where(wsum > 0, osum / jnp.where(wsum > 0, wsum, 1),
                         state.fallback)
    return MovingAverageState(history, count, fallback.astype(state.fallback.dtype))


def moving_average_update(
    state: MovingAverageState,
    idx: ArrayLike,
    observations: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    link: str = "sigmoid",
) -> MovingAverageState:
    """Append one batch of observations (validated, padded, jitted)."""
    check_choice("link", link, LINKS)
    batch = prepare_batch(state.history.shape[0], idx, observations, weights,
                           link, state.history.dtype)
    if batch is None:
        return state
    return _ma_update(state, *batch)


@jax.jit
def _ma_predict(state, idx):
    window = state.history.shape[1]
    c = state.count[idx]
    k = jnp.minimum(c, window)
    used = jnp.arange(window)[None, :] < k[:, None]
    s = jnp.sum(jnp.where(used, state.history[idx], 0), axis=1)
    return jnp.where(c > 0, s / jnp.maximum(k, 1).astype(s.dtype), state.fallback)


def moving_average_predict(state: MovingAverageState, idx: ArrayLike) -> jax.Array:
    """Mean of each prompt's last ``window`` observations (fallback if none)."""
    idx_np = check_idx("idx", idx, state.history.shape[0])
    return _ma_predict(state, jnp.asarray(idx_np))


class RidgeState(NamedTuple):
    """Ridge regression refitted on a ring buffer of recent observations.

    Attributes:
      embeddings: ``(Q, d)`` prompt embeddings.
      buf_idx: ``(capacity,)`` int32 prompt index of each stored observation.
      buf_y: ``(capacity,)`` stored observations.
      buf_valid: ``(capacity,)`` bool, slot holds an observation.
      ptr: int32 scalar, total observations stored so far (next slot
        ``ptr % capacity``).
      coef: ``(d,)`` fitted weights ``w``.
      intercept: scalar ``b`` (``prior`` before any observation).
      lam: scalar ridge penalty ``lambda``.
    """

    embeddings: jax.Array
    buf_idx: jax.Array
    buf_y: jax.Array
    buf_valid: jax.Array
    ptr: jax.Array
    coef: jax.Array
    intercept: jax.Array
    lam: jax.Array


def ridge_init(
    embeddings: ArrayLike,
    *,
    capacity: int = 1024,
    lam: float = 1.0,
    prior: float = 0.5,
) -> RidgeState:
    """Empty buffer of ``capacity`` observations over ``(Q, d)`` embeddings."""
    x = as_float_array("embeddings", embeddings)
    if x.ndim != 2:
        raise ValueError(f"embeddings must have shape (Q, d); got {x.shape}")
    n = check_int("capacity", capacity, minimum=1)
    if not lam > 0:
        raise ValueError(f"lam must be > 0; got {lam!r}")
    dt = x.dtype
    return RidgeState(
        x, jnp.zeros((n,), jnp.int32), jnp.zeros((n,), dt), jnp.zeros((n,), bool),
        jnp.zeros((), jnp.int32), jnp.zeros((x.shape[1],), dt),
        jnp.asarray(prior, dt), jnp.asarray(lam, dt),
    )


@jax.jit
def _ridge_update(state, idx, obs, weights):
    q = state.embeddings.shape[0]
    cap = state.buf_y.shape[0]
    uniq, pooled, valid, _ = pool(idx, obs, weights, q)  # valid entries first
    nv = jnp.sum(valid.astype(jnp.int32))
    k = jnp.arange(uniq.shape[0])
    keep = valid & (k >= nv - cap)  # at most the last `cap` of this batch
    pos = jnp.where(keep, (state.ptr + k) % cap, cap)
    buf_idx = state.buf_idx.at[pos].set(uniq, mode="drop")
    buf_y = state.buf_y.at[pos].set(pooled, mode="drop")
    buf_valid = state.buf_valid.at[pos].set(True, mode="drop")
    ptr = state.ptr + nv
    # weighted (0/1) centred ridge fit, d x d normal equations
    v = buf_valid.astype(buf_y.dtype)
    x = state.embeddings[buf_idx]
    nvalid = jnp.maximum(jnp.sum(v), 1)
    xm = jnp.sum(v[:, None] * x, axis=0) / nvalid
    ym = jnp.sum(v * buf_y) / nvalid
    xc = (x - xm[None, :]) * v[:, None]
    yc = (buf_y - ym) * v
    hp = jax.lax.Precision.HIGHEST
    a = jnp.dot(xc.T, xc, precision=hp) + state.lam * jnp.eye(x.shape[1], dtype=x.dtype)
    coef = jax.scipy.linalg.solve(a, jnp.dot(xc.T, yc, precision=hp), assume_a="pos")
    intercept = ym - jnp.dot(xm, coef, precision=hp)
    return state._replace(buf_idx=buf_idx, buf_y=buf_y, buf_valid=buf_valid,
                          ptr=ptr, coef=coef, intercept=intercept)


def ridge_update(
    state: RidgeState,
    idx: ArrayLike,
    observations: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    link: str = "sigmoid",
) -> RidgeState:
    """Store one batch (one pooled observation per prompt) and refit."""
    check_choice("link", link, LINKS)
    batch = prepare_batch(state.embeddings.shape[0], idx, observations, weights,
                           link, state.embeddings.dtype)
    if batch is None:
        return state
    return _ridge_update(state, *batch)


@jax.jit
def _ridge_predict(state, idx, upper):
    y = jnp.dot(state.embeddings[idx], state.coef,
                precision=jax.lax.Precision.HIGHEST) + state.intercept
    return jnp.clip(y, 0, upper)


def ridge_predict(
    state: RidgeState, idx: ArrayLike, *, link: str = "sigmoid"
) -> jax.Array:
    """``clip(x_q . w + b, 0, 1)`` (sigmoid link) or ``max(., 0)`` (softplus)."""
    check_choice("link", link, LINKS)
    idx_np = check_idx("idx", idx, state.embeddings.shape[0])
    upper = jnp.asarray(1.0 if link == "sigmoid" else jnp.inf, state.coef.dtype)
    return _ridge_predict(state, jnp.asarray(idx_np), upper)


def moving_average_predictor(
    *, link: str = "sigmoid", window: int = 3, prior: float | None = None
) -> Predictor:
    """The moving average as a :class:`Predictor` (needs no embeddings).

    ``prior`` (the prediction before any observation) defaults to 1/2 for
    success probabilities and 0 for reward variances.

    >>> pred = moving_average_predictor(window=2)
    >>> s = pred.init(3, None)
    >>> s = pred.update(s, jnp.array([0, 0]), jnp.array([1.0, 0.0]),
    ...                 jnp.array([4.0, 4.0]))
    >>> pred.predict(s, jnp.array([0, 1])).tolist()
    [0.5, 0.5]
    """
    check_choice("link", link, LINKS)
    window = check_int("window", window, minimum=1)
    prior = (0.5 if link == "sigmoid" else 0.0) if prior is None else float(prior)

    def init_fn(num_prompts, embeddings=None):
        dtype = jnp.float32 if embeddings is None else as_float_array(
            "embeddings", embeddings).dtype
        return moving_average_init(num_prompts, window=window, dtype=dtype,
                                   prior=prior)

    def grow_fn(state, num_new, embeddings=None):
        return state._replace(
            history=jnp.concatenate([state.history, jnp.zeros(
                (num_new, state.history.shape[1]), state.history.dtype)]),
            count=jnp.concatenate([state.count, jnp.zeros((num_new,), jnp.int32)]))

    return Predictor(init=init_fn, update=_ma_update, predict=_ma_predict,
                     grow=grow_fn)


def ridge_predictor(
    *, link: str = "sigmoid", capacity: int = 1024, lam: float = 1.0,
    prior: float | None = None,
) -> Predictor:
    """Ridge regression on the embeddings as a :class:`Predictor`."""
    check_choice("link", link, LINKS)
    capacity = check_int("capacity", capacity, minimum=1)
    if not lam > 0:
        raise ValueError(f"lam must be > 0; got {lam!r}")
    prior = (0.5 if link == "sigmoid" else 0.0) if prior is None else float(prior)
    upper = 1.0 if link == "sigmoid" else float("inf")

    def init_fn(num_prompts, embeddings):
        if embeddings is None:
            raise ValueError("the ridge predictor needs (Q, d) prompt embeddings")
        state = ridge_init(embeddings, capacity=capacity, lam=lam, prior=prior)
        if state.embeddings.shape[0] != num_prompts:
            raise ValueError(f"embeddings must have {num_prompts} rows; got "
                             f"{state.embeddings.shape[0]}")
        return state

    def predict_fn(state, idx):
        return _ridge_predict(state, idx, jnp.asarray(upper, state.coef.dtype))

    def grow_fn(state, num_new, embeddings):
        d = state.embeddings.shape[1]
        x = None if embeddings is None else as_float_array("embeddings", embeddings)
        if x is None or x.shape != (num_new, d):
            raise ValueError(f"the ridge predictor needs ({num_new}, {d}) "
                             "embeddings for the new prompts")
        return state._replace(embeddings=jnp.concatenate(
            [state.embeddings, x.astype(state.embeddings.dtype)]))

    return Predictor(init=init_fn, update=_ridge_update, predict=predict_fn,
                     grow=grow_fn)


def _finite(name, *arrays):
    for a in arrays:
        if not np.all(np.isfinite(np.asarray(a))):
            raise ValueError(f"{name} must be finite")


def check_moving_average_state(s: MovingAverageState, options) -> None:
    """Raise ``ValueError`` unless a (loaded) :class:`MovingAverageState` is
    valid and has the ``window`` of ``options``."""
    if not (s.history.ndim == 2 and s.history.shape[0] >= 1
            and s.count.shape == s.history.shape[:1] and s.fallback.shape == ()):
        raise ValueError("inconsistent array shapes in the moving-average state")
    check_kinds("moving-average state", s, ("history", "fallback"), ("count",))
    _finite("moving-average state", s.history, s.fallback)
    if np.any(np.asarray(s.count) < 0):
        raise ValueError("moving-average state: counts must be >= 0")
    window = options.get("window")
    if window is not None and s.history.shape[1] != window:
        raise ValueError(f"moving-average state: window {s.history.shape[1]} "
                         f"differs from the setting {window}")


def check_ridge_state(s: RidgeState, options) -> None:
    """Raise ``ValueError`` unless a (loaded) :class:`RidgeState` is valid and
    agrees with the ``capacity`` and ``lam`` of ``options``."""
    n = s.buf_y.shape[0] if s.buf_y.ndim == 1 else -1
    if not (s.embeddings.ndim == 2 and s.embeddings.shape[0] >= 1 and n >= 1
            and s.buf_idx.shape == (n,) and s.buf_valid.shape == (n,)
            and s.ptr.shape == () and s.coef.shape == s.embeddings.shape[1:]
            and s.intercept.shape == () and s.lam.shape == ()):
        raise ValueError("inconsistent array shapes in the ridge state")
    check_kinds("ridge state", s, ("embeddings", "buf_y", "coef", "intercept", "lam"),
                ("buf_idx", "ptr"))
    if np.asarray(s.buf_valid).dtype != np.bool_:
        raise ValueError("ridge state: buf_valid must be boolean")
    _finite("ridge state", s.embeddings, s.buf_y, s.coef, s.intercept, s.lam)
    q = s.embeddings.shape[0]
    bi = np.asarray(s.buf_idx)
    if np.any((bi < 0) | (bi >= q)) or int(s.ptr) < 0 or not float(s.lam) > 0:
        raise ValueError("ridge state: indices, pointer or penalty out of range")
    for key, val in (("capacity", n), ("lam", float(s.lam))):
        want = options.get(key)
        if want is not None and not np.isclose(want, val, rtol=1e-6):
            raise ValueError(f"ridge state: {key} {val} differs from the setting "
                             f"{want}")
