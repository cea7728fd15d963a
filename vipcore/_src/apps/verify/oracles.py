r"""Independent float64 oracles for ``vipcore verify`` (NumPy and ``math`` only).

Nothing here imports vipcore: each function re-derives a quantity the
library computes, from its definition, by a different route (exact
enumeration, a dense formula, a textbook special-function algorithm), so that
a report row comparing the two can fail when the library is wrong. The tests
check these oracles against scipy.

* advantages written out per rollout (Dr. GRPO, RLOO leave-one-out, GRPO);
* ``Var(G)`` by exact enumeration of every reward multiset of a group, with
  ``Var(G) = sigma_Z^2 / n^2 E[sum_j A_j^2]`` (Assumption 4.1 of Nguyen et
  al. (2025), "Adaptive Rollout Allocation for Online Reinforcement Learning
  with Verifiable Rewards"), and the exact moments under ``Z = eps + c R``;
* distribution tails: the regularised incomplete beta function by Lentz's
  continued fraction (t and F tails), the chi-squared tail with even degrees
  of freedom in closed form, the Irwin–Hall CDF in exact rational arithmetic;
* the Appendix B statistics (Pearson, Levene, O'Brien, Fisher, Edgington) as
  loops over groups;
* the allocation problem (5): its continuous KKT solution by float64
  bisection and its integer optimum by the marginal-gain greedy (exact for
  separable convex objectives), the documented tie rule of the integer
  solver written out unit by unit, the heuristics' continuous targets;
* GRPO's allocation objective as binomial sums and the exact minimiser of
  any separable objective by dynamic programming.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np

__all__ = [
    "advantages",
    "exact_gradient_moments",
    "discrete_gradient_variance",
    "betainc",
    "t_two_sided",
    "f_sf",
    "chi2_sf_even",
    "irwin_hall_cdf",
    "pearson",
    "oneway_f",
    "levene_y",
    "obrien_y",
    "fisher",
    "edgington",
    "factor",
    "kkt_solution",
    "greedy_optimum",
    "tie_rule_allocation",
    "rloo_lam_on_active_set",
    "separable_optimum",
    "grpo_normalized_variance",
    "scaled_target",
]


# --------------------------------------------------------------------------
# Advantages and the gradient variance
# --------------------------------------------------------------------------


def advantages(r, estimator: str, *, ddof: int = 0, eps: float = 1e-6) -> np.ndarray:
    """Advantages of one group ``r`` (1-D), rollout by rollout, in float64."""
    r = [float(x) for x in r]
    n = len(r)
    mean = sum(r) / n
    if estimator == "drgrpo":
        return np.array([x - mean for x in r])
    if estimator == "rloo":
        return np.array([r[j] - (sum(r) - r[j]) / (n - 1) for j in range(n)])
    ss = sum((x - mean) ** 2 for x in r)
    std = math.sqrt(ss / (n - ddof))
    return np.array([(x - mean) / (std + eps) for x in r])


def _multisets(values, probs, n):
    """Every multiset of ``n`` draws from ``values`` with its probability."""
    k = len(values)
    for counts in itertools.product(range(n + 1), repeat=k - 1):
        last = n - sum(counts)
        if last < 0:
            continue
        c = (*counts, last)
        logp = math.lgamma(n + 1) - sum(math.lgamma(x + 1) for x in c)
        prob = math.exp(logp) * math.prod(
            pr**x if x else 1.0 for pr, x in zip(probs, c, strict=True))
        r = [v for v, x in zip(values, c, strict=True) for _ in range(x)]
        yield r, prob


def exact_gradient_moments(p: float, n: int, estimator: str, *, z_mean=0.0,
                           z_var=1.0, corr=0.0, ddof=0, eps=1e-6):
    r"""Exact ``(E[G], Var(G))`` for ±1 rewards and ``Z = mu + sigma eps + c R``.

    Given the rewards, ``G`` is linear in ``eps``:
    ``E[G|R] = (1/n) sum_j A_j (mu + c R_j)`` and
    ``Var(G|R) = z_var / n^2 sum_j A_j^2``; the law of total variance over the
    ``n + 1`` reward multisets gives the moments.
    """
    m1 = m2 = 0.0
    for r, prob in _multisets((1.0, -1.0), (p, 1 - p), n):
        a = advantages(r, estimator, ddof=ddof, eps=eps)
        cm = float(np.sum(a * (z_mean + corr * np.asarray(r)))) / n
        cv = z_var * float(np.sum(a * a)) / n**2
        m1 += prob * cm
        m2 += prob * (cv + cm * cm)
    return m1, m2 - m1 * m1


def discrete_gradient_variance(values, probs, n: int, estimator: str, *,
                               z_var=1.0) -> float:
    """Exact ``Var(G)`` for rewards drawn from a finite distribution."""
    return sum(prob * z_var * float(np.sum(advantages(r, estimator) ** 2)) / n**2
               for r, prob in _multisets(values, probs, n))


def factor(n, estimator: str):
    """``c(n)``: ``(n-1)/n^2`` (Dr. GRPO, Prop 4.2) or ``1/(n-1)`` (RLOO)."""
    n = np.asarray(n, np.float64)
    return (n - 1) / n**2 if estimator == "drgrpo" else 1 / (n - 1)


# --------------------------------------------------------------------------
# Distribution tails
# --------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 20001):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                    -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-16:
            return h
    raise ArithmeticError(f"betacf did not converge for a={a}, b={b}, x={x}")


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta ``I_x(a, b)`` (float64, ~1e-14 relative)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbt = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
           + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1 - math.exp(lbt) * _betacf(b, a, 1 - x) / b


def t_two_sided(t: float, df: float) -> float:
    """``P(|T_df| >= |t|)``."""
    if math.isinf(t):
        return 0.0
    return betainc(df / 2, 0.5, df / (df + t * t))


def f_sf(w: float, dfn: float, dfd: float) -> float:
    """``P(F_{dfn, dfd} >= w)``."""
    if w <= 0:
        return 1.0
    if math.isinf(w):
        return 0.0
    return betainc(dfd / 2, dfn / 2, dfd / (dfd + dfn * w))


def chi2_sf_even(x: float, df: int) -> float:
    """``P(chi2_df >= x)`` for even ``df``: ``exp(-x/2) sum_{i<df/2} (x/2)^i/i!``."""
    if df % 2:
        raise ValueError(f"df must be even; got {df}")
    if math.isinf(x):
        return 0.0
    h = x / 2
    if h == 0:
        return 1.0
    return sum(math.exp(-h + i * math.log(h) - math.lgamma(i + 1))
               for i in range(df // 2))


def irwin_hall_cdf(s: float, q: int) -> float:
    """``P(U_1 + ... + U_q <= s)``, exact rational arithmetic at ``s``."""
    fs = Fraction(s)
    total = sum((-1) ** k * math.comb(q, k) * (fs - k) ** q
                for k in range(0, min(q, math.floor(fs)) + 1))
    return float(total / math.factorial(q)) if fs > 0 else 0.0


# --------------------------------------------------------------------------
# Appendix B statistics, group by group
# --------------------------------------------------------------------------


def pearson(r, z) -> tuple[float, float]:
    """``(r, two-sided p)`` of one group with the t law on ``n - 2`` df."""
    r, z = np.asarray(r, np.float64), np.asarray(z, np.float64)
    dr, dz = r - r.mean(), z - z.mean()
    rho = float(np.sum(dr * dz) / math.sqrt(np.sum(dr * dr) * np.sum(dz * dz)))
    rho = min(1.0, max(-1.0, rho))
    n = r.size
    if abs(rho) == 1:
        return rho, 0.0
    return rho, t_two_sided(rho * math.sqrt((n - 2) / (1 - rho * rho)), n - 2)


def oneway_f(groups) -> tuple[float, float, int, int]:
    """One-way ANOVA ``(W, p, dfn, dfd)`` of a list of 1-D groups."""
    groups = [np.asarray(g, np.float64) for g in groups]
    k = len(groups)
    n_obs = sum(g.size for g in groups)
    grand = sum(g.sum() for g in groups) / n_obs
    ssb = sum(g.size * (g.mean() - grand) ** 2 for g in groups)
    ssw = sum(((g - g.mean()) ** 2).sum() for g in groups)
    dfn, dfd = k - 1, n_obs - k
    w = (dfd / dfn) * ssb / ssw if ssw > 0 else math.inf
    return float(w), f_sf(float(w), dfn, dfd), dfn, dfd


def levene_y(z, center: str = "median") -> np.ndarray:
    """Absolute deviations from the group median (or mean)."""
    z = np.asarray(z, np.float64)
    c = np.median(z) if center == "median" else z.mean()
    return np.abs(z - c)


def obrien_y(z) -> np.ndarray:
    """O'Brien's transform of one group (sample variance, divisor ``n - 1``)."""
    z = np.asarray(z, np.float64)
    n = z.size
    v = ((z - z.mean()) ** 2).sum() / (n - 1)
    return ((n - 1.5) * n * (z - z.mean()) ** 2 - 0.5 * v * (n - 1)) / (
        (n - 1) * (n - 2))


def fisher(p) -> tuple[float, float]:
    """``(X, p)`` with ``X = -2 sum ln p_q`` and ``P(chi2_{2k} >= X)``."""
    x = -2 * sum(math.log(v) if v > 0 else -math.inf for v in p)
    return x, chi2_sf_even(x, 2 * len(p))


def edgington(p) -> tuple[float, float]:
    """``(S, P(Irwin-Hall(k) <= S))`` with ``S = sum p``."""
    s = float(sum(p))
    return s, irwin_hall_cdf(s, len(p))


# --------------------------------------------------------------------------
# Allocation problem (5)
# --------------------------------------------------------------------------


def _marginal(n, estimator):
    n = np.asarray(n, np.float64)
    return 1 / (n - 1) ** 2 if estimator == "rloo" else (n - 2) / n**3


def _n_of_lam(a, lam, L, U, estimator):
    """``clip(root, L, U)`` of ``a marginal(n) = lam``, by bisection on ``n``."""
    lo, hi = np.full(a.size, float(L)), np.full(a.size, float(U))
    for _ in range(64):  # U - L < 2**20: the bracket ends below 1e-13
        mid = 0.5 * (lo + hi)
        above = a * _marginal(mid, estimator) > lam
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    n = 0.5 * (lo + hi)
    n = np.where(a * _marginal(U, estimator) >= lam, U, n)
    return np.where((a <= 0) | (a * _marginal(L, estimator) <= lam), L, n)


def kkt_solution(a, C, L, U, estimator: str):
    """Continuous solution ``(n, lam)`` of problem (5) relaxed, by bisection on
    ``log lam`` (float64; ``lam`` in the units of ``a``). A budget the prompts
    with ``a > 0`` cannot absorb at ``U`` is spread evenly over those with
    ``a = 0`` (``lam = 0``)."""
    a = np.asarray(a, np.float64)
    pos = a > 0
    if not pos.any():
        return np.full(a.size, C / a.size), 0.0
    spare = C - U * pos.sum() - L * (~pos).sum()
    if spare > 0:  # more than the a > 0 prompts can use: the rest share evenly
        return np.where(pos, U, L + spare / (~pos).sum()), 0.0
    lo = math.log(float(np.min(a[pos])) * float(_marginal(U, estimator))) - 1
    hi = math.log(float(np.max(a[pos])) * float(_marginal(L, estimator))) + 1
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        s = _n_of_lam(a, math.exp(mid), L, U, estimator).sum()
        lo, hi = (mid, hi) if s >= C else (lo, mid)
    lam = math.exp(0.5 * (lo + hi))
    return _n_of_lam(a, lam, L, U, estimator), lam


def greedy_optimum(a, C, L, U, estimator: str) -> np.ndarray:
    """The integer optimum of problem (5): from ``n = L``, give each unit to
    the prompt with the largest objective decrease (exact: separable convex)."""
    a = np.asarray(a, np.float64)
    n = np.full(a.size, L, np.int64)
    f = lambda m: a * factor(m, estimator)  # noqa: E731
    for _ in range(C - L * a.size):
        gain = np.where(n < U, f(n) - f(np.minimum(n + 1, U)), -np.inf)
        n[int(np.argmax(gain))] += 1
    return n


def tie_rule_allocation(a, C, L, U, estimator: str, *, rtol: float = 1e-4,
                        cutoff: float = 2.0**-46) -> np.ndarray:
    """The integer allocation under the solver's documented tie rule.

    With ``a`` normalised by its maximum (entries below ``cutoff`` count as
    0), the ``K = C - B L`` units above ``L`` are the marginal gains
    ``g_q(n) = a_q (c(n) - c(n + 1))``: with ``tau`` the ``K``-th largest, every
    unit with ``g >= tau (1 + rtol)`` is given, none with ``g < tau / (1 + rtol)``,
    and the rest of the budget goes over the band in between in index order
    (all of one prompt's band before the next prompt's). A budget the prompts
    with ``a > 0`` cannot absorb at ``U`` is spread over the ``a = 0``
    prompts: ``extra // m`` each, one more for the first ``extra % m``.
    """
    a = np.asarray(a, np.float64)
    a = a / a.max() if a.max() > 0 else a
    a = np.where(a >= cutoff, a, 0.0)
    B, K = a.size, C - L * a.size
    pos = a > 0
    n = np.full(B, L, np.int64)
    excess = K - (U - L) * int(pos.sum())
    if excess > 0:
        m = int((~pos).sum())
        extra = excess // m + (np.cumsum(~pos) - 1 < excess % m)
        return np.where(pos, U, L + np.where(pos, 0, extra))
    if K == 0:
        return n
    lev = np.arange(L, U, dtype=np.float64)
    g = a[:, None] * (factor(lev, estimator) - factor(lev + 1, estimator))[None, :]
    g[~pos] = -np.inf
    tau = np.sort(g.ravel())[::-1][K - 1]
    above = np.sum(g >= tau * (1 + rtol), axis=1)
    band = np.sum(g >= tau / (1 + rtol), axis=1) - above
    before = np.cumsum(band) - band
    return n + above + np.clip(K - above.sum() - before, 0, band)


def rloo_lam_on_active_set(a, n, C, L, U) -> float:
    """RLOO's multiplier in closed form on the active set of ``n``: interior
    prompts ``I`` have ``n_q = 1 + sqrt(a_q / lam)``, so ``lam^{-1/2} =
    (C - sum_{q not in I} n_q - |I|) / sum_{q in I} sqrt(a_q)`` (``math.fsum``)."""
    a, n = np.asarray(a, np.float64), np.asarray(n, np.float64)
    inner = (a > 0) & (n > L + 1e-6) & (n < U - 1e-6)
    fixed = math.fsum(n[~inner].tolist())
    inv = (C - fixed - int(inner.sum())) / math.fsum(np.sqrt(a[inner]).tolist())
    return 1 / (inv * inv)


def separable_optimum(costs, K: int) -> tuple[np.ndarray, float]:
    """Exact ``argmin sum_q costs[q, m_q]`` s.t. ``sum_q m_q = K`` by dynamic
    programming over prompts (no convexity needed); ``(m, total)``."""
    costs = np.asarray(costs, np.float64)
    B, W = costs.shape
    best = np.full(K + 1, np.inf)
    best[0] = 0.0
    choice = np.zeros((B, K + 1), np.int64)
    for q in range(B):
        cand = np.full((W, K + 1), np.inf)
        for m in range(min(W, K + 1)):
            cand[m, m:] = best[: K + 1 - m] + costs[q, m]
        choice[q] = np.argmin(cand, axis=0)
        best = cand[choice[q], np.arange(K + 1)]
    m, s = np.zeros(B, np.int64), K
    for q in range(B - 1, -1, -1):
        m[q] = choice[q, s]
        s -= m[q]
    return m, float(best[K])


def grpo_normalized_variance(p: float, n: int) -> float:
    r"""GRPO's ``V_n(p) = Var(G) / omega_n(p)^2`` (``sigma_Z^2 = 1``) as
    binomial sums: ``4 n p^2 (1-p)^2 P(0 < K < n) / E[sqrt(K (n - K))]^2``
    with ``K ~ Bin(n, p)``; 0 at ``p`` in {0, 1}."""
    if p <= 0 or p >= 1:
        return 0.0
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(1, n)]
    ex = math.fsum(w * math.sqrt(k * (n - k)) for k, w in zip(range(1, n), pmf,
                                                                strict=True))
    return 4 * n * (p * (1 - p)) ** 2 * math.fsum(pmf) / ex**2


def scaled_target(w, C, L, U) -> np.ndarray:
    """``clip(s w, L, U)`` summing to ``C`` (the heuristics' continuous target)."""
    w = np.asarray(w, np.float64)
    lo, hi = math.log(L / w.max()) - 1, math.log(U / w.min()) + 1
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = ((mid, hi) if np.clip(math.exp(mid) * w, L, U).sum() <= C
                  else (lo, mid))
    return np.clip(math.exp(0.5 * (lo + hi)) * w, L, U)
