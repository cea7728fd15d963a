"""JSON output shared by every writer (sweep summaries, reports, benchmarks).

One rule: NumPy and JAX scalars and arrays become Python numbers and lists,
non-finite floats become ``null`` (strict JSON has no NaN), dict keys become
strings, and keys starting with ``_`` (private scratch data) are dropped.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["jsonable"]


def jsonable(x: Any) -> Any:
    """``x`` as plain JSON data.

    >>> jsonable({"a": np.float32(0.5), "b": [np.int64(2), float("nan")], "_x": 1})
    {'a': 0.5, 'b': [2, None]}
    """
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()
                if not str(k).startswith("_")}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if hasattr(x, "__array__") and not isinstance(x, np.generic):
        arr = np.asarray(x)
        return jsonable(arr.tolist() if arr.ndim else arr.item())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
