"""The peers the benchmark runs beside the allocator, in the same process.

* :func:`numpy_greedy`: the simple exact method a user would write: start
  every prompt at ``L`` and hand out the ``C - B L`` units one at a time to
  the largest marginal decrease ``f_q(n) - f_q(n + 1)`` (a heap; Gross,
  1956), in NumPy and the standard library.
* :func:`slsqp_relaxation`: scipy's SLSQP on the continuous relaxation of
  problem (5), the method of the VIP paper's code, with its analytic gradient.
"""

from __future__ import annotations

import heapq
import time

import numpy as np

__all__ = ["numpy_greedy", "slsqp_relaxation", "slsqp_expected_seconds"]


def _cost(a, n, estimator):
    n = np.asarray(n, np.float64)
    if estimator == "rloo":
        return a / (n - 1)
    return a * (n - 1) / (n * n)


def numpy_greedy(p, C: int, L: int, U: int, estimator: str = "rloo") -> np.ndarray:
    """Greedy marginal allocation from ``n = L`` (exact for convex ``f_q``)."""
    p = np.asarray(p, np.float64)
    a = 4 * p * (1 - p)
    B = p.shape[0]
    n = np.full(B, L, np.int64)
    gains = _cost(a, n, estimator) - _cost(a, n + 1, estimator)
    heap = [(-g, q) for q, g in enumerate(gains.tolist())] if L < U else []
    heapq.heapify(heap)
    for _ in range(C - B * L):
        _, q = heapq.heappop(heap)
        n[q] += 1
        if n[q] < U:
            g = _cost(a[q], n[q], estimator) - _cost(a[q], n[q] + 1, estimator)
            heapq.heappush(heap, (-float(g), q))
    return n


def slsqp_relaxation(p, C: int, L: int, U: int, estimator: str = "rloo"):
    """``(seconds, objective, success)`` of SLSQP on the relaxed problem."""
    from scipy.optimize import minimize

    a = 4 * np.asarray(p, np.float64) * (1 - np.asarray(p, np.float64))
    if estimator == "rloo":
        def f(n):
            return np.sum(a / (n - 1))

        def g(n):
            return -a / (n - 1) ** 2
    else:
        def f(n):
            return np.sum(a * (n - 1) / n**2)

        def g(n):
            return a * (2 - n) / n**3

    B = a.shape[0]
    t0 = time.perf_counter()
    res = minimize(
        f, np.full(B, C / B), jac=g, method="SLSQP", bounds=[(L, U)] * B,
        constraints=[{"type": "eq", "fun": lambda n: n.sum() - C,
                      "jac": lambda n: np.ones_like(n)}],
        options={"maxiter": 1000, "ftol": 1e-10},
    )
    return time.perf_counter() - t0, float(res.fun), bool(res.success)


def slsqp_expected_seconds(B: int, instances: int, estimator: str, rng) -> float:
    """A rough forecast of SLSQP's time at ``B``, from one ``B = 64`` run.

    Each SLSQP iteration solves a dense quadratic subproblem in ``B``
    variables, so the time is scaled as ``B^3`` (measured here: about right
    up to ``B = 128``, an underestimate by up to 4x at ``B = 256``, where the
    iteration count grows too).
    """
    lo = 3 if estimator == "drgrpo" else 2
    p = rng.beta(0.4, 0.4, size=64)
    t64 = min(slsqp_relaxation(p, 8 * 64, lo, 32, estimator)[0] for _ in range(2))
    return instances * t64 * max(B / 64, 1.0) ** 3
