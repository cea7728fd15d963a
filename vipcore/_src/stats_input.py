"""Ragged-input handling and value checks for :mod:`vipcore._src.stats`.

Groups come as a list of 1-D arrays (ragged), or as a padded 2-D array
``(Q, n_max)`` with either ``lengths`` (each row's first ``lengths[q]``
entries are real) or a boolean ``mask`` (any pattern). Both become
``(values, mask)`` with padded slots set to 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vipcore._src._checks import as_float_array, is_concrete

__all__ = ["as_groups", "check_finite_groups", "as_pvalues", "bucket", "pad", "unpad"]


def _ragged(name: str, groups: Sequence[Any]) -> tuple[jax.Array, jax.Array]:
    arrs = []
    for i, g in enumerate(groups):
        a = as_float_array(f"{name}[{i}]", g)
        if a.ndim != 1:
            raise ValueError(
                f"{name}[{i}] must be 1-D (one group); got shape {a.shape}"
            )
        arrs.append(a)
    dtype = jnp.result_type(*arrs) if arrs else jnp.result_type(float)
    n_max = max((a.shape[0] for a in arrs), default=0)
    values = np.zeros((len(arrs), n_max), dtype)
    mask = np.zeros((len(arrs), n_max), bool)
    for i, a in enumerate(arrs):
        values[i, : a.shape[0]] = np.asarray(a)
        mask[i, : a.shape[0]] = True
    return jnp.asarray(values), jnp.asarray(mask)


def as_groups(
    name: str,
    data: Any,
    *,
    lengths: Any = None,
    mask: Any = None,
    batch: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Return ``(values, mask)`` of shape ``(Q, n_max)`` (``(T, Q, n_max)`` if
    ``batch``), padded slots zeroed so they cannot leak NaN or inf.

    Raises ``ValueError`` for ragged input combined with ``lengths``/``mask``,
    both ``lengths`` and ``mask``, wrong shapes or dtypes, or lengths outside
    ``[0, n_max]``.
    """
    if isinstance(data, list | tuple) and not batch and not _is_rectangular(data):
        if lengths is not None or mask is not None:
            raise ValueError(
                f"lengths/mask apply to a padded 2-D {name}, not to a list of groups"
            )
        return _ragged(name, data)
    values = as_float_array(name, data)
    ndim = 3 if batch else 2
    if values.ndim != ndim:
        raise ValueError(
            f"{name} must be a list of 1-D groups or a padded "
            f"{ndim}-D array{' (trials, Q, n_max)' if batch else ' (Q, n_max)'}; "
            f"got shape {values.shape}"
        )
    if lengths is not None and mask is not None:
        raise ValueError("give at most one of lengths and mask")
    if lengths is not None:
        lens = jnp.asarray(lengths)
        if not jnp.issubdtype(lens.dtype, jnp.integer):
            raise ValueError(f"lengths must be integers; got dtype {lens.dtype}")
        if lens.shape != values.shape[:-1]:
            raise ValueError(
                f"lengths must have shape {values.shape[:-1]}; got {lens.shape}"
            )
        if is_concrete(lens):
            bad = (np.asarray(lens) < 0) | (np.asarray(lens) > values.shape[-1])
            if bad.any():
                i = int(np.flatnonzero(bad.ravel())[0])
                raise ValueError(
                    f"lengths must lie in [0, {values.shape[-1]}]; got "
                    f"{int(np.asarray(lens).ravel()[i])} at index {i}"
                )
        m = jnp.arange(values.shape[-1]) < lens[..., None]
    elif mask is not None:
        m = jnp.asarray(mask)
        if m.dtype != jnp.bool_:
            raise ValueError(f"mask must be boolean; got dtype {m.dtype}")
        if m.shape != values.shape:
            raise ValueError(f"mask must have the shape of {name} {values.shape}; "
                             f"got {m.shape}")
    else:
        m = jnp.ones(values.shape, bool)
    return jnp.where(m, values, 0).astype(values.dtype), m


def _is_rectangular(data: Sequence[Any]) -> bool:
    try:
        arr = np.asarray(data)
    except ValueError:  # inhomogeneous shapes
        return False
    return arr.dtype != object and arr.ndim == 2


def check_finite_groups(name: str, raw: Any, mask: Any) -> None:
    """Raise naming group and position if a used entry of ``raw`` is NaN/inf."""
    if not is_concrete(raw, mask):
        return
    if isinstance(raw, list | tuple) and not _is_rectangular(raw):
        for q, g in enumerate(raw):
            bad = ~np.isfinite(np.asarray(g, dtype=float))
            if bad.any():
                j = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"{name} must be finite; got {np.asarray(g)[j]!r} in group {q} "
                    f"at position {j}"
                )
        return
    arr = np.asarray(raw, dtype=float)
    bad = ~np.isfinite(arr) & np.asarray(mask)
    if bad.any():
        idx = np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape)
        raise ValueError(
            f"{name} must be finite; got {arr[idx]!r} at index "
            f"{tuple(int(i) for i in idx)}"
        )


def as_pvalues(pvalues: Any, mask: Any) -> tuple[jax.Array, jax.Array]:
    """Validate 1-D p-values (and optional mask) for the combination tests."""
    p = as_float_array("pvalues", pvalues)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be 1-D; got shape {p.shape}")
    if p.shape[0] == 0:
        raise ValueError("pvalues must contain at least one p-value; got none")
    if mask is None:
        m = jnp.ones(p.shape, bool)
    else:
        m = jnp.asarray(mask)
        if m.dtype != jnp.bool_ or m.shape != p.shape:
            raise ValueError(
                f"mask must be boolean with shape {p.shape}; got {m.dtype} {m.shape}"
            )
    if is_concrete(p, m):
        arr, used = np.asarray(p), np.asarray(m)
        bad = used & ~((arr >= 0) & (arr <= 1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"pvalues must lie in [0, 1]; got {arr[i]!r} at index {i} "
                "(mark missing p-values with mask=False, or pass the "
                "pearson_groups result itself)"
            )
    return jnp.where(m, p, 0.5).astype(p.dtype), m


def bucket(size: int) -> int:
    """Smallest of 8, 12, 16, 24, 32, ... (2^k and 1.5 * 2^k) >= ``size``.

    Eager wrappers pad their inputs to these sizes so that calls with varying
    ``Q`` or ``n`` reuse a handful of compiled programs.
    """
    b = 8
    while b < size:
        b = b * 3 // 2 if b & (b - 1) == 0 else b * 4 // 3
    return b


def pad(x: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Zero-pad ``x`` at the end of each axis up to ``shape``."""
    return jnp.pad(x, [(0, t - s) for s, t in zip(x.shape, shape, strict=True)])


def unpad(res: Any, n_pad: int, q: int, per_group: tuple[str, ...] = ()) -> Any:
    """Undo :func:`pad` on a result: drop padded groups from ``n_excluded`` and
    cut the ``per_group`` fields back to ``q`` entries."""
    fix = {f: getattr(res, f)[:q] for f in per_group}
    return res._replace(n_excluded=res.n_excluded - n_pad, **fix)
