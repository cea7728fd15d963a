"""The text of ``report.md`` (see :mod:`.report` for the files and plots)."""

from __future__ import annotations

import math
from typing import Any

from vipcore._src.apps.simulate import analysis as an
from vipcore._src.apps.simulate.report_assumptions import (
    assumption_markdown,
    fmt_p,
)

__all__ = ["markdown"]


def _f(x, nd=3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def _label(results, m) -> str:
    return results["arms"][m]["label"] if m in results["arms"] else m


def _header(results, quick, command, device) -> list[str]:
    cfg = results["config"]
    L = [f"# vipcore simulate: equal-rollout benchmark, task {cfg['task']}\n"]
    if quick:
        L.append(f"> **Smoke test.** A `--quick` run ({cfg['seeds']} seeds, "
                 f"{cfg['calibration_seeds']} calibration seeds) checks that the "
                 "pipeline works; it has no power to detect the effects the "
                 "protocol is about, and its comparisons are not evidence either "
                 "way.\n")
    if command:
        L.append(f"Command: `{command}`  \nDevice: {device}  \n"
                 f"Training wall time (all programs, compilation included): "
                 f"{results['wall_s']:.1f} s\n")
    L.append(
        f"Protocol: `docs/simulate.md`. Task: pick the largest of k in [2, "
        f"{cfg['num_slots']}] integers in [0, {cfg['num_values'] - 1}] (one "
        f"answer token, reward ±1); {cfg['num_train']} training and "
        f"{cfg['num_eval']} held-out prompts. Policy: MLP {cfg['depth']} x "
        f"{cfg['hidden']}, Adam {cfg['learning_rate']}, {cfg['estimator']} "
        f"advantages, KL 0, one on-policy step per round. B = "
        f"{cfg['batch_size']}, n = {cfg['rollouts_per_prompt']}, L = "
        f"{cfg['lower']}, U = {cfg['upper']}, {cfg['steps']} rounds, "
        f"{cfg['seeds']} paired seeds (from {cfg['seed_offset']}). Primary "
        "metric: a seed's mean held-out accuracy over the evaluations in rounds "
        f"{results['summary_window'][0]}-{results['summary_window'][1]}.\n")
    L.append("| arm | role | rollouts per round |\n|---|---|---|")
    for m, a in results["arms"].items():
        L.append(f"| {a['label']} (`{m}`) | {a['role']} | "
                 f"{results['budget_per_round'][m]} |")
    for m, why in results.get("skipped", {}).items():
        L.append(f"| `{m}` | not run: {why} | - |")
    return L + [""]


def _gates(summ) -> list[str]:
    g = summ["gates"]
    L = ["## Validity gates\n"]
    lad = g.get("ladder")
    if lad:
        word = "**passed**" if lad["passed"] else "**failed**"
        L.append(f"* Ladder (positive control): uniform n = {lad['rungs'][1]} minus "
                 f"n = {lad['rungs'][0]}: {lad['mean']:+.4f} ± {_f(lad['se'], 4)} "
                 f"(paired t p = {fmt_p(lad['p'])}; needs > 0 at p < "
                 f"{an.GATE_P:g}): {word}.")
        if not lad["passed"]:
            L.append("  This run cannot resolve differences of the size the "
                     "protocol is about; the confirmatory tests below are "
                     "reported but not interpretable.")
    else:
        L.append("* Ladder gate not run (the ladder arms were not selected).")
    fit = summ["ladder"]
    if fit:
        L.append(f"* Ladder fit: β = {fit['beta']:.4f} accuracy per unit of "
                 f"ln(rollouts) (rungs {fit['rungs']}, means "
                 f"{[round(x, 4) for x in fit['means']]}, residuals "
                 f"{[round(x, 4) for x in fit['residuals']]}).")
    h = g.get("headroom")
    if h:
        verdict = ("**the allocation headroom on this system is below 10 % of "
                   "rollouts**" if h["below_smallest_effect"] else
                   "at or above the smallest effect of interest")
        L.append(f"* Headroom: oracle-p VIP minus uniform {h['mean']:+.4f} ± "
                 f"{_f(h['se'], 4)} against Δ_min = β ln 1.1 = "
                 f"{h['delta_min']:.4f}: {verdict}.")
    return L + [""]


def _confirmatory(results, summ) -> list[str]:
    ch = summ["chosen"]
    L = ["## Confirmatory tests\n"]
    if ch["best"] is None:
        return L + ["No vipcore planner ran, so there is nothing to confirm.\n"]
    if ch["exploratory"]:
        L.append("> **Exploratory.** No calibration run: the best planner and "
                 "the DAPO variant were chosen on these same seeds, so the "
                 "p-values below are optimistic.\n")
    cands = ", ".join(f"`{m}` {v:.4f}" for m, v in ch["candidates"].items())
    L.append(f"Best vipcore planner: **{_label(results, ch['best'])}** (`"
             f"{ch['best']}`), chosen by mean primary metric "
             f"{'on these seeds' if ch['exploratory'] else 'on the calibration seeds'}"
             f" among: {cands}. Comparators: "
             + ", ".join(f"{k} = `{v}`" for k, v in ch["comparators"].items())
             + ".\n")
    L.append("| comparison | Δ primary (mean ± se) | 95 % CI | p | p (Holm) | "
             "outcome |")
    L.append("|---|---|---|---|---|---|")
    for r in summ["confirmatory"]:
        out = ("**better**" if r["mean"] > 0 else "**worse**") if r["reject"] \
            else "no significant difference"
        L.append(f"| {r['comparison']} | {r['mean']:+.4f} ± {_f(r['se'], 4)} | "
                 f"[{_f(r['ci'][0], 4)}, {_f(r['ci'][1], 4)}] | {fmt_p(r['p'])} | "
                 f"{fmt_p(r['p_holm'])} | {out} |")
    best = summ["methods"].get(ch["best"] or "", {}).get("multiplier")
    if best:
        lo, hi = best["low"], best["high"]
        word = ("saves at least 10 % of rollouts" if lo >= an.SMALLEST_MULTIPLIER
                else "any saving is below 10 % of rollouts"
                if hi < an.SMALLEST_MULTIPLIER else "inconclusive at 10 %")
        L.append(f"\nEquivalent rollout multiplier of the best planner vs uniform: "
                 f"{_f(best['multiplier'])} [{_f(lo)}, {_f(hi)}]: {word}.")
    p = summ.get("power")
    if p:
        L.append(f"\nMeasured paired sd (best − uniform) {p['sd']:.4f}; power of "
                 f"the test at Δ_min = {p['delta_min']:.4f} with {p['seeds']} seeds "
                 f"(level {an.ALPHA / 4:g}): {_f(p['power'], 2)}.")
    return L + [""]


def _arms_table(results, summ) -> list[str]:
    L = ["## Every arm against uniform (secondary, unadjusted)\n",
         "| arm | primary (mean ± sd) | Δ vs uniform (± se) | p | multiplier "
         "[95 % CI] | final acc | seeds at target | rollouts to target |",
         "|---|---|---|---|---|---|---|---|"]
    for m, s in summ["methods"].items():
        v = s.get("vs_uniform")
        mu = s.get("multiplier")
        L.append(
            f"| {_label(results, m)} | {s['primary_mean']:.4f} ± "
            f"{s['primary_sd']:.4f} | "
            + (f"{v['mean']:+.4f} ± {_f(v['se'], 4)} | {fmt_p(v['p'])}"
               if v else "- | -")
            + " | " + (f"{_f(mu['multiplier'])} [{_f(mu['low'])}, {_f(mu['high'])}]"
                       if mu else "-")
            + f" | {s['final_mean']:.3f} | {s['reached_target']}/{s['seeds']} | "
            f"{_f(s['rollouts_to_target_median'], 0)} |")
    return L + [""]


def _diagnostics(results, summ) -> list[str]:
    L = ["## Allocation and prediction diagnostics (per seed first)\n",
         "Objective: Σ_q 4p(1-p) c(n_q) at the exact p of each round's batch, "
         "summed over rounds, over the same for the uniform split. Gradient "
         "variance: tr Cov(g) with the arm's allocation over tr Cov(g) with the "
         "uniform split, same policy, prompts and rollout draws; the log-ratio "
         "is averaged over measurement rounds per seed, then tested across "
         "seeds. Starved: mid-difficulty prompts (0.25 <= p <= 0.75) given only "
         "L rollouts. Saturated: rollouts on prompts with p < 0.05 or > 0.95.\n",
         "| arm | objective vs uniform | tr Cov(g) ratio (p) | starved | "
         "saturated share | all-equal groups | updates | MAE | Brier | ECE |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for m, s in summ["methods"].items():
        g = s.get("gradvar_ratio")
        L.append(
            f"| {_label(results, m)} | {s['objective_ratio']:.3f} | "
            + (f"{_f(g['ratio'])} ({fmt_p(g['p'])})" if g else "-")
            + f" | {s['starvation_rate']:.3f} | {s['saturated_share']:.3f} | "
            f"{s['zero_var_mean']:.3f} | {s['updates_mean']:.0f} | "
            f"{_f(s.get('mae'))} | {_f(s.get('brier'))} | {_f(s.get('ece'))} |")
    return L + [""]


def _timing(results) -> list[str]:
    L = ["## Wall-clock\n", "| program (arms) | runs | compile s | run s |",
         "|---|---|---|---|"]
    for names, t in results.get("timing", {}).items():
        L.append(f"| {names} | {t['runs']} | {t['compile_s']:.1f} | "
                 f"{t['run_s']:.1f} |")
    return L + [""]


def markdown(results: dict[str, Any], summ: dict[str, Any], assumptions,
             figs, *, command: str = "", device: str = "",
             quick: bool = False) -> str:
    """The whole ``report.md``."""
    L = _header(results, quick, command, device)
    L += _gates(summ)
    L += _confirmatory(results, summ)
    L += _arms_table(results, summ)
    L += _diagnostics(results, summ)
    L += _timing(results)
    if assumptions:
        L.append(assumption_markdown(assumptions,
                                     results["config"].get("filler_tokens", 0)))
    L.append("\n## Figures\n")
    for name, cap in figs:
        L.append(f"![{cap}]({name})  \n*{cap}*\n")
    return "\n".join(L) + "\n"
