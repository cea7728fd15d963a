"""Plots of a pre-flight sweep (matplotlib, Agg canvas, no global state).

Figures are built with :class:`matplotlib.figure.Figure` and rendered by the
Agg canvas directly: no ``pyplot``, no backend switch, no ``rcParams``
changes, so calling these from a notebook or a trainer never alters the
caller's matplotlib setup.

* :func:`plot_variance`: the variance-plot method's plot. Per-prompt mean
  ± std (blue) and
  best score (red cross), prompts sorted by pass rate then mean so the
  unlearnable, signal and trivial bands appear left to right, with the bands
  shaded.
* :func:`plot_pass_rate_hist`: the reward-variance analysis's histogram of
  per-prompt pass rates,
  one bin per attainable value ``c/K`` when ``K`` is common and small, with
  the bucket thresholds drawn.
* :func:`plot_transitions`: bucket shares per step (stacked bars) and the
  transition matrix from the first to the last step.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from vipcore._src._plotting import new_figure, save_figure
from vipcore._src.sweep.analysis import BUCKETS, PromptMetrics

__all__ = ["plot_variance", "plot_pass_rate_hist", "plot_transitions"]

#: Bucket colours (unlearnable, signal, trivial, flat, single).
COLORS = ("#d95f02", "#1b9e77", "#7570b3", "#999999", "#e7298a")
#: Most prompts drawn individually in :func:`plot_variance`.
MAX_POINTS = 1500


def plot_variance(
    metrics: PromptMetrics,
    buckets: np.ndarray,
    path: str | os.PathLike,
    *,
    title: str = "Pre-flight variance sweep",
    max_points: int = MAX_POINTS,
) -> int:
    """Per-prompt mean ± std with best score marked, sorted into bands.

    With more than ``max_points`` prompts an evenly spaced subset of the
    sorted order is drawn (the title says so), which keeps every band's
    relative width. Returns the number of prompts drawn.
    """
    n = metrics.mean.size
    # bands left to right: unlearnable, signal, flat, trivial, single
    band = np.array([0, 1, 3, 2, 4])[np.asarray(buckets, dtype=np.int64)]
    order = np.lexsort((metrics.mean, metrics.pass_rate, band))
    if n > max_points:
        order = order[np.linspace(0, n - 1, max_points).round().astype(int)]
    x = np.arange(order.size)
    fig, ax = new_figure(10, 4.2)
    b = np.asarray(buckets)[order]
    for i, name in enumerate(BUCKETS):
        sel = np.flatnonzero(b == i)
        if sel.size:
            ax.axvspan(sel[0] - 0.5, sel[-1] + 0.5, color=COLORS[i], alpha=0.10,
                       lw=0, label=f"{name} ({np.count_nonzero(buckets == i)})")
    ax.errorbar(x, metrics.mean[order], yerr=metrics.std[order], fmt="o",
                ms=2.5, color="cornflowerblue", elinewidth=0.8,
                label="mean ± std")
    ax.scatter(x, metrics.best[order], marker="x", s=14, color="red",
               linewidths=0.8, alpha=0.7, label="best score", zorder=3)
    ax.set_xlim(-1, max(order.size, 1))
    ax.set_ylim(-0.08, 1.12)
    ax.set_xlabel("prompt (sorted by pass rate)"
                  + (f"; {order.size} of {n} shown" if order.size < n else ""))
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, ncols=3, framealpha=0.9)
    save_figure(fig, path, dpi=100)
    return int(order.size)


def plot_pass_rate_hist(
    metrics: PromptMetrics,
    path: str | os.PathLike,
    *,
    lo: float,
    hi: float,
    title: str = "Per-prompt pass rate",
) -> None:
    """Histogram of pass rates with the bucket thresholds ``lo``/``hi`` drawn."""
    p = metrics.pass_rate[metrics.n >= 2]
    ks = np.unique(metrics.n[metrics.n >= 2])
    fig, ax = new_figure(7, 4.2)
    if ks.size == 1 and ks[0] <= 64:
        k = int(ks[0])
        edges = (np.arange(k + 2) - 0.5) / k  # one bin per c/K
    else:
        edges = np.linspace(0, 1, 21)
    counts, edges = np.histogram(p, bins=edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    colour = np.where(centres <= lo, COLORS[0],
                      np.where(centres >= hi, COLORS[2], COLORS[1]))
    ax.bar(centres, counts, width=np.diff(edges) * 0.9, color=colour)
    for v, name in ((lo, "lo"), (hi, "hi")):
        ax.axvline(v, color="k", ls="--", lw=1)
        ax.text(v, ax.get_ylim()[1] * 0.97, f" {name}={v:g}", va="top",
                ha="left" if v < 0.5 else "right", fontsize=8)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel("pass rate")
    ax.set_ylabel("prompts")
    ax.set_title(f"{title} ({p.size} prompts)")
    ax.grid(True, axis="y", alpha=0.3)
    save_figure(fig, path, dpi=100)


def plot_transitions(
    steps: Sequence, counts: Sequence[dict], matrix: np.ndarray,
    path: str | os.PathLike, *, first: object, last: object,
) -> None:
    """Bucket shares per step and the transition matrix ``first -> last``."""
    fig, (ax, ax2) = new_figure(11, 4.2, ncols=2, width_ratios=(1.4, 1))
    names = [b for b in BUCKETS if any(c[b] for c in counts)]
    x = np.arange(len(steps))
    bottom = np.zeros(len(steps))
    for name in names:
        tot = np.array([sum(c.values()) for c in counts], dtype=float)
        frac = np.array([c[name] for c in counts]) / np.maximum(tot, 1)
        ax.bar(x, frac, bottom=bottom, color=COLORS[BUCKETS.index(name)],
               label=name, width=0.6)
        bottom += frac
    ax.set_xticks(x, [str(s) for s in steps])
    ax.set_xlabel("step")
    ax.set_ylabel("share of prompts")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("Buckets over training")
    idx = [BUCKETS.index(nm) for nm in names]
    m = np.asarray(matrix)[np.ix_(idx, idx)]
    ax2.imshow(m, cmap="Blues")
    for i in range(len(idx)):
        for j in range(len(idx)):
            ax2.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=9,
                     color="white" if m[i, j] > m.max() / 2 else "black")
    ax2.set_xticks(range(len(idx)), names, fontsize=8)
    ax2.set_yticks(range(len(idx)), names, fontsize=8)
    ax2.set_xlabel(f"bucket at step {last}")
    ax2.set_ylabel(f"bucket at step {first}")
    ax2.set_title(f"Transitions {first} -> {last}")
    save_figure(fig, path, dpi=100)
