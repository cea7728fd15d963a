"""Predictor states as flat named arrays and back (pickle-free persistence).

A state is a NamedTuple whose fields are arrays, None, or another registered
state (nested, e.g. the prior model inside the beta predictor's state).
:func:`flatten` turns it into ``{"state.<field>[.<field>...]": array}`` and a
JSON-able *tree* naming every node's class; :func:`unflatten` rebuilds it,
accepting only the registered state classes (no code is ever loaded from a
file). :func:`digest` is the SHA-256 of a JSON document and named arrays
(names, dtypes, shapes and bytes), so a file whose content changed after it
was written is recognised.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["flatten", "unflatten", "digest", "check_kinds", "ALLOWED_DTYPES"]

#: dtypes a saved state array may have.
ALLOWED_DTYPES = frozenset(np.dtype(t) for t in (
    np.float32, np.float64, np.int32, np.int64, np.bool_))


def _is_state(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def flatten(state: Any, prefix: str = "state") -> tuple[dict[str, np.ndarray], dict]:
    """``(arrays, tree)`` of a state (see the module docstring)."""
    arrays: dict[str, np.ndarray] = {}
    fields: dict[str, Any] = {}
    for name, val in state._asdict().items():
        key = f"{prefix}.{name}"
        if val is None:
            fields[name] = None
        elif _is_state(val):
            sub, tree = flatten(val, key)
            arrays.update(sub)
            fields[name] = tree
        else:
            arrays[key] = np.asarray(val)
            fields[name] = "array"
    return arrays, {"type": type(state).__name__, "fields": fields}


def unflatten(arrays: Mapping[str, np.ndarray], tree: Any,
              types: Mapping[str, type], prefix: str = "state") -> Any:
    """Rebuild a state from :func:`flatten`'s output; ``ValueError`` on any
    unknown class, field, missing or extra array, or disallowed dtype."""
    used: set[str] = set()
    state = _build(arrays, tree, types, prefix, used)
    extra = sorted(k for k in arrays if k.startswith(prefix + ".") and k not in used)
    if extra:
        raise ValueError(f"unexpected arrays {extra}")
    return state


def _build(arrays, tree, types, prefix, used):
    if not (isinstance(tree, dict) and set(tree) == {"type", "fields"}
            and isinstance(tree["fields"], dict)):
        raise ValueError(f"malformed state description at {prefix!r}")
    cls = types.get(tree["type"]) if isinstance(tree["type"], str) else None
    if cls is None:
        raise ValueError(f"unknown state type {tree['type']!r} at {prefix!r}")
    spec = tree["fields"]
    if set(spec) != set(cls._fields):
        raise ValueError(f"{prefix}: fields {sorted(spec)} do not match "
                         f"{cls.__name__} {list(cls._fields)}")
    vals = {}
    for name in cls._fields:
        key, node = f"{prefix}.{name}", spec[name]
        if node is None:
            if cls._field_defaults.get(name, ...) is not None:
                raise ValueError(f"missing array {key!r}")
            vals[name] = None
        elif node == "array":
            if key not in arrays:
                raise ValueError(f"missing array {key!r}")
            arr = arrays[key]
            if arr.dtype not in ALLOWED_DTYPES:
                raise ValueError(f"array {key!r} has dtype {arr.dtype}; expected "
                                 "float32/64, int32/64 or bool")
            used.add(key)
            vals[name] = arr
        else:
            vals[name] = _build(arrays, node, types, key, used)
    return cls(**vals)


def digest(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 (hex) of canonical JSON ``meta`` and the named arrays."""
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def check_kinds(what: str, state: Any, floats: tuple[str, ...],
                ints: tuple[str, ...] = ()) -> None:
    """``ValueError`` unless the ``floats`` fields share one floating dtype and
    the ``ints`` fields are integers (fields that are None are skipped)."""
    fl = {np.asarray(getattr(state, f)).dtype for f in floats
          if getattr(state, f) is not None}
    if len(fl) != 1 or next(iter(fl)).kind != "f":
        raise ValueError(f"{what}: fields {', '.join(floats)} must share one "
                         f"floating dtype; got {sorted(map(str, fl))}")
    for f in ints:
        if np.asarray(getattr(state, f)).dtype.kind not in "iu":
            raise ValueError(f"{what}: {f} must be integers; got dtype "
                             f"{np.asarray(getattr(state, f)).dtype}")
