"""The sweep summary: one JSON-ready dict and its text rendering.

:func:`summarize` turns a :class:`~vipcore._src.sweep.io.SweepData` into the
dict that ``vipcore sweep --json`` prints and ``summary.json`` stores (bucket
counts, improvement potential, ``frac_reward_zero_std``, miss probability,
advice, transitions between steps, warnings); :func:`format_summary` renders
it as text.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from vipcore._src._serialize import jsonable
from vipcore._src.sweep.analysis import (
    BUCKETS,
    THRESHOLDS,
    SweepReport,
    analyze,
    bucket_transitions,
    miss_probability,
    rollouts_for_miss_rate,
)
from vipcore._src.sweep.io import SweepData, resolve_step, select_step

__all__ = ["RECOMMENDED_K", "summarize", "format_summary"]

#: Recommended rollouts per prompt for a pre-flight sweep.
RECOMMENDED_K = 16


def _report_dict(rep: SweepReport) -> dict[str, Any]:
    n = int(rep.buckets.size)
    pot = rep.potential
    return {
        "n_prompts": n,
        "rollouts": {
            "total": int(rep.metrics.n.sum()),
            "min_k": int(rep.metrics.n.min()) if n else 0,
            "max_k": int(rep.metrics.n.max()) if n else 0,
        },
        "counts": rep.counts,
        "fractions": {k: jsonable(v / n) if n else None for k, v in rep.counts.items()},
        "high_variance": {
            "count": int(np.count_nonzero(rep.high_variance)),
            "fraction": jsonable(np.mean(rep.high_variance)) if n else None,
            "threshold": rep.settings["variance_threshold"],
        },
        "potential": {k: jsonable(v) for k, v in pot._asdict().items()},
        "frac_reward_zero_std": {
            "group_size": rep.zero_std_all.group_size,
            "all_prompts": jsonable(rep.zero_std_all.mean),
            "signal_prompts": jsonable(rep.zero_std_signal.mean),
            "unbiased": rep.zero_std_all.unbiased,
        },
        "advice": {
            "signal_fraction": jsonable(rep.advice.signal_fraction),
            "level": rep.advice.level,
            "compute_multiplier": list(rep.advice.multiplier)
            if rep.advice.multiplier else None,
            "messages": list(rep.advice.messages),
        },
    }


def summarize(
    data: SweepData,
    *,
    lo: float = 0.0,
    hi: float = 1.0,
    pass_threshold: float | None = None,
    variance_threshold: float = 0.01,
    group_size: int = 8,
    miss_p: float = 0.05,
    target_miss: float = 0.05,
    step: Any = None,
) -> tuple[dict[str, Any], dict[Any, tuple[list, SweepReport]]]:
    """The whole report as a JSON-serialisable dict, plus the per-step reports.

    With a ``step`` column every step is analysed; the detailed report is for
    ``step`` (default: the last step, the current policy) and consecutive
    steps are compared by prompt id (bucket transitions).

    Returns:
      ``(summary, reports)`` where ``reports[step] = (prompt_ids, report)``
      (key None when the data has no steps).
    """
    opts = dict(lo=lo, hi=hi, pass_threshold=pass_threshold,
                variance_threshold=variance_threshold, group_size=group_size)
    labels = data.step_labels if data.steps is not None else [None]
    reports = {}
    for st in labels:
        ids, sc, c = select_step(data, st)
        reports[st] = (ids, analyze(sc, counts=c, **opts))
    main_step = resolve_step(data, step)
    ids, rep = reports[main_step]
    main = _report_dict(rep)
    warnings: list[str] = []
    if data.n_clipped:
        warnings.append(
            f"{data.n_clipped} score(s) outside [0, 1] were clipped (--clip)"
        )
    n_single = rep.counts["single"]
    if n_single:
        few = [str(ids[i]) for i in np.flatnonzero(rep.buckets == 4)[:5]]
        warnings.append(
            f"{n_single} prompt(s) have a single rollout: variance undefined, not "
            f"bucketed (bucket 'single'; e.g. {', '.join(few)})"
        )
    if rep.counts["flat"]:
        warnings.append(
            f"{rep.counts['flat']} prompt(s) have identical graded scores strictly "
            f"between lo and hi: zero variance, so bucket 'flat', not signal"
        )
    ks = rep.metrics.n[rep.metrics.n >= 2]
    k_med = int(statistics.median(ks.tolist())) if ks.size else 0
    miss = None
    if k_med:
        miss = {
            "p": miss_p,
            "k": k_med,
            "probability_no_pass": jsonable(miss_probability(miss_p, k_med)),
            "probability_unlearnable": jsonable(miss_probability(miss_p, k_med, lo=lo)),
            "target": target_miss,
            "k_needed": rollouts_for_miss_rate(miss_p, target_miss),
        }
        if k_med < RECOMMENDED_K:
            warnings.append(
                f"K = {k_med} rollouts per prompt: a prompt with true pass rate "
                f"{miss_p:g} looks unlearnable with probability "
                f"{miss['probability_unlearnable']:.2f}; the reward-variance "
                "analysis recommends "
                f"K = {RECOMMENDED_K} for the sweep"
            )
    if not rep.zero_std_all.unbiased:
        warnings.append(
            f"group size G = {group_size} exceeds some prompts' K: their "
            "frac_reward_zero_std is a plug-in estimate (biased)"
        )
    warnings += [m for m in rep.advice.messages if m.startswith("WARNING")]
    transitions = []
    if data.steps is not None and len(labels) > 1:
        for a, b in zip(labels[:-1], labels[1:], strict=True):
            transitions.append(_transition(reports, a, b))
        if len(labels) > 2:
            transitions.append(_transition(reports, labels[0], labels[-1]))
    summary = {
        "source": data.source,
        "n_rows": data.n_rows,
        "n_clipped": data.n_clipped,
        "steps": data.step_labels,
        "step": main_step,
        "settings": rep.settings,
        "buckets": list(BUCKETS),
        "report": main,
        "miss": miss,
        "per_step": (
            [{"step": s, **_report_dict(reports[s][1])} for s in labels]
            if data.steps is not None else None
        ),
        "transitions": transitions,
        "warnings": warnings,
    }
    return summary, reports


def _transition(reports, a, b) -> dict[str, Any]:
    ids_a, rep_a = reports[a]
    ids_b, rep_b = reports[b]
    where_b = {pid: i for i, pid in enumerate(ids_b)}
    ia = [i for i, pid in enumerate(ids_a) if pid in where_b]
    ib = [where_b[ids_a[i]] for i in ia]
    mat = bucket_transitions(rep_a.buckets[ia], rep_b.buckets[ib])
    moved = {
        f"{BUCKETS[i]}->{BUCKETS[j]}": int(mat[i, j])
        for i in range(len(BUCKETS)) for j in range(len(BUCKETS))
        if i != j and mat[i, j]
    }
    return {
        "from": a, "to": b, "n_common": len(ia),
        "only_in_from": len(ids_a) - len(ia), "only_in_to": len(ids_b) - len(ia),
        "matrix": mat.tolist(), "moved": moved,
    }


def _pct(x: float | None) -> str:
    return "  –  " if x is None else f"{100 * x:5.1f}%"


def format_summary(summary: dict[str, Any]) -> str:
    """The terminal report."""
    r = summary["report"]
    st = summary["settings"]
    lines = []
    k = r["rollouts"]
    kdesc = f"K = {k['min_k']}" if k["min_k"] == k["max_k"] else (
        f"K = {k['min_k']}..{k['max_k']}")
    lines.append(
        f"vipcore sweep: {summary['source']}: {summary['n_rows']} rollouts"
        + (f", {len(summary['steps'])} steps" if summary["steps"] else "")
    )
    kind = next((nm for nm, v in THRESHOLDS.items() if v == (st["lo"], st["hi"])),
                "custom")
    lines.append(
        f"thresholds: {kind} (unlearnable: pass rate <= {st['lo']:g}, trivial: "
        f">= {st['hi']:g}); pass rate = {st['pass_rate']}"
    )
    if summary["per_step"]:
        lines.append("")
        lines.append("step        prompts  " + "  ".join(
            f"{b:>18}" for b in BUCKETS[:3]))
        for row in summary["per_step"]:
            cells = "  ".join(
                f"{row['counts'][b]:>9} ({_pct(row['fractions'][b])})"
                for b in BUCKETS[:3])
            lines.append(f"{row['step']!s:<10}{row['n_prompts']:>9}  {cells}")
    lines.append("")
    head = (f"step {summary['step']}: " if summary["step"] is not None else "")
    lines.append(f"{head}{r['n_prompts']} prompts, {kdesc} rollouts each")
    n = r["n_prompts"]
    for b in BUCKETS:
        c = r["counts"][b]
        if b in ("flat", "single") and not c:
            continue
        lines.append(f"  {b:<12} {c:>8}  {_pct(c / n if n else None)}")
    hv = r["high_variance"]
    lines.append(
        f"  high variance (var > {hv['threshold']:g}, 0 < mean < 1): "
        f"{hv['count']} ({_pct(hv['fraction']).strip()})"
    )
    p = r["potential"]
    if p["n_prompts"]:
        rel = "n/a" if p["relative"] is None else f"{100 * p['relative']:.1f}%"
        lines.append(
            f"improvement potential: mean {p['current']:.3f} -> best-of-K "
            f"{p['best_of_k']:.3f}: +{p['gain']:.3f} ({rel} relative)"
        )
    z = r["frac_reward_zero_std"]
    lines.append(
        f"frac_reward_zero_std at G = {z['group_size']}: all prompts "
        f"{_pct(z['all_prompts']).strip()}, signal bucket only "
        f"{_pct(z['signal_prompts']).strip()} (share of training groups "
        "with zero reward std, i.e. no gradient)"
    )
    m = summary["miss"]
    if m:
        lines.append(
            f"miss probability: a prompt with true pass rate {m['p']:g} shows "
            f"no pass in K = {m['k']} rollouts with probability "
            f"{m['probability_no_pass']:.3f}; K >= {m['k_needed']} keeps it "
            f"<= {m['target']:g}"
        )
        if st["lo"] > 0:
            lines.append(
                f"  with lo = {st['lo']:g} it looks unlearnable (pass rate <= lo) "
                f"with probability {m['probability_unlearnable']:.3f}"
            )
    a = r["advice"]
    mult = a["compute_multiplier"]
    lines.append("")
    lines.append(
        f"advice ({a['level']}): compute multiplier "
        + ("n/a" if mult is None else
           (f"{mult[0]}" if mult[0] == mult[1] else f"{mult[0]}-{mult[1]}"))
    )
    for msg in a["messages"]:
        if not msg.startswith("WARNING"):
            lines.append(f"  {msg}")
    for t in summary["transitions"]:
        lines.append("")
        lines.append(
            f"transitions step {t['from']} -> {t['to']} ({t['n_common']} prompts "
            "in both):"
        )
        mat = t["matrix"]
        used = [i for i in range(len(BUCKETS))
                if any(mat[i]) or any(row[i] for row in mat)]
        lines.append("  from \\ to    " + "".join(f"{BUCKETS[j]:>13}" for j in used))
        for i in used:
            lines.append(f"  {BUCKETS[i]:<12}" + "".join(f"{mat[i][j]:>13}"
                                                         for j in used))
    if summary["warnings"]:
        lines.append("")
        lines.append("warnings:")
        for w in summary["warnings"]:
            lines.append(f"  - {w.removeprefix('WARNING: ')}")
    return "\n".join(lines)
