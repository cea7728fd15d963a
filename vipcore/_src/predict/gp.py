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
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from vipcore._src._checks import as_float_array, check_choice, is_concrete
from vipcore._src._padding import bucket_size, pad_to
from vipcore._src.predict._batch import check_idx, pool, prepare_batch
from vipcore._src.predict._state_io import check_kinds
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
    "default_latent_bound",
    "latent_observation",
    "bucket_size",
    "init",
    "update",
    "update_step",
    "predict",
    "posterior_variance",
    "shard",
    "grow",
    "gp_predictor",
    "check_state",
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
      center: ``(d,)`` the column mean subtracted at :func:`init` (new
        prompts added by :func:`grow` are centred with it); None in states
        saved by vipcore versions without it.
    """

    embeddings: jax.Array
    sq_norms: jax.Array
    mean: jax.Array
    bandwidth: jax.Array
    jitter: jax.Array
    kernel: jax.Array | None = None
    center: jax.Array | None = None

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
    xc, sq, m0, kernel, center = _init_arrays(x, m0, h, cache_kernel)
    return GPState(xc, sq, m0, h, jnp.asarray(delta, dtype), kernel, center)


@functools.partial(jax.jit, static_argnums=3)
def _init_arrays(x, m0, h, cache_kernel):
    center = jnp.mean(x, axis=0)
    xc = x - center[None, :]
    sq = jnp.sum(xc * xc, axis=-1)
    m0 = jnp.broadcast_to(m0, sq.shape)
    kernel = None
    if cache_kernel:
        kernel = rbf(sq_dists(xc, xc, sq, sq, jax.lax.Precision.HIGHEST), h)
    return xc, sq, m0, kernel, center




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
    latent_bound: float | str | None = "auto",
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
      latent_bound: the new latent mean is clipped to ``[-b, b]``: ``"auto"``
        (:func:`default_latent_bound`: the range of the latent observations,
        ``logit(1 - eps)``, for Algorithm 1 with the sigmoid link; no bound
        for softplus or binomial noise), a positive number, or None or
        ``"none"`` (no bound: Algorithm 1 exactly).

    Returns:
      The next state (only ``mean`` changes).
    """
    check_choice("noise", noise, NOISE_MODELS)
    return state._replace(mean=_update_core(
        state, idx, observations, weights, jnp.asarray(noise == "binomial"),
        link=link, eps=eps, precision=precision, block_size=block_size,
        bound=_check_bound(latent_bound, link, eps, noise)))


def _update_core(state, idx, observations, weights, binomial, *, link, eps,
                 precision=jax.lax.Precision.HIGHEST, block_size=None,
                 bound=None):
    """:func:`update_step`'s new latent mean, with the noise model as a traced
    flag (one compile serves both models)."""
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
    if bound is not None:  # a traced bound (inf = none) shares one compile
        b = jnp.asarray(bound, dtype)
        mean = jnp.clip(mean, -b, b)
    return mean


#: The jitted mean update. It returns only the new mean: returning the whole
#: state would copy every unchanged array (the ``Q x Q`` kernel of the cached
#: path, 16 MB at ``Q = 2000``) at each call.
_update_mean_jit = jax.jit(
    _update_core, static_argnames=("link", "precision", "block_size")
)


def _update_state(state, idx, observations, weights, binomial=False, *, link,
                  eps, block_size=None, bound=None):
    """The protocol's ``update``: the state with the new mean (jittable)."""
    mean = _update_mean_jit(state, idx, observations, weights,
                            jnp.asarray(binomial), link=link, eps=eps,
                            block_size=block_size,
                            bound=math.inf if bound is None else bound)
    return state._replace(mean=mean)


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
    latent_bound: float | str | None = "auto",
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
      block_size, latent_bound: see :func:`update_step`.

    >>> s = init(np.eye(3, dtype=np.float32), bandwidth=1e-3)
    >>> s = update(s, [0], [0.5])   # logit(0.5) = 0
    >>> predict(s, [0, 1]).tolist()
    [0.5, 0.5]
    """
    _check_model(link, noise, eps)
    batch = prepare_batch(state.mean.shape[0], idx, observations, weights, link,
                           state.mean.dtype)
    if batch is None:
        return state
    return _update_state(state, *batch, noise == "binomial", link=link, eps=eps,
                         block_size=block_size,
                         bound=_check_bound(latent_bound, link, eps, noise))


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
        None if state.center is None else jax.device_put(state.center, rep),
    )


def _check_model(link: str, noise: str, eps: float) -> None:
    """``ValueError`` naming ``link``, ``noise`` or ``eps`` if out of range."""
    check_choice("link", link, LINKS)
    check_choice("noise", noise, NOISE_MODELS)
    if noise == "binomial" and link != "sigmoid":
        raise ValueError("noise='binomial' needs link='sigmoid'")
    if not (0 < eps < 0.5):
        raise ValueError(f"eps must lie in (0, 0.5); got {eps}")


def default_latent_bound(link: str, eps: float, noise: str = "none"
                         ) -> float | None:
    r"""``latent_bound="auto"``: ``logit(1 - eps)`` for Algorithm 1's sigmoid link.

    Observations are clipped to ``[eps, 1 - eps]`` before the logit, so every
    latent observation lies in ``[-b, b]`` with ``b = logit(1 - eps)`` (4.6
    for ``eps = 0.01``). With near-duplicate embeddings ``K_BB + delta I`` is
    nearly singular and the interpolating update of Algorithm 1 can push
    latent means of other prompts far outside that range (``|m| > 10`` seen
    on real trajectories); clipping the mean to the range of the data removes
    those artefacts and never changes a mean inside it. None (no bound) for
    the softplus link, whose latent observations are unbounded above, and for
    ``noise="binomial"``, whose noise diagonal (at least ``2/(n + 1)``) keeps
    the solve well conditioned (bounding it made the allocation no better in
    the replay benchmark, ``docs/prediction.md``).

    >>> round(default_latent_bound("sigmoid", 0.01), 4)
    4.5951
    """
    if link != "sigmoid" or noise != "none":
        return None
    return float(np.log1p(-eps) - np.log(eps))


def _check_bound(bound, link="sigmoid", eps=1e-2, noise="none"):
    if bound is None:
        return None
    if isinstance(bound, str):
        check_choice("latent_bound", bound, ("auto", "none"))
        return None if bound == "none" else default_latent_bound(link, eps, noise)
    try:
        b = float(bound)
    except (TypeError, ValueError):
        b = math.nan
    if isinstance(bound, bool) or not (np.isfinite(b) and b > 0):
        raise ValueError(f"latent_bound must be a positive number, 'auto' or "
                         f"None; got {bound!r}")
    return b


def grow(state: GPState, embeddings: ArrayLike, *, prior_mean: float = 0.0
         ) -> GPState:
    """``state`` with the prompts of ``embeddings`` (``(k, d)``) appended.

    A new prompt's latent mean is ``prior_mean``: Algorithm 1 keeps only the
    current mean vector, not the past batches, so a prompt added later is
    pulled toward its neighbours by the batches observed after it was added.
    Its embedding is centred with the stored column mean of :func:`init`.
    """
    if state.center is None:
        raise ValueError("this GP state has no stored centre (saved by an older "
                         "vipcore): re-create it with init() to add prompts")
    if state.kernel is not None:
        raise ValueError("a GP state with a cached kernel cannot grow")
    x = as_float_array("embeddings", embeddings)
    d = state.embeddings.shape[1]
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"embeddings must have shape (k, {d}); got {x.shape}")
    if is_concrete(x) and not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError("embeddings must be finite")
    xc = x.astype(state.embeddings.dtype) - state.center[None, :]
    m0 = jnp.full((x.shape[0],), prior_mean, state.mean.dtype)
    return state._replace(
        embeddings=jnp.concatenate([state.embeddings, xc]),
        sq_norms=jnp.concatenate([state.sq_norms, jnp.sum(xc * xc, axis=-1)]),
        mean=jnp.concatenate([state.mean, m0]))


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
    latent_bound: float | str | None = "auto",
) -> Predictor:
    """Algorithm 1 (or its binomial-noise extension) as a :class:`Predictor`.

    Args are those of :func:`init` and :func:`update_step`; ``init`` of the
    result needs the ``(Q, d)`` embeddings.

    >>> pred = gp_predictor(bandwidth=1.0)
    >>> s = pred.init(3, np.eye(3, dtype=np.float32))
    >>> pred.predict(s, jnp.arange(3)).tolist()
    [0.5, 0.5, 0.5]
    """
    _check_model(link, noise, eps)
    bound = _check_bound(latent_bound, link, eps, noise)
    prior_mean = float(prior_mean)
    if not np.isfinite(prior_mean):
        raise ValueError(f"prior_mean must be finite; got {prior_mean!r}")

    def init_fn(num_prompts, embeddings):
        if embeddings is None:
            raise ValueError("the GP predictor needs (Q, d) prompt embeddings")
        state = init(embeddings, bandwidth=bandwidth, prior_mean=prior_mean,
                     jitter=jitter, cache_kernel=cache_kernel, seed=seed)
        if state.num_prompts != num_prompts:
            raise ValueError(f"embeddings must have {num_prompts} rows; got "
                             f"{state.num_prompts}")
        return state

    def grow_fn(state, num_new, embeddings):
        if embeddings is None or np.shape(embeddings)[0] != num_new:
            raise ValueError(f"the GP predictor needs ({num_new}, d) embeddings "
                             "for the new prompts")
        return grow(state, embeddings, prior_mean=prior_mean)

    return Predictor(
        init=init_fn,
        update=functools.partial(_update_state, binomial=noise == "binomial",
                                 link=link, eps=eps, block_size=block_size,
                                 bound=bound),
        predict=functools.partial(_predict_state, link=link),
        grow=grow_fn,
    )


def check_state(s: GPState, options) -> None:
    """Raise ``ValueError`` unless a (loaded) :class:`GPState` is valid.

    Shapes consistent, every value finite, ``bandwidth > 0``, ``jitter >= 0``,
    and a numeric ``bandwidth``, ``jitter`` or ``latent_bound`` option agrees
    with the state.
    """
    q = s.mean.shape[0] if s.mean.ndim == 1 else -1
    d = s.embeddings.shape[1] if s.embeddings.ndim == 2 else -1
    if not (q >= 1 and s.embeddings.shape[0] == q and s.sq_norms.shape == (q,)
            and s.bandwidth.shape == () and s.jitter.shape == ()
            and (s.kernel is None or s.kernel.shape == (q, q))
            and (s.center is None or s.center.shape == (d,))):
        raise ValueError("inconsistent array shapes in the GP state")
    check_kinds("GP state", s, ("embeddings", "sq_norms", "mean", "bandwidth",
                                "jitter", "kernel", "center"))
    for name, val in s._asdict().items():
        if val is not None and not np.all(np.isfinite(np.asarray(val))):
            raise ValueError(f"GP state: {name} must be finite")
    h, jit = float(s.bandwidth), float(s.jitter)
    if not (h > 0 and jit >= 0):
        raise ValueError(f"GP state: need bandwidth > 0 and jitter >= 0; got {h}, "
                         f"{jit}")
    for key, val in (("bandwidth", h), ("jitter", jit)):
        want = options.get(key)
        if isinstance(want, int | float) and not np.isclose(want, val, rtol=1e-6):
            raise ValueError(f"GP state: {key} {val} differs from the setting "
                             f"{want}")
    sq = np.sum(np.asarray(s.embeddings, np.float64) ** 2, axis=-1)
    if not np.allclose(np.asarray(s.sq_norms), sq, rtol=1e-3, atol=1e-6):
        raise ValueError("GP state: sq_norms do not match the embeddings")
    bound = options.get("latent_bound")
    top = np.max(np.abs(np.asarray(s.mean)), initial=0)
    if isinstance(bound, int | float) and top > bound:
        raise ValueError(f"GP state: a latent mean exceeds latent_bound={bound}")
