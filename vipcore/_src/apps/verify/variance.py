r"""``vipcore verify`` section: the variance propositions and VIP allocation.

Every theory value comes from the function a user calls, every empirical
value from the library's simulator and estimator:

* theory: :func:`vipcore.gradient_variance` (Props 4.2/4.3 of Nguyen et al.
  (2025), "Adaptive Rollout Allocation for Online Reinforcement Learning
  with Verifiable Rewards"), :func:`vipcore.gradient_variance_continuous`
  with :func:`vipcore.montecarlo.reward_variance` (Props E.1/E.2),
  :func:`vipcore.grpo_gradient_variance`,
  :func:`vipcore.montecarlo.correlated_gradient_moments`, and
  :func:`vipcore.solve_allocation` / the allocator registry;
* empirical: :func:`vipcore.montecarlo.simulate_cells` (rewards, ``Z`` and
  the library's :func:`vipcore.advantages`), reduced by
  :func:`vipcore.montecarlo.estimate_variance` in float64.

Monte-Carlo rows (each a z-score: linear for means and differences,
:func:`log_z` for variances, Bonferroni threshold over the section's positive
rows):

* Props 4.2/4.3 on a grid of ``p`` (0.01 … 0.99) × ``n`` (2 … 64), Dr. GRPO
  and RLOO, ±1 rewards and normal ``Z``;
* ``mu_Z != 0``: the same variance, and ``E[G] = 0``, for GRPO, Dr. GRPO and
  RLOO;
* Props E.1/E.2: Beta, Gaussian and 0/1 rewards with heavy-tailed, skewed and
  two-point ``Z``;
* Assumption 4.1 broken (``Z = eps + c R``): the exact correlated moments hold,
  while ``E[G] = 0`` and the proposition are rejected (negative controls);
* a wrong formula (``1/n``, App. A.2's typo for RLOO) is rejected;
* VIP vs uniform / inverse-accuracy / inverse-variance at the same budget:
  each allocation's total ``sum_q Var(G_q)`` and the differences to VIP; a
  pooled ``sigma_Z`` under heteroscedastic ``Z`` is rejected;
* the simulator's marginals: ``E[R]``, ``Var(R)``, ``E[Z]``, ``Var(Z)`` of
  every reward and ``Z`` family (``G`` cannot see the means).

Exact rows (:mod:`vipcore._src.apps.verify.exact` and
:mod:`vipcore._src.apps.verify.exact_alloc`, no Monte Carlo): the
advantages (also at ``eps = 0`` with groups of one, constant groups and
padding), every variance formula, the reward moments and the allocation's
``n``, ``n_continuous``, ``lam`` and ``objective`` against independent
oracles, where a simulation would need far more draws to see a small error;
the allocation also on corner instances (near-tied gains at every budget, a
prompt with a tiny ``a`` at ``U``) against the solver's documented tie rule,
and RLOO's ``lam`` to the working precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np

from vipcore._src.apps.verify import exact, exact_alloc
from vipcore._src.apps.verify.report import (
    Check,
    SectionResult,
    VerifyConfig,
    bonferroni_z,
    z_check,
)
from vipcore._src.apps.verify.variance_plots import plot_allocation, plot_grid
from vipcore._src.montecarlo import (
    RolloutModel,
    correlated_gradient_moments,
    estimate_variance,
    reward_mean,
    reward_variance,
    sample_rollouts,
    simulate_cells,
)
from vipcore._src.variance import (
    ADVANTAGE_ESTIMATORS,
    gradient_variance,
    gradient_variance_continuous,
    grpo_gradient_variance,
    zero_variance_probability,
)

__all__ = ["TITLE", "ALLOC_P", "section", "detection_power", "log_z"]

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
_FAMILIES = (
    ("beta", "student_t"), ("gaussian", "exponential"), ("binary", "two_point"),
)
#: The mixed-p batch of the allocation comparison (B = 16).
ALLOC_P = (0.01, 0.03, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5,
           0.5, 0.6, 0.75, 0.85, 0.9, 0.95, 0.98, 0.995)
_HET = "VIP, heteroscedastic Z"


# --------------------------------------------------------------------------
# Small exact helpers
# --------------------------------------------------------------------------


def detection_power(expected_z: float, threshold: float) -> float:
    """``P(|Z| > threshold)`` for ``Z ~ N(expected_z, 1)``: a control's power."""
    nd = NormalDist()
    a = abs(expected_z)
    return nd.cdf(a - threshold) + nd.cdf(-a - threshold)


def log_z(theory: float, empirical: float, stderr: float) -> float:
    r"""The z-score of a variance estimate on the log scale (delta method).

    .. math::

        z = \ln\!\big(s^2 / \theta\big)\, \frac{s^2}{\widehat{\mathrm{se}}(s^2)} .

    The linear ``(s^2 - theta) / se`` is left-skewed because ``se`` grows with
    ``s^2`` (measured skewness about -0.2 at M = 4000 for n = 2); on the log
    scale the skewness is about 0.0 (docs/verify.md), so the Bonferroni
    threshold's normal tail is honest. Zero cases: ``s^2 = theta = 0`` gives 0.

    >>> round(log_z(1.0, 2.0, 0.5), 4)
    2.7726
    """
    if empirical == theory:
        return 0.0
    if theory <= 0 or empirical <= 0 or stderr <= 0:
        return math.copysign(math.inf, empirical - theory)
    return math.log(empirical / theory) * empirical / stderr


def _trial_multiplier(p: float, n: int, reward: str) -> int:
    """Extra trials (a power of two, at most 16) for cells where few groups
    carry signal (``p`` near 0 or 1, small ``n``), so that at least about a
    tenth of ``M`` groups are non-degenerate and the normal approximation of
    the z-score stays good."""
    if reward not in ("pm1", "binary"):
        return 1
    q = 1.0 - float(zero_variance_probability(p, n))
    if q <= 0:
        return 1
    mult = 1
    while mult < 0.1 / q and mult < 16:
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


def _programs(cells: list[_Cell]) -> dict[tuple, list[int]]:
    out: dict[tuple, list[int]] = {}
    for i, c in enumerate(cells):
        out.setdefault((c.reward, c.z_dist, c.n_max), []).append(i)
    return out


def _run_chunks(cells, items, key, chunk, program) -> list[tuple[int, np.ndarray]]:
    reward, z_dist, n_max = program
    out = []
    for start in range(0, len(items), _K):
        batch = items[start:start + _K]
        pad = batch + [batch[0]] * (_K - len(batch))
        keys = jnp.stack([
            jax.random.fold_in(jax.random.fold_in(key, i), j) for i, j in pad])
        cs = [cells[i] for i, _ in pad]

        def col(f, dt=jnp.float32, cs=cs):
            return jnp.asarray([f(c) for c in cs], dt)

        g = np.asarray(simulate_cells(
            keys, col(lambda c: c.p), col(lambda c: c.n, jnp.int32),
            col(lambda c: _EST_INDEX[c.estimator], jnp.int32),
            col(lambda c: c.z_mean), col(lambda c: c.z_var), col(lambda c: c.corr),
            n_max=n_max, trials=chunk, reward=reward, z_dist=z_dist, df=_T_DF))
        out += [(i, g[r]) for r, (i, _) in enumerate(batch)]
    return out


def _simulate(cells: list[_Cell], key: jax.Array, trials: int) -> list[np.ndarray]:
    """Run every cell with ``trials * cell.mult`` groups; returns G per cell.

    Cells are grouped by compiled program ``(reward, z_dist, n_max)``; each
    cell's trials are split into equal chunks of at most the memory cap and
    each (cell, chunk) gets its own key ``fold_in(fold_in(key, cell), chunk)``.
    """
    out: list[list[np.ndarray]] = [[] for _ in cells]
    for program, idx in _programs(cells).items():
        cap = max(256, _CALL_ELEMENTS // (_K * program[2]))
        per_trials = -(-trials // cap)
        chunk = -(-trials // per_trials)
        items = [(i, j) for i in idx for j in range(cells[i].mult * per_trials)]
        for i, g in _run_chunks(cells, items, key, chunk, program):
            out[i].append(g)
    return [np.concatenate(parts).astype(np.float64) for parts in out]


def _theory(cells: list[_Cell]) -> list[float]:
    """Var(G) under Assumption 4.1, from the library's public formulas."""
    out = []
    for c in cells:
        if c.estimator == "grpo":
            if c.reward != "pm1":
                raise ValueError("GRPO theory is implemented for pm1 rewards only")
            v = grpo_gradient_variance(c.p, c.n, sigma_z2=c.z_var, eps=_GRPO_EPS)
        elif c.reward == "pm1":
            v = gradient_variance(c.p, c.n, c.estimator, c.z_var)
        else:
            var_r = reward_variance(c.p, c.reward, concentration=2.0, reward_sd=1.0)
            v = gradient_variance_continuous(var_r, c.n, estimator=c.estimator,
                                             sigma_z2=c.z_var)
        out.append(float(v))
    return out


# --------------------------------------------------------------------------
# Settings and cells
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
        # Beta/Student-t use jax.random.gamma, ~4 s). Every mode runs all
        # three, so a wrong reward or Z family is seen even in quick mode.
        families=_FAMILIES,
        float64_allocation=cfg.mode != "quick",
    )


def _build_cells(s: dict) -> list[_Cell]:
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
    return grid + muz + fam + corr


# --------------------------------------------------------------------------
# Rows: (kind, name, theory, empirical, s.e., note) and negative controls
# (kind, name, wrong theory, empirical, s.e., true value, note)
# --------------------------------------------------------------------------


def _cell_rows(cells, ests, theory) -> tuple[list, list, list]:
    pos, neg, grid = [], [], []
    for c, e, th in zip(cells, ests, theory, strict=True):
        s2, se, mean, mse = (float(x) for x in (e.var, e.se, e.mean, e.mean_se))
        tag = f"{_NAMES[c.estimator]} p={c.p:g} n={c.n}"
        m = f"M={e.trials}"
        if c.block == "grid":
            pos.append(("var", f"Var(G) {tag}", th, s2, se, m))
            grid.append(dict(estimator=c.estimator, p=c.p, n=c.n, theory=th,
                             empirical=s2, stderr=se, trials=e.trials,
                             z=log_z(th, s2, se)))
            if c.p == 0.5 and c.n in (2, 3):  # 1/n; for RLOO App. A.2's typo
                neg.append(("var", f"wrong formula 1/n for {tag}",
                            c.z_var * 4 * c.p * (1 - c.p) / c.n, s2, se, th,
                            "should be " + ("(n-1)/n^2" if c.estimator == "drgrpo"
                                            else "1/(n-1)")))
        elif c.block in ("muz", "family"):
            extra = (f"mu_Z={c.z_mean:g}, var_Z={c.z_var:g}" if c.block == "muz"
                     else f"R {c.reward}, Z {c.z_dist}")
            pos.append(("var", f"Var(G) {tag} {extra}", th, s2, se, m))
            pos.append(("lin", f"E[G]=0 {tag} {extra}", 0.0, mean, mse, m))
        else:
            p2, n2 = _corr_rows(c, tag, s2, se, mean, mse, m)
            pos += p2
            neg += n2
    return pos, neg, grid


def _corr_rows(c, tag, s2, se, mean, mse, m):
    em, ev = (float(x) for x in correlated_gradient_moments(
        c.p, c.n, c.corr, estimator=c.estimator, z_var=c.z_var))
    tag2 = f"{tag} Z=eps+{c.corr:g}R"
    var_z = c.z_var + c.corr**2 * float(reward_variance(c.p, "pm1"))
    naive = float(gradient_variance(c.p, c.n, c.estimator, var_z))
    prop = "4.2" if c.estimator == "drgrpo" else "4.3"
    pos = [("lin", f"E[G] exact (correlated) {tag2}", em, mean, mse, m),
           ("var", f"Var(G) exact (correlated) {tag2}", ev, s2, se, m)]
    neg = [("lin", f"E[G]=0 under correlated R-Z {tag2}", 0.0, mean, mse, em,
            "Assumption 4.1 broken"),
           ("var", f"Prop {prop} with measured Var(Z)={var_z:g} under correlated "
                   f"R-Z {tag2}", naive, s2, se, ev, "Assumption 4.1 broken")]
    return pos, neg


def _z(kind: str, theory: float, empirical: float, stderr: float) -> float:
    if kind == "var":
        return log_z(theory, empirical, stderr)
    return (empirical - theory) / stderr


def moment_check(kind, name, theory, empirical, stderr, threshold, *, negative=False,
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


def _detectable(pos: list[tuple], zstar: float) -> dict:
    """The relative error of a variance row, and the absolute error of a mean
    row, that the row detects with probability 1/2 (``z* s.e.``)."""
    rel = [zstar * se / emp for kind, _, _, emp, se, _ in pos
           if kind == "var" and emp > 0]
    ab = [zstar * se for kind, _, _, _, se, _ in pos if kind == "lin"]
    return {"variance_relative_median": float(np.median(rel)),
            "variance_relative_max": float(np.max(rel)),
            "variance_relative_min": float(np.min(rel)),
            "mean_absolute_median": float(np.median(ab))}


def _fmt_power(power: float) -> str:
    miss = 1 - power
    if miss < 1e-12:
        return "> 1 - 1e-12"
    return f"{power:.6g} (miss {miss:.2g})"


def _mc_checks(pos, neg, zstar) -> tuple[list[Check], list[dict], list[float]]:
    checks = [moment_check(k, name, th, emp, se, zstar, note=note)
              for k, name, th, emp, se, note in pos]
    data, miss = [], []
    for kind, name, wrong, emp, se, true, note in neg:
        ez = _z(kind, wrong, true, se) if se > 0 else math.inf
        power = detection_power(ez, zstar)
        miss.append(1 - power)
        checks.append(moment_check(kind, name, wrong, emp, se, zstar, negative=True,
                             note=f"{note}; power {_fmt_power(power)}"))
        data.append(dict(name=name, wrong=wrong, true=true, expected_z=ez,
                         power=power))
    return checks, data, miss


def _sampler_rows(key: jax.Array, families) -> list[tuple]:
    """Rows for the simulator's marginals: E[R], Var(R), E[Z], Var(Z) of each
    (reward, Z) family against reward_mean / reward_variance and the model's
    z_mean / z_var. G does not depend on E[R] or E[Z] (the advantages sum to
    zero), so only these rows see a family drawn around the wrong mean."""
    rows = []
    for i, (rw, zd) in enumerate((("pm1", "normal"), *families)):
        model = RolloutModel(reward=rw, z_dist=zd, z_mean=0.5, z_var=2.0, df=_T_DF)
        r, z = sample_rollouts(jax.random.fold_in(key, i), 0.3, 8, 2000, model)
        er = estimate_variance(np.asarray(r, np.float64).ravel())
        ez = estimate_variance(np.asarray(z, np.float64).ravel())
        tag = f"sampler R {rw}, Z {zd}, p=0.3"
        rows += [("lin", f"E[R] {tag}", float(reward_mean(0.3, rw)), float(er.mean),
                  float(er.mean_se), "M=16000 rollouts"),
                 ("var", f"Var(R) {tag}", float(reward_variance(0.3, rw)),
                  float(er.var), float(er.se), "M=16000 rollouts"),
                 ("lin", f"E[Z] {tag}", 0.5, float(ez.mean), float(ez.mean_se),
                  "M=16000 rollouts"),
                 ("var", f"Var(Z) {tag}", 2.0, float(ez.var), float(ez.se),
                  "M=16000 rollouts")]
    return rows


# --------------------------------------------------------------------------
# Allocation block
# --------------------------------------------------------------------------


def _allocations(p: np.ndarray, C: int, U: int) -> list[tuple]:
    """``(estimator, label, n, per-prompt z_var)`` for every compared plan."""
    from vipcore._src.allocation import get_allocator

    names = {"VIP": "vip", "uniform": "uniform",
             "inverse accuracy": "inverse_accuracy",
             "inverse variance": "inverse_variance"}
    v = 4 * p * (1 - p)
    het = v / v.mean()  # Var(Z_q) proportional to Var(R_q), mean 1
    plans = []
    for est in ("drgrpo", "rloo"):
        L = 3 if est == "drgrpo" else 2
        for label, name in names.items():
            n = np.asarray(get_allocator(name)(p, C, L, U, estimator=est), np.int64)
            if n.sum() != C or n.min() < L or n.max() > U:
                raise AssertionError(f"{label} returned an infeasible allocation {n}")
            plans.append((est, label, n, np.ones(p.size)))
            if label == "VIP":
                vip = n
        plans.append((est, _HET, vip, het))
    return plans


def _allocation_block(cfg, key, trials) -> dict:
    p = np.asarray(ALLOC_P)
    B, C, U = p.size, 8 * p.size, 16
    plans = _allocations(p, C, U)
    cells = [_Cell("alloc", float(p[q]), int(n[q]), est, z_var=float(zv[q]),
                   n_max=U) for est, _, n, zv in plans for q in range(B)]
    cfg.progress(f"variance: allocation comparison, {len(plans)} allocations × {B} "
                 "prompts")
    ests = [estimate_variance(g) for g in _simulate(cells, key, trials)]
    res = {"pos": [], "neg": [], "totals": {}}
    for k, (est, name, n, zv) in enumerate(plans):
        part = ests[k * B:(k + 1) * B]
        emp = float(sum(e.var for e in part))
        se = math.sqrt(sum(float(e.se) ** 2 for e in part))
        theory = float(np.sum(np.asarray(gradient_variance(p, n, est, zv),
                                         np.float64)))
        res["totals"][(est, name)] = (theory, emp, se, n)
        tag = f"{_NAMES[est]} {name} (C={C}, B={B})"
        res["pos"].append(("var", f"total Var(G) {tag}", theory, emp, se,
                           f"M={trials} per prompt"))
        if name == _HET:
            pooled = float(np.sum(np.asarray(gradient_variance(p, n, est, zv.mean()),
                                             np.float64)))
            res["neg"].append((
                "var", f"total Var(G) with pooled sigma_Z^2 under heteroscedastic "
                f"Z, {tag}", pooled, emp, se, theory,
                "equal sigma_Z across prompts broken"))
    res["pos"] += _reduction_rows(res["totals"])
    res["data"] = {"p": p.tolist(), "C": C, "U": U, "allocations": {
        f"{est}/{name}": dict(n=t[3].tolist(), theory=t[0], empirical=t[1],
                              stderr=t[2]) for (est, name), t in res["totals"].items()}}
    return res


def _reduction_rows(totals) -> list[tuple]:
    rows = []
    for est in ("drgrpo", "rloo"):
        tv, ev, sv, _ = totals[(est, "VIP")]
        for name in ("uniform", "inverse accuracy", "inverse variance"):
            th, eh, sh, _ = totals[(est, name)]
            rows.append((
                "lin", f"{_NAMES[est]} Var(G) total {name} - VIP (predicted "
                "reduction)", th - tv, eh - ev, math.sqrt(sh**2 + sv**2),
                f"relative {(th - tv) / th:+.1%} predicted"))
    return rows


# --------------------------------------------------------------------------
# The section
# --------------------------------------------------------------------------


def section(cfg: VerifyConfig) -> SectionResult:
    """Run the variance section (see the module docstring)."""
    s = _settings(cfg)
    trials = int(s["trials"])
    key = jax.random.key(cfg.seed)
    cells = _build_cells(s)
    cfg.progress(f"variance: simulating {len(cells)} cells, M = {trials} trials each")
    ests = [estimate_variance(g) for g in _simulate(cells, jax.random.fold_in(key, 1),
                                                     trials)]
    pos, neg, grid = _cell_rows(cells, ests, _theory(cells))
    alloc = _allocation_block(cfg, jax.random.fold_in(key, 2), trials)
    pos = pos + alloc["pos"] + _sampler_rows(jax.random.fold_in(key, 3),
                                              s["families"])
    neg = neg + alloc["neg"]
    zstar = bonferroni_z(cfg.section_fwer, len(pos))
    checks, neg_data, miss = _mc_checks(pos, neg, zstar)
    cfg.progress("variance: exact identities (advantages, formulas, allocation)")
    exact_rows = exact.variance_checks(cfg.seed) + exact_alloc.padding_checks()
    exact_rows += exact.allocation_checks(
        cfg.seed, np.asarray(ALLOC_P), float64=s["float64_allocation"])
    exact_rows += exact_alloc.corner_checks(float64=s["float64_allocation"])
    fail_bound = cfg.section_fwer + sum(miss)
    figures = [plot_grid(cfg.out, grid, zstar),
               plot_allocation(cfg.out, alloc["totals"], np.asarray(ALLOC_P))]
    md = _markdown(cfg, s, len(pos), len(neg), zstar, fail_bound, alloc["data"],
                   len(exact_rows))
    data = dict(trials=trials, threshold=zstar, positive_checks=len(pos),
                negative_controls=neg_data, false_failure_bound=fail_bound,
                exact_checks=len(exact_rows), detectable=_detectable(pos, zstar),
                grid=grid, allocation=alloc["data"])
    return SectionResult(title=TITLE, checks=exact_rows + checks, markdown=md,
                         figures=figures, data=data)


# --------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------


def _markdown(cfg, s, m_pos, m_neg, zstar, fail_bound, alloc, m_exact) -> str:
    lines = [
        f"**Exact rows** ({m_exact}, first in the table): the library's "
        "advantages, variance formulas, reward moments and allocation outputs "
        "against independent oracles (exact enumeration, float64 bisection and "
        "greedy), no Monte Carlo; the row shows the worst case and its relative "
        "error against a tolerance set by the precision.",
        "",
        f"**Monte-Carlo rows.** M = {s['trials']} independent groups per cell "
        "(more where few groups carry signal: p near 0 or 1 with small n). "
        "Means and differences: z = (empirical − theory)/s.e.; variances s² "
        "(rows named Var(G) or total) on the log scale, "
        "z = ln(s²/theory)·s²/s.e. (delta method; the linear z is left-skewed). "
        "The s.e. of a variance comes from the fourth sample moment, "
        "se(s²) = sqrt((m₄ − (M−3)/(M−1)·s⁴)/M) (`estimate_variance`).",
        "",
        f"**Threshold.** {m_pos} positive rows share this section's family-wise "
        f"error {cfg.section_fwer:.3g}: Bonferroni gives |z| ≤ {zstar:.3f}. The "
        f"{m_neg} negative controls use the same threshold and must *exceed* it "
        "(power per row, from the expected z). In total this section fails a "
        f"correct implementation with probability ≤ {fail_bound:.3g}.",
        "",
        "Rewards are ±1 (Var(R) = 4p(1−p)) unless stated; Beta(2p, 2(1−p)) "
        "has Var(R) = p(1−p)/3, Gaussian N(2p−1, 1) Var(R) = 1, binary 0/1 "
        f"Var(R) = p(1−p); Student-t Z has df = {_T_DF:g}.",
    ]
    if s["trials"] < 1000:
        lines += ["", f"**Warning:** M = {s['trials']} trials is small; the normal "
                  "approximation behind the thresholds needs M in the thousands."]
    return "\n".join(lines + [""] + _allocation_table(alloc))


def _allocation_table(d: dict) -> list[str]:
    lines = [
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
        extra = "– | –"
        if name not in ("VIP", _HET):
            diff = a["empirical"] - vip["empirical"]
            dse = math.hypot(a["stderr"], vip["stderr"])
            extra = (f"{a['theory'] - vip['theory']:+.5f} | {diff:+.5f} ± "
                     f"{dse:.5f} ({diff / dse:.1f})")
        lines.append(f"| {_NAMES[est]} | {name} | {a['theory']:.5f} | "
                     f"{a['empirical']:.5f} ± {a['stderr']:.5f} | {extra} |")
    return lines
