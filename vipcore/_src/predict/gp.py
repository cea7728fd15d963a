r"""Success-probability prediction with the recursive GP of Algorithm 1.

The latent function ``g`` over prompt embeddings ``x_q`` has an RBF kernel

.. math::

    \mathcal K(x, x') = \exp\!\left(-\frac{\lVert x - x'\rVert^2}{2 h^2}\right),

with bandwidth ``h`` from the median heuristic, and a prior mean ``m_1``
(zero in the paper). After a batch ``B`` with observed latent values
``\hat g_B`` the mean becomes (Algorithm 1, lines 8 and 11)

.. math::

    m_{B^c} \leftarrow m_{B^c} + K_{B^c B}\,(K_{BB} + \delta I)^{-1}
        (\hat g_B - m_B), \qquad m_B \leftarrow \hat g_B,

and ``p_hat = sigmoid(m)``. The kernel itself is never updated, so only the
slice ``K_{., B}`` is needed at each step: it is computed from the embeddings
(``O(Q B d)`` time, ``O(Q d)`` memory) instead of caching the ``Q x Q``
matrix. A cached-kernel path (``init(..., cache_kernel=True)``) exists for
small ``Q`` and agrees with the streamed one.

Reference: Nguyen et al. (2025), "Adaptive Rollout Allocation for Online
Reinforcement Learning with Verifiable Rewards", §5.1 and Algorithm 1.

Everything is a pure function of a :class:`GPState` pytree:
:func:`init`, :func:`update` (validated, bucketed, jitted),
:func:`update_step` (the plain jittable kernel of :func:`update`),
:func:`predict` and :func:`posterior_variance`.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from vipcore._src._checks import as_float_array, check_choice, is_concrete
from vipcore._src._padding import bucket_size, pad_to
from vipcore._src.predict._batch import check_idx, pool, prepare_batch
from vipcore._src.predict.kernels import (
    MEDIAN_EXACT_MAX,
    masked_cholesky,
    median_bandwidth,
    rbf,
    rbf_kernel,
    sq_dists,
)
from vipcore._src.predict.protocol import Predictor

__all__ = [
    "LINKS",
    "NOISE_MODELS",
    "GPState",
    "median_bandwidth",
    "rbf_kernel",
    "default_jitter",
    "latent_observation",
    "bucket_size",
    "init",
    "update",
    "update_step",
    "predict",
    "posterior_variance",
    "shard",
    "gp_predictor",
    "state_is_consistent",
]

#: Link functions: ``"sigmoid"`` for success probabilities (§5.1) and
#: ``"softplus"`` for reward variances of continuous rewards (App. E.2).
LINKS = ("sigmoid", "softplus")

#: Observation-noise models of :func:`update_step`.
NOISE_MODELS = ("none", "binomial")


class GPState(NamedTuple):
    """State of the recursive GP (a pytree; every leaf is an array).

    Attributes:
      embeddings: ``(Q, d)`` prompt embeddings, centred (the column mean is
        subtracted at :func:`init`; distances do not change, and the
        ``||x||^2 + ||y||^2 - 2 x.y`` expansion loses less precision).
      sq_norms: ``(Q,)`` squared norms of the centred embeddings.
      mean: ``(Q,)`` latent mean ``m_t``; ``p_hat = sigmoid(mean)``.
      bandwidth: scalar RBF bandwidth ``h``.
      jitter: scalar ``delta`` added to the diagonal of ``K_BB``.
      kernel: ``(Q, Q)`` cached kernel matrix, or ``None`` (streamed slices).
    """

    embeddings: jax.Array
    sq_norms: jax.Array
    mean: jax.Array
    bandwidth: jax.Array
    jitter: jax.Array
    kernel: jax.Array | None = None

    @property
    def num_prompts(self) -> int:
        """``Q``, the number of prompts."""
        return int(self.mean.shape[0])


def default_jitter(dtype) -> float:
    r"""The default diagonal jitter ``delta = sqrt(finfo(dtype).eps)``.

    ``3.45e-4`` for float32 and ``1.49e-8`` for float64: it bounds the
    condition number of ``K_BB + delta I`` by about ``B / delta`` so the
    Cholesky solve is stable when prompts repeat or nearly coincide. The
    jitter acts like an observation-noise variance ``delta`` on the latent
    scale, so it changes the posterior mean by ``O(delta)``.
    """
    return float(np.sqrt(np.finfo(np.dtype(dtype)).eps))










def latent_observation(
    observations: ArrayLike, *, link: str = "sigmoid", eps: float = 1e-2
) -> jax.Array:
    r"""Map observations to the latent scale (Alg. 1 line 4; App. E.2).

    .. math::

        \text{sigmoid:}\quad \hat g = \operatorname{logit}(
            \operatorname{clip}(\hat p, \epsilon, 1 - \epsilon)),\qquad
        \text{softplus:}\quad \hat g = \log(e^{\max(s^2, \epsilon)} - 1).

    ``observations`` are success rates ``p_hat = (R_bar + 1)/2`` in [0, 1]
    for the sigmoid link and sample reward variances ``s^2 >= 0`` for the
    softplus link. The softplus inverse is evaluated as
    ``v + log(-expm1(-v))`` (no overflow for large ``v``); the guard
    ``max(s^2, eps)`` keeps it finite as ``s^2 -> 0``. Pure and jittable.

    >>> float(latent_observation(0.5))
    0.0
    """
    check_choice("link", link, LINKS)
    x = as_float_array("observations", observations)
    return _latent(x, jnp.asarray(eps, x.dtype), link)


def _latent(x, eps, link):
    if link == "sigmoid":
        p = jnp.clip(x, eps, 1 - eps)
        return jnp.log(p) - jnp.log1p(-p)
    v = jnp.maximum(x, eps)
    return v + jnp.log(-jnp.expm1(-v))


def _inverse_link(m, link):
    return jax.nn.sigmoid(m) if link == "sigmoid" else jax.nn.softplus(m)


@functools.partial(jax.jit, static_argnames=("link",))
def _predict_state(state, idx, link):
    return _inverse_link(state.mean[idx], link)


def init(
    embeddings: ArrayLike,
    *,
    bandwidth: float | str = "median",
    prior_mean: ArrayLike = 0.0,
    jitter: float | None = None,
    cache_kernel: bool = False,
    median_max_points: int = MEDIAN_EXACT_MAX,
    seed: int = 0,
) -> GPState:
    r"""Initial state: prior ``g_1 ~ GP(m_1, K)`` over the prompts.

    Args:
      embeddings: ``(Q, d)`` prompt embeddings; their floating dtype is the
        dtype of the whole state (integers become the default float).
      bandwidth: ``"median"`` (:func:`median_bandwidth`) or a positive number.
      prior_mean: scalar or ``(Q,)`` prior latent mean (the paper: 0, i.e.
        ``p = 1/2``).
      jitter: diagonal jitter ``delta``; default :func:`default_jitter`.
      cache_kernel: store the full ``Q x Q`` kernel (memory ``O(Q^2)``; only
        sensible for small ``Q``). Results agree with the streamed path.
      median_max_points, seed: subsample size and seed for the median heuristic
        when ``Q > median_max_points``.

    >>> s = init(np.eye(3, dtype=np.float32), bandwidth=1.0)
    >>> s.mean.tolist(), float(s.bandwidth)
    ([0.0, 0.0, 0.0], 1.0)
    """
    x = as_float_array("embeddings", embeddings)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"embeddings must have shape (Q, d); got {x.shape}")
    if is_concrete(x) and not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError("embeddings must be finite")
    dtype = x.dtype
    if isinstance(bandwidth, str):
        check_choice("bandwidth", bandwidth, ("median",))
        if x.shape[0] < 2:
            raise ValueError("bandwidth='median' needs at least 2 prompts")
        h = median_bandwidth(x, max_points=median_max_points, seed=seed)
        if not float(h) > 0:
            raise ValueError(
                "bandwidth='median' gave 0 (most embeddings coincide); pass a "
                "positive bandwidth"
            )
    else:
        if not (np.isfinite(bandwidth) and bandwidth > 0):
            raise ValueError(f"bandwidth must be a positive number; got {bandwidth!r}")
        h = bandwidth
    delta = default_jitter(dtype) if jitter is None else jitter
    if not (np.isfinite(delta) and delta >= 0):
        raise ValueError(f"jitter must be a finite number >= 0; got {jitter!r}")
    m0 = jnp.asarray(prior_mean, dtype)
    if m0.ndim not in (0, 1) or (m0.ndim == 1 and m0.shape != (x.shape[0],)):
        raise ValueError(
            f"prior_mean must be a scalar or have shape ({x.shape[0]},); "
            f"got {m0.shape}"
        )
    h = jnp.asarray(h, dtype)
    xc, sq, m0, kernel = _init_arrays(x, m0, h, cache_kernel)
    return GPState(xc, sq, m0, h, jnp.asarray(delta, dtype), kernel)


@functools.partial(jax.jit, static_argnums=3)
def _init_arrays(x, m0, h, cache_kernel):
    xc = x - jnp.mean(x, axis=0, keepdims=True)
    sq = jnp.sum(xc * xc, axis=-1)
    m0 = jnp.broadcast_to(m0, sq.shape)
    kernel = None
    if cache_kernel:
        kernel = rbf(sq_dists(xc, xc, sq, sq, jax.lax.Precision.HIGHEST), h)
    return xc, sq, m0, kernel




def _kernel(state, rows, cols, precision):
    """``K[rows][:, cols]`` from the cache or the embeddings (``rows=None``: all)."""
    if state.kernel is not None:
        k = state.kernel if rows is None else state.kernel[rows]
        return k[:, cols]
    x = state.embeddings if rows is None else state.embeddings[rows]
    sq = state.sq_norms if rows is None else state.sq_norms[rows]
    d2 = sq_dists(x, state.embeddings[cols], sq, state.sq_norms[cols], precision)
    return rbf(d2, state.bandwidth)


def _kernel_matvec(state, cols, alpha, precision, block_size):
    """``K[:, cols] @ alpha`` with optional row blocking (memory O(block B))."""
    if block_size is None or state.kernel is not None:
        return _kernel(state, None, cols, precision) @ alpha
    xb = state.embeddings[cols]
    sqb = state.sq_norms[cols]

    def row(args):
        x, s = args
        d2 = sq_dists(x[None, :], xb, s[None], sqb, precision)[0]
        return jnp.dot(rbf(d2, state.bandwidth), alpha, precision=precision)

    return jax.lax.map(row, (state.embeddings, state.sq_norms),
                       batch_size=block_size)


def _batch_cholesky(state, uniq, valid, precision, noise_var=None):
    """Columns and Cholesky factor of ``K_BB + delta I (+ N)`` for a pooled batch."""
    cols = jnp.where(valid, uniq, 0)
    kbb = _kernel(state, cols, cols, precision)
    return cols, masked_cholesky(kbb, valid, state.jitter, noise_var)


def _solve_alpha(state, uniq, valid, resid, precision, noise_var=None):
    cols, chol = _batch_cholesky(state, uniq, valid, precision, noise_var)
    alpha = jax.scipy.linalg.cho_solve((chol, True), jnp.where(valid, resid, 0))
    return cols, jnp.where(valid, alpha, 0)


def update_step(
    state: GPState,
    idx: jax.Array,
    observations: jax.Array,
    weights: jax.Array,
    *,
    link: str = "sigmoid",
    eps: float = 1e-2,
    noise: str = "none",
    precision=jax.lax.Precision.HIGHEST,
    block_size: int | None = None,
) -> GPState:
    r"""One step of Algorithm 1 on a padded batch (plain, jittable, no checks).

    .. math::

        m_{B^c} \leftarrow m_{B^c} + K_{B^c B}(K_{BB} + \delta I)^{-1}
            (\hat g_B - m_B), \qquad m_B \leftarrow \hat g_B .

    Entries with ``weights == 0`` are padding and ignored. Repeated indices
    are merged before the solve: their observations are pooled as the
    ``weights``-weighted mean (with ``weights`` = rollout counts this is the
    pooled success rate of all their rollouts), so ``K_BB`` never has two
    identical rows.

    Args:
      state: the current :class:`GPState`.
      idx: ``(n,)`` integer prompt indices in ``[0, Q)``.
      observations: ``(n,)`` success rates in [0, 1] (sigmoid link) or sample
        reward variances (softplus link).
      weights: ``(n,)`` non-negative pooling weights (rollout counts).
      link: ``"sigmoid"`` or ``"softplus"`` (static).
      eps: clipping ``epsilon`` of :func:`latent_observation`.
      noise: ``"none"`` (Algorithm 1: observations are exact, ``m_B =
        g_hat_B``) or ``"binomial"`` (an extension, not in the paper: each
        pooled observation of ``s`` successes in ``n = weights`` rollouts has
        latent noise variance ``1/(s + 1/2) + 1/(n - s + 1/2)``, the variance
        of the empirical logit, added to the diagonal of ``K_BB``; every
        prompt, observed ones included, gets the posterior mean
        ``m + K_{., B}(K_BB + delta I + N)^{-1}(g_hat_B - m_B)``). Sigmoid
        link only; ``weights`` must be rollout counts.
      precision: matmul precision of the distance computation (``HIGHEST``
        by default: TF32/bf16 matmuls would spoil ``||x - y||^2``).
      block_size: compute ``K_{.,B} alpha`` in row blocks of this size
        (memory ``O(block_size B)`` instead of ``O(Q B)``); None = one block.

    Returns:
      The next state (only ``mean`` changes).
    """
    check_choice("noise", noise, NOISE_MODELS)
    return _update_core(state, idx, observations, weights,
                        jnp.asarray(noise == "binomial"), link=link, eps=eps,
                        precision=precision, block_size=block_size)


def _update_core(state, idx, observations, weights, binomial, *, link, eps,
                 precision=jax.lax.Precision.HIGHEST, block_size=None):
    """:func:`update_step` with the noise model as a traced flag (one compile
    serves both models)."""
    dtype = state.mean.dtype
    q = state.mean.shape[0]
    obs = observations.astype(dtype)
    w = weights.astype(dtype)
    uniq, pooled, valid, wsum = pool(idx, obs, w, q)
    g_hat = _latent(pooled, jnp.asarray(eps, dtype), link)
    cols = jnp.where(valid, uniq, 0)
    resid = jnp.where(valid, g_hat - state.mean[cols], 0)
    succ = pooled * wsum
    noise_var = jnp.where(binomial, 1 / (succ + 0.5) + 1 / (wsum - succ + 0.5), 0)
    cols, alpha = _solve_alpha(state, uniq, valid, resid, precision, noise_var)
    mean = state.mean + _kernel_matvec(state, cols, alpha, precision, block_size)
    rows = jnp.where(valid, uniq, q)
    mean = mean.at[rows].set(jnp.where(binomial, mean[cols], g_hat), mode="drop")
    return state._replace(mean=mean)


_update_jit = jax.jit(
    _update_core, static_argnames=("link", "precision", "block_size")
)








def update(
    state: GPState,
    idx: ArrayLike,
    observations: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    link: str = "sigmoid",
    eps: float = 1e-2,
    noise: str = "none",
    block_size: int | None = None,
) -> GPState:
    r"""Algorithm 1: condition on a batch and return the next prior mean.

    Validates the inputs, pads the batch to :func:`bucket_size` (so batches
    of varying size reuse a handful of compiled versions), and runs the
    jitted :func:`update_step`.

    Args:
      state: current state.
      idx: ``(n,)`` prompt indices in ``[0, Q)``; repeats are pooled.
      observations: ``(n,)`` success rates ``(R_bar + 1)/2`` in [0, 1]
        (sigmoid link), or sample reward variances ``s^2 >= 0`` (softplus).
      weights: ``(n,)`` rollout counts (``>= 0``) used to pool repeated
        indices; default 1 each. Entries with weight 0 are ignored.
      link: ``"sigmoid"`` or ``"softplus"``.
      eps: clipping ``epsilon`` (Alg. 1 line 4), in (0, 1/2).
      noise: ``"none"`` (Algorithm 1) or ``"binomial"``; see
        :func:`update_step`.
      block_size: see :func:`update_step`.

    >>> s = init(np.eye(3, dtype=np.float32), bandwidth=1e-3)
    >>> s = update(s, [0], [0.5])   # logit(0.5) = 0
    >>> predict(s, [0, 1]).tolist()
    [0.5, 0.5]
    """
    check_choice("link", link, LINKS)
    check_choice("noise", noise, NOISE_MODELS)
    if noise == "binomial" and link != "sigmoid":
        raise ValueError("noise='binomial' needs link='sigmoid'")
    if not (0 < eps < 0.5):
        raise ValueError(f"eps must lie in (0, 0.5); got {eps}")
    batch = prepare_batch(state.mean.shape[0], idx, observations, weights, link,
                           state.mean.dtype)
    if batch is None:
        return state
    idx_p, obs_p, w_p = batch
    return _update_jit(
        state, idx_p, obs_p, w_p, jnp.asarray(noise == "binomial"), link=link,
        eps=eps, block_size=block_size,
    )


def predict(state: GPState, idx: ArrayLike, *, link: str = "sigmoid") -> jax.Array:
    r"""Predictions for prompts ``idx``: ``sigmoid(m_t)`` or ``softplus(m_t)``.

    With the sigmoid link the result is ``p_hat_q = sigmoid(m_t(x_q))``, the
    predicted success probability (in (0, 1)); with the softplus link it is
    the predicted reward variance ``v_q = log(1 + exp(m_t(x_q)))``.
    """
    check_choice("link", link, LINKS)
    idx_np = check_idx("idx", idx, state.mean.shape[0])
    return _predict_state(state, jnp.asarray(idx_np), link)


@functools.partial(jax.jit, static_argnames=("precision",))
def _posterior_variance(state, idx, obs_idx, obs_w, precision):
    q = state.mean.shape[0]
    uniq, _, valid, _ = pool(obs_idx, jnp.zeros_like(obs_w), obs_w, q)
    cols, chol = _batch_cholesky(state, uniq, valid, precision)
    kxb = jnp.where(valid[None, :], _kernel(state, idx, cols, precision), 0)
    v = jax.scipy.linalg.solve_triangular(chol, kxb.T, lower=True)
    return jnp.maximum(1 - jnp.sum(v * v, axis=0), 0)


def posterior_variance(
    state: GPState, idx: ArrayLike, observed_idx: ArrayLike
) -> jax.Array:
    r"""Latent posterior variance given one observed batch (Alg. 1 line 9).

    .. math::

        \sigma^2_q = K_{qq} - K_{qB}(K_{BB} + \delta I)^{-1} K_{Bq},

    the diagonal of ``Sigma*`` for prompts ``idx`` after observing the
    (de-duplicated) batch ``observed_idx``. Algorithm 1 resets the covariance
    to the prior kernel at every step, so this is the uncertainty the
    algorithm attaches to a prediction right after a batch. Observed prompts
    get ``~delta``; prompts far from the batch get ``~1``.
    """
    q = state.mean.shape[0]
    idx_np = check_idx("idx", idx, q)
    obs_np = check_idx("observed_idx", observed_idx, q)
    size = (bucket_size(obs_np.shape[0]),)
    w = pad_to(np.ones(obs_np.shape[0]), size)
    obs_p = pad_to(obs_np, size)
    return _posterior_variance(
        state, jnp.asarray(idx_np), jnp.asarray(obs_p),
        jnp.asarray(w, state.mean.dtype), jax.lax.Precision.HIGHEST,
    )


def shard(state: GPState, mesh: jax.sharding.Mesh, axis: str | None = None
          ) -> GPState:
    """Place ``state`` on ``mesh``, split along the prompt axis.

    ``embeddings``, ``sq_norms``, ``mean`` (and the cached ``kernel``, by
    rows) are sharded over mesh axis ``axis`` (default: the mesh's first
    axis); scalars are replicated. :func:`update` and :func:`predict` then run
    as SPMD programs: each device computes its rows of ``K_{., B}`` and of the
    new mean, and only the ``B`` gathered batch rows cross devices. Results
    equal the single-device ones (up to float reduction order).

    ``Q`` must be divisible by the size of the mesh axis.
    """
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    axis = mesh.axis_names[0] if axis is None else axis
    if axis not in mesh.axis_names:
        raise ValueError(f"axis must be one of {mesh.axis_names}; got {axis!r}")
    n = mesh.shape[axis]
    q = state.mean.shape[0]
    if q % n:
        raise ValueError(
            f"the number of prompts ({q}) must be divisible by the mesh axis "
            f"{axis!r} of size {n}"
        )
    rows = NamedSharding(mesh, P(axis))
    rows2 = NamedSharding(mesh, P(axis, None))
    rep = NamedSharding(mesh, P())
    return GPState(
        jax.device_put(state.embeddings, rows2),
        jax.device_put(state.sq_norms, rows),
        jax.device_put(state.mean, rows),
        jax.device_put(state.bandwidth, rep),
        jax.device_put(state.jitter, rep),
        None if state.kernel is None else jax.device_put(state.kernel, rows2),
    )


def gp_predictor(
    *,
    link: str = "sigmoid",
    eps: float = 1e-2,
    noise: str = "none",
    bandwidth: float | str = "median",
    prior_mean: float = 0.0,
    jitter: float | None = None,
    cache_kernel: bool = False,
    block_size: int | None = None,
    seed: int = 0,
) -> Predictor:
    """Algorithm 1 (or its binomial-noise extension) as a :class:`Predictor`.

    Args are those of :func:`init` and :func:`update_step`; ``init`` of the
    result needs the ``(Q, d)`` embeddings.

    >>> pred = gp_predictor(bandwidth=1.0)
    >>> s = pred.init(3, np.eye(3, dtype=np.float32))
    >>> pred.predict(s, jnp.arange(3)).tolist()
    [0.5, 0.5, 0.5]
    """
    check_choice("link", link, LINKS)
    check_choice("noise", noise, NOISE_MODELS)
    if noise == "binomial" and link != "sigmoid":
        raise ValueError("noise='binomial' needs link='sigmoid'")
    if not (0 < eps < 0.5):
        raise ValueError(f"eps must lie in (0, 0.5); got {eps}")

    def init_fn(num_prompts, embeddings):
        if embeddings is None:
            raise ValueError("the GP predictor needs (Q, d) prompt embeddings")
        state = init(embeddings, bandwidth=bandwidth, prior_mean=prior_mean,
                     jitter=jitter, cache_kernel=cache_kernel, seed=seed)
        if state.num_prompts != num_prompts:
            raise ValueError(f"embeddings must have {num_prompts} rows; got "
                             f"{state.num_prompts}")
        return state

    return Predictor(
        init=init_fn,
        update=functools.partial(_update_jit, binomial=noise == "binomial",
                                 link=link, eps=eps, block_size=block_size),
        predict=functools.partial(_predict_state, link=link),
    )


def state_is_consistent(s: GPState) -> bool:
    """Whether the arrays of a (loaded) :class:`GPState` have matching shapes."""
    q = s.mean.shape[0]
    return bool(s.embeddings.ndim == 2 and s.embeddings.shape[0] == q
                and s.mean.shape == (q,) and s.sq_norms.shape == (q,)
                and s.bandwidth.shape == () and s.jitter.shape == ()
                and (s.kernel is None or s.kernel.shape == (q, q)))
