"""Shared oracles, problem instances and tolerances for the tests.

Import as ``from tests.helpers import ...`` (one style across the suite).
Every oracle here is independent of vipcore (NumPy, ``math`` and
``itertools`` only), written for clarity rather than speed:

* comparison: :func:`assert_allclose` with dtype-keyed tolerances;
* statistics of the tests themselves: :data:`FWER`, :func:`zstar`,
  :func:`z_ok`, :func:`binomial_margin` (Bonferroni over the checks of one
  test, so a correct library fails a test with probability below ``FWER``);
* gradient variance: :func:`advantages_reference` (rollout by rollout),
  :func:`group_gradient_reference`, :func:`exact_var_g_sequences` (exact
  enumeration of all ``2^n`` reward sequences);
* allocation: :func:`objective64`, :func:`brute_force_allocation`,
  :func:`brute_force_objective`, :func:`greedy_from_lower`,
  :data:`ALLOCATION_CORNERS` (the budgets hypothesis rarely reaches);
* prediction: :func:`dense_kernel` and :func:`dense_gp_update`, a dense
  float64 implementation of Algorithm 1 (full ``Q x Q`` kernel).
"""

from __future__ import annotations

import heapq
import itertools
import math
from statistics import NormalDist

import numpy as np

__all__ = [
    "TOLERANCES", "assert_allclose", "FWER", "zstar", "z_ok", "binomial_margin",
    "advantages_reference", "group_gradient_reference", "exact_var_g_sequences",
    "objective64", "brute_force_allocation", "brute_force_objective",
    "greedy_from_lower", "ALLOCATION_CORNERS", "dense_kernel", "dense_gp_update",
]

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


# --------------------------------------------------------------------------
# Bonferroni helpers
# --------------------------------------------------------------------------

#: False-failure probability of one statistical test of the suite.
FWER = 1e-6


def zstar(m: int, fwer: float = FWER) -> float:
    """Two-sided Bonferroni z threshold for ``m`` checks at ``fwer``."""
    return NormalDist().inv_cdf(1 - fwer / (2 * m))


def z_ok(emp, theory, se, m: int, fwer: float = FWER):
    """``(passed, z)``: ``|z| <= zstar(m)`` elementwise, ``z = (emp-theory)/se``."""
    z = (np.asarray(emp, np.float64) - np.asarray(theory, np.float64)) / np.asarray(
        se, np.float64)
    return bool(np.all(np.abs(z) <= zstar(m, fwer))), z


def binomial_margin(p: float, t: int, m: int, fwer: float = FWER) -> float:
    """Bonferroni margin ``zstar(m) * sqrt(p (1 - p) / t)`` of a rate."""
    return zstar(m, fwer) * math.sqrt(p * (1 - p) / t)


# --------------------------------------------------------------------------
# Gradient variance by exact enumeration
# --------------------------------------------------------------------------


def advantages_reference(r, estimator: str, *, ddof: int = 0, eps: float = 1e-6):
    """Advantages of one group, rollout by rollout, in float64."""
    r = [float(x) for x in r]
    n = len(r)
    mean = sum(r) / n
    if estimator == "drgrpo":
        return np.array([x - mean for x in r])
    if estimator == "rloo":
        return np.array([r[j] - sum(r[k] for k in range(n) if k != j) / (n - 1)
                         for j in range(n)])
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / (n - ddof))
    return np.array([(x - mean) / (std + eps) for x in r])


def group_gradient_reference(r, z, estimator: str, *, ddof: int = 0,
                             eps: float = 1e-6) -> np.ndarray:
    """``G = (1/n) sum_j A_j Z_j`` over the last axis, in loops (float64)."""
    r = np.asarray(r, np.float64)
    z = np.asarray(z, np.float64)
    out = np.zeros(r.shape[:-1])
    for idx in np.ndindex(r.shape[:-1]):
        a = advantages_reference(r[idx], estimator, ddof=ddof, eps=eps)
        out[idx] = float(np.dot(a, z[idx])) / r.shape[-1]
    return out


def exact_var_g_sequences(p: float, n: int, estimator: str, *, z_var: float = 1.0,
                          ddof: int = 0, eps: float = 1e-6) -> float:
    """Exact ``Var(G)`` for ±1 rewards under Assumption 4.1: enumerate all
    ``2^n`` reward sequences; ``Var(G) = z_var / n^2 E[sum_j A_j^2]`` since
    ``sum_j A_j = 0`` (whatever ``E[Z]``)."""
    total = 0.0
    for seq in itertools.product((1.0, -1.0), repeat=n):
        k = seq.count(1.0)
        prob = p**k * (1 - p) ** (n - k)
        a = advantages_reference(seq, estimator, ddof=ddof, eps=eps)
        total += prob * float(np.dot(a, a))
    return z_var * total / n**2


# --------------------------------------------------------------------------
# Allocation
# --------------------------------------------------------------------------


def objective64(n, p, estimator: str) -> float:
    """Problem (5)'s objective ``sum_q 4 p_q (1 - p_q) c(n_q)`` in float64."""
    a = 4 * np.asarray(p, np.float64) * (1 - np.asarray(p, np.float64))
    n = np.asarray(n, np.float64)
    if estimator == "rloo":
        return float(np.sum(a / (n - 1)))
    return float(np.sum(a * (n - 1) / n**2))


def brute_force_allocation(p, C: int, L: int, U: int, estimator: str) -> np.ndarray:
    """An optimal integer allocation by enumerating every feasible vector."""
    best, arg = math.inf, None
    for c in itertools.product(range(L, U + 1), repeat=len(p)):
        if sum(c) == C:
            v = objective64(c, p, estimator)
            if v < best:
                best, arg = v, c
    if arg is None:
        raise ValueError(f"no feasible allocation for C={C}, B={len(p)}, [{L}, {U}]")
    return np.asarray(arg)


def brute_force_objective(p, C: int, L: int, U: int, estimator: str) -> float:
    """The optimal objective value of problem (5) by enumeration."""
    return objective64(brute_force_allocation(p, C, L, U, estimator), p, estimator)


def greedy_from_lower(p, C: int, L: int, U: int, estimator: str) -> np.ndarray:
    """Marginal allocation from ``n = L`` with a heap: exact for separable
    convex objectives under one sum constraint (Gross 1956; Ibaraki and Katoh
    1988). Float64, pure Python."""
    a = 4 * np.asarray(p, np.float64) * (1 - np.asarray(p, np.float64))

    def f(q, n):
        return a[q] / (n - 1) if estimator == "rloo" else a[q] * (n - 1) / n**2

    n = [L] * len(p)
    heap = [(-(f(q, L) - f(q, L + 1)), q) for q in range(len(p)) if L < U]
    heapq.heapify(heap)
    for _ in range(C - L * len(p)):
        _, q = heapq.heappop(heap)
        n[q] += 1
        if n[q] < U:
            heapq.heappush(heap, (-(f(q, n[q]) - f(q, n[q] + 1)), q))
    return np.array(n)


#: ``(p, C, L, U, estimator)`` at the corners of the feasible budgets
#: (``C = B*L``, ``B*L + 1``, ``B*U - 1``, ``B*U``), with prompts at p in {0, 1}.
ALLOCATION_CORNERS = [
    (p, C, L, 8, est)
    for est, L in (("rloo", 2), ("drgrpo", 3))
    for p in ((0.5, 0.9, 0.2, 0.0), (0.3, 0.3, 1.0, 0.7))
    for C in (4 * L, 4 * L + 1, 31, 32)
]


# --------------------------------------------------------------------------
# The dense float64 GP (Algorithm 1)
# --------------------------------------------------------------------------


def dense_kernel(x, h: float) -> np.ndarray:
    """RBF kernel ``exp(-|x - x'|^2 / (2 h^2))`` from explicit differences."""
    x = np.asarray(x, np.float64)
    diff = x[:, None, :] - x[None, :, :]
    return np.exp(-np.sum(diff * diff, axis=-1) / (2 * h * h))


def dense_gp_update(x, m, idx, p, w, *, h, jitter, eps, link="sigmoid"):
    """One step of Algorithm 1 with the full ``Q x Q`` kernel (float64).

    Duplicates in ``idx`` are pooled (weighted by ``w``); observed prompts get
    ``g_hat = logit(clip(p, eps, 1 - eps))`` (``log(expm1(max(p, eps)))`` for
    the softplus link) and the others
    ``m + K_{B^c B} (K_BB + jitter I)^{-1} (g_hat - m_B)``. Returns
    ``(new mean, K_BB + jitter I)``.
    """
    pooled: dict[int, list[float]] = {}
    for i, pi, wi in zip(idx, p, w, strict=True):
        if wi > 0:
            acc = pooled.setdefault(int(i), [0.0, 0.0])
            acc[0] += wi * pi
            acc[1] += wi
    b = np.array(sorted(pooled), dtype=int)
    obs = np.array([pooled[i][0] / pooled[i][1] for i in b])
    if link == "sigmoid":
        pc = np.clip(obs, eps, 1 - eps)
        g = np.log(pc / (1 - pc))
    else:
        g = np.log(np.expm1(np.maximum(obs, eps)))
    m = np.asarray(m, np.float64)
    k = dense_kernel(x, h)
    bc = np.setdiff1d(np.arange(len(m)), b)
    kbb = k[np.ix_(b, b)] + jitter * np.eye(len(b))
    out = m.copy()
    out[bc] = m[bc] + k[np.ix_(bc, b)] @ np.linalg.solve(kbb, g - m[b])
    out[b] = g
    return out, kbb
