"""``vipcore verify`` section: the paper's Appendix B tests on simulated data.

Exact rows first: the public ``vipcore.stats`` functions in float64 against
the textbook oracles of :mod:`vipcore._src.apps.verify.oracles` (and the
float32 battery the simulations use, on one paper-size data set). Then it
reproduces the structure of Tables 5–8 (Q = 600 questions, n = 16 rollouts,
a signed approximately normal ``Z = 1^T H`` and a positive skewed ``Z``
standing in for ``||H||_2``) on data where Assumption 4.1 holds and where it
is broken, measures each global test's size at alpha = 0.05 under the null,
and re-reads the paper's reported p-values against the simulated null
distribution of the same test. Data: :mod:`vipcore._src.apps.verify.stats_sim`.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import jax
import numpy as np

from vipcore._src._plotting import new_figure, save_figure
from vipcore._src.apps.verify import exact
from vipcore._src.apps.verify.report import (
    Check,
    SectionResult,
    VerifyConfig,
    bonferroni_z,
)
from vipcore._src.apps.verify.stats_sim import (
    CHUNK,
    TESTS,
    battery_one,
    simulate_pvalues,
)

__all__ = ["PAPER", "binomial_z", "section"]

Q, N, ALPHA = 600, 16, 0.05

#: The paper's p-values, Tables 5–8: epochs 0.0, 0.5, 1.0 x (Z = 1^T H, ||H||_2).
PAPER: dict[str, tuple[tuple[float, float], ...]] = {
    "fisher": ((0.3230, 0.7322), (0.3050, 0.1108), (0.3050, 0.2186)),
    "edgington": ((0.9125, 0.7894), (0.8963, 0.3964), (0.8912, 0.2148)),
    "levene_median": ((0.5019, 0.2705), (0.4132, 0.4785), (0.3847, 0.3847)),
    "obrien": ((0.1612, 0.3009), (0.1215, 0.2563), (0.1229, 0.2420)),
}
LABEL = {
    "fisher": "Fisher (Pearson p, Table 5)",
    "edgington": "Edgington (Pearson p, Table 6)",
    "levene_median": "Levene, median (Table 7)",
    "levene_mean": "Levene, mean (not in paper)",
    "obrien": "O'Brien (Table 8)",
}
#: Z families: (label, z_dist, z_mean). ``Exp(1)`` (= chi^2_2 / 2, skewness 2)
#: is the most skewed positive family the simulator has; a real ``||H||_2``
#: is less skewed, so the truth for that column lies between the two rows.
ZS = (
    ("normal", "normal", 0.0),
    ("exp", "exponential", 1.0),
)
STRONG = {"corr": 0.5, "het": 0.5}  # detection controls (median p < 1e-100)
MODERATE = {"corr": 0.1, "het": 0.1}  # power at alpha = 0.05, reported


def _size(p: np.ndarray) -> tuple[float, float]:
    s = float(np.mean(p < ALPHA))
    return s, math.sqrt(ALPHA * (1 - ALPHA) / p.size)


def binomial_z(k: int, t: int, p0: float) -> float:
    """Signed z equivalent of the exact binomial test of ``k`` in ``t`` at ``p0``.

    ``z = sign(k - t p0) Phi^{-1}(1 - P/2)`` with ``P`` the exact two-sided
    (doubled smaller tail) binomial p-value, so that ``|z| > z*`` has exactly
    the Bonferroni false-alarm rate, without the normal approximation (which
    is poor in the tails of ``Bin(t, 0.05)`` for small ``t``).
    """
    logs = [math.lgamma(t + 1) - math.lgamma(i + 1) - math.lgamma(t - i + 1)
            + i * math.log(p0) + (t - i) * math.log1p(-p0) for i in range(t + 1)]
    pmf = np.exp(np.asarray(logs))
    lower, upper = float(pmf[: k + 1].sum()), float(pmf[k:].sum())
    tail = min(1.0, 2 * min(lower, upper))
    if tail >= 1.0:
        return 0.0
    z = -NormalDist().inv_cdf(max(tail, 1e-300) / 2)
    return z if k >= t * p0 else -z


def _ks(p: np.ndarray) -> float:
    x = np.sort(p)
    i = np.arange(1, x.size + 1)
    return float(max(np.max(i / x.size - x), np.max(x - (i - 1) / x.size)))


def _fmt_p(p: float) -> str:
    return f"{p:.2e}" if p < 1e-3 else f"{p:.3f}"


def _run(cfg: VerifyConfig) -> dict[str, Any]:
    t_null = cfg.trials or cfg.pick(100, 1000, 5000)
    t_pow = cfg.pick(100, 200, 1000)
    chunk = CHUNK
    key = jax.random.key(cfg.seed)
    runs: dict[str, Any] = {}
    for i, (zname, zd, zm) in enumerate(ZS):
        kz = jax.random.fold_in(key, i)
        cfg.progress(f"stats: {t_null} null data sets, Z {zname}")
        runs[("null", zname)] = simulate_pvalues(
            jax.random.fold_in(kz, 0), q=Q, n=N, trials=t_null, z_dist=zd,
            z_mean=zm, chunk=chunk)
        for j, (kind, eff) in enumerate((("corr", MODERATE), ("het", MODERATE),
                                         ("corr", STRONG), ("het", STRONG))):
            tag = "moderate" if eff is MODERATE else "strong"
            trials = t_pow if eff is MODERATE else chunk
            cfg.progress(f"stats: {trials} data sets, Z {zname}, {kind} {tag}")
            runs[(kind, tag, zname)] = simulate_pvalues(
                jax.random.fold_in(kz, j + 1), q=Q, n=N, trials=trials, z_dist=zd,
                z_mean=zm, chunk=chunk, **{kind: eff[kind]})
    return runs


def _checks(runs: dict[str, Any], cfg: VerifyConfig) -> list[Check]:
    col = {t: i for i, t in enumerate(TESTS)}
    specs: list[tuple] = []
    pn = runs[("null", "normal")]
    for t in ("fisher", "edgington", "obrien"):
        specs.append(("size2", t, pn[:, col[t]]))
    for t in ("fisher", "edgington"):
        specs.append(("ks", t, pn[:, col[t]]))
    specs.append(("conservative", "levene_median", pn[:, col["levene_median"]]))
    if pn.shape[0] >= 500:  # below that the control is not reliably powered
        specs.append(("liberal", "levene_mean", pn[:, col["levene_mean"]]))
    pe = runs[("null", "exp")]
    specs.append(("conservative_exp", "levene_median", pe[:, col["levene_median"]]))
    holds = {"normal": ("fisher", "edgington", "levene_median", "obrien"),
             "exp": ("levene_median",)}
    for zname, tests in holds.items():
        for t in tests:
            specs.append(("holds", t, zname, runs[("null", zname)][0, col[t]]))
    for zname, _, _ in ZS:
        for kind, tests in (("corr", ("fisher", "edgington")),
                            ("het", ("levene_median", "obrien"))):
            for t in tests:
                specs.append(("detect", t, zname, kind,
                              runs[(kind, "strong", zname)][:, col[t]]))
    m = len(specs)
    zs = bonferroni_z(cfg.section_fwer, m)
    a_b = cfg.section_fwer / m
    out = []
    for s in specs:
        kind = s[0]
        if kind in ("size2", "conservative", "liberal", "conservative_exp"):
            t, p = s[1], s[2]
            size, se = _size(p)
            zn = "normal" if kind != "conservative_exp" else "exp"
            name = f"size at 5%, {LABEL[t]}, Z {zn}"
            z = binomial_z(int(np.sum(p < ALPHA)), p.size, ALPHA)
            if kind == "size2":
                note = "exact" if t != "obrien" else "approximate F law"
                out.append(Check(
                    name=name, passed=abs(z) <= zs, theory=ALPHA, empirical=size,
                    stderr=se, z=z, threshold=zs,
                    note=note + "; z from the exact binomial test"))
            else:
                liberal = kind == "liberal"
                out.append(Check(
                    name=name, passed=(z > zs) if liberal else (z <= zs),
                    theory=ALPHA, empirical=size, stderr=se, z=z, threshold=zs,
                    negative=liberal,
                    note="one-sided: size > 5% (liberal)" if liberal
                    else "one-sided: size <= 5% (conservative)"))
        elif kind == "ks":
            t, p = s[1], s[2]
            d = _ks(p)
            eps = math.sqrt(math.log(2 / a_b) / (2 * p.size))
            out.append(Check(
                name=f"KS uniformity of null p, {LABEL[t]}, Z normal",
                passed=d <= eps, empirical=d, threshold=eps,
                note=f"DKW bound at {a_b:.1e}"))
        elif kind == "holds":
            t, zn, p = s[1], s[2], float(s[3])
            out.append(Check(
                name=f"4.1 holds, Z {zn}: {LABEL[t]} not rejected", passed=p >= a_b,
                empirical=p, threshold=a_b, note="p >= Bonferroni level"))
        else:
            t, zn, what, ps = s[1], s[2], s[3], s[4]
            p = float(ps[0])
            eff = f"corr c={STRONG['corr']}" if what == "corr" else (
                f"het h={STRONG['het']}")
            out.append(Check(
                name=f"4.1 broken ({eff}), Z {zn}: {LABEL[t]} rejects",
                passed=p < a_b, empirical=p, threshold=a_b, negative=True,
                note=f"p < Bonferroni level (rejected in {int(np.sum(ps < a_b))}/"
                     f"{ps.size} simulated data sets)"))
    return out


def _calibrated(null: np.ndarray, v: float) -> str:
    return f"{np.mean(null <= v):.3f}"


def _tables_5_8(runs: dict[str, Any], col: dict, data: dict) -> list[str]:
    lines = [
        "**Tables 5–8 on one simulated data set per column** (global p-values; "
        "paper: range over its three checkpoints):",
        "",
        "| test | paper 1ᵀH | paper ‖H‖₂ | holds, Z normal | holds, Z exp | "
        f"corr c={STRONG['corr']} normal | corr exp | het h={STRONG['het']} normal "
        "| het exp |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in TESTS:
        pv = PAPER.get(t)
        paper = [f"{min(r[k] for r in pv):.2f}–{max(r[k] for r in pv):.2f}"
                 if pv else "–" for k in (0, 1)]
        cells = [_fmt_p(float(runs[("null", z)][0, col[t]])) for z in ("normal", "exp")]
        for kind in ("corr", "het"):
            cells += [_fmt_p(float(runs[(kind, "strong", z)][0, col[t]]))
                      for z in ("normal", "exp")]
        lines.append(f"| {LABEL[t]} | " + " | ".join(paper + cells) + " |")
        data["tables_5_8"][t] = cells
    return lines


def _rate(p: np.ndarray) -> tuple[float, float]:
    s = float(np.mean(p < ALPHA))
    return s, math.sqrt(max(s * (1 - s), 1e-12) / p.size)


def _size_table(runs: dict[str, Any], col: dict, data: dict) -> list[str]:
    t_null = runs[("null", "normal")].shape[0]
    lines = [
        f"**Size at α = 0.05 under H0** ({t_null} null data sets per Z family; "
        "± binomial s.e.; the median null p-value shows where a 'typical' "
        "p-value of a true null lands):",
        "",
        "| test | size, Z normal | median null p | size, Z exp | median null p |",
        "|---|---|---|---|---|",
    ]
    for t in TESTS:
        row = []
        for z in ("normal", "exp"):
            p = runs[("null", z)][:, col[t]]
            s, se = _rate(p)
            row += [f"{s:.4f} ± {se:.4f}", f"{np.median(p):.3f}"]
            data["size"][f"{t}/{z}"] = {"size": s, "se": se,
                                        "median_p": float(np.median(p))}
        lines.append(f"| {LABEL[t]} | " + " | ".join(row) + " |")
    return lines


def _power_table(runs: dict[str, Any], col: dict, data: dict) -> list[str]:
    lines = [
        f"**Power at α = 0.05** against moderate violations (c = "
        f"{MODERATE['corr']}: per-question correlation ≈ 0.1 at p = 0.5; "
        f"h = {MODERATE['het']}: σ_q varies by about ±10%):",
        "",
        "| test | corr, Z normal | corr, Z exp | het, Z normal | het, Z exp |",
        "|---|---|---|---|---|",
    ]
    for t in TESTS:
        row = []
        for kind in ("corr", "het"):
            for z in ("normal", "exp"):
                s, se = _rate(runs[(kind, "moderate", z)][:, col[t]])
                row.append(f"{s:.2f} ± {se:.2f}")
                data["power"][f"{t}/{kind}/{z}"] = s
        lines.append(f"| {LABEL[t]} | " + " | ".join(row) + " |")
    return lines


def _recalibrated_table(runs: dict[str, Any], col: dict, data: dict) -> list[str]:
    lines = [
        "**The paper's p-values re-read against the simulated null** "
        "(fraction of null data sets with a p-value at most the reported one, "
        "i.e. the p-value a calibrated version of the same test would report; "
        "Z normal / Z exp):",
        "",
        "| test | Z | epoch 0.0 | epoch 0.5 | epoch 1.0 |",
        "|---|---|---|---|---|",
    ]
    for t, pv in PAPER.items():
        for k, zlab in ((0, "1ᵀH"), (1, "‖H‖₂")):
            cells = []
            for epoch, r in zip(("0.0", "0.5", "1.0"), pv, strict=True):
                cal = [_calibrated(runs[("null", z)][:, col[t]], r[k])
                       for z in ("normal", "exp")]
                cells.append(f"{r[k]:.4f} → {cal[0]} / {cal[1]}")
                data["paper_recalibrated"][f"{t}/{zlab}/epoch {epoch}"] = {
                    "paper_p": r[k], "normal": float(cal[0]), "exp": float(cal[1])}
            lines.append(f"| {LABEL[t]} | {zlab} | " + " | ".join(cells) + " |")
    return lines


def _reading(data: dict) -> list[str]:
    lev = data["size"]["levene_median/normal"]
    recal = data["paper_recalibrated"]
    return [
        "Reading: Fisher and Edgington are exact when Z is normal; with the "
        "skewed Z the per-question Pearson p-values are slightly non-uniform "
        "and 600 of them add up to a liberal global test (size above). "
        f"The paper's Levene (median) test is extremely conservative at Q = {Q}, "
        f"n = {N}: size {lev['size']:.4f} at α = 0.05, median null p-value "
        f"{lev['median_p']:.2f}. Its failure to reject is therefore weak "
        "evidence, and its reported p-values are *low* for a true null: "
        f"0.3847 sits at the {recal['levene_median/1ᵀH/epoch 1.0']['normal']:.3f} "
        "quantile of the normal-Z null. O'Brien's test is close to nominal for "
        "normal Z (and liberal for skewed Z), so the paper's O'Brien values "
        "0.12–0.30 are the more informative 'not rejected'.",
    ]


def _markdown(runs: dict[str, Any], cfg: VerifyConfig, m_exact: int
              ) -> tuple[str, dict]:
    col = {t: i for i, t in enumerate(TESTS)}
    data: dict[str, Any] = {"tables_5_8": {}, "size": {}, "power": {},
                            "paper_recalibrated": {}}
    lines = [
        f"**Exact rows** ({m_exact}, first in the table): `pearson_groups`, "
        "`fisher`, `edgington`, `levene`, `obrien` and their distribution tails "
        "in float64 against textbook implementations (group-by-group "
        "statistics, Lentz's continued fraction for the incomplete beta "
        "function, the closed-form chi-squared tail, Irwin–Hall in rational "
        "arithmetic), and the float32 battery the simulations use on one "
        "paper-size data set. These see errors (a wrong degree of freedom, an "
        "off-by-one recursion, a population variance) that the calibration "
        "rows below are too coarse to notice.",
        "",
        f"Simulated Appendix B (Q = {Q} questions, n = {N} rollouts, ±1 rewards "
        "with p_q ~ U(0,1), float32). `Z normal` mimics the signed `Z = 1ᵀH`; "
        "`Z exp` (Exp(1), positive, skewness 2) is a deliberately skewed "
        "stand-in for `‖H‖₂`. Assumption 4.1 is broken by `Z = ε + c R` (corr) "
        "or by `log σ_q ~ N(0, h²)` across questions (het).",
        "",
    ]
    for part in (_tables_5_8, _size_table, _power_table, _recalibrated_table):
        lines += part(runs, col, data) + [""]
    return "\n".join(lines + _reading(data)), data


def _figure(runs: dict[str, Any], cfg: VerifyConfig) -> tuple[str, str]:
    fig, axes = new_figure(10, 4.8, ncols=2)
    for k, (zname, _, _) in enumerate(ZS):
        ax = axes[k]
        p = runs[("null", zname)]
        for i, t in enumerate(TESTS):
            x = np.sort(p[:, i])
            ax.plot(x, np.arange(1, x.size + 1) / x.size, label=LABEL[t], lw=1.2)
        ax.plot([0, 1], [0, 1], "k:", lw=1, label="calibrated test (diagonal)")
        ax.axvline(ALPHA, color="grey", lw=0.8)
        ax.set(title=f"Z {zname}: {p.shape[0]} null data sets", xlim=(0, 1),
               ylim=(0, 1), xlabel="global p-value",
               ylabel="fraction of null data sets with a smaller p-value")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8)
    fig.suptitle(f"Null distribution of the Appendix B tests (Q = {Q}, n = {N}); "
                 "grey line: α = 0.05")
    name = "stats_null_pvalues.png"
    save_figure(fig, cfg.out / name)
    return name, ("Empirical CDF of global p-values over simulated null data sets; "
                  "the diagonal is a calibrated test.")


def section(cfg: VerifyConfig) -> SectionResult:
    """Appendix B: exact rows, calibration, power and Tables 5–8."""
    runs = _run(cfg)
    checks = _checks(runs, cfg)
    cfg.progress("stats: exact rows (float64 vs textbook oracles)")
    exact_rows = exact.stats_checks(cfg.seed, battery_one)
    md, data = _markdown(runs, cfg, len(exact_rows))
    data["exact_checks"] = len(exact_rows)
    fig = _figure(runs, cfg)
    return SectionResult(
        title="Appendix B statistical tests (simulated Tables 5–8)",
        checks=exact_rows + checks, markdown=md, figures=[fig], data=data)
