"""Batch handling shared by every predictor: validation, padding, pooling.

A *batch* is what a trainer observed in one step: prompt indices ``idx``,
observations (success rates in [0, 1], or reward variances with the softplus
link) and weights (rollout counts; 0 marks padding). The eager wrappers
validate it on the host and pad it to :func:`vipcore._src._padding.bucket_size`
with weight-0 rows; the jitted updates pool repeated indices with
:func:`pool`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vipcore._src._padding import bucket_size, pad_to

__all__ = ["check_idx", "pool", "prepare_batch"]


def check_idx(name: str, idx: Any, q: int) -> np.ndarray:
    """``idx`` as ``int32`` after checking it is 1-D integers in ``[0, q)``."""
    arr = np.asarray(idx)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers; got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= q):
        bad = int(np.flatnonzero((arr < 0) | (arr >= q))[0])
        raise ValueError(
            f"{name} must lie in [0, {q}); got {arr[bad]} at position {bad}"
        )
    return arr.astype(np.int32)


def pool(idx, obs, weights, q):
    """Merge repeated indices: the weighted mean of their observations.

    Pure and jittable. Returns ``(uniq, pooled, valid, wsum)`` of the input
    length; unused slots hold index ``q`` (out of range) and ``valid=False``.
    With ``weights`` = rollout counts, the pooled success rate of a repeated
    prompt is the success rate of all its rollouts.
    """
    valid_in = weights > 0
    keyed = jnp.where(valid_in, idx, q)
    n = idx.shape[0]
    uniq, inv = jnp.unique(keyed, size=n, fill_value=q, return_inverse=True)
    inv = inv.reshape(n)
    w = jnp.where(valid_in, weights, 0)
    wsum = jax.ops.segment_sum(w, inv, num_segments=n)
    osum = jax.ops.segment_sum(w * jnp.where(valid_in, obs, 0), inv, num_segments=n)
    valid = (uniq < q) & (wsum > 0)
    pooled = jnp.where(valid, osum / jnp.where(valid, wsum, 1), 0)
    return uniq, pooled, valid, wsum


def prepare_batch(q, idx, observations, weights, link, dtype):
    """Validate a batch and pad it to :func:`bucket_size` with weight-0 rows.

    Returns ``(idx, observations, weights)`` as device arrays, or None for an
    empty batch.
    """
    idx_np = check_idx("idx", idx, q)
    n = idx_np.shape[0]
    obs = np.asarray(observations, dtype=np.float64)
    if obs.shape != (n,):
        raise ValueError(f"observations must have shape ({n},); got {obs.shape}")
    if not np.isfinite(obs).all():
        raise ValueError("observations must be finite")
    if link == "sigmoid" and ((obs < 0) | (obs > 1)).any():
        bad = int(np.flatnonzero((obs < 0) | (obs > 1))[0])
        raise ValueError(
            f"observations (success rates) must lie in [0, 1]; got {obs[bad]} "
            f"at position {bad}"
        )
    if link == "softplus" and (obs < 0).any():
        raise ValueError("observations (reward variances) must be >= 0")
    if weights is None:
        w = np.ones(n)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (n,):
            raise ValueError(f"weights must have shape ({n},); got {w.shape}")
        if not (np.isfinite(w).all() and (w >= 0).all()):
            raise ValueError("weights must be finite and >= 0")
    if n == 0:
        return None
    size = bucket_size(n)
    return (
        jnp.asarray(pad_to(idx_np, (size,))),
        jnp.asarray(pad_to(obs, (size,)), dtype),
        jnp.asarray(pad_to(w, (size,)), dtype),
    )
