"""``report.md``, ``results.json`` and the plots of ``vipcore simulate``.

The report follows the pre-registered protocol of ``docs/simulate.md``:
validity gates, the confirmatory tests (Holm-adjusted), the equivalent
rollout multipliers, then the secondary and diagnostic metrics, each
computed per seed before any test across seeds. A ``--quick`` run says that
it is a smoke test; a run whose best planner was not chosen on calibration
seeds says that its comparisons are exploratory.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from vipcore._src._files import atomic_write_text
from vipcore._src._plotting import new_figure, save_figure
from vipcore._src._serialize import jsonable
from vipcore._src.apps.simulate import analysis as an
from vipcore._src.apps.simulate.summary import arm_metrics, summarize

__all__ = ["summarize", "write_report", "paired_t"]

paired_t = an.paired_t


def _fmt(x, nd=3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def _label(results, m) -> str:
    return results["arms"][m]["label"] if m in results["arms"] else m


def _band(ax, x, a, label, color=None, ls="-"):
    """Mean and 95 % confidence band over seeds."""
    mu = a.mean(0)
    half = 1.96 * a.std(0, ddof=1) / math.sqrt(a.shape[0]) if a.shape[0] > 1 \
        else np.zeros_like(mu)
    line, = ax.plot(x, mu, label=label, color=color, ls=ls, lw=1.2)
    ax.fill_between(x, mu - half, mu + half, alpha=0.15, color=line.get_color())


def _curves(results, out: Path) -> tuple[str, str]:
    fig, axes = new_figure(12, 4.5, ncols=2)
    x = np.asarray(results["eval_steps"])
    for m, d in results["methods"].items():
        role = results["arms"][m]["role"]
        acc = np.asarray(d["accuracy"])
        if role != "ladder":
            _band(axes[0], x, acc, _label(results, m),
                  ls="--" if role in ("control", "secondary") else "-")
        if role in ("ladder", "baseline"):
            _band(axes[1], x, acc, _label(results, m))
    lo, hi = results["summary_window"]
    for ax, title in zip(axes, ("Arms at C rollouts per round", "Uniform ladder "
                                "(positive control)"), strict=True):
        ax.axvspan(lo, hi, color="0.9", zorder=0)
        ax.set_xlabel("round")
        ax.set_ylabel("held-out accuracy")
        ax.set_title(title, fontsize=10)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    save_figure(fig, out / "learning_curves.png")
    return ("learning_curves.png", "Held-out accuracy per round (mean and 95 % "
            "band over seeds; grey: the primary metric's window)")


def _multipliers(results, summ, out: Path) -> tuple[str, str] | None:
    rows = [(m, s["multiplier"]) for m, s in summ["methods"].items()
            if "multiplier" in s and math.isfinite(s["multiplier"]["multiplier"])
            and results["arms"][m]["role"] != "ladder"]
    if not rows:
        return None
    fig, ax = new_figure(7, 0.4 * len(rows) + 1.5)
    y = np.arange(len(rows))
    mid = np.array([r["multiplier"] for _, r in rows])
    lo = np.array([r["low"] for _, r in rows])
    hi = np.array([r["high"] for _, r in rows])
    ax.barh(y, mid - 1, left=1, color="C0", alpha=0.6)
    ax.errorbar(mid, y, xerr=[np.maximum(mid - lo, 0), np.maximum(hi - mid, 0)],
                fmt="none", ecolor="k", capsize=3)
    ax.axvline(1, color="k", lw=0.8)
    for v in (1 / an.SMALLEST_MULTIPLIER, an.SMALLEST_MULTIPLIER):
        ax.axvline(v, color="C3", lw=0.8, ls=":")
    ax.set_yticks(y, [_label(results, m) for m, _ in rows], fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("equivalent rollout multiplier exp(Δ/β) vs uniform "
                  "(95 % paired bootstrap)")
    save_figure(fig, out / "equivalent_rollouts.png")
    return ("equivalent_rollouts.png", "Equivalent rollouts: how many times "
            "uniform's rollouts per round give the same primary metric (dotted: "
            "±10 %, the smallest effect of interest)")


def _zero_var(results, out: Path) -> tuple[str, str]:
    fig, ax = new_figure(7, 4)
    for m, d in results["methods"].items():
        if results["arms"][m]["role"] == "ladder":
            continue
        z = np.asarray(d["zero_var"]).mean(0)
        w = max(1, len(z) // 20)
        ax.plot(np.convolve(z, np.ones(w) / w, mode="valid"), lw=1,
                label=_label(results, m))
    ax.set_xlabel("round")
    ax.set_ylabel("all-equal group share")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6)
    save_figure(fig, out / "zero_variance.png")
    return ("zero_variance.png", "Share of groups with all-equal rewards "
            "(moving average)")


def _plots(results, summ, out: Path) -> list[tuple[str, str]]:
    figs = [_curves(results, out)]
    m = _multipliers(results, summ, out)
    if m:
        figs.append(m)
    figs.append(_zero_var(results, out))
    return figs


#: Per-arm keys kept in ``results.json``; the per-round records go to
#: ``rounds.npz`` (their per-seed means stay in the JSON).
_JSON_KEYS = ("accuracy", "gradvar", "brier", "ece", "rollouts_to_target")


def _split_payload(results: dict[str, Any], out: Path) -> dict[str, Any]:
    """``results`` with the per-round arrays moved to ``out/rounds.npz``."""
    arrays, methods = {}, {}
    for m, d in results["methods"].items():
        keep = {k: d[k] for k in _JSON_KEYS if k in d}
        keep["per_seed_mean"] = {}
        for k, v in d.items():
            if k not in _JSON_KEYS:
                arrays[f"{m}.{k}"] = np.asarray(v)
                keep["per_seed_mean"][k] = np.asarray(v, np.float64).mean(axis=1)
        methods[m] = keep
    with open(out / "rounds.npz", "wb") as f:
        np.savez_compressed(f, **arrays)
    return dict(results, methods=methods)


def write_report(results: dict[str, Any], assumptions: list[dict] | None,
                 out: str | Path, *, calibration: dict[str, Any] | None = None,
                 command: str = "", device: str = "", quick: bool = False) -> Path:
    """Write ``report.md``, ``results.json``, ``rounds.npz`` and PNGs into ``out``.

    ``results.json`` holds the configuration, per arm the held-out accuracy
    curves, gradient-variance measurements, calibration scores and per-seed
    means of the per-round records, and the summary; ``rounds.npz`` the
    per-round records themselves (``"<arm>.<key>"``, seeds first).

    ``calibration``: the results of the calibration seeds, on which the best
    vipcore planner and the DAPO variant are chosen (without it the choice is
    made on the same seeds and the report calls the comparison exploratory).
    """
    from vipcore._src.apps.simulate.report_md import markdown

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summ = summarize(results, calibration=calibration)
    results = dict(results, summary_window=summ["window"])
    figs = _plots(results, summ, out)
    payload = dict(_split_payload(results, out), summary=summ, calibration=None,
                   assumptions=assumptions or [], device=device, command=command,
                   quick=quick,
                   calibration_summary=None if calibration is None else {
                       "seeds": calibration["seeds"],
                       "primary": {m: float(np.mean(v)) for m, v in
                                   arm_metrics(calibration).items()}})
    atomic_write_text(out / "results.json", json.dumps(jsonable(payload), indent=1))
    atomic_write_text(out / "report.md", markdown(
        results, summ, assumptions, figs, command=command, device=device,
        quick=quick))
    return out / "report.md"
