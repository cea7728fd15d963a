"""Argument checks shared by the public entry points.

Static facts (names, shapes, dtypes) are checked at call time. Value facts are
checked only when the value is concrete: inside a user's ``jit``/``vmap`` the
arrays are tracers and the pure functions report problems through status codes
or NaN instead (documented per function).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

__all__ = [
    "is_concrete",
    "check_choice",
    "check_probabilities",
    "check_int",
    "as_float_array",
    "as_numpy_float",
]


def is_concrete(*xs: Any) -> bool:
    """True when none of ``xs`` is a JAX tracer (so values can be inspected)."""
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(repr(c) for c in choices)}; "
            f"got {value!r}"
        )
    return value


def check_probabilities(name: str, p: Any) -> None:
    """Raise ``ValueError`` if a concrete ``p`` has NaN or values outside [0, 1]."""
    if not is_concrete(p):
        return
    arr = np.asarray(p)
    if arr.size == 0:
        return
    if np.isnan(arr).any():
        idx = int(np.flatnonzero(np.isnan(arr.ravel()))[0])
        raise ValueError(f"{name} must not contain NaN (first NaN at index {idx})")
    bad = (arr < 0) | (arr > 1)
    if bad.any():
        idx = int(np.flatnonzero(bad.ravel())[0])
        raise ValueError(
            f"{name} must lie in [0, 1]; "
            f"got {float(arr.ravel()[idx]):.6g} at index {idx}"
        )


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Return ``value`` as a Python int, or raise naming ``name``.

    Accepts Python and NumPy integers and integral floats (``64.0``); rejects
    bools, non-integral numbers and anything else.
    """
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be an integer; got {value!r}")
    if isinstance(value, int | np.integer):
        out = int(value)
    elif isinstance(value, float | np.floating) and float(value).is_integer():
        out = int(value)
    else:
        arr = np.asarray(value) if is_concrete(value) else None
        if arr is not None and arr.shape == () and arr.dtype.kind in "iu":
            out = int(arr)
        else:
            raise ValueError(f"{name} must be an integer; got {value!r}")
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {out}")
    return out


def as_float_array(name: str, x: Any) -> jax.Array:
    """Convert array-likes (lists, NumPy, JAX, objects with ``__array__``).

    Integer and bool inputs become the default float dtype; floating inputs
    keep their dtype (float16/bfloat16 are promoted to float32).
    """
    import jax.numpy as jnp

    if isinstance(x, jax.Array):
        arr = x
    else:
        try:
            arr = jnp.asarray(np.asarray(x))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be array-like of numbers: {err}") from None
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        if not (
            jnp.issubdtype(arr.dtype, jnp.integer) or arr.dtype == jnp.bool_
        ):
            raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}")
        arr = arr.astype(jnp.result_type(float))
    elif jnp.finfo(arr.dtype).bits < 32:
        arr = arr.astype(jnp.float32)
    return arr


def as_numpy_float(name: str, x: Any) -> np.ndarray:
    """A NumPy floating array in the input's own precision, for validation.

    Floating inputs keep their dtype (float16/bfloat16 become float32), so a
    range check sees the value the user passed, before any cast; integer and
    bool inputs become the default JAX float dtype. Anything else (text,
    complex, objects) raises ``ValueError`` naming ``name``.
    """
    import jax.numpy as jnp

    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be array-like of numbers: {err}") from None
    if arr.dtype.kind == "f" or arr.dtype == jnp.bfloat16:
        if arr.dtype.itemsize < 4:
            arr = arr.astype(np.float32)
        return arr
    if arr.dtype.kind in "iub":
        return arr.astype(jnp.result_type(float))
    raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}")
