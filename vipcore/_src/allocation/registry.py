"""One registry of allocators, all with one signature.

Every allocator is ``fn(p_hat, C, L, U, *, estimator) -> np.ndarray`` (int64,
summing to ``C`` within ``[L, U]``). The CLI (``vipcore allocate --method``),
the Planner, ``vipcore verify`` and ``vipcore simulate`` look allocators up
here; adding one is a function plus :func:`register_allocator`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np

from vipcore._src._checks import check_choice
from vipcore._src.allocation import heuristics
from vipcore._src.allocation.solve import allocate

__all__ = ["ALLOCATORS", "Allocator", "get_allocator", "register_allocator"]

#: ``fn(p_hat, C, L, U, *, estimator) -> int64[B]``.
Allocator = Callable[..., np.ndarray]


def _ignore_estimator(fn: Callable[..., np.ndarray]) -> Allocator:
    def wrapped(p_hat, C, L, U, *, estimator: str = "rloo"):
        del estimator  # the heuristics do not depend on the objective
        return fn(p_hat, C, L, U)

    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


def _vip(p_hat, C, L, U, *, estimator: str = "rloo"):
    return allocate(p_hat, C, L, U, estimator)


_REGISTRY: dict[str, Allocator] = {
    "vip": _vip,
    "uniform": _ignore_estimator(heuristics.allocate_uniform),
    "inverse_accuracy": _ignore_estimator(heuristics.allocate_inverse_accuracy),
    "inverse_variance": _ignore_estimator(heuristics.allocate_inverse_variance),
}

#: Read-only view of the registered allocators, by name.
ALLOCATORS: Mapping[str, Allocator] = MappingProxyType(_REGISTRY)


def get_allocator(name: str) -> Allocator:
    """The allocator registered as ``name`` (``ValueError`` if unknown).

    >>> get_allocator("uniform")([0.5, 0.5], 8, 2, 8).tolist()
    [4, 4]
    """
    check_choice("method", name, tuple(_REGISTRY))
    return _REGISTRY[name]


def register_allocator(name: str, fn: Allocator, *, overwrite: bool = False) -> None:
    """Register ``fn(p_hat, C, L, U, *, estimator)`` under ``name``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got {name!r}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"an allocator named {name!r} is already registered")
    _REGISTRY[name] = fn
