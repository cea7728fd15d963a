r"""``vipcore verify`` section: GRPO's signal, noise and allocation objective.

GRPO divides each group's centred rewards by the group's std. Its group
gradient ``G`` has mean ``omega_n(p) Cov(R, Z)`` and, under Assumption 4.1,
variance ``sigma_Z^2 (n - d)/n^2 P(0 < K < n)``; the allocation objective is
their ratio ``V_n(p) = Var(G)/omega_n(p)^2 = 4p(1-p)/(n-1) (1 + CV^2)``
(:mod:`vipcore._src.allocation.grpo`). Every row below simulates groups with
:func:`vipcore.montecarlo.sample_rollouts`, computes GRPO advantages with
:func:`vipcore.advantages` (``ddof`` 0 and 1, ``eps = 1e-6``) and compares
with :func:`~vipcore._src.allocation.grpo.grpo_terms`:

* exact rows (no Monte Carlo, :mod:`vipcore._src.apps.verify.exact_alloc`):
  ``grpo_terms`` (``omega``, ``Var(G)`` for ``ddof`` 0 and 1, ``V_n``,
  ``P(0 < K < n)``) against exact enumeration of the reward multisets, and
  :func:`~vipcore._src.allocation.grpo.allocate_grpo`'s integers against
  the exact minimiser of ``sum_q V_{n_q}(p_q)`` (binomial sums and a float64
  dynamic programme, independent of the library's solvers) on batches with
  exactly tied and near-tied gains, with the uniform allocation as negative
  control;
* ``Var(G / omega) = V_n(p)`` at ``Z`` independent of ``R`` (log-scale z),
  and the raw ``Var(G)`` with the population std (``ddof = 0``);
* ``E[G] = omega_n(p) Cov(R, Z)`` with ``Z = eps + c R`` (so ``Cov(R, Z) =
  4 c p (1 - p)``; the mean is exact for any ``c``);
* the share of constant groups, ``p^n + (1 - p)^n``;
* an allocation comparison on a batch of 16 prompts: uniform, the RLOO
  allocation, the exact GRPO allocation and the minimiser of GRPO's raw
  ``Var(G)``: every total matches theory and the measured differences match
  the predicted ones.

Negative controls that must be detected: RLOO's ``Var(G)`` formula used for
GRPO, GRPO taken as unbiased (``omega = 1``), RLOO's objective
``4p(1-p)/(n-1)`` for GRPO's normalised variance (a 4.6 % difference, hence
many trials), and "uniform / the raw-variance minimiser is as good as the
GRPO allocation". Thresholds: Bonferroni over the positive checks at the
section's share of the run's family-wise error.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from vipcore._src._plotting import new_figure, save_figure
from vipcore._src.allocation import allocate as allocate_rloo
from vipcore._src.allocation import allocate_uniform
from vipcore._src.allocation.grpo import allocate_grpo, grpo_terms, solve_separable_dp
from vipcore._src.apps.verify.exact_alloc import grpo_checks
from vipcore._src.apps.verify.report import (
    SectionResult,
    VerifyConfig,
    bonferroni_z,
)
from vipcore._src.apps.verify.variance import detection_power, log_z, moment_check
from vipcore._src.montecarlo import sample_rollouts
from vipcore._src.variance import advantages

__all__ = ["TITLE", "ALLOC_P", "section"]

TITLE = "GRPO: signal, noise and the allocation objective"

#: The batch of the allocation comparison (B = 16), budget and bounds.
ALLOC_P = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
           0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)
ALLOC_C, ALLOC_L, ALLOC_U = 128, 2, 32
#: ``c`` in ``Z = eps + c R`` for the signal rows.
_CORR = 0.5
#: ``eps`` of the simulated advantages (the library's default).
_EPS = 1e-6
#: Padded group size and trials per compiled call: one program for all rows.
_N_MAX, _CHUNK, _SLOTS = 32, 8192, 8
#: The cell of the subtle control (GRPO's excess 1 + CV^2 = 1.046 there).
_SUBTLE = (0.1, 16)


# --------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("n_max", "trials"))
def _simulate(keys, p, n, corr, *, n_max, trials):
    """``G`` for ddof 0 and 1 ``(K, 2, trials)`` and constant-group flags."""

    def one(key, pq, nq, c):
        r, z = sample_rollouts(key, pq, n_max, trials, corr=c)
        mask = jnp.broadcast_to(jnp.arange(n_max) < nq, r.shape)
        zm = jnp.where(mask, z, 0)
        g = jnp.stack([
            jnp.sum(advantages(r, "grpo", mask=mask, ddof=d, eps=_EPS) * zm, -1)
            for d in (0, 1)
        ]) / nq.astype(r.dtype)
        const = jnp.all((r == r[:, :1]) | ~mask, axis=-1)
        return g, const

    return jax.vmap(one)(keys, p, n, corr)


def _run_cells(key, cells, trials: int):
    """Simulate ``(p, n, corr)`` cells with at least ``trials`` groups each.

    Work is cut into units of :data:`_CHUNK` groups, packed :data:`_SLOTS` per
    compiled call (one program for every row of the section). Returns float64
    ``G`` of shape ``(cells, 2, M)`` and constant flags ``(cells, M)``.
    """
    chunks = -(-trials // _CHUNK)
    units = [(i, j) for i in range(len(cells)) for j in range(chunks)]
    n_real = len(units)
    units += [units[-1]] * (-n_real % _SLOTS)  # pad the last call
    g_out = [[] for _ in cells]
    c_out = [[] for _ in cells]
    for s in range(0, len(units), _SLOTS):
        batch = units[s:s + _SLOTS]
        keys = jnp.stack([jax.random.fold_in(jax.random.fold_in(key, i), j)
                          for i, j in batch])
        p, n, c = (jnp.asarray([cells[i][k] for i, _ in batch], dt)
                   for k, dt in ((0, jnp.float32), (1, jnp.int32), (2, jnp.float32)))
        g, const = _simulate(keys, p, n, c, n_max=_N_MAX, trials=_CHUNK)
        g, const = np.asarray(g, np.float64), np.asarray(const)
        for r, (i, _) in enumerate(batch[:n_real - s]):
            g_out[i].append(g[r])
            c_out[i].append(const[r])
    return (np.stack([np.concatenate(x, axis=-1) for x in g_out]),
            np.stack([np.concatenate(x) for x in c_out]))


def _var(x: np.ndarray) -> tuple[float, float]:
    """Unbiased sample variance and its s.e. from the fourth moment (float64)."""
    m = x.size
    d2 = (x - x.mean()) ** 2
    s2 = d2.sum() / (m - 1)
    m4 = (d2 * d2).mean()
    return float(s2), math.sqrt(max((m4 - (m - 3) / (m - 1) * s2 * s2) / m, 0.0))


def _terms(p, n, ddof=1):
    """:func:`grpo_terms` as float64 NumPy, padded to one shape (one compilation)."""
    p, n = np.broadcast_arrays(np.asarray(p, np.float32), np.asarray(n, np.int32))
    size = max(512, p.size)
    pp = np.pad(p.ravel(), (0, size - p.size), constant_values=0.5)
    nn = np.pad(n.ravel(), (0, size - p.size), constant_values=2)
    t = grpo_terms(pp, nn, ddof=ddof, n_max=_N_MAX)
    return {k: np.asarray(v, np.float64)[:p.size].reshape(p.shape)
            for k, v in t._asdict().items()}


# --------------------------------------------------------------------------
# Formula rows
# --------------------------------------------------------------------------


def _settings(cfg: VerifyConfig) -> dict:
    return dict(
        trials=cfg.trials if cfg.trials is not None else cfg.pick(20000, 50000, 200000),
        p=cfg.pick((0.1, 0.5), (0.05, 0.2, 0.5, 0.8), (0.02, 0.05, 0.1, 0.2, 0.5,
                                                         0.8, 0.95)),
        n=cfg.pick((4, 16), (2, 3, 4, 8, 16), (2, 3, 4, 6, 8, 12, 16, 24, 32)),
        subtle_trials=cfg.pick(300_000, 600_000, 1_200_000),
        alloc_trials=cfg.trials if cfg.trials is not None else cfg.pick(
            8192, 40000, 100000),
    )


def _formula_rows(cfg, s, key):
    """Positive specs, negative specs and plot points for the formula cells.

    Rows use ddof = 1 (TRL, verl); the cell p = 0.5, n = 4 also checks
    ddof = 0 from the same draws (``omega`` changes with ddof, ``V`` does not).
    """
    grid = [(p, n) for p in s["p"] for n in s["n"]]
    cells = [(p, n, 0.0) for p, n in grid] + [(p, n, _CORR) for p, n in grid]
    cfg.progress(f"grpo: {len(cells)} formula cells, M = {s['trials']} each")
    g, const = _run_cells(key, cells, s["trials"])
    ps, ns = np.array([c[0] for c in grid]), np.array([c[1] for c in grid])
    terms = {d: _terms(ps, ns, d) for d in (0, 1)}
    pos, neg, points = [], [], []
    for i, (p, n) in enumerate(grid):
        for d in ((0, 1) if (p, n) == (0.5, 4) else (1,)):
            t = terms[d]
            tag, w = f"p={p:g} n={n} ddof={d}", t["signal"][i]
            v, se = _var(g[i, d] / w)
            pos.append(("var", f"Var(G)/omega^2 = V_n(p), {tag}",
                        t["normalized_variance"][i], v, se, f"M={g.shape[-1]}"))
            if d == 0:  # raw Var(G) with the population std
                raw0, rse0 = _var(g[i, 0])
                pos.append(("var", f"Var(G) (raw) = (n-d)/n^2 P(0<K<n), {tag}",
                            t["variance"][i], raw0, rse0, f"M={g.shape[-1]}"))
            x, cov = g[len(grid) + i, d], 4 * _CORR * p * (1 - p)
            mean, mse = x.mean(), x.std(ddof=1) / math.sqrt(x.size)
            pos.append(("lin", f"E[G] = omega Cov(R,Z), {tag}, Z = eps + "
                        f"{_CORR:g}R", w * cov, mean, mse, f"omega={w:.4f}"))
        t = terms[1]
        points.append(dict(p=p, n=n, v=v, se=se, theory=t["normalized_variance"][i]))
        if (p, n) == (0.5, 4):
            neg.append(("lin", f"E[G] = Cov(R,Z) (GRPO taken as unbiased), {tag}",
                        cov, mean, mse, w * cov, "omega = 1"))
        raw, rse = _var(g[i, 1])
        rloo = 4 * p * (1 - p) / (n - 1)
        if abs(math.log(rloo / t["variance"][i])) > 0.25:  # where it can be told apart
            neg.append(("var", f"RLOO's Var(G) = 4p(1-p)/(n-1) for GRPO, {tag}",
                        rloo, raw, rse, t["variance"][i], "RLOO formula"))
        zero = 1 - t["nonzero"][i]
        pos.append(("lin", f"P(constant group) = p^n + (1-p)^n, p={p:g} n={n}",
                    zero, const[i].mean(),
                    math.sqrt(zero * (1 - zero) / const[i].size),
                    "frac_reward_zero_std"))
    return pos, neg, points


def _subtle_control(cfg, s, key):
    """Var(G/omega) vs RLOO's 4p(1-p)/(n-1) where GRPO's excess is 4.6 %."""
    p, n = _SUBTLE
    cfg.progress(f"grpo: subtle control p={p:g} n={n}, M = {s['subtle_trials']}")
    g, _ = _run_cells(key, [(p, n, 0.0)], s["subtle_trials"])
    t = _terms(np.array([p]), np.array([n]), 1)
    v, se = _var(g[0, 1] / t["signal"][0])
    true = t["normalized_variance"][0]
    rloo = 4 * p * (1 - p) / (n - 1)
    pos = [("var", f"Var(G)/omega^2 = V_n(p), p={p:g} n={n} ddof=1 (large M)",
            true, v, se, f"M={g.shape[-1]}")]
    neg = [("var", f"RLOO's objective 4p(1-p)/(n-1) for GRPO's normalised "
            f"variance, p={p:g} n={n}", rloo, v, se, true,
            f"GRPO's excess 1+CV^2 = {true / rloo:.4f}")]
    return pos, neg


# --------------------------------------------------------------------------
# Allocation comparison
# --------------------------------------------------------------------------


def _allocations(p: np.ndarray) -> dict[str, np.ndarray]:
    C, L, U = ALLOC_C, ALLOC_L, ALLOC_U
    table = _terms(p[:, None], np.arange(L, U + 1)[None, :])
    raw, _ = solve_separable_dp(table["variance"], C - p.size * L)
    out = {
        "uniform": allocate_uniform(p, C, L, U),
        "RLOO allocation": allocate_rloo(p, C, L, U, "rloo"),
        "GRPO allocation": allocate_grpo(p, C, L, U),
        "raw Var(G) minimiser": np.asarray(raw) + L,
    }
    for name, n in out.items():
        n = np.asarray(n, np.int64)
        if n.sum() != C or n.min() < L or n.max() > U:
            raise AssertionError(f"{name} returned an infeasible allocation {n}")
        out[name] = n
    return out


def _allocation_block(cfg, s, key) -> dict:
    p = np.asarray(ALLOC_P)
    allocs = _allocations(p)
    cells = [(float(p[q]), int(n[q]), 0.0) for n in allocs.values()
             for q in range(p.size)]
    M = s["alloc_trials"]
    cfg.progress(f"grpo: allocation comparison, {len(allocs)} allocations × "
                 f"{p.size} prompts, M = {M}")
    g, const = _run_cells(key, cells, M)
    pos, neg, rows = [], [], {}
    for k, (name, n) in enumerate(allocs.items()):
        sl = slice(k * p.size, (k + 1) * p.size)
        t = _terms(p, n, 1)
        norm = [_var(g[sl][q, 1] / t["signal"][q]) for q in range(p.size)]
        raw = [_var(g[sl][q, 1]) for q in range(p.size)]
        zero = 1 - t["nonzero"]
        row = dict(n=n.tolist(), theory=float(t["normalized_variance"].sum()),
                   empirical=sum(v for v, _ in norm),
                   stderr=math.sqrt(sum(e * e for _, e in norm)),
                   raw_theory=float(t["variance"].sum()),
                   raw_empirical=sum(v for v, _ in raw),
                   raw_stderr=math.sqrt(sum(e * e for _, e in raw)),
                   zero_theory=float(zero.sum()),
                   zero_empirical=float(const[sl].mean(axis=1).sum()),
                   zero_stderr=math.sqrt(float(np.sum(zero * (1 - zero))) / M))
        rows[name] = row
        pos += [
            ("var", f"Σ Var(G_q)/omega_q^2, {name}", row["theory"],
             row["empirical"], row["stderr"], f"M={M} per prompt"),
            ("var", f"Σ Var(G_q) (raw), {name}", row["raw_theory"],
             row["raw_empirical"], row["raw_stderr"], "ddof=1"),
            ("lin", f"expected constant groups, {name}", row["zero_theory"],
             row["zero_empirical"], row["zero_stderr"], "sum of p^n + (1-p)^n"),
        ]
    pos2, neg2 = _differences(rows)
    return dict(pos=pos + pos2, neg=neg + neg2, rows=rows, p=p)


def _differences(rows):
    """Measured minus predicted excess over the GRPO allocation; 'as good as'
    controls for the allocations that are predicted to be worse."""
    best = rows["GRPO allocation"]
    pos, neg = [], []
    for name, r in rows.items():
        if name == "GRPO allocation":
            continue
        pred = r["theory"] - best["theory"]
        emp = r["empirical"] - best["empirical"]
        se = math.hypot(r["stderr"], best["stderr"])
        pos.append(("lin", f"excess over the GRPO allocation, {name}", pred, emp,
                    se, f"relative {pred / best['theory']:+.2%} predicted"))
        if pred / best["theory"] > 0.05:
            neg.append(("lin", f"{name} as good as the GRPO allocation", 0.0, emp,
                        se, pred, "no excess"))
    return pos, neg


# --------------------------------------------------------------------------
# The section
# --------------------------------------------------------------------------


def _expected_z(kind, wrong, true, se):
    if se <= 0:
        return math.inf
    return log_z(wrong, true, se) if kind == "var" else (true - wrong) / se


def section(cfg: VerifyConfig) -> SectionResult:
    """Run the GRPO section (see the module docstring)."""
    s = _settings(cfg)
    key = jax.random.fold_in(jax.random.key(cfg.seed), 0x6F0)  # this section's stream
    pos, neg, points = _formula_rows(cfg, s, jax.random.fold_in(key, 1))
    p2, n2 = _subtle_control(cfg, s, jax.random.fold_in(key, 2))
    alloc = _allocation_block(cfg, s, jax.random.fold_in(key, 3))
    pos, neg = pos + p2 + alloc["pos"], neg + n2 + alloc["neg"]
    zstar = bonferroni_z(cfg.section_fwer, len(pos))
    cfg.progress("grpo: exact rows (grpo_terms, allocate_grpo's optimality)")
    exact_rows = grpo_checks()
    checks = exact_rows + [moment_check(k, nm, th, em, se, zstar, note=nt)
                           for k, nm, th, em, se, nt in pos]
    miss, neg_data = [], []
    for k, nm, wrong, em, se, true, nt in neg:
        power = detection_power(_expected_z(k, wrong, true, se), zstar)
        miss.append(1 - power)
        checks.append(moment_check(k, nm, wrong, em, se, zstar, negative=True,
                             note=f"{nt}; power {_fmt_power(power)}"))
        neg_data.append(dict(name=nm, wrong=wrong, true=true, power=power))
    fail_bound = cfg.section_fwer + sum(miss)
    figures = [_plot(cfg, points, alloc)]
    md = _markdown(cfg, s, len(pos), len(neg), zstar, fail_bound, alloc)
    data = dict(threshold=zstar, positive_checks=len(pos), trials=s["trials"],
                exact_checks=len(exact_rows),
                negative_controls=neg_data, false_failure_bound=fail_bound,
                cells=points, allocation=dict(
                    p=list(ALLOC_P), C=ALLOC_C, L=ALLOC_L, U=ALLOC_U,
                    rows=alloc["rows"]))
    return SectionResult(title=TITLE, checks=checks, markdown=md,
                         figures=figures, data=data)


def _fmt_power(power: float) -> str:
    miss = 1 - power
    return "> 1 - 1e-12" if miss < 1e-12 else f"{power:.6g} (miss {miss:.2g})"


# --------------------------------------------------------------------------
# Figure and text
# --------------------------------------------------------------------------


def _plot(cfg: VerifyConfig, points, alloc) -> tuple[str, str]:
    fig, (ax, bx) = new_figure(11, 4.2, ncols=2)
    nn = np.arange(2, _N_MAX + 1)
    curves = (0.02, 0.1, 0.3, 0.5)
    c = _terms(np.array(curves)[:, None], nn[None, :])["factor"]
    for i, p in enumerate(curves):
        ax.plot(nn, c[i] * (nn - 1), color=f"C{i}", label=f"p = {p:g}")
    for pt in points:
        scale = (pt["n"] - 1) / (4 * pt["p"] * (1 - pt["p"]))
        ax.errorbar(pt["n"], pt["v"] * scale, yerr=2 * pt["se"] * scale, fmt="o",
                    color="k", ms=3, capsize=2)
    ax.axhline(1, color="0.5", ls="--", lw=1, label="RLOO, Dr. GRPO")
    ax.set(xscale="log", xlabel="group size n",
           ylabel="(n−1) V_n(p) / 4p(1−p)  =  1 + CV²",
           title="GRPO's normalised variance relative to RLOO's")
    ax.legend(fontsize=8)
    p = alloc["p"]
    for i, (name, r) in enumerate(alloc["rows"].items()):
        bx.plot(p + 0.004 * (i - 1.5), r["n"], "o-", ms=4, lw=1, color=f"C{i}",
                label=f"{name}: Σ V = {r['theory']:.3f}")
    bx.set(xlabel="success probability p", ylabel="rollouts n",
           title=f"B = {p.size}, C = {ALLOC_C}, L = {ALLOC_L}, U = {ALLOC_U}")
    bx.legend(fontsize=8)
    fname = "grpo.png"
    save_figure(fig, cfg.out / fname)
    return fname, ("Left: GRPO's signal-normalised variance over RLOO's, theory "
                   "(lines) and Monte Carlo (dots, ±2 s.e., ddof = 1). Right: "
                   "the four allocations of the comparison batch.")


def _markdown(cfg, s, m_pos, m_neg, zstar, fail_bound, alloc) -> str:
    lines = [
        "GRPO advantages (R − mean)/(std + ε) with ±1 rewards. Theory: E[G] = "
        "ω_n(p) Cov(R, Z), Var(G) = σ_Z² (n−d)/n² (1 − pⁿ − (1−p)ⁿ), and the "
        "allocation objective V_n(p) = Var(G)/ω² = 4p(1−p)/(n−1)·(1 + CV²), the "
        "variance of the signal-normalised group gradient (CV: coefficient of "
        "variation of the group's std given a non-constant group). Rows use "
        f"M = {s['trials']} groups per cell (the allocation comparison "
        f"{s['alloc_trials']} per prompt), variances on the log scale.",
        "",
        "**Exact rows** (first in the table, no Monte Carlo): grpo_terms against "
        "exact enumeration, and allocate_grpo's objective against the exact "
        "minimum of Σ V_n(p) (float64 dynamic programme) on batches with tied "
        "and near-tied gains.",
        "",
        f"**Threshold.** {m_pos} positive checks share the family-wise error "
        f"{cfg.section_fwer:.3g}: Bonferroni gives |z| ≤ {zstar:.3f}. The {m_neg} "
        "negative controls must exceed it; with their powers, this section fails "
        f"a correct implementation with probability ≤ {fail_bound:.3g}.",
        "",
        f"**Allocation comparison** (p = {', '.join(f'{x:g}' for x in ALLOC_P)}; "
        f"C = {ALLOC_C}, L = {ALLOC_L}, U = {ALLOC_U}, ddof = 1; allocators see "
        "the true p):",
        "",
        "| allocation | Σ V_n(p) theory | Monte Carlo ± s.e. | vs GRPO allocation "
        "| raw Σ Var(G) | constant groups |",
        "|---|---|---|---|---|---|",
    ]
    best = alloc["rows"]["GRPO allocation"]["theory"]
    for name, r in alloc["rows"].items():
        lines.append(
            f"| {name} | {r['theory']:.4f} | {r['empirical']:.4f} ± "
            f"{r['stderr']:.4f} | {r['theory'] / best - 1:+.2%} | "
            f"{r['raw_theory']:.4f} | {r['zero_theory']:.2f} |")
    rows = alloc["rows"]
    same = rows["RLOO allocation"]["n"] == rows["GRPO allocation"]["n"]
    lines += ["", "The RLOO allocation is " + (
        "identical to the GRPO allocation on this batch." if same else
        "scored with the GRPO objective above.") + " Minimising GRPO's raw "
        "variance starves prompts to n = L, where groups are constant more often "
        "and carry no gradient: lower raw variance, far higher variance per unit "
        "of signal."]
    return "\n".join(lines)
