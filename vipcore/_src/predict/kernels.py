r"""The RBF kernel, its bandwidth, and the one padded Cholesky solve.

.. math::

    \mathcal K(x, x') = \exp\!\left(-\frac{\lVert x - x'\rVert^2}{2 h^2}\right),
    \qquad h = \operatorname{median}_{i<j} \lVert x_i - x_j \rVert,

the kernel and median-heuristic bandwidth of the VIP paper's §5.1 (Nguyen
et al., 2025, "Adaptive Rollout Allocation for Online Reinforcement Learning
with Verifiable Rewards").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from vipcore._src._checks import as_float_array

__all__ = [
    "MEDIAN_EXACT_MAX",
    "sq_dists",
    "rbf",
    "rbf_kernel",
    "median_bandwidth",
    "masked_cholesky",
]

#: Largest ``Q`` for which :func:`median_bandwidth` uses every pair.
MEDIAN_EXACT_MAX = 2048


def sq_dists(x, y, sqx, sqy, precision):
    """``||x_i - y_j||^2`` from the norms and one matmul (clipped at 0)."""
    d2 = sqx[:, None] + sqy[None, :] - 2 * jnp.dot(x, y.T, precision=precision)
    return jnp.maximum(d2, 0)


def rbf(d2, bandwidth):
    """The RBF kernel of squared distances: ``exp(-d2 / (2 h^2))``."""
    return jnp.exp(-d2 / (2 * bandwidth * bandwidth))


def rbf_kernel(x: ArrayLike, y: ArrayLike, bandwidth: ArrayLike) -> jax.Array:
    r"""RBF kernel matrix ``K[i, j] = exp(-||x_i - y_j||^2 / (2 h^2))``.

    >>> float(rbf_kernel([[0.0, 0.0]], [[3.0, 4.0]], 5.0)[0, 0])  # exp(-1/2)
    0.6065306...
    """
    x = as_float_array("x", x)
    y = jnp.asarray(y, x.dtype)
    h = jnp.asarray(bandwidth, x.dtype)
    sqx = jnp.sum(x * x, axis=-1)
    sqy = jnp.sum(y * y, axis=-1)
    return rbf(sq_dists(x, y, sqx, sqy, jax.lax.Precision.HIGHEST), h)


def median_bandwidth(
    embeddings: ArrayLike,
    *,
    max_points: int = MEDIAN_EXACT_MAX,
    seed: int = 0,
) -> jax.Array:
    r"""Median heuristic: ``h = median_{i<j} ||x_i - x_j||``.

    Computed as ``sqrt(median_{i<j} ||x_i - x_j||^2)``: the same number when
    the count of pairs is odd; when it is even, the two middle pairs are
    averaged in squared distance (``sqrt((d_a^2 + d_b^2) / 2)`` instead of
    ``(d_a + d_b) / 2``, a second-order difference).

    Exact (every pair) when ``Q <= max_points``. For larger ``Q`` the median
    is taken over the pairs of ``max_points`` prompts drawn without
    replacement with ``numpy.random.default_rng(seed)``, i.e. about
    ``max_points^2 / 2`` (2.1 million by default) pairs: the sample median of
    ``N`` pairs has a relative standard error of order ``1/sqrt(N)`` (about
    ``1e-3`` here), far below what changes a prediction.

    >>> float(median_bandwidth([[0.0], [1.0], [3.0]]))  # pairs 1, 2, 3
    2.0
    >>> round(float(median_bandwidth([[0.0], [1.0], [3.0], [7.0]])), 4)  # 3 and 4
    3.5355
    """
    x = as_float_array("embeddings", embeddings)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(
            f"embeddings must have shape (Q, d) with Q >= 2; got {x.shape}"
        )
    q = x.shape[0]
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2; got {max_points}")
    if q > max_points:
        sel = np.random.default_rng(seed).choice(q, max_points, replace=False)
        x = x[jnp.asarray(np.sort(sel))]
    return _median_pairwise(x)


@jax.jit
def _median_pairwise(x):
    # The off-diagonal entries hold every pair twice; duplicating every value
    # of a sample does not change its median, so the median over them is the
    # median over pairs (no (Q^2/2, 2) index constant for XLA to fold).
    x = x - jnp.mean(x, axis=0, keepdims=True)
    sq = jnp.sum(x * x, axis=-1)
    d2 = sq_dists(x, x, sq, sq, jax.lax.Precision.HIGHEST)
    off = ~jnp.eye(x.shape[0], dtype=bool)
    return jnp.sqrt(jnp.nanmedian(jnp.where(off, d2, jnp.nan)))


def masked_cholesky(kbb, valid, jitter, noise_var=None):
    r"""Lower Cholesky factor of ``K_BB + delta I (+ diag(noise))`` on a padded batch.

    Rows and columns of padding (``valid == False``) are replaced by the
    identity, so the factor of the real block is unchanged and padded
    right-hand sides (set to 0) solve to 0. Pure and jittable.
    """
    n = valid.shape[0]
    eye = jnp.eye(n, dtype=kbb.dtype)
    vv = valid[:, None] & valid[None, :]
    kbb = jnp.where(vv, kbb, eye) + jitter * eye
    if noise_var is not None:
        kbb = kbb + jnp.diag(jnp.where(valid, noise_var, 0))
    return jnp.linalg.cholesky(kbb)
