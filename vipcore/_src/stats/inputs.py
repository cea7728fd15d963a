"""Ragged-input handling and value checks for :mod:`vipcore._src.stats.api`.

Groups come as a list of 1-D arrays (ragged), or as a padded 2-D array
``(Q, n_max)`` with either ``lengths`` (each row's first ``lengths[q]``
entries are real) or a boolean ``mask`` (any pattern). Both become
``(values, mask)`` with padded slots set to 0.

Concrete inputs are handled in NumPy (no JAX dispatch, so no compilation per
input shape) and checked in their own precision, before any cast to the
working dtype: a p-value of ``1 + 1e-9`` is refused even though it rounds to
1 in float32. Every test here is invariant to rescaling the data (Pearson per
group, Levene and O'Brien over all groups), so concrete groups are first
rescaled by an exact power of two to ``max |x|`` in ``[0.5, 1)``: finite data
beyond the working dtype's range (``1e39`` in float32) or whose squares
overflow it (``1e20``) gives the right answer, not NaN. Traced inputs (the
eager API called inside a user's ``jit``) stay in ``jax.numpy``; the pure
functions rescale them the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vipcore._src._checks import as_numpy_float, is_concrete

__all__ = ["as_groups", "check_finite_groups", "as_pvalues", "unpad"]


def _working_dtype(dtype: np.dtype) -> np.dtype:
    """The floating dtype a computation on ``dtype`` input runs in: the default
    float for ints/bools, at least float32, float64 only when x64 is on."""
    if dtype.kind in "iub":
        return np.dtype(jnp.result_type(float))
    return np.dtype(jax.dtypes.canonicalize_dtype(
        dtype if dtype.itemsize >= 4 else np.float32))


def _own(name: str, x: Any) -> tuple[Any, np.dtype]:
    """``(values, working dtype)``: concrete ``x`` as NumPy in its own
    precision (ints as float64), traced ``x`` as a floating ``jax`` array."""
    if not is_concrete(x):
        arr = jnp.asarray(x)
        if arr.dtype.kind not in "iubf":
            raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}")
        dt = _working_dtype(np.dtype(arr.dtype))
        return arr.astype(dt), dt
    try:
        raw = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be array-like of numbers: {err}") from None
    if raw.dtype.kind not in "iubf":
        raise ValueError(f"{name} must be numeric; got dtype {raw.dtype}")
    own = as_numpy_float(name, raw) if raw.dtype.kind == "f" else raw.astype(
        np.float64)
    return own, _working_dtype(raw.dtype)


def _pow2_rescale(values: np.ndarray, mask: np.ndarray, per_group: bool
                  ) -> np.ndarray:
    """``values * 2**-e`` (exact) with ``max |used finite value|`` in
    ``[0.5, 1)``, per row or over the whole array."""
    if values.size == 0:
        return values
    a = np.where(mask & np.isfinite(values), np.abs(values), 0)
    big = a.max(axis=-1, keepdims=True) if per_group else a.max(keepdims=True)
    _, e = np.frexp(np.where(big > 0, big, 1))
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(values, -e)


def _is_rectangular(data: Sequence[Any]) -> bool:
    try:
        arr = np.asarray(data)
    except ValueError:  # inhomogeneous shapes
        return False
    return arr.dtype != object and arr.ndim == 2


def _ragged(name: str, groups: Sequence[Any]) -> tuple[np.ndarray, np.ndarray,
                                                       np.dtype]:
    arrs, dts = [], []
    for i, g in enumerate(groups):
        a, dt = _own(f"{name}[{i}]", g)
        if a.ndim != 1:
            raise ValueError(
                f"{name}[{i}] must be 1-D (one group); got shape {a.shape}"
            )
        arrs.append(np.asarray(a))
        dts.append(dt)
    dtype = np.result_type(*arrs) if arrs else np.dtype(np.float64)
    work = np.result_type(*dts) if dts else np.dtype(jnp.result_type(float))
    n_max = max((a.shape[0] for a in arrs), default=0)
    values = np.zeros((len(arrs), n_max), dtype)
    mask = np.zeros((len(arrs), n_max), bool)
    for i, a in enumerate(arrs):
        values[i, : a.shape[0]] = a
        mask[i, : a.shape[0]] = True
    return values, mask, work


def _mask_of(name: str, values: Any, lengths: Any, mask: Any) -> Any:
    xp = np if isinstance(values, np.ndarray) else jnp
    if lengths is not None and mask is not None:
        raise ValueError("give at most one of lengths and mask")
    if lengths is not None:
        lens = np.asarray(lengths) if is_concrete(lengths) else jnp.asarray(lengths)
        if lens.dtype.kind not in "iu":
            raise ValueError(f"lengths must be integers; got dtype {lens.dtype}")
        if lens.shape != values.shape[:1]:
            raise ValueError(
                f"lengths must have shape {values.shape[:1]}; got {lens.shape}"
            )
        if isinstance(lens, np.ndarray):
            bad = (lens < 0) | (lens > values.shape[1])
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"lengths must lie in [0, {values.shape[1]}]; got "
                    f"{int(lens[i])} at index {i}"
                )
        return xp.arange(values.shape[1])[None, :] < lens[:, None]
    if mask is not None:
        m = np.asarray(mask) if is_concrete(mask) else jnp.asarray(mask)
        if m.dtype != np.bool_:
            raise ValueError(f"mask must be boolean; got dtype {m.dtype}")
        if m.shape != values.shape:
            raise ValueError(
                f"mask must have the shape of {name} {values.shape}; got {m.shape}"
            )
        return m
    return xp.ones(values.shape, bool)


def as_groups(
    name: str, data: Any, *, lengths: Any = None, mask: Any = None,
    per_group_scale: bool = False,
) -> tuple[Any, Any]:
    """Return ``(values, mask)`` of shape ``(Q, n_max)`` in the working dtype,
    padded slots zeroed so they cannot leak NaN or inf (NumPy arrays unless
    ``data`` is traced). Concrete values are rescaled by a power of two in
    their own precision first (per row if ``per_group_scale``, else over all
    rows; module docs).

    Raises ``ValueError`` for ragged input combined with ``lengths``/``mask``,
    both ``lengths`` and ``mask``, wrong shapes or dtypes, or lengths outside
    ``[0, n_max]``.
    """
    if isinstance(data, list | tuple) and not _is_rectangular(data):
        if lengths is not None or mask is not None:
            raise ValueError(
                f"lengths/mask apply to a padded 2-D {name}, not to a list of groups"
            )
        values, m, work = _ragged(name, data)
    else:
        values, work = _own(name, data)
        if values.ndim != 2:
            raise ValueError(
                f"{name} must be a list of 1-D groups or a padded 2-D array "
                f"(Q, n_max); got shape {values.shape}"
            )
        m = _mask_of(name, values, lengths, mask)
    if isinstance(values, np.ndarray) and isinstance(m, np.ndarray):
        values = _pow2_rescale(values, m, per_group_scale)
        return np.where(m, values, 0).astype(work), m
    return jnp.where(m, values, 0).astype(work), m


def check_finite_groups(name: str, raw: Any, mask: Any) -> None:
    """Raise naming group and position if a used entry of ``raw`` is NaN/inf."""
    if not is_concrete(raw, mask):
        return
    if isinstance(raw, list | tuple) and not _is_rectangular(raw):
        for q, g in enumerate(raw):
            arr = np.asarray(g, dtype=float)
            bad = ~np.isfinite(arr)
            if bad.any():
                j = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"{name} must be finite; got {arr[j]:g} in group {q} "
                    f"at position {j}"
                )
        return
    arr = np.asarray(raw, dtype=float)
    bad = ~np.isfinite(arr) & np.asarray(mask)
    if bad.any():
        q, j = np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape)
        raise ValueError(
            f"{name} must be finite; got {arr[q, j]:g} in group {q} at position {j}"
        )


def as_pvalues(pvalues: Any, mask: Any) -> tuple[Any, Any]:
    """Validate 1-D p-values (and optional mask) for the combination tests.

    The range check runs in the input's own precision, before the cast to the
    working dtype. Masked-out entries (which may hold NaN) are replaced by 0.5.
    """
    p, work = _own("pvalues", pvalues)
    xp = np if isinstance(p, np.ndarray) else jnp
    if p.ndim != 1:
        raise ValueError(f"pvalues must be 1-D; got shape {p.shape}")
    if p.shape[0] == 0:
        raise ValueError("pvalues must contain at least one p-value; got none")
    if mask is None:
        m = xp.ones(p.shape, bool)
    else:
        m = np.asarray(mask) if is_concrete(mask) else jnp.asarray(mask)
        if m.dtype != np.bool_ or m.shape != p.shape:
            raise ValueError(
                f"mask must be boolean with shape {p.shape}; got {m.dtype} {m.shape}"
            )
    if is_concrete(p, m):
        arr, used = np.asarray(p), np.asarray(m)
        bad = used & ~((arr >= 0) & (arr <= 1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"pvalues must lie in [0, 1]; got {str(arr[i])} at index {i} "
                "(mark missing p-values with mask=False, or pass the "
                "pearson_groups result itself)"
            )
    xp = np if isinstance(p, np.ndarray) and isinstance(m, np.ndarray) else jnp
    return xp.where(m, p, 0.5).astype(work), m


def unpad(res: Any, n_pad: int, q: int, per_group: tuple[str, ...] = ()) -> Any:
    """Undo the bucket padding of a result: drop padded groups from ``n_excluded`` and
    cut the ``per_group`` fields back to ``q`` entries (host-side slicing when
    concrete, so no program is compiled per ``q``)."""
    def cut(x):
        return jnp.asarray(np.asarray(x)[:q]) if is_concrete(x) else x[:q]

    fix = {f: cut(getattr(res, f)) for f in per_group}
    return res._replace(n_excluded=res.n_excluded - n_pad, **fix)
