r"""Exact report rows: the library's public functions against independent oracles.

No Monte Carlo: each row evaluates a function a user calls
(``advantages``, ``gradient_variance``, ``gradient_variance_continuous``,
``grpo_gradient_variance``, ``correlated_gradient_moments``, the reward
moments, ``solve_allocation``'s ``n``, ``objective`` and ``lam``, the
heuristic allocators, the ``vipcore.stats`` tests and their distribution
tails) on many cases and compares it with an oracle of
:mod:`vipcore._src.apps.verify.oracles` (exact enumeration, dense float64
algebra, textbook special functions). The row shows the worst case: the
oracle's value, the library's, and their relative error against a tolerance
set by the working precision (``1e-9`` in float64, about ``1e-5`` in
float32). A negative control per block (a plausible wrong formula) must
exceed the tolerance. Where a Monte-Carlo check would need millions of draws
to see a 1 % error, these rows see ``1e-9``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from vipcore._src.apps.verify import oracles as O
from vipcore._src.apps.verify.report import Check

__all__ = ["Worst", "exact_check", "variance_checks", "allocation_checks",
           "stats_checks", "F64_TOL", "F32_TOL"]

#: Relative tolerance of float64 comparisons (the oracles are good to ~1e-12).
F64_TOL = 1e-9
#: Relative tolerance of float32 comparisons of O(1) quantities.
F32_TOL = 2e-5


class Worst:
    """Tracks the worst relative error over many (library, oracle) pairs."""

    def __init__(self, floor: float = 1e-300):
        self.err, self.lib, self.ref, self.case, self.n = 0.0, math.nan, math.nan, "", 0
        self.floor = floor

    def add(self, lib, ref, case: str = "") -> None:
        lib = np.atleast_1d(np.asarray(lib, np.float64))
        ref = np.atleast_1d(np.asarray(ref, np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            e = np.abs(lib - ref) / np.maximum(np.abs(ref), self.floor)
        e = np.where(lib == ref, 0.0, np.where(np.isnan(e), np.inf, e))
        self.n += e.size
        i = int(np.argmax(e))
        if e[i] >= self.err:
            self.err, self.lib, self.ref, self.case = float(e[i]), float(lib[i]), \
                float(ref[i]), case


def exact_check(name: str, w: Worst, tol: float, *, negative: bool = False,
                note: str = "") -> Check:
    """A row: passes when the worst relative error is ``<= tol`` (a negative
    control when it is ``> tol``)."""
    bad = not w.err <= tol
    where = f" (worst: {w.case})" if w.case else ""
    return Check(
        name=name, passed=bad if negative else not bad, theory=w.ref,
        empirical=w.lib, threshold=tol, negative=negative,
        note=(f"{note}; " if note else "") + f"max relative error {w.err:.2g} "
             f"over {w.n} values{where}; exact, no Monte Carlo")


def _worst(pairs: Iterable[tuple], floor: float = 1e-300) -> Worst:
    w = Worst(floor)
    for lib, ref, case in pairs:
        w.add(lib, ref, case)
    return w


# --------------------------------------------------------------------------
# Variance formulas and advantages
# --------------------------------------------------------------------------

_P = (0.0, 0.01, 0.1, 0.3, 0.5, 0.77, 0.99, 1.0)
_N = (2, 3, 4, 5, 8, 16, 32)
_EST = ("drgrpo", "rloo")


def _groups(rng) -> list[np.ndarray]:
    """All ±1 groups of size 2..6, and graded groups of sizes 3 and 7."""
    out = [np.asarray(r) for n in range(2, 7)
           for r in itertools.product((1.0, -1.0), repeat=n)]
    out += [rng.uniform(-1, 1, n) for n in (3, 7) for _ in range(8)]
    return out


def _advantage_pairs(vc, groups, est, ddof, dtype, width: int = 8):
    """Library vs oracle: every group in one padded, masked batch (NaN in the
    padding), and the unmasked path on the 64 ±1 groups of size 6."""
    r = np.full((len(groups), width), np.nan, dtype)
    m = np.zeros(r.shape, bool)
    for i, g in enumerate(groups):
        r[i, : g.size], m[i, : g.size] = g, True
    lib = np.asarray(vc.advantages(r, est, ddof=ddof, mask=m))
    for i, g in enumerate(groups):
        yield lib[i, : g.size], O.advantages(g, est, ddof=ddof), \
            f"{est} ddof={ddof} n={g.size}"
    six = np.stack([g for g in groups if g.size == 6]).astype(dtype)
    lib = np.asarray(vc.advantages(six, est, ddof=ddof))
    for i, g in enumerate(six):
        yield lib[i], O.advantages(g, est, ddof=ddof), f"{est} unmasked n=6"


def _advantage_rows(vc, rng, dtypes) -> list[Check]:
    groups = _groups(rng)
    rows = []
    for dtype in dtypes:
        tol = F64_TOL if dtype == np.float64 else F32_TOL
        for est, ddof in (("drgrpo", 0), ("rloo", 0), ("grpo", 0), ("grpo", 1)):
            w = _worst(_advantage_pairs(vc, groups, est, ddof, dtype), floor=1.0)
            name = f"advantages {est}" + (f" ddof={ddof}" if est == "grpo" else "")
            rows.append(exact_check(
                f"{name} ({np.dtype(dtype).name}) vs rollout-by-rollout formula",
                w, tol, note="all ±1 groups n=2..6 and graded groups, padded and "
                "unpadded; error relative to max(1, |A|)"))
    return rows


def _formula_rows(vc, mc) -> list[Check]:
    """Props 4.2/4.3, E.1/E.2, GRPO and the correlated moments, float64."""
    rows = []
    g = _worst((vc.gradient_variance(np.float64(p), n, est, 1.7),
                 O.exact_gradient_moments(p, n, est, z_var=1.7)[1],
                 f"{est} p={p} n={n}") for est in _EST for p in _P for n in _N)
    rows.append(exact_check("gradient_variance (Props 4.2/4.3) vs exact enumeration",
                            g, F64_TOL, note="sigma_Z^2=1.7, p in [0, 1], n <= 32"))
    dists = (((0.0, 0.5, 1.0), (0.2, 0.5, 0.3)), ((-1.0, 0.3, 2.0), (0.5, 0.25, 0.25)))

    def cont():
        for (vals, pr), est, n in itertools.product(dists, _EST, (2, 3, 4, 6)):
            mean = sum(v * q for v, q in zip(vals, pr, strict=True))
            var = sum(q * (v - mean) ** 2 for v, q in zip(vals, pr, strict=True))
            lib = vc.gradient_variance_continuous(np.float64(var), n, estimator=est,
                                                  sigma_z2=0.7)
            yield lib, O.discrete_gradient_variance(vals, pr, n, est, z_var=0.7), \
                f"{est} n={n} R in {vals}"

    rows.append(exact_check(
        "gradient_variance_continuous (Props E.1/E.2) vs exact enumeration",
        _worst(cont()), F64_TOL, note="rewards on 3 values, sigma_Z^2=0.7"))
    grpo = _worst(((vc.grpo_gradient_variance(p, n, ddof=d, sigma_z2=1.3, eps=e),
                    O.exact_gradient_moments(p, n, "grpo", z_var=1.3, ddof=d, eps=e)[1],
                    f"ddof={d} eps={e} p={p} n={n}")
                   for d in (0, 1) for e in (1e-6, 0.1) for p in _P
                   for n in (2, 3, 5, 8, 12)), floor=1e-300)
    rows.append(exact_check("grpo_gradient_variance vs exact enumeration", grpo,
                            F64_TOL, note="ddof 0/1, eps 1e-6/0.1"))

    def corr():
        for est, p, n, c in itertools.product(_EST, (0.2, 0.5, 0.9), (2, 3, 5, 8),
                                              (0.8, 2.0)):
            lib = mc.correlated_gradient_moments(np.float64(p), n, c, estimator=est,
                                                 z_var=1.3)
            ref = O.exact_gradient_moments(p, n, est, z_var=1.3, corr=c, z_mean=0.4)
            yield np.asarray(lib), np.asarray(ref), f"{est} p={p} n={n} c={c}"

    rows.append(exact_check(
        "correlated_gradient_moments (E[G], Var(G) under Z = eps + cR) vs exact "
        "enumeration", _worst(corr()), F64_TOL))
    return rows


def _reward_moment_rows(mc) -> list[Check]:
    def moments(vals, probs):
        m = sum(v * q for v, q in zip(vals, probs, strict=True))
        return [m] + [sum(q * (v - m) ** k for v, q in zip(vals, probs, strict=True))
                      for k in (2, 4)]

    def beta(p, s=2.0):  # raw moments E[X^k] = prod_i (a + i) / (s + i)
        a = s * p
        raw = [math.prod((a + i) / (s + i) for i in range(k)) for k in range(5)]
        m = raw[1]
        c2 = raw[2] - m * m
        c4 = raw[4] - 4 * m * raw[3] + 6 * m * m * raw[2] - 3 * m**4
        return [m, c2, c4]

    def pairs():
        for p in (0.0, 0.1, 0.3, 0.5, 0.9, 1.0):
            refs = {"pm1": moments((1.0, -1.0), (p, 1 - p)),
                    "binary": moments((1.0, 0.0), (p, 1 - p)),
                    "gaussian": [2 * p - 1, 1.5**2, 3 * 1.5**4]}
            if 0 < p < 1:
                refs["beta"] = beta(p)
            for rw, ref in refs.items():
                kw = dict(concentration=2.0, reward_sd=1.5)
                lib = [mc.reward_mean(np.float64(p), rw),
                       mc.reward_variance(np.float64(p), rw, **kw),
                       mc.reward_central_moment4(np.float64(p), rw, **kw)]
                yield np.asarray(lib), np.asarray(ref), f"{rw} p={p}"

    return [exact_check("reward_mean / reward_variance / reward_central_moment4 vs "
                        "exact moments", _worst(pairs(), floor=1e-12), F64_TOL,
                        note="±1, 0/1, Beta(2p, 2(1-p)), N(2p-1, 1.5^2)")]


def _estimator_rows(mc, rng) -> list[Check]:
    """``estimate_variance`` (float64 NumPy and float32 JAX paths) against the
    two-pass formulas in ``math.fsum``: a divisor ``M`` for ``M - 1`` is a
    relative error of ``1/M``, far below any Monte-Carlo row's resolution."""
    rows = []
    for dtype, tol in ((np.float64, F64_TOL), (np.float32, F32_TOL)):
        w = Worst()
        for m in (2, 3, 17, 1000):
            x = (rng.standard_t(6, m) * 3 + 1).astype(dtype)
            xs = [float(v) for v in x]
            mean = math.fsum(xs) / m
            d2 = [(v - mean) ** 2 for v in xs]
            s2 = math.fsum(d2) / (m - 1)
            m4 = math.fsum(d * d for d in d2) / m
            se = math.sqrt(max((m4 - (m - 3) / (m - 1) * s2 * s2) / m, 0.0))
            e = mc.estimate_variance(x if dtype == np.float64 else jnp.asarray(x))
            w.add([e.var, e.se, e.mean, e.mean_se, e.trials],
                  [s2, se, mean, math.sqrt(s2 / m), m], f"M={m}")
        rows.append(exact_check(
            f"estimate_variance ({np.dtype(dtype).name}) vs two-pass formulas",
            w, tol, note="s^2 with divisor M - 1, its s.e. from the fourth moment"))
    return rows


def variance_checks(seed: int) -> list[Check]:
    """Exact rows for the variance section (and one negative control)."""
    from vipcore._src import montecarlo as mc
    from vipcore._src import variance as vc

    rng = np.random.default_rng(seed)
    rows = _advantage_rows(vc, rng, (np.float32,)) + _estimator_rows(mc, rng)
    with jax.enable_x64(True):
        rows += _advantage_rows(vc, rng, (np.float64,))
        rows += _formula_rows(vc, mc) + _reward_moment_rows(mc)
        wrong = _worst((4 * p * (1 - p) / n, O.exact_gradient_moments(p, 3, est)[1],
                         f"{est} p={p} n=3") for est in _EST for p in (0.3, 0.5)
                        for n in (3,))
    rows.append(exact_check("NEGATIVE: the formula 1/n (App. A.2's typo for RLOO) "
                            "vs exact enumeration", wrong, F64_TOL, negative=True))
    return rows


# --------------------------------------------------------------------------
# Allocation: solve_allocation's n, n_continuous, lam, objective; heuristics
# --------------------------------------------------------------------------

#: Per-dtype tolerances: (objective and n_continuous relative, lam relative).
_ALLOC_TOL = {np.float64: (1e-9, 1e-6), np.float32: (F32_TOL, 2e-3)}


def allocation_instances(seed: int, p16: np.ndarray) -> list[tuple]:
    """``(p, C, L, U, estimator)``: the report's batch, its corners and random
    batches (with prompts at p in {0, 1})."""
    rng = np.random.default_rng(seed)
    out = []
    for est, L in (("drgrpo", 3), ("rloo", 2)):
        B = p16.size
        for C in (8 * B, B * 16, B * L, B * 16 - 1, B * L + 1):
            out.append((p16, C, L, 16, est))
        for _ in range(10):
            B = int(rng.integers(13, 17))  # one padded shape for every solver
            p = rng.uniform(0, 1, B)
            p[rng.uniform(size=B) < 0.15] = rng.integers(0, 2)
            U = int(rng.integers(L + 1, 20))
            out.append((p, int(rng.integers(B * L, B * U + 1)), L, U, est))
    return out


def _objective(n, p, est):
    return float(np.sum(4 * p * (1 - p) * O.factor(np.maximum(n, 1), est)))


def _oracle(instances) -> list[tuple]:
    """Per instance: ``(a, continuous n, lam, greedy optimum)`` in float64."""
    out = []
    for p, C, L, U, est in instances:
        a = 4 * p * (1 - p)
        out.append((a, *O.kkt_solution(a, C, L, U, est),
                    O.greedy_optimum(a, C, L, U, est)))
    return out


def _solve_rows(instances, oracle, dtype, width: int = 16) -> list[Check]:
    import vipcore

    tol_obj, tol_lam = _ALLOC_TOL[dtype]
    obj, ncont, lam, opt, ao = Worst(), Worst(1.0), Worst(), Worst(), Worst()
    for (p, C, L, U, est), (_, n_ref, lam_ref, best) in zip(instances, oracle,
                                                         strict=True):
        pp = np.full(width, 0.5, dtype)  # one compiled program per estimator
        pp[: p.size] = p
        res = vipcore.solve_allocation(jnp.asarray(pp), C, L, U, estimator=est,
                                       mask=jnp.asarray(np.arange(width) < p.size))
        n = np.asarray(res.n, np.int64)[: p.size]
        nc = np.asarray(res.n_continuous, np.float64)[: p.size]
        case = f"{est} B={p.size} C={C} L={L} U={U}"
        ok = int(n.sum()) == C and n.min() >= L and n.max() <= U
        opt.add(_objective(n, p, est) if ok else math.inf, _objective(best, p, est),
                case)
        obj.add(res.objective, _objective(n, p, est), case)
        ncont.add(np.append(nc, nc.sum() / C), np.append(n_ref, 1.0), case)
        if lam_ref > 0 and np.any((n_ref > L + 1e-9) & (n_ref < U - 1e-9)):
            lam.add(res.lam, lam_ref, case)
        zeros = np.zeros(width - p.size)  # padding: p = 0 (a = 0) adds exactly 0
        ao.add(vipcore.allocation_objective(
            np.append(n, zeros + L).astype(np.int32), np.append(p, zeros).astype(dtype),
            est, 1.9), 1.9 * _objective(n, p, est), case)
    tag = np.dtype(dtype).name
    return [
        exact_check(f"solve_allocation n is the integer optimum ({tag})", opt,
                    1e-12, note="objective of n vs the marginal-gain greedy; "
                    "sum = C and L <= n <= U"),
        exact_check(f"solve_allocation objective = sum_q 4p(1-p) c(n_q) ({tag})",
                    obj, tol_obj),
        exact_check(f"solve_allocation n_continuous vs float64 KKT bisection "
                    f"({tag})", ncont, 50 * tol_obj,
                    note="entries relative to max(1, n), and sum / C; corners "
                    "C = B*L and C = B*U included"),
        exact_check(f"solve_allocation lam vs float64 KKT bisection ({tag})", lam,
                    tol_lam, note="instances with an interior prompt (unique "
                    "multiplier)"),
        exact_check(f"allocation_objective (sigma_Z^2 = 1.9) vs dense sum ({tag})",
                    ao, tol_obj),
    ]


def _remainder_error(n: np.ndarray, x: np.ndarray) -> float:
    """0 when ``n`` is the largest-remainder rounding of ``x`` (every ``n`` is
    ``floor(x)`` or ``floor(x) + 1``, the extra units on the largest
    fractional parts); else the worst violation (``inf`` for a wrong floor)."""
    base = np.floor(x + 1e-9)
    extra = n - base
    if not np.all((extra == 0) | (extra == 1)):
        return math.inf
    frac = x - base
    if 0 < extra.sum() < n.size:
        return max(0.0, float(frac[extra == 0].max() - frac[extra == 1].min()))
    return 0.0


def _heuristic_rows(instances) -> list[Check]:
    import vipcore

    fns = {"uniform": (vipcore.allocate_uniform, lambda p: np.ones_like(p)),
           "inverse accuracy": (vipcore.allocate_inverse_accuracy,
                                lambda p: 1 - p + 1e-2),
           "inverse variance": (vipcore.allocate_inverse_variance,
                                lambda p: 1 / (p * (1 - p) + 1e-2))}
    rows = []
    for name, (fn, weights) in fns.items():
        w = Worst(1.0)
        for p, C, L, U, _ in instances:
            n = np.asarray(fn(p, C, L, U), np.float64)
            target = O.scaled_target(weights(p), C, L, U)
            err = _remainder_error(n, target) if n.sum() == C else math.inf
            w.add(err, 0.0, f"B={p.size} C={C} L={L} U={U}")
        rows.append(Check(
            name=f"allocate_{name.replace(' ', '_')}: largest-remainder rounding of "
                 "clip(s w, L, U)",
            passed=w.err <= 1e-5, empirical=w.err, threshold=1e-5,
            note=f"n = floor(x) or floor(x) + 1, the extra units on the largest "
                 f"fractional parts, sum = C; exact target x by float64 bisection; "
                 f"{len(instances)} instances (worst: {w.case})"))
    return rows


def allocation_checks(seed: int, p16: np.ndarray, *, float64: bool = True
                      ) -> list[Check]:
    """Exact rows for the allocation outputs in float32 (what ``allocate``
    runs by default) and, if ``float64``, in float64 (tighter tolerances; two
    more compilations of the solver)."""
    import vipcore

    inst = allocation_instances(seed, np.asarray(p16, np.float64))
    oracle = _oracle(inst)
    rows = _solve_rows(inst, oracle, np.float32)
    if float64:
        with jax.enable_x64(True):
            rows += _solve_rows(inst, oracle, np.float64)
    rows += _heuristic_rows(inst[:15])
    # negative control: the objective with a = p(1-p) (the authors' code)
    w = Worst()
    for p, C, L, U, est in inst[:5]:
        n = vipcore.allocate(p, C, L, U, est)
        w.add(np.sum(p * (1 - p) * O.factor(n, est)), _objective(n, p, est), est)
    rows.append(exact_check("NEGATIVE: objective with a = p(1-p) instead of "
                            "4p(1-p)", w, F32_TOL, negative=True))
    return rows


# --------------------------------------------------------------------------
# vipcore.stats against the textbook statistics
# --------------------------------------------------------------------------


def _stats_data(rng, q: int = 12):
    """Ragged groups of 1..9 rollouts: ±1 rewards (some constant), normal or
    skewed Z on several scales."""
    lens = rng.integers(1, 10, q)
    lens[:3] = (3, 4, 9)
    R = [np.where(rng.uniform(size=k) < rng.uniform(0.2, 0.8), 1.0, -1.0)
         for k in lens]
    R[3] = np.ones(lens[3])  # a constant group: excluded by Pearson
    Z = [10.0 ** rng.integers(-2, 3) * (rng.standard_normal(k) if i % 2
                                         else rng.exponential(size=k))
         for i, k in enumerate(lens)]
    return R, Z


def _pearson_rows(S, R, Z, tol) -> tuple[list, list[float]]:
    res = S.pearson_groups(R, Z)
    w, used_ok, pv = Worst(), True, []
    for q, (r, z) in enumerate(zip(R, Z, strict=True)):
        used = r.size >= 3 and np.ptp(r) > 0 and np.ptp(z) > 0
        used_ok &= bool(res.used[q]) == used
        used_ok &= int(res.df[q]) == max(r.size - 2, 0)
        if used:
            rho, p = O.pearson(r, z)
            w.add([res.statistic[q], res.pvalue[q]], [rho, p], f"group {q} n={r.size}")
            pv.append(p)
    if not used_ok:
        w.add(math.inf, 0.0, "used/df flags")
    return [exact_check("pearson_groups r and p (t law, n-2 df) vs oracle", w, tol,
                        note="used flags and df checked too")], pv


def _combine_rows(S, res, pv, tol) -> list[Check]:
    f, e = S.fisher(res), S.edgington(res, method="exact")
    en = S.edgington(res, method="normal")
    x, pf = O.fisher(pv)
    s, pe = O.edgington(pv)
    k = len(pv)
    pn = 0.5 * math.erfc(-((s - k / 2) / math.sqrt(k / 12)) / math.sqrt(2))
    return [
        exact_check("fisher (chi2 with 2k df) vs closed-form tail",
                    _worst([([f.statistic, f.pvalue, f.df], [x, pf, 2 * k], "")]), tol),
        exact_check("edgington exact (Irwin-Hall) vs rational arithmetic",
                    _worst([([e.statistic, e.pvalue], [s, pe], "")]), tol),
        exact_check("edgington normal approximation vs Phi((S - k/2)/sqrt(k/12))",
                    _worst([(en.pvalue, pn, "")]), tol),
    ]


def _variance_test_rows(S, Z, tol) -> list[Check]:
    rows = []
    tests = {"levene median": (lambda g: S.levene(g), O.levene_y, 2),
             "levene mean": (lambda g: S.levene(g, center="mean"),
                             lambda z: O.levene_y(z, "mean"), 2),
             "obrien": (S.obrien, O.obrien_y, 3)}
    for name, (fn, transform, min_n) in tests.items():
        res = fn(Z)
        ref = O.oneway_f([transform(z) for z in Z if z.size >= min_n])
        rows.append(exact_check(
            f"{name}: W, p, dfn, dfd vs one-way ANOVA oracle",
            _worst([([res.statistic, res.pvalue, res.dfn, res.dfd], list(ref), "")]),
            tol))
    return rows


def _tail_cases() -> dict[str, list]:
    t = np.linspace(0.05, 6, 9)
    c: dict[str, list] = {k: [] for k in ("t", "f", "chi2", "ih")}
    for df in (1.0, 2.0, 5.0, 14.0, 150.0):
        c["t"] += [(v, df) for v in t]
    for d1, d2 in ((1.0, 4.0), (2.0, 30.0), (29.0, 450.0)):
        c["f"] += [(v / 2, d1, d2) for v in t]
    for df in (2.0, 8.0, 40.0):
        c["chi2"] += [(3 * v, df) for v in t]
    for q in (1, 3, 8, 20):
        c["ih"] += [(v, q) for v in np.linspace(0.1, q - 0.1, 7)]
    return c


def _tails(S):
    """All four tails in one compiled program (arrays of cases)."""
    def run(t, f, chi2, ih):
        return (S.t_sf_two_sided(t[:, 0], t[:, 1]), S.f_sf(f[:, 0], f[:, 1], f[:, 2]),
                S.chi2_sf(chi2[:, 0], chi2[:, 1]),
                jax.vmap(lambda v, q: S.irwin_hall_cdf(v, q, q_max=20))(
                    ih[:, 0], ih[:, 1].astype(jnp.int32)))
    return jax.jit(run)


def _tail_rows(S, tol) -> list[Check]:
    c = _tail_cases()
    lib = _tails(S)(*(jnp.asarray(np.asarray(c[k], np.float64))
                      for k in ("t", "f", "chi2", "ih")))
    refs = ([O.t_two_sided(v, df) for v, df in c["t"]],
            [O.f_sf(w, d1, d2) for w, d1, d2 in c["f"]],
            [O.chi2_sf_even(x, int(df)) for x, df in c["chi2"]],
            [O.irwin_hall_cdf(v, int(q)) for v, q in c["ih"]])
    names = ("t (df 1-150)", "F (up to F(29, 450))", "chi2 (df 2-40)",
             "Irwin-Hall (q <= 20)")
    w = _worst(zip(lib, refs, names, strict=True))
    return [exact_check("t_sf_two_sided, f_sf, chi2_sf, irwin_hall_cdf vs textbook "
                        "algorithms", w, tol)]


def stats_checks(seed: int, battery: Callable | None = None) -> list[Check]:
    """Exact rows for the Appendix B section: float64 eager API vs oracles,
    the float32 battery of the simulations vs oracles, a negative control."""
    from vipcore import stats as S

    rng = np.random.default_rng(seed)
    R, Z = _stats_data(rng)
    with jax.enable_x64(True):
        rows, pv = _pearson_rows(S, R, Z, F64_TOL)
        rows += _combine_rows(S, S.pearson_groups(R, Z), pv, F64_TOL)
        rows += _variance_test_rows(S, Z, F64_TOL)
        rows += _tail_rows(S, F64_TOL)
        wrong = Worst()
        for r, z in zip(R, Z, strict=True):
            if r.size >= 4 and np.ptp(r) > 0:
                rho, _ = O.pearson(r, z)
                t = rho * math.sqrt((r.size - 2) / (1 - rho * rho))
                wrong.add(O.t_two_sided(t, r.size - 1), O.pearson(r, z)[1])
    rows.append(exact_check("NEGATIVE: Pearson p-value on n-1 degrees of freedom",
                            wrong, F64_TOL, negative=True))
    if battery is not None:
        rows.append(battery_check(battery, rng))
    return rows


def battery_check(battery: Callable, rng, q: int = 600, n: int = 16) -> Check:
    """The float32 masked cores the simulations use, on one paper-size data
    set, vs the oracles (tolerance 5e-3 relative: float32 F tails at
    F(599, 9000); see docs/stats.md)."""
    R = np.where(rng.uniform(size=(q, n)) < rng.uniform(size=(q, 1)), 1.0, -1.0)
    Z = rng.standard_normal((q, n)) * np.exp(0.1 * rng.standard_normal((q, 1)))
    got = np.asarray(battery(jnp.asarray(R, jnp.float32), jnp.asarray(Z, jnp.float32),
                             jnp.ones((q, n), bool)), np.float64)
    R32, Z32 = R.astype(np.float32).astype(np.float64), Z.astype(np.float32).astype(
        np.float64)
    pv = [O.pearson(r, z)[1] for r, z in zip(R32, Z32, strict=True) if np.ptp(r) > 0]
    ref = [O.fisher(pv)[1], O.edgington(pv)[1],
           O.oneway_f([O.levene_y(z) for z in Z32])[1],
           O.oneway_f([O.levene_y(z, "mean") for z in Z32])[1],
           O.oneway_f([O.obrien_y(z) for z in Z32])[1]]
    w = _worst([(got, ref, "Fisher, Edgington, Levene x2, O'Brien")])
    return exact_check("float32 battery of the simulations (Q=600, n=16) vs oracles",
                       w, 5e-3, note="oracles in float64 on the float32 data")
