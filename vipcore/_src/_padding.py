"""The one padding policy of vipcore's eager wrappers.

Jitted programs are compiled once per input shape. The eager entry points
(:func:`vipcore.allocate`, :func:`vipcore.gp.update`, the statistical tests,
the Planner) pad their inputs to a few *bucket* sizes and mask the padding,
so that calls with varying batch sizes reuse a handful of compilations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["bucket_size", "pad_to", "pad_to_bucket"]


def bucket_size(n: int, *, minimum: int = 8) -> int:
    """The padded length for ``n`` items: the next of ``8, 12, 16, 24, 32, ...``.

    The sizes are ``2^k`` and ``1.5 * 2^k`` (at least ``minimum``), so the
    number of compiled versions is logarithmic in the batch size and at most
    a third of a padded batch is padding.

    >>> [bucket_size(n) for n in (1, 9, 13, 100, 512, 513)]
    [8, 12, 16, 128, 512, 768]
    """
    b = minimum
    while b < n:
        b = b * 3 // 2 if (b & (b - 1)) == 0 else b // 3 * 4
    return b


def pad_to(x: Any, shape: tuple[int, ...], fill: Any = 0) -> Any:
    """``x`` padded with ``fill`` at the end of each axis up to ``shape``.

    NumPy in, NumPy out; anything else is padded with ``jax.numpy``.
    """
    widths = [(0, t - s) for s, t in zip(np.shape(x), shape, strict=True)]
    if isinstance(x, np.ndarray):
        return np.pad(x, widths, constant_values=fill)
    import jax.numpy as jnp

    return jnp.pad(x, widths, constant_values=fill)


def pad_to_bucket(x: Any, fill: Any = 0) -> tuple[Any, np.ndarray]:
    """Pad a 1-D ``x`` to :func:`bucket_size` and return ``(padded, mask)``.

    >>> x, m = pad_to_bucket(np.array([0.5, 0.25]))
    >>> x.shape, int(m.sum())
    ((8,), 2)
    """
    n = np.shape(x)[0]
    size = bucket_size(n)
    return pad_to(x, (size,), fill), np.arange(size) < n
