"""The sweep summary: one JSON-ready dict, its text, and the per-prompt table.

:func:`summarize` turns a :class:`~vipcore._src.sweep.io.SweepData` into the
dict that ``vipcore sweep --json`` prints and ``summary.json`` stores (the
input and its column mapping, every setting, bucket counts, improvement
potential, ``frac_reward_zero_std``, miss probability, advice, transitions
between steps, warnings, the vipcore version); :func:`format_summary`
renders it as text; :func:`prompt_table` gives one row per prompt (bucket,
metrics and the posterior ``p_hat`` with its interval) for ``prompts.jsonl``.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from vipcore._src._serialize import jsonable
from vipcore._src.sweep.analysis import (
    BUCKETS,
    SINGLE,
    THRESHOLDS,
    SweepReport,
    analyze,
    bucket_transitions,
    miss_probability,
    rollouts_for_miss_rate,
)
from vipcore._src.sweep.io import SweepData, resolve_step, select_step
from vipcore._src.sweep.posterior import posterior_p

__all__ = ["RECOMMENDED_K", "summarize", "format_summary", "prompt_table"]

#: Recommended rollouts per prompt for a pre-flight sweep.
RECOMMENDED_K = 16


def _version() -> str:
    from vipcore import __version__

    return __version__


def _report_dict(rep: SweepReport) -> dict[str, Any]:
    n = int(rep.buckets.size)
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
        "potential": {k: jsonable(v) for k, v in rep.potential._asdict().items()},
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


def _miss(rep: SweepReport, miss_p: float, target: float, lo: float) -> dict | None:
    ks = rep.metrics.n[rep.metrics.n >= 2]
    k_med = int(statistics.median(ks.tolist())) if ks.size else 0
    if not k_med:
        return None
    return {
        "p": miss_p,
        "k": k_med,
        "probability_no_pass": jsonable(miss_probability(miss_p, k_med)),
        "probability_unlearnable": jsonable(miss_probability(miss_p, k_med, lo=lo)),
        "target": target,
        "k_needed": rollouts_for_miss_rate(miss_p, target),
    }


def _warnings(data: SweepData, ids: list, rep: SweepReport, miss: dict | None
              ) -> list[str]:
    out: list[str] = []
    if data.n_clipped:
        rr = data.reward_range
        where = "[0, 1]" if rr is None else f"the reward range [{rr[0]:g}, {rr[1]:g}]"
        out.append(f"{data.n_clipped} score(s) outside {where} were clipped (--clip)")
    if rep.counts["single"]:
        few = [str(ids[i]) for i in np.flatnonzero(rep.buckets == SINGLE)[:5]]
        out.append(
            f"{rep.counts['single']} prompt(s) have a single rollout: variance "
            f"undefined, not bucketed (bucket 'single'; e.g. {', '.join(few)})")
    if rep.counts["flat"]:
        st = rep.settings
        why = ("identical graded scores" if not st["min_std"] else
               f"graded scores with std < {st['min_std']:g}")
        out.append(f"{rep.counts['flat']} prompt(s) have {why} strictly between lo "
                   "and hi: (almost) no spread, so bucket 'flat', not signal")
    if miss and miss["k"] < RECOMMENDED_K:
        out.append(
            f"K = {miss['k']} rollouts per prompt: a prompt with true pass rate "
            f"{miss['p']:g} looks unlearnable with probability "
            f"{miss['probability_unlearnable']:.2f}; the reward-variance analysis "
            f"recommends K = {RECOMMENDED_K} for the sweep")
    if not rep.zero_std_all.unbiased:
        out.append(
            f"group size G = {rep.zero_std_all.group_size} exceeds some prompts' K: "
            "their frac_reward_zero_std is a plug-in estimate (biased)")
    return out + [m for m in rep.advice.messages if m.startswith("WARNING")]


def _rescaling(rr: tuple[float, float]) -> str:
    """``"score = (reward + 1) / 2"`` for ``(-1, 1)``."""
    lo, width = rr[0], rr[1] - rr[0]
    shift = "reward" if lo == 0 else (
        f"(reward + {-lo:g})" if lo < 0 else f"(reward - {lo:g})")
    return f"score = {shift} / {width:g}"


def _input_dict(data: SweepData) -> dict[str, Any]:
    rr = data.reward_range
    return {
        "source": data.source,
        "columns": data.columns,
        "reward_range": list(rr) if rr else None,
        "rescaling": _rescaling(rr) if rr else None,
        "n_rows": data.n_rows,
        "n_clipped": data.n_clipped,
        "has_text": data.texts is not None,
    }


def summarize(
    data: SweepData,
    *,
    lo: float = 0.0,
    hi: float = 1.0,
    pass_threshold: float | None = None,
    variance_threshold: float = 0.01,
    group_size: int = 8,
    min_std: float | None = None,
    miss_p: float = 0.05,
    target_miss: float = 0.05,
    step: Any = None,
) -> tuple[dict[str, Any], dict[Any, tuple[list, SweepReport]]]:
    """The whole report as a JSON-serialisable dict, plus the per-step reports.

    With a ``step`` column every step is analysed; the detailed report is for
    ``step`` (default: the last step, the current policy) and consecutive
    steps are compared by prompt id (bucket transitions). ``min_std=None``
    decides from the data of each step (see :func:`~.analysis.analyze`).

    Returns:
      ``(summary, reports)`` where ``reports[step] = (prompt_ids, report)``
      (key None when the data has no steps).
    """
    opts = dict(lo=lo, hi=hi, pass_threshold=pass_threshold, min_std=min_std,
                variance_threshold=variance_threshold, group_size=group_size)
    labels = data.step_labels if data.steps is not None else [None]
    reports = {}
    for st in labels:
        ids, sc, c = select_step(data, st)
        reports[st] = (ids, analyze(sc, counts=c, **opts))
    main_step = resolve_step(data, step)
    ids, rep = reports[main_step]
    miss = _miss(rep, miss_p, target_miss, lo)
    summary = {
        "vipcore_version": _version(),
        "source": data.source,
        "n_rows": data.n_rows,
        "n_clipped": data.n_clipped,
        "input": _input_dict(data),
        "steps": data.step_labels,
        "step": main_step,
        "settings": {**rep.settings, "miss_p": miss_p, "target_miss": target_miss},
        "buckets": list(BUCKETS),
        "report": _report_dict(rep),
        "miss": miss,
        "per_step": ([{"step": s, **_report_dict(reports[s][1])} for s in labels]
                     if data.steps is not None else None),
        "transitions": _transitions(reports, labels) if data.steps is not None
        else [],
        "warnings": _warnings(data, ids, rep, miss),
    }
    return summary, reports


def _transitions(reports, labels) -> list[dict[str, Any]]:
    pairs = list(zip(labels[:-1], labels[1:], strict=True))
    if len(labels) > 2:
        pairs.append((labels[0], labels[-1]))
    return [_transition(reports, a, b) for a, b in pairs]


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


# --------------------------------------------------------------------------
# The per-prompt table


def prompt_table(
    ids: list,
    report: SweepReport,
    *,
    step: Any = None,
    texts: dict | None = None,
    level: float = 0.95,
) -> list[dict[str, Any]]:
    r"""One row per prompt: metrics, bucket and the posterior estimate of ``p``.

    Keys: ``prompt_id``, ``step`` (when given), ``k`` (rollouts), ``mean``,
    ``std``, ``best``, ``worst``, ``pass_rate``, ``bucket``, ``p_hat``,
    ``p_lo``, ``p_hi`` and ``text`` (when ``texts`` maps ids to prompt text).
    ``p_hat`` is the posterior mean under Jeffreys' ``Beta(1/2, 1/2)`` prior
    with ``s = pass_rate * k`` successes, and ``[p_lo, p_hi]`` the
    equal-tailed credible interval at ``level`` (see
    :func:`~vipcore._src.sweep.posterior.posterior_p`):

    .. math::

        \hat p = \frac{s + 1/2}{k + 1}.

    >>> from vipcore._src.sweep.analysis import analyze
    >>> rows = prompt_table(["a", "b"], analyze([[0, 0, 0, 0], [1, 0, 1, 1]]))
    >>> [(r["bucket"], r["p_hat"]) for r in rows]
    [('unlearnable', 0.1), ('signal', 0.7)]
    """
    m = report.metrics
    n = m.n.astype(np.float64)
    s = m.pass_rate * n
    whole = np.round(s)
    s = np.where(np.abs(s - whole) <= 1e-9 * np.maximum(n, 1), whole, s)
    post = posterior_p(s, n, level=level)
    cols = {"k": m.n.tolist(), "mean": m.mean.tolist(), "std": m.std.tolist(),
            "best": m.best.tolist(), "worst": m.worst.tolist(),
            "pass_rate": m.pass_rate.tolist()}
    bucket = [BUCKETS[b] for b in report.buckets.tolist()]
    p_hat, p_lo, p_hi = post.p_hat.tolist(), post.p_lo.tolist(), post.p_hi.tolist()
    rows = []
    for i, pid in enumerate(ids):
        row = {"prompt_id": pid}
        if step is not None:
            row["step"] = step
        row.update({k: v[i] for k, v in cols.items()})
        row.update(bucket=bucket[i], p_hat=p_hat[i], p_lo=p_lo[i], p_hi=p_hi[i])
        if texts is not None:
            row["text"] = texts.get(pid)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------
# Text


def _pct(x: float | None) -> str:
    return "  –  " if x is None else f"{100 * x:5.1f}%"


def _fmt_head(summary: dict[str, Any]) -> list[str]:
    st, inp = summary["settings"], summary["input"]
    lines = [f"vipcore sweep: {summary['source']}: {summary['n_rows']} rollouts"
             + (f", {len(summary['steps'])} steps" if summary["steps"] else "")]
    cols = inp.get("columns")
    if cols:
        lines.append("columns: " + ", ".join(f"{k} = {v}" for k, v in cols.items()
                                             if v is not None))
    if inp.get("reward_range"):
        lo, hi = inp["reward_range"]
        lines.append(f"rewards rescaled from [{lo:g}, {hi:g}] to [0, 1]: "
                     f"{inp['rescaling']}")
    kind = next((nm for nm, v in THRESHOLDS.items() if v == (st["lo"], st["hi"])),
                "custom")
    lines.append(
        f"thresholds: {kind} (unlearnable: pass rate <= {st['lo']:g}, trivial: "
        f">= {st['hi']:g}); pass rate = {st['pass_rate']}")
    if st.get("graded"):
        lines.append(f"graded scores: signal needs a score std >= {st['min_std']:g} "
                     "(prompts whose scores barely vary are 'flat')")
    return lines


def _fmt_per_step(summary: dict[str, Any]) -> list[str]:
    if not summary["per_step"]:
        return []
    lines = ["", "step        prompts  " + "  ".join(f"{b:>18}" for b in BUCKETS[:3])]
    for row in summary["per_step"]:
        cells = "  ".join(f"{row['counts'][b]:>9} ({_pct(row['fractions'][b])})"
                          for b in BUCKETS[:3])
        lines.append(f"{row['step']!s:<10}{row['n_prompts']:>9}  {cells}")
    return lines


def _fmt_report(summary: dict[str, Any]) -> list[str]:
    r = summary["report"]
    k = r["rollouts"]
    kdesc = f"K = {k['min_k']}" if k["min_k"] == k["max_k"] else (
        f"K = {k['min_k']}..{k['max_k']}")
    head = f"step {summary['step']}: " if summary["step"] is not None else ""
    lines = ["", f"{head}{r['n_prompts']} prompts, {kdesc} rollouts each"]
    n = r["n_prompts"]
    for b in BUCKETS:
        c = r["counts"][b]
        if b in ("flat", "single") and not c:
            continue
        lines.append(f"  {b:<12} {c:>8}  {_pct(c / n if n else None)}")
    hv = r["high_variance"]
    lines.append(f"  high variance (var > {hv['threshold']:g}, 0 < mean < 1): "
                 f"{hv['count']} ({_pct(hv['fraction']).strip()})")
    p = r["potential"]
    if p["n_prompts"]:
        rel = "n/a" if p["relative"] is None else f"{100 * p['relative']:.1f}%"
        lines.append(f"improvement potential: mean {p['current']:.3f} -> best-of-K "
                     f"{p['best_of_k']:.3f}: +{p['gain']:.3f} ({rel} relative)")
    z = r["frac_reward_zero_std"]
    lines.append(
        f"frac_reward_zero_std at G = {z['group_size']}: all prompts "
        f"{_pct(z['all_prompts']).strip()}, signal bucket only "
        f"{_pct(z['signal_prompts']).strip()} (share of training groups with zero "
        "reward std, i.e. no gradient)")
    return lines + _fmt_miss(summary)


def _fmt_miss(summary: dict[str, Any]) -> list[str]:
    m = summary["miss"]
    if not m:
        return []
    lines = [f"miss probability: a prompt with true pass rate {m['p']:g} shows no "
             f"pass in K = {m['k']} rollouts with probability "
             f"{m['probability_no_pass']:.3f}; K >= {m['k_needed']} keeps it "
             f"<= {m['target']:g}"]
    lo = summary["settings"]["lo"]
    if lo > 0:
        lines.append(f"  with lo = {lo:g} it looks unlearnable (pass rate <= lo) "
                     f"with probability {m['probability_unlearnable']:.3f}")
    return lines


def _fmt_advice(summary: dict[str, Any]) -> list[str]:
    a = summary["report"]["advice"]
    mult = a["compute_multiplier"]
    shown = "n/a" if mult is None else (
        f"{mult[0]}" if mult[0] == mult[1] else f"{mult[0]}-{mult[1]}")
    return ["", f"advice ({a['level']}): compute multiplier {shown}"] + [
        f"  {msg}" for msg in a["messages"] if not msg.startswith("WARNING")]


def _fmt_transitions(summary: dict[str, Any]) -> list[str]:
    lines = []
    for t in summary["transitions"]:
        lines += ["", f"transitions step {t['from']} -> {t['to']} ({t['n_common']} "
                  "prompts in both):"]
        mat = t["matrix"]
        used = [i for i in range(len(BUCKETS))
                if any(mat[i]) or any(row[i] for row in mat)]
        lines.append("  from \\ to    " + "".join(f"{BUCKETS[j]:>13}" for j in used))
        lines += [f"  {BUCKETS[i]:<12}" + "".join(f"{mat[i][j]:>13}" for j in used)
                  for i in used]
    return lines


def format_summary(summary: dict[str, Any]) -> str:
    """The terminal report of a :func:`summarize` dict."""
    lines = (_fmt_head(summary) + _fmt_per_step(summary) + _fmt_report(summary)
             + _fmt_advice(summary) + _fmt_transitions(summary))
    if summary["warnings"]:
        lines += ["", "warnings:"] + [f"  - {w.removeprefix('WARNING: ')}"
                                      for w in summary["warnings"]]
    return "\n".join(lines)

