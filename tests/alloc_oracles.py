"""Independent oracles for the allocator tests (exact arithmetic, pure Python).

* :func:`objective64`, :func:`brute_force` (the optimal objective by
  enumeration) and :func:`greedy_from_lower` (the classic heap method): the
  shared oracles of ``tests/helpers.py``, re-exported.
* :func:`tie_rule`: the documented tie rule, by listing every unit with its
  exact (``Fraction``) gain: units above ``tau (1 + r)`` given, units in
  ``[tau / (1 + r), tau (1 + r))`` shared in index order, where ``tau`` is
  the ``K``-th largest gain. No thresholds, no closed forms, no search.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from tests.helpers import brute_force_objective as brute_force  # noqa: F401
from tests.helpers import greedy_from_lower, objective64  # noqa: F401

#: The library's documented constants, restated (the tests check the library
#: against these numbers, not against its own variables).
TIE_RTOL = Fraction(1, 10**4)
A_CUTOFF = Fraction(1, 2**46)


def exact_a(p, dtype=np.float64):
    """``4 p (1 - p)`` as the solver's dtype computes it, then exactly."""
    p = np.asarray(p, dtype)
    return [Fraction(float(x)) for x in (4 * p * (1 - p)).astype(dtype)]


def unit_gain(a, n, estimator):
    """``f(n) - f(n + 1)`` exactly: ``a/(n(n-1))`` or ``a(n^2-n-1)/(n^2(n+1)^2)``."""
    if estimator == "rloo":
        return a / (n * (n - 1))
    return a * Fraction(n * n - n - 1, n * n * (n + 1) ** 2)


def tie_rule(a, C, L, U, estimator, rtol=TIE_RTOL):
    """The allocation the documented tie rule prescribes, and ``tau``.

    ``a`` are exact ``Fraction`` values. Returns ``(n, tau, tied_units)``.
    """
    B = len(a)
    top = max(a)
    a = [x / top if top > 0 else x for x in a]
    a = [x if x >= A_CUTOFF else Fraction(0) for x in a]
    K = C - B * L
    n = [L] * B
    units = [(unit_gain(a[q], m, estimator), q, m)
             for q in range(B) if a[q] > 0 for m in range(L, U)]
    if K == 0:
        return n, None, 0
    if K > len(units):  # a > 0 prompts at U, the rest spread evenly
        zero = [q for q in range(B) if a[q] == 0]
        extra = K - len(units)
        for q in range(B):
            n[q] = U if a[q] > 0 else L
        for i, q in enumerate(zero):
            n[q] += extra // len(zero) + (i < extra % len(zero))
        return n, Fraction(0), 0
    tau = sorted((g for g, _, _ in units), reverse=True)[K - 1]
    hi, lo = tau * (1 + rtol), tau / (1 + rtol)

    def above(g):  # rtol = 0: exact ties only
        return g >= hi if rtol else g > tau

    left = K
    for g, q, _ in units:
        if above(g):
            n[q] += 1
            left -= 1
    tied = 0
    for g, q, _ in units:  # units are listed by prompt index, then n
        if lo <= g and not above(g):
            tied += 1
            if left > 0:
                n[q] += 1
                left -= 1
    assert left == 0
    return n, tau, tied


def near_band_edge(a, C, L, U, estimator, kappa=Fraction(1, 10**5)):
    """True when some gain lies within relative ``kappa`` of a tie-band edge.

    Such instances are ill-conditioned: a rounding difference of that size
    (float32 against float64) can move a unit across the edge.
    """
    _, tau, _ = tie_rule(a, C, L, U, estimator)
    if not tau:
        return False
    top = max(a)
    edges = (tau * (1 + TIE_RTOL), tau / (1 + TIE_RTOL))
    for x in a:
        x = x / top
        if x < A_CUTOFF:
            continue
        for m in range(L, U):
            g = unit_gain(x, m, estimator)
            if any(abs(g / e - 1) < kappa for e in edges):
                return True
    return False
