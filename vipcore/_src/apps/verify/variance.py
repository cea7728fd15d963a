r"""``vipcore verify`` section: Monte-Carlo proofs of the variance propositions.

What is checked (each row a z-score: ``(empirical - theory) / s.e.`` for means
and differences, :func:`log_z` for variances):

* Props 4.2/4.3 on a grid of ``p`` (0.01 … 0.99) × ``n`` (2 … 64), Dr. GRPO and
  RLOO, ±1 rewards and normal ``Z``: ``Var(G) = c(n) sigma_Z^2 4p(1-p)``.
* ``mu_Z != 0``: the same variance, and ``E[G] = 0``, for GRPO, Dr. GRPO and
  RLOO (GRPO's exact variance is ``sigma_Z^2 / n * E[s^2 / (s + eps)^2]`` with
  ``s`` the population std of the group's rewards: not in the paper, derived
  the same way).
* Props E.1/E.2: continuous rewards (Beta, Gaussian) and binary rewards, with
  heavy-tailed, skewed and two-point ``Z``.
* Assumption 4.1 broken (``Z = eps + c R``): the exact moments of
  :func:`~vipcore._src.montecarlo.correlated_gradient_moments` hold (positive),
  while ``E[G] = 0`` and the proposition (with the measured ``Var(Z)``) are
  rejected (negative controls).
* A wrong formula (``1/n`` for both estimators; for RLOO that is App. A.2's
  typo) is rejected (negative control).
* VIP allocation vs uniform / inverse-accuracy / inverse-variance at the same
  budget on a mixed-``p`` batch: every allocation's total ``sum_q Var(G_q)``
  matches theory, and the differences to VIP match the predicted differences.
  Heteroscedastic ``Z`` across prompts breaks the pooled-``sigma_Z`` prediction
  of the total (negative control), while the per-prompt formula still holds.

Standard errors come from the fourth sample moment
(:func:`~vipcore._src.montecarlo.estimate_variance`), thresholds from
:func:`~vipcore._src.apps.verify.report.bonferroni_z` over the section's positive
checks.
Negative controls use the same threshold; each reports its power (the
probability of detection, from the expected z).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np

from vipcore._src._plotting import new_figure, save_figure
from vipcore._src.apps.verify.report import (
    Check,
    SectionResult,
    VerifyConfig,
    bonferroni_z,
    z_check,
)
from vipcore._src.montecarlo import (
    correlated_gradient_moments,
    reward_variance,
    simulate_cells,
)
from vipcore._src.variance import (
    ADVANTAGE_ESTIMATORS,
    grpo_gradient_variance,
    variance_factor,
    zero_variance_probability,
)

__all__ = ["TITLE", "section", "detection_power", "log_z"]

TITLE = "Gradient variance: Props 4.2/4.3, E.1/E.2 and VIP allocation"

#: Elements (cells × trials × n_max) per compiled call: bounds memory (~8 MB/array).
_CALL_ELEMENTS = 2**21
#: Cells per compiled call.
_K = 8
#: Student-t degrees of freedom used here: > 8 so that even the eighth moment
#: (the variance of the fourth-moment s.e. estimate) is finite.
_T_DF = 10.0
_GRPO_EPS = 1e-6
_EST_INDEX = {e: i for i, e in enumerate(ADVANTAGE_ESTIMATORS)}
_NAMES = {"grpo": "GRPO", "drgrpo": "Dr.GRPO", "rloo": "RLOO"}


# --------------------------------------------------------------------------
# Small exact helpers
# --------------------------------------------------------------------------


def detection_power(expected_z: float, threshold: float) -> float:
    """``P(|Z| > threshold)`` for ``Z ~ N(expected_z, 1)``: a control's power."""
    nd = NormalDist()
    a = abs(expected_z)
    return nd.cdf(a - threshold) + nd.cdf(-a - threshold)


def _estimate(g: np.ndarray) -> tuple[float, float, float, float]:
    """Float64 twin of :func:`~vipcore._src.montecarlo.estimate_variance`:
    ``(s^2, se(s^2), mean, se(mean))``."""
    g = np.asarray(g, dtype=np.float64)
    m = g.size
    mean = g.mean()
    d2 = (g - mean) ** 2
    s2 = d2.sum() / (m - 1)
    m4 = (d2 * d2).mean()
    se = math.sqrt(max((m4 - (m - 3) / (m - 1) * s2 * s2) / m, 0.0))
    return float(s2), se, float(mean), math.sqrt(s2 / m)


def _trial_multiplier(p: float, n: int, reward: str) -> int:
    """Extra trials (a power of two, at most 16) for cells where few groups
    carry signal (``p`` near 0 or 1, small ``n``), so that at least about a
    tenth of ``M`` groups are non-degenerate (carry any signal) and the normal
    approximation of the z-score stays good."""
    if reward not in ("pm1", "binary"):
        return 1
    q = 1.0 - float(zero_variance_probability(p, n))
    if q <= 0:
        return 1
    need = 0.1 / q
    mult = 1
    while mult < need and mult < 16:
        mult *= 2
    return mult


# --------------------------------------------------------------------------
# Cells and their simulation
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cell:
    block: str
    p: float
    n: int
    estimator: str
    z_mean: float = 0.0
    z_var: float = 1.0
    corr: float = 0.0
    reward: str = "pm1"
    z_dist: str = "normal"
    mult: int = 1
    n_max: int = 16


def _n_max(n: int, buckets: tuple[int, ...] = (16, 64)) -> int:
    """The padded group size of the compiled program a cell runs in."""
    return next(b for b in buckets if n <= b)


def _simulate(cells: list[_Cell], key: jax.Array, trials: int) -> list[np.ndarray]:
    """Run every cell with ``trials * cell.mult`` groups; returns G per cell.

    Cells are grouped by compiled program ``(reward, z_dist, n_max)``; each
    cell's trials are split into equal chunks and each (cell, chunk) gets its
    own key ``fold_in(fold_in(key, cell_index), chunk)``.
    """
    out: list[list[np.ndarray]] = [[] for _ in cells]
    programs: dict[tuple, list[int]] = {}
    for i, c in enumerate(cells):
        programs.setdefault((c.reward, c.z_dist, c.n_max), []).append(i)
    for (reward, z_dist, n_max), idx in programs.items():
        # equal chunks of at most the memory cap; a cell with multiplier m
        # gets m * per_trials chunks (exactly m * trials when chunk divides it)
        cap = max(256, _CALL_ELEMENTS // (_K * n_max))
        per_trials = -(-trials // cap)
        chunk = -(-trials // per_trials)
        items = []
        for i in idx:
            items += [(i, j) for j in range(cells[i].mult * per_trials)]
        for start in range(0, len(items), _K):
            batch = items[start:start + _K]
            pad = batch + [batch[0]] * (_K - len(batch))
            keys = jnp.stack([
                jax.random.fold_in(jax.random.fold_in(key, i), j) for i, j in pad
            ])
            cs = [cells[i] for i, _ in pad]
            g = simulate_cells(
                keys,
                jnp.asarray([c.p for c in cs], jnp.float32),
                jnp.asarray([c.n for c in cs], jnp.int32),
                jnp.asarray([_EST_INDEX[c.estimator] for c in cs], jnp.int32),
                jnp.asarray([c.z_mean for c in cs], jnp.float32),
                jnp.asarray([c.z_var for c in cs], jnp.float32),
                jnp.asarray([c.corr for c in cs], jnp.float32),
                n_max=n_max, trials=chunk, reward=reward, z_dist=z_dist,
                df=_T_DF,
            )
            g = np.asarray(g)
            for r, (i, _) in enumerate(batch):
                out[i].append(g[r])
    return [np.concatenate(parts) for parts in out]


def _theory_var(c: _Cell) -> float:
    """Var(G) under Assumption 4.1 from the library's formulas."""
    if c.estimator == "grpo":
        if c.reward != "pm1":
            raise ValueError("GRPO theory is implemented for pm1 rewards only")
        return float(grpo_gradient_variance(c.p, c.n, sigma_z2=c.z_var, eps=_GRPO_EPS))
    v = float(reward_variance(c.p, c.reward, concentration=2.0, reward_sd=1.0))
    return float(variance_factor(c.n, c.estimator)) * c.z_var * v


# --------------------------------------------------------------------------
# The section
# --------------------------------------------------------------------------


def _settings(cfg: VerifyConfig) -> dict:
    return dict(
        trials=cfg.trials if cfg.trials is not None else cfg.pick(4000, 20000, 100000),
        grid_p=cfg.pick(
            (0.01, 0.5, 0.99),
            (0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99),
            (0.01, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99),
        ),
        grid_n=cfg.pick(
            (2, 3, 8),
            (2, 3, 4, 8, 16, 32, 64),
            (2, 3, 4, 5, 8, 12, 16, 24, 32, 48, 64),
        ),
        muz_p=cfg.pick((0.2, 0.9), (0.2, 0.5, 0.9), (0.05, 0.2, 0.5, 0.9)),
        muz_n=cfg.pick((3, 8), (3, 8), (3, 8, 32)),
        fam_p=cfg.pick((0.3,), (0.2, 0.7), (0.1, 0.3, 0.7)),
        fam_n=cfg.pick((4,), (3, 8), (3, 8, 16)),
        # (reward, Z) pairs, one compiled program each (~1.5 s of compilation;
        # Beta/Student-t use jax.random.gamma, ~4 s): quick mode runs one.
        families=cfg.pick(_FAMILIES[1:2], _FAMILIES, _FAMILIES),
    )


_FAMILIES = (
    ("beta", "student_t"), ("gaussian", "exponential"), ("binary", "two_point"),
)


def _build_cells(s: dict) -> dict[str, list[_Cell]]:
    grid = [
        _Cell("grid", p, n, est, mult=_trial_multiplier(p, n, "pm1"), n_max=_n_max(n))
        for est in ("drgrpo", "rloo") for p in s["grid_p"] for n in s["grid_n"]
    ]
    muz = [
        _Cell("muz", p, n, est, z_mean=3.0, z_var=2.0,
              mult=_trial_multiplier(p, n, "pm1"), n_max=_n_max(n))
        for est in ("grpo", "drgrpo", "rloo") for p in s["muz_p"] for n in s["muz_n"]
    ]
    fam = [
        _Cell("family", p, n, est, z_mean=0.5, z_var=2.0, reward=rw, z_dist=zd,
              mult=_trial_multiplier(p, n, rw), n_max=_n_max(n, (8, 16, 64)))
        for rw, zd in s["families"]
        for est in ("drgrpo", "rloo") for p in s["fam_p"] for n in s["fam_n"]
    ]
    corr = [
        _Cell("corr", 0.5, 8, "drgrpo", corr=2.0),
        _Cell("corr", 0.5, 4, "rloo", corr=2.0),
    ]
    return {"grid": grid, "muz": muz, "family": fam, "corr": corr}


def section(cfg: VerifyConfig) -> SectionResult:
    """Run the variance section (see the module docstring)."""
    s = _settings(cfg)
    trials = int(s["trials"])
    key = jax.random.key(cfg.seed)
    blocks = _build_cells(s)
    order = ["grid", "muz", "family", "corr"]
    cells = [c for b in order for c in blocks[b]]
    cfg.progress(f"variance: simulating {len(cells)} cells, M = {trials} trials each")
    sims = _simulate(cells, jax.random.fold_in(key, 1), trials)
    est = [_estimate(g) for g in sims]
    ok_cells = list(zip(cells, est, (g.size for g in sims), strict=True))

    alloc = _allocation_block(cfg, s, jax.random.fold_in(key, 2), trials)

    # ---- count positive checks, then the Bonferroni threshold ------------
    # kind "var": a variance, tested on the log scale; "lin": a mean/difference
    pos_specs: list[tuple] = []  # (kind, name, theory, emp, se, note)
    neg_specs: list[tuple] = []  # (kind, name, wrong theory, emp, se, true, note)
    grid_rows = []
    for c, (s2, se, mean, mse), m in ok_cells:
        tag = f"{_NAMES[c.estimator]} p={c.p:g} n={c.n}"
        if c.block == "grid":
            th = _theory_var(c)
            pos_specs.append(("var", f"Var(G) {tag}", th, s2, se, f"M={m}"))
            grid_rows.append(dict(estimator=c.estimator, p=c.p, n=c.n, theory=th,
                                  empirical=s2, stderr=se, trials=m,
                                  z=log_z(th, s2, se)))
        elif c.block in ("muz", "family"):
            extra = (f"mu_Z={c.z_mean:g}, var_Z={c.z_var:g}" if c.block == "muz"
                     else f"R {c.reward}, Z {c.z_dist}")
            pos_specs.append(("var", f"Var(G) {tag} {extra}", _theory_var(c), s2,
                              se, f"M={m}"))
            pos_specs.append(("lin", f"E[G]=0 {tag} {extra}", 0.0, mean, mse,
                              f"M={m}"))
        elif c.block == "corr":
            em, ev = (float(x) for x in correlated_gradient_moments(
                c.p, c.n, c.corr, estimator=c.estimator, z_var=c.z_var))
            tag2 = f"{tag} Z=eps+{c.corr:g}R"
            pos_specs.append(("lin", f"E[G] exact (correlated) {tag2}", em, mean,
                              mse, f"M={m}"))
            pos_specs.append(("var", f"Var(G) exact (correlated) {tag2}", ev, s2,
                              se, f"M={m}"))
            v = float(reward_variance(c.p, "pm1"))
            var_z = c.z_var + c.corr**2 * v
            naive = float(variance_factor(c.n, c.estimator)) * var_z * v
            neg_specs.append(("lin", f"E[G]=0 under correlated R-Z {tag2}", 0.0,
                              mean, mse, em, "Assumption 4.1 broken"))
            neg_specs.append((
                "var",
                f"Prop 4.{2 if c.estimator == 'drgrpo' else 3} with measured "
                f"Var(Z)={var_z:g} under correlated R-Z {tag2}",
                naive, s2, se, ev, "Assumption 4.1 broken"))
    # wrong formula: 1/n (for RLOO the App. A.2 typo a/n) on grid cells p=0.5
    for c, (s2, se, _, _), _m in ok_cells:
        if c.block == "grid" and c.p == 0.5 and c.n in (2, 3):
            wrong = c.z_var * 4 * c.p * (1 - c.p) / c.n
            neg_specs.append((
                "var",
                f"wrong formula 1/n for {_NAMES[c.estimator]} p=0.5 n={c.n}",
                wrong, s2, se, _theory_var(c),
                "should be " + ("(n-1)/n^2" if c.estimator == "drgrpo" else "1/(n-1)"),
            ))
    pos_specs += alloc["pos"]
    neg_specs += alloc["neg"]

    m_pos = len(pos_specs)
    zstar = bonferroni_z(cfg.section_fwer, m_pos)
    checks: list[Check] = [
        _check(kind, name, th, emp, se, zstar, note=note)
        for kind, name, th, emp, se, note in pos_specs
    ]
    miss = []
    neg_data = []
    for kind, name, wrong, emp, se, true, note in neg_specs:
        ez = (_z(kind, wrong, true, se) if se > 0 else math.inf)
        power = detection_power(ez, zstar)
        miss.append(1 - power)
        checks.append(_check(kind, name, wrong, emp, se, zstar, negative=True,
                             note=f"{note}; power {_fmt_power(power)}"))
        neg_data.append(dict(name=name, wrong=wrong, true=true, expected_z=ez,
                             power=power))

    figures = [_plot_grid(cfg, grid_rows, zstar)]
    if alloc["plot"] is not None:
        figures.append(_plot_alloc(cfg, alloc["plot"]))

    fail_bound = cfg.section_fwer + sum(miss)
    md = _markdown(cfg, s, m_pos, len(neg_specs), zstar, miss, fail_bound, alloc)
    data = dict(
        trials=trials,
        threshold=zstar,
        positive_checks=m_pos,
        negative_controls=neg_data,
        false_failure_bound=fail_bound,
        grid=grid_rows,
        allocation=alloc["data"],
    )
    return SectionResult(title=TITLE, checks=checks, markdown=md, figures=figures,
                         data=data)


def log_z(theory: float, empirical: float, stderr: float) -> float:
    r"""The z-score of a variance estimate on the log scale (delta method).

    .. math::

        z = \ln\!\big(s^2 / \theta\big)\, \frac{s^2}{\widehat{\mathrm{se}}(s^2)} .

    The linear ``(s^2 - theta) / se`` is left-skewed because ``se`` grows with
    ``s^2`` (measured skewness about -0.2 at M = 4000 for n = 2); on the log
    scale the skewness is about 0.0 (docs/verify.md), so the Bonferroni
    threshold's normal tail is honest. Zero cases: ``s^2 = theta = 0`` gives 0.
    """
    if empirical == theory:
        return 0.0
    if theory <= 0 or empirical <= 0:
        return math.copysign(math.inf, empirical - theory)
    if stderr <= 0:
        return math.copysign(math.inf, empirical - theory)
    return math.log(empirical / theory) * empirical / stderr


def _z(kind: str, theory: float, empirical: float, stderr: float) -> float:
    if kind == "var":
        return log_z(theory, empirical, stderr)
    return (empirical - theory) / stderr


def _check(kind, name, theory, empirical, stderr, threshold, *, negative=False,
           note="") -> Check:
    """A row: linear z for means/differences, log-scale z for variances."""
    if kind == "lin":
        return z_check(name, theory, empirical, stderr, threshold,
                       negative=negative, note=note)
    z = log_z(theory, empirical, stderr)
    reject = abs(z) > threshold
    return Check(name=name, passed=reject if negative else not reject,
                 theory=float(theory), empirical=float(empirical),
                 stderr=float(stderr), z=float(z), threshold=float(threshold),
                 negative=negative, note=note)


def _fmt_power(power: float) -> str:
    miss = 1 - power
    if miss < 1e-12:
        return "> 1 - 1e-12"
    return f"{power:.6g} (miss {miss:.2g})"


# --------------------------------------------------------------------------
# Allocation block
# --------------------------------------------------------------------------


#: The mixed-p batch of the allocation comparison (B = 16).
ALLOC_P = (0.01, 0.03, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5,
           0.5, 0.6, 0.75, 0.85, 0.9, 0.95, 0.98, 0.995)


_HET = "VIP, heteroscedastic Z"


def _allocators():
    from vipcore._src.allocation import get_allocator

    names = {"VIP": "vip", "uniform": "uniform",
             "inverse accuracy": "inverse_accuracy",
             "inverse variance": "inverse_variance"}
    return {label: functools.partial(_call, get_allocator(name))
            for label, name in names.items()}


def _call(fn, p, C, L, U, est):
    return fn(p, C, L, U, estimator=est)


def _allocation_block(cfg, s, key, trials) -> dict:
    res = {"pos": [], "neg": [], "plot": None, "data": {}}
    try:
        allocators = _allocators()
    except ImportError:
        res["data"]["skipped"] = "vipcore._src.allocation not available"
        return res
    p = np.asarray(ALLOC_P)
    B = p.size
    C, U = 8 * B, 16
    v = 4 * p * (1 - p)
    # heteroscedastic Z: variance proportional to Var(R), mean 1 (negative control)
    het = v / v.mean()
    plans = []
    for est in ("drgrpo", "rloo"):
        L = 3 if est == "drgrpo" else 2
        alloc_n = {}
        for name, fn in allocators.items():
            n = np.asarray(fn(p, C, L, U, est), dtype=np.int64)
            if n.sum() != C or n.min() < L or n.max() > U:
                raise AssertionError(f"{name} returned an infeasible allocation {n}")
            alloc_n[name] = n
            plans.append((est, name, n, np.ones(B)))
        plans.append((est, _HET, alloc_n["VIP"], het))
    cells = []
    for est, _name, n, zv in plans:
        cells += [_Cell("alloc", float(p[q]), int(n[q]), est, z_var=float(zv[q]),
                        mult=1, n_max=U) for q in range(B)]
    cfg.progress(f"variance: allocation comparison, {len(plans)} allocations × {B} "
                 "prompts")
    sims = _simulate(cells, key, trials)
    ests = [_estimate(g) for g in sims]
    totals = {}
    for k, (est, name, n, zv) in enumerate(plans):
        part = ests[k * B:(k + 1) * B]
        emp = sum(e[0] for e in part)
        se = math.sqrt(sum(e[1] ** 2 for e in part))
        c = np.asarray(variance_factor(n, est), dtype=np.float64)
        theory = float(np.sum(c * zv * v))
        pooled = float(np.sum(c * zv.mean() * v))
        totals[(est, name)] = (theory, emp, se, n)
        tag = f"{_NAMES[est]} {name} (C={C}, B={B})"
        res["pos"].append(("var", f"total Var(G) {tag}", theory, emp, se,
                           f"M={trials} per prompt"))
        if name == _HET:
            res["neg"].append((
                "var",
                f"total Var(G) with pooled sigma_Z^2 under heteroscedastic Z, {tag}",
                pooled, emp, se, theory, "equal sigma_Z across prompts broken"))
    for est in ("drgrpo", "rloo"):
        tv, ev, sv, _ = totals[(est, "VIP")]
        for name in ("uniform", "inverse accuracy", "inverse variance"):
            th, eh, sh, _ = totals[(est, name)]
            res["pos"].append((
                "lin",
                f"{_NAMES[est]} Var(G) total {name} - VIP (predicted reduction)",
                th - tv, eh - ev, math.sqrt(sh**2 + sv**2),
                f"relative {(th - tv) / th:+.1%} predicted"))
    res["plot"] = dict(p=p, totals=totals)
    res["data"] = {
        "p": p.tolist(), "C": C, "U": U,
        "allocations": {
            f"{est}/{name}": dict(n=t[3].tolist(), theory=t[0], empirical=t[1],
                                  stderr=t[2])
            for (est, name), t in totals.items()
        },
    }
    return res


# --------------------------------------------------------------------------
# Plots and text
# --------------------------------------------------------------------------


def _plot_grid(cfg: VerifyConfig, rows: list[dict], zstar: float) -> tuple[str, str]:
    fig, grid = new_figure(10, 6, nrows=2, ncols=2, sharex=True,
                           height_ratios=[3, 1.3])
    axes = grid[0]
    axes[1].sharey(axes[0])
    ps = sorted({r["p"] for r in rows})
    low = [p for p in ps if p <= 0.5]
    colors = {p: f"C{i}" for i, p in enumerate(low)}
    for ax, est in zip(axes, ("drgrpo", "rloo"), strict=True):
        ns = np.array(sorted({r["n"] for r in rows}))
        nn = np.linspace(ns.min(), ns.max(), 200)
        for p0 in low:
            th = np.asarray(variance_factor(nn, est)) * 4 * p0 * (1 - p0)
            ax.plot(nn, th, color=colors[p0], lw=1,
                    label=f"theory p={p0:g}" + (f", {1 - p0:g}" if p0 < 0.5 else ""))
            mirror = round(1 - p0, 10)
            for p, mk, fill in ((p0, "o", colors[p0]), (mirror, "s", "none")):
                sel = [r for r in rows if r["estimator"] == est and
                       math.isclose(r["p"], p)]
                if not sel or (p != p0 and math.isclose(p, 0.5)):
                    continue
                x = np.array([r["n"] for r in sel], float) * (1.03 if mk == "s" else 1)
                y = np.array([r["empirical"] for r in sel])
                e = 2 * np.array([r["stderr"] for r in sel])
                ax.errorbar(x, y, yerr=e, fmt=mk, ms=4, mfc=fill, color=colors[p0],
                            capsize=2, lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        zax = grid[1][list(axes).index(ax)]
        for r in rows:
            if r["estimator"] == est:
                p0 = min(r["p"], round(1 - r["p"], 10))
                zax.plot(r["n"] * (1.03 if r["p"] > 0.5 else 1), r["z"],
                         "o" if r["p"] <= 0.5 else "s", ms=4, color=colors[p0],
                         mfc=colors[p0] if r["p"] <= 0.5 else "none")
        for y in (-zstar, zstar):
            zax.axhline(y, color="k", ls="--", lw=0.8)
        zax.axhline(0, color="0.6", lw=0.6)
        zax.set_ylim(-1.15 * zstar, 1.15 * zstar)
        zax.set_xticks(ns, [str(int(v)) for v in ns])
        zax.set_xticks([], minor=True)
        zax.set_xlabel("rollouts n")
        ax.set_title(f"{_NAMES[est]}: Var(G) = "
                     + ("(n-1)/n² · 4p(1-p)" if est == "drgrpo" else "4p(1-p)/(n-1)"))
    axes[0].set_ylabel("Var(G)  (σ_Z² = 1, ±1 rewards)")
    grid[1][0].set_ylabel("z (log scale)\n--- ± threshold")
    axes[1].legend(fontsize=7, loc="lower left")
    fname = "variance_vs_n.png"
    save_figure(fig, cfg.out / fname)
    return fname, (
        "Top: empirical Var(G) (markers, ± 2 s.e.; filled p, open 1-p) vs Props "
        "4.2/4.3 (lines) over n, for several p. Bottom: each cell's z-score and "
        "the Bonferroni threshold."
    )


def _plot_alloc(cfg: VerifyConfig, d: dict) -> tuple[str, str]:
    totals = d["totals"]
    p = d["p"]
    fig, axes = new_figure(11, 7, nrows=2, ncols=2)
    for col, est in enumerate(("drgrpo", "rloo")):
        names = [k[1] for k in totals if k[0] == est]
        ax = axes[0, col]
        x = np.arange(len(names))
        th = [totals[(est, nm)][0] for nm in names]
        em = [totals[(est, nm)][1] for nm in names]
        se = [2 * totals[(est, nm)][2] for nm in names]
        ax.bar(x - 0.2, th, width=0.4, label="theory", color="C0")
        ax.bar(x + 0.2, em, width=0.4, yerr=se, capsize=3, label="empirical ± 2 s.e.",
               color="C1")
        ax.set_xticks(x, [nm.replace(", ", "\n") for nm in names], fontsize=7)
        ax.set_ylabel("batch total Σ_q Var(G_q)")
        ax.set_title(f"{_NAMES[est]}: total gradient variance at the same budget")
        ax.legend(fontsize=7)
        ax = axes[1, col]
        for i, nm in enumerate(n for n in names if "hetero" not in n):
            ax.plot(p, totals[(est, nm)][3] + 0.08 * (i - 1.5), "o-", ms=3, lw=0.8,
                    label=nm)
        ax.set_xlabel("success probability p")
        ax.set_ylabel("rollouts n_q (offset for visibility)")
        ax.legend(fontsize=7)
    fname = "allocation_variance.png"
    save_figure(fig, cfg.out / fname)
    return fname, (
        "Top: total gradient variance of a mixed-p batch under VIP and the heuristic "
        "allocators at the same budget C (theory vs simulation). Bottom: the "
        "allocations."
    )


def _markdown(cfg, s, m_pos, m_neg, zstar, miss, fail_bound, alloc) -> str:
    lines = [
        f"Monte-Carlo with M = {s['trials']} independent groups per cell "
        "(more where few groups carry signal: p near 0 or 1 with small n). "
        "Each row compares an empirical mean or difference with theory as "
        "z = (empirical − theory)/s.e., and an empirical variance s² (unbiased "
        "sample variance; rows named Var(G) or total) on the log scale, "
        "z = ln(s²/theory)·s²/s.e. (delta method; the linear z is left-skewed "
        "because the s.e. grows with s², the log-scale z is not). The s.e. of a "
        "variance comes from the fourth sample moment, "
        "se(s²) = sqrt((m₄ − (M−3)/(M−1)·s⁴)/M).",
        "",
        f"**Threshold.** {m_pos} positive checks share this section's family-wise "
        f"error {cfg.section_fwer:.3g}: Bonferroni gives |z| ≤ {zstar:.3f}. A "
        "correct implementation therefore fails a positive check with probability "
        f"< {cfg.section_fwer:.3g} for any seed (up to the normal approximation of "
        "each estimate). The "
        f"{m_neg} negative controls use the same threshold and must *exceed* it; "
        "the probability that one misses is 1 − power (listed per row, from the "
        "expected z = (true − wrong)/s.e.). In total this section fails a correct "
        f"implementation with probability ≤ {fail_bound:.3g}.",
        "",
        "Rewards are ±1 (Var(R) = 4p(1−p)) unless stated; continuous families: "
        "Beta(2p, 2(1−p)) with Var(R) = p(1−p)/3, Gaussian N(2p−1, 1) with "
        "Var(R) = 1, binary 0/1 with Var(R) = p(1−p). Z families are "
        "standardised to the stated mean and variance (Student-t with "
        f"df = {_T_DF:g}).",
    ]
    if s["trials"] < 1000:
        lines += ["", f"**Warning:** M = {s['trials']} trials is small; the normal "
                  "approximation behind the thresholds needs M in the thousands."]
    if alloc["data"].get("skipped"):
        lines += ["", f"Allocation comparison skipped: {alloc['data']['skipped']}."]
    else:
        d = alloc["data"]
        lines += [
            "",
            f"**Allocation.** A batch of B = {len(d['p'])} prompts with p = "
            f"{', '.join(f'{x:g}' for x in d['p'])}; budget C = {d['C']}, "
            f"L = 3 (Dr.GRPO) / 2 (RLOO), U = {d['U']}; allocators see the true p. "
            "Heteroscedastic control: Var(Z_q) ∝ 4p_q(1−p_q) with mean 1.",
            "",
            "| estimator | allocation | theory Σ Var(G_q) | empirical ± s.e. | "
            "excess over VIP: theory | empirical ± s.e. (z vs 0) |",
            "|---|---|---|---|---|---|",
        ]
        for key, a in d["allocations"].items():
            est, name = key.split("/", 1)
            vip = d["allocations"][f"{est}/VIP"]
            if name in ("VIP", _HET):
                extra = "– | –"
            else:
                diff = a["empirical"] - vip["empirical"]
                dse = math.hypot(a["stderr"], vip["stderr"])
                extra = (f"{a['theory'] - vip['theory']:+.5f} | {diff:+.5f} ± "
                         f"{dse:.5f} ({diff / dse:.1f})")
            lines.append(f"| {_NAMES[est]} | {name} | {a['theory']:.5f} | "
                         f"{a['empirical']:.5f} ± {a['stderr']:.5f} | {extra} |")
    return "\n".join(lines)
