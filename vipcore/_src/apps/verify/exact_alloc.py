r"""Exact report rows for the corners of the allocators and the advantages.

The random instances of :mod:`vipcore._src.apps.verify.exact` almost never
put two marginal gains within ``1e-4`` of each other, a prompt with a tiny
``a`` at ``U``, or the ``K``-th largest GRPO gain inside a tie. These rows
build such instances on purpose and compare the library with the
independent oracles of :mod:`vipcore._src.apps.verify.oracles`:

* :func:`corner_checks`: :func:`vipcore.solve_allocation`'s integers on
  every budget ``C`` from ``B L`` to ``B U`` of instances with near-tied
  gains (``3e-5``, ``6e-5`` and ``1.3e-4`` apart, inside and just outside the
  tie band ``1e-4``) and with a prompt whose ``a`` is ``2^-44`` of the
  largest, against the solver's documented tie rule written out unit by
  unit (float32 and float64 against the same oracle: the two precisions give
  the same integers); and the RLOO multiplier ``lam`` against its closed
  form on the active set, ``lam^{-1/2} = (C - sum_fixed n - |I|) /
  sum_{q in I} sqrt(a_q)`` (Theorem 5.2 of Nguyen et al. (2025), "Adaptive
  Rollout Allocation for Online Reinforcement Learning with Verifiable
  Rewards"), to a few units of the working precision;
* :func:`padding_checks`: :func:`vipcore.advantages` with ``eps = 0`` on a
  padded batch with a group of one rollout, a constant group and a group of
  padding only: those entries are exactly 0 (not ``0/0``);
* :func:`grpo_checks`: :func:`~vipcore._src.allocation.grpo.grpo_terms`
  against exact enumeration of the reward multisets (``ddof`` 0 and 1), and
  :func:`~vipcore._src.allocation.grpo.allocate_grpo`'s integers against
  the exact minimiser of ``sum_q V_{n_q}(p_q)`` (binomial sums and dynamic
  programming in float64) on batches with exactly tied and near-tied gains.
"""

from __future__ import annotations

import itertools
import math

import jax
import numpy as np

from vipcore._src.apps.verify import oracles as O
from vipcore._src.apps.verify.exact import F64_TOL, Worst, exact_check
from vipcore._src.apps.verify.report import Check

__all__ = ["corner_instances", "lam_instances", "corner_checks", "padding_checks",
           "grpo_checks", "grpo_instances"]

#: The documented tie band of the integer solver (relative, on the gains).
TIE_RTOL = 1e-4
#: Tolerance of the multiplier row, in units of the dtype's epsilon.
LAM_ULPS = 16
#: Padded width of every ``solve_allocation`` call (one compiled program per
#: estimator and dtype, shared with the other allocation rows).
_WIDTH = 16


def _p_of_a(a) -> np.ndarray:
    """The ``p <= 1/2`` with ``4 p (1 - p) = a``."""
    a = np.asarray(a, np.float64)
    return (1 - np.sqrt(1 - a)) / 2


def corner_instances() -> list[tuple[str, np.ndarray, int, int, str]]:
    """``(name, p, L, U, estimator)``; each is solved at every feasible ``C``.

    * a pair 3e-5 apart: both inside the tie band, the lower gain first in
      index order (it gets the unit);
    * a triple 1.3e-4, 6e-5 and 0 below the largest: the lowest is outside
      the band around the ``K``-th gain but inside the band around the
      ``(K+1)``-th;
    * a prompt with ``a = 2^-44 max(a)`` (above the ``2^-46`` cutoff) that
      must receive units up to ``U``: its threshold ``u = tau^{-1/2}`` lies
      above ``2^24``.
    """
    out = []
    for est, L in (("rloo", 2), ("drgrpo", 3)):
        pair = _p_of_a([0.55 * (1 - 3e-5), 0.55, 1.0, 0.37])
        triple = _p_of_a([0.55 * (1 - 1.3e-4), 0.55 * (1 - 6e-5), 0.55, 1.0, 0.37])
        tiny = np.array([0.5, 0.3, 2.0**-46])
        out += [(f"{est} near-tied pair", pair, L, 10, est),
                (f"{est} near-tied triple", triple, L, 10, est),
                (f"{est} a = 2^-44 max(a)", tiny, L, 10, est)]
    return out


def _solve(p, C, L, U, est, dtype):
    import vipcore

    pp = np.full(_WIDTH, 0.5, dtype)
    pp[: p.size] = p
    return vipcore.solve_allocation(pp, C, L, U, estimator=est,
                                    mask=np.arange(_WIDTH) < p.size)


def _a_of(p, dtype) -> np.ndarray:
    """``4 p (1 - p)`` in float64 from ``p`` rounded to ``dtype``."""
    p = np.asarray(p, dtype).astype(np.float64)
    return 4 * p * (1 - p)


def _integer_rows(dtype) -> list[Check]:
    tag = np.dtype(dtype).name
    rule, plain = Worst(1.0), Worst(1.0)
    for name, p, L, U, est in corner_instances():
        a = _a_of(p, dtype)
        for C in range(p.size * L, p.size * U + 1):
            n = np.asarray(_solve(p, C, L, U, est, dtype).n, np.int64)[: p.size]
            case = f"{name}, C={C}"
            rule.add(n, O.tie_rule_allocation(a, C, L, U, est, rtol=TIE_RTOL), case)
            plain.add(n, O.tie_rule_allocation(a, C, L, U, est, rtol=0.0), case)
    return [
        exact_check(f"solve_allocation n at near ties and tiny a = the documented "
                    f"tie rule ({tag})", rule, 0.0,
                    note="every C from B*L to B*U; gains 3e-5, 6e-5 and 1.3e-4 "
                    "apart, a = 2^-44 max(a); float32 and float64 against one "
                    "float64 oracle"),
        exact_check(f"NEGATIVE: the plain greedy without the tie band vs "
                    f"solve_allocation n ({tag})", plain, 0.0, negative=True,
                    note="the corner instances do exercise the band"),
    ]


def lam_instances() -> list[tuple[np.ndarray, int, int, int]]:
    """``(p, C, L, U)``: 15 prompts at ``U`` and one interior prompt with a
    small ``a``, where the multiplier's bracket alone is least precise."""
    out = []
    for U in (64, 256, 1024):
        for a_small in (1e-2, 1e-3, 1e-4):
            p = np.full(_WIDTH, 0.5)
            p[3] = _p_of_a(a_small)
            lam = 0.9 / (U - 1) ** 2
            out.append((p, 15 * U + int(1 + math.sqrt(a_small / lam)), 2, U))
    return out


def _lam_row(dtype) -> Check:
    eps = float(np.finfo(dtype).eps)
    w = Worst()
    for p, C, L, U in lam_instances():
        res = _solve(p, C, L, U, "rloo", dtype)
        a = _a_of(p, dtype)
        active = O.kkt_solution(a, C, L, U, "rloo")[0]  # the oracle's active set
        ref = O.rloo_lam_on_active_set(a, active, C, L, U)
        w.add(res.lam, ref, f"U={U} a_min={a.min():.0e} C={C}")
    return exact_check(
        f"solve_allocation lam (RLOO) vs its closed form on the active set "
        f"({np.dtype(dtype).name})", w, LAM_ULPS * eps,
        note=f"tolerance {LAM_ULPS} eps: the multiplier to the working precision, "
        "15 prompts at U and one interior prompt with a in 1e-4..1e-2")


def corner_checks(*, float64: bool = True) -> list[Check]:
    """The corner rows in float32 and, if ``float64``, in float64."""
    rows = _integer_rows(np.float32) + [_lam_row(np.float32)]
    if float64:
        with jax.enable_x64(True):
            rows += _integer_rows(np.float64) + [_lam_row(np.float64)]
    return rows


# --------------------------------------------------------------------------
# Advantages at eps = 0
# --------------------------------------------------------------------------


def _padding_batch() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Rewards, mask and the real groups: sizes 1, 2 (constant), 3, 0, 4."""
    groups = [np.array([1.0]), np.array([0.3, 0.3]), np.array([1.0, -1.0, 0.5]),
              np.array([]), np.array([0.0, 1.0, 1.0, 0.0])]
    r = np.full((len(groups), 5), np.nan, np.float32)
    m = np.zeros(r.shape, bool)
    for i, g in enumerate(groups):
        r[i, : g.size], m[i, : g.size] = g, True
    r[3, 1] = 7.0  # a value under the mask: padding, never read
    return r, m, groups


def padding_checks() -> list[Check]:
    """``advantages`` with ``eps = 0``: padding, a group of one, a constant
    group and a group of padding only give exactly 0; the rest match the
    rollout-by-rollout formula."""
    import vipcore

    r, m, groups = _padding_batch()
    w = Worst(1.0)
    for est, ddof in (("grpo", 0), ("grpo", 1), ("drgrpo", 0), ("rloo", 0)):
        lib = np.asarray(vipcore.advantages(r, est, mask=m, ddof=ddof, eps=0.0,
                                            singleton="zero"), np.float64)
        for i, g in enumerate(groups):
            ref = np.zeros(r.shape[1])
            if g.size > 1 and np.ptp(g) > 0:
                ref[: g.size] = O.advantages(g, est, ddof=ddof, eps=0.0)
            w.add(lib[i], ref, f"{est} ddof={ddof} group of {g.size}")
    return [exact_check("advantages at eps = 0: padding, groups of one and constant "
                        "groups are exactly 0 (float32)", w, 2e-5,
                        note="NaN rewards and masked values in the padding; "
                        "error relative to max(1, |A|)")]


# --------------------------------------------------------------------------
# GRPO: grpo_terms and the allocation
# --------------------------------------------------------------------------


def _terms_row() -> Check:
    from vipcore._src.allocation.grpo import grpo_terms

    ps = (0.02, 0.1, 0.3, 0.5, 0.77, 0.95)
    ns = (2, 3, 5, 8, 16, 32)
    w = Worst()
    with jax.enable_x64(True):
        pp, nn = np.meshgrid(np.asarray(ps, np.float64), np.asarray(ns), indexing="ij")
        for d in (0, 1):
            t = grpo_terms(pp, nn.astype(np.int32), ddof=d)
            for (i, p), (j, n) in itertools.product(enumerate(ps), enumerate(ns)):
                _, var = O.exact_gradient_moments(p, n, "grpo", ddof=d, eps=1e-13)
                mean, _ = O.exact_gradient_moments(p, n, "grpo", ddof=d, eps=1e-13,
                                                   corr=1.0)
                omega = mean / (4 * p * (1 - p))
                nonzero = 1 - p**n - (1 - p) ** n
                lib = [t.signal[i, j], t.variance[i, j], t.normalized_variance[i, j],
                       t.nonzero[i, j]]
                w.add(np.asarray(lib), [omega, var, var / omega**2, nonzero],
                      f"ddof={d} p={p} n={n}")
    return exact_check("grpo_terms signal, variance (ddof 0 and 1), V_n(p) and "
                       "P(0 < K < n) vs exact enumeration (float64)", w, F64_TOL,
                       note="E[G] under Z = eps + R over Cov(R, Z) = 4p(1-p); "
                       "Var(G) at eps = 1e-13")


#: Bounds of the GRPO allocation rows (the section's, one compiled program).
GRPO_L, GRPO_U = 2, 32


def grpo_instances() -> list[tuple[str, np.ndarray, int]]:
    """``(name, p, C)`` with ``B = 16``: exactly tied prompts (four each of
    four values), near-tied prompts (``p`` 1e-6 apart: gains about 1e-6
    apart), a spread batch with ``p`` in {0, 1}; budgets from 62 to 479 with
    ``K = C - B L`` not a multiple of 4, so that the ``K``-th largest gain of
    the first two batches lies inside a tie."""
    rng = np.random.default_rng(17)
    spread = np.sort(rng.uniform(0, 1, 16))
    spread[[0, -1]] = 0.0, 1.0
    batches = {"tied": np.repeat([0.2, 0.5, 0.7, 0.9], 4),
               "near-tied": 0.3 + 1e-6 * np.arange(16),
               "two near-tied clusters": np.concatenate([
                   0.15 + 1e-6 * np.arange(8), 0.6 + 1e-6 * np.arange(8)]),
               "spread": spread}
    return [(name, p, C) for name, p in batches.items()
            for C in (62, 101, 130, 201, 333, 479)]


def _grpo_table(p) -> np.ndarray:
    """``V_n(p_q)`` for ``n = L .. U`` (float64 oracle) from float32 ``p``."""
    p = np.asarray(p, np.float32).astype(np.float64)
    return np.array([[O.grpo_normalized_variance(float(x), n)
                      for n in range(GRPO_L, GRPO_U + 1)] for x in p])


def _grpo_objective(table, n) -> float:
    n = np.asarray(n, np.int64)
    ok = n.min() >= GRPO_L and n.max() <= GRPO_U
    return float(table[np.arange(n.size), n - GRPO_L].sum()) if ok else math.inf


def _grpo_alloc_rows() -> list[Check]:
    from vipcore._src.allocation import allocate_uniform
    from vipcore._src.allocation.grpo import allocate_grpo

    opt, uni = Worst(), Worst()
    for name, p, C in grpo_instances():
        table = _grpo_table(p)
        _, best = O.separable_optimum(table, C - p.size * GRPO_L)
        n = np.asarray(allocate_grpo(p.astype(np.float32), C, GRPO_L, GRPO_U))
        got = _grpo_objective(table, n) if n.sum() == C else math.inf
        opt.add(got, best, f"{name} C={C}")
        u = np.asarray(allocate_uniform(p, C, GRPO_L, GRPO_U))
        uni.add(_grpo_objective(table, u), best, f"{name} C={C}")
    return [
        exact_check("allocate_grpo n minimises sum_q V_n(p_q) (vs float64 dynamic "
                    "programme on binomial sums)", opt, 1e-6,
                    note="objective of n vs the exact minimum; sum = C and "
                    "L <= n <= U; tied and near-tied gains, p in {0, 1}"),
        exact_check("NEGATIVE: the uniform allocation as the minimiser of "
                    "sum_q V_n(p_q)", uni, 1e-6, negative=True),
    ]


def grpo_checks() -> list[Check]:
    """The GRPO section's exact rows."""
    return [_terms_row()] + _grpo_alloc_rows()
