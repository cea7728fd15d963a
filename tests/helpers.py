"""Helpers shared by the test modules."""

from __future__ import annotations

import numpy as np

#: (rtol, atol) by dtype for comparing against a float64 reference.
TOLERANCES = {
    np.dtype(np.float16): (1e-2, 1e-3),
    np.dtype(np.float32): (2e-5, 1e-6),
    np.dtype(np.float64): (1e-10, 1e-12),
}


def assert_allclose(actual, desired, *, dtype=None, rtol=None, atol=None, **kw):
    """``np.testing.assert_allclose`` with tolerances keyed by ``dtype``.

    ``dtype`` defaults to the dtype of ``actual``; explicit ``rtol``/``atol``
    override the table.
    """
    actual = np.asarray(actual)
    dt = np.dtype(dtype) if dtype is not None else actual.dtype
    r, a = TOLERANCES.get(dt, TOLERANCES[np.dtype(np.float64)])
    np.testing.assert_allclose(
        actual, np.asarray(desired),
        rtol=r if rtol is None else rtol,
        atol=a if atol is None else atol,
        **kw,
    )
