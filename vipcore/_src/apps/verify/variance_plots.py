"""Figures of the variance section of ``vipcore verify``.

``variance_vs_n.png``: simulated ``Var(G)`` against Props 4.2/4.3 over the
group size, with each cell's z-score below; ``allocation_variance.png``: the
batch's total gradient variance under each allocator, and the allocations.
Both are built with :mod:`vipcore._src._plotting` (no pyplot).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from vipcore._src._plotting import new_figure, save_figure
from vipcore._src.variance import variance_factor

__all__ = ["plot_grid", "plot_allocation"]

_NAMES = {"drgrpo": "Dr. GRPO", "rloo": "RLOO"}
_FORMULA = {"drgrpo": "Var(G) = (n-1)/n² · 4p(1-p)", "rloo": "Var(G) = 4p(1-p)/(n-1)"}


def _colors(rows: list[dict]) -> dict[float, str]:
    low = sorted({min(r["p"], round(1 - r["p"], 10)) for r in rows})
    return {p: f"C{i}" for i, p in enumerate(low)}


def _variance_panel(ax, rows: list[dict], est: str, colors: dict) -> None:
    ns = np.array(sorted({r["n"] for r in rows}), float)
    nn = np.linspace(ns.min(), ns.max(), 200)
    for p0, color in colors.items():
        th = np.asarray(variance_factor(nn, est)) * 4 * p0 * (1 - p0)
        label = f"p = {p0:g}" + (f" and {1 - p0:g}" if p0 < 0.5 else "")
        ax.plot(nn, th, color=color, lw=1, label=label)
        for r in rows:
            if r["estimator"] != est or not math.isclose(
                    min(r["p"], round(1 - r["p"], 10)), p0):
                continue
            upper = r["p"] > 0.5
            ax.errorbar([r["n"] * (1.03 if upper else 1)], [r["empirical"]],
                        yerr=[2 * r["stderr"]], fmt="s" if upper else "o", ms=4,
                        mfc="none" if upper else color, color=color, capsize=2,
                        lw=0.8)
    ax.set(xscale="log", yscale="log", title=f"{_NAMES[est]}: {_FORMULA[est]}",
           ylabel="gradient variance Var(G)")


def _z_panel(ax, rows: list[dict], est: str, colors: dict, zstar: float) -> None:
    for r in rows:
        if r["estimator"] == est:
            upper = r["p"] > 0.5
            c = colors[min(r["p"], round(1 - r["p"], 10))]
            ax.plot(r["n"] * (1.03 if upper else 1), r["z"], "s" if upper else "o",
                    ms=4, color=c, mfc="none" if upper else c)
    for y in (-zstar, zstar):
        ax.axhline(y, color="k", ls="--", lw=0.8)
    ax.axhline(0, color="0.6", lw=0.6)
    ns = sorted({r["n"] for r in rows})
    ax.set_ylim(-1.15 * zstar, 1.15 * zstar)
    ax.set_xticks(ns, [str(int(v)) for v in ns])
    ax.set_xticks([], minor=True)
    ax.set(xlabel="rollouts per prompt n", ylabel="z-score")


def plot_grid(out: Path, rows: list[dict], zstar: float) -> tuple[str, str]:
    """``variance_vs_n.png``; returns ``(file name, caption)``."""
    fig, grid = new_figure(10, 7, nrows=2, ncols=2, sharex=True,
                           height_ratios=[3, 1.3])
    grid[0][1].sharey(grid[0][0])
    colors = _colors(rows)
    for col, est in enumerate(("drgrpo", "rloo")):
        _variance_panel(grid[0][col], rows, est, colors)
        _z_panel(grid[1][col], rows, est, colors, zstar)
    handles, labels = grid[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels),
               fontsize=8, title="theory (lines) and simulation ± 2 s.e. "
               "(filled: p, open: 1 - p); dashed: ± Bonferroni threshold",
               title_fontsize=8)
    fig.suptitle("Simulated gradient variance vs Props 4.2/4.3 (σ_Z² = 1, ±1 "
                 "rewards)")
    fname = "variance_vs_n.png"
    save_figure(fig, out / fname)
    return fname, (
        "Top: simulated Var(G) (markers, ± 2 s.e.; filled p, open 1-p) against "
        "Props 4.2/4.3 (lines) over n, for several p. Bottom: each cell's "
        "z-score (log scale) and the Bonferroni threshold (dashed)."
    )


def plot_allocation(out: Path, totals: dict, p: np.ndarray) -> tuple[str, str]:
    """``allocation_variance.png``; returns ``(file name, caption)``."""
    fig, axes = new_figure(11, 8, nrows=2, ncols=2)
    for col, est in enumerate(("drgrpo", "rloo")):
        names = [k[1] for k in totals if k[0] == est]
        ax = axes[0, col]
        x = np.arange(len(names))
        ax.bar(x - 0.2, [totals[(est, nm)][0] for nm in names], width=0.4,
               label="theory", color="C0")
        ax.bar(x + 0.2, [totals[(est, nm)][1] for nm in names], width=0.4,
               yerr=[2 * totals[(est, nm)][2] for nm in names], capsize=3,
               label="simulation ± 2 s.e.", color="C1")
        ax.set_xticks(x, [nm.replace(", ", "\n") for nm in names], fontsize=7)
        ax.set(ylabel="total gradient variance Σ_q Var(G_q)",
               title=f"{_NAMES[est]}: total gradient variance at budget C")
        ax.legend(fontsize=7, loc="upper left")
        ax = axes[1, col]
        for i, nm in enumerate(n for n in names if "hetero" not in n):
            ax.plot(p, totals[(est, nm)][3] + 0.08 * (i - 1.5), "o-", ms=3, lw=0.8,
                    label=nm)
        ax.set(xlabel="success probability p",
               ylabel="rollouts n_q (offset ±0.1 for visibility)",
               title=f"{_NAMES[est]}: rollouts per prompt")
    handles, labels = axes[1, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels),
               fontsize=8)
    fig.suptitle("VIP vs heuristic allocators on a 16-prompt batch (same budget)")
    fname = "allocation_variance.png"
    save_figure(fig, out / fname)
    return fname, (
        "Top: total gradient variance of a mixed-p batch under VIP and the "
        "heuristic allocators at the same budget C (theory vs simulation). "
        "Bottom: the allocations."
    )
