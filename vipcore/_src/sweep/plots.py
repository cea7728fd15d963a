"""Plots of a pre-flight sweep (matplotlib, Agg canvas, no global state).

Figures are built with :class:`matplotlib.figure.Figure` and rendered by the
Agg canvas directly: no ``pyplot``, no backend switch, no ``rcParams``
changes, so calling these from a notebook or a trainer never alters the
caller's matplotlib setup.

* :func:`plot_variance`: the variance-plot method's plot, prompts sorted by
  pass rate then mean so the unlearnable, signal and trivial bands appear
  left to right (shaded). Up to ``max_points`` prompts each one is drawn:
  mean ± std (blue) and best score (red cross). With more, the sorted
  prompts are cut into equal bins and each bin is drawn as quantile bands
  (the median mean with the 10-90 % range of the means, the median
  mean ± std, the median best score), so the picture stays readable from 10
  to 10^6 prompts. Legends sit below the axes, never over data.
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
#: Most prompts drawn one by one in :func:`plot_variance`.
MAX_POINTS = 1500
#: Bins of the aggregated variance plot.
N_BINS = 300


def _count(n: int) -> str:
    """``1234567 -> '1.23M'``, ``12345 -> '12.3k'``, small numbers as they are."""
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if n >= div * 10 or (n >= div and unit == "M"):
            return f"{n / div:.3g}{unit}"
    return str(n)


def _bands(ax, buckets_sorted: np.ndarray, n_all: np.ndarray, x_of) -> list:
    """Shade each bucket's stretch of the sorted axis; legend handles."""
    handles = []
    for i, name in enumerate(BUCKETS):
        sel = np.flatnonzero(buckets_sorted == i)
        if sel.size:
            h = ax.axvspan(x_of(sel[0]) - 0.5, x_of(sel[-1]) + 0.5, color=COLORS[i],
                           alpha=0.12, lw=0,
                           label=f"{name} ({_count(int(n_all[i]))})")
            handles.append(h)
    return handles


def _points(ax, m: PromptMetrics, order: np.ndarray) -> list:
    x = np.arange(order.size)
    eb = ax.errorbar(x, m.mean[order], yerr=m.std[order], fmt="o",
                     ms=2.5 if order.size > 200 else 4, color="cornflowerblue",
                     elinewidth=0.8, label="mean ± std")
    sc = ax.scatter(x, m.best[order], marker="x", s=14, color="red",
                    linewidths=0.8, alpha=0.7, label="best score", zorder=3)
    return [eb, sc]


def _binned(ax, m: PromptMetrics, order: np.ndarray, n_bins: int) -> list:
    edges = np.linspace(0, order.size, n_bins + 1).round().astype(np.int64)
    xc = 0.5 * (edges[:-1] + edges[1:]) - 0.5

    def per_bin(values: np.ndarray, q: float) -> np.ndarray:
        return np.array([np.quantile(values[a:b], q)
                         for a, b in zip(edges[:-1], edges[1:], strict=True)])

    mean, std, best = m.mean[order], m.std[order], m.best[order]
    med, std_med = per_bin(mean, 0.5), per_bin(std, 0.5)
    lo, hi = per_bin(mean, 0.1), per_bin(mean, 0.9)
    h1 = ax.fill_between(xc, np.clip(med - std_med, 0, 1), np.clip(med + std_med, 0, 1),
                         color="cornflowerblue", alpha=0.25, lw=0,
                         label="median mean ± median std")
    h2 = ax.fill_between(xc, lo, hi, color="cornflowerblue", alpha=0.45, lw=0,
                         label="10-90 % of means")
    (h3,) = ax.plot(xc, med, color="navy", lw=1.2, label="median mean")
    (h4,) = ax.plot(xc, per_bin(best, 0.5), color="red", lw=1.0,
                    label="median best score")
    return [h3, h2, h1, h4]


def plot_variance(
    metrics: PromptMetrics,
    buckets: np.ndarray,
    path: str | os.PathLike,
    *,
    title: str = "Pre-flight sweep: score spread per prompt",
    max_points: int = MAX_POINTS,
    n_bins: int = N_BINS,
) -> int:
    """Per-prompt mean ± std and best score, sorted into bucket bands.

    Up to ``max_points`` prompts every prompt is drawn; above that the
    sorted prompts are cut into ``n_bins`` equal bins drawn as quantile
    bands (see the module doc), which keeps every band's relative width.
    Returns the number of prompts drawn one by one (0 when binned).
    """
    fig, drawn = variance_figure(metrics, buckets, title=title, max_points=max_points,
                                 n_bins=n_bins)
    save_figure(fig, path, dpi=100)
    return drawn


def variance_figure(metrics: PromptMetrics, buckets: np.ndarray, *,
                    title: str = "Pre-flight sweep: score spread per prompt",
                    max_points: int = MAX_POINTS, n_bins: int = N_BINS):
    """``(figure, prompts drawn one by one)`` of :func:`plot_variance`."""
    n = metrics.mean.size
    b_all = np.asarray(buckets, dtype=np.int64)
    # bands left to right: unlearnable, signal, flat, trivial, single
    band = np.array([0, 1, 3, 2, 4])[b_all]
    order = np.lexsort((metrics.mean, metrics.pass_rate, band))
    fig, ax = new_figure(10, 4.6)
    counts = np.bincount(b_all, minlength=len(BUCKETS))
    handles = _bands(ax, b_all[order], counts, lambda i: i)
    binned = n > max_points
    handles += (_binned(ax, metrics, order, min(n_bins, n)) if binned
                else _points(ax, metrics, order))
    ax.set_xlim(-1, max(n, 1))
    ax.set_ylim(-0.05, 1.05)
    how = f"; {min(n_bins, n)} bins of about {_count(round(n / n_bins))}" if binned \
        else ""
    ax.set_xlabel(f"prompts sorted by pass rate ({_count(n)} prompts{how})")
    ax.set_ylabel("score")
    ax.xaxis.set_major_formatter(lambda v, _: _count(int(v)) if v >= 0 else "")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8,
               frameon=False)
    return fig, 0 if binned else int(n)


def plot_pass_rate_hist(
    metrics: PromptMetrics,
    path: str | os.PathLike,
    *,
    lo: float,
    hi: float,
    title: str = "Per-prompt pass rate",
) -> None:
    """Histogram of pass rates, bars coloured by bucket, thresholds drawn."""
    save_figure(hist_figure(metrics, lo=lo, hi=hi, title=title), path, dpi=100)


def hist_figure(metrics: PromptMetrics, *, lo: float, hi: float,
                title: str = "Per-prompt pass rate"):
    """The figure of :func:`plot_pass_rate_hist`."""
    p = metrics.pass_rate[metrics.n >= 2]
    ks = np.unique(metrics.n[metrics.n >= 2])
    fig, ax = new_figure(7, 4.4)
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
    handles = [ax.axvline(lo, color="k", ls="--", lw=1, label=f"lo = {lo:g}"),
               ax.axvline(hi, color="k", ls=":", lw=1.2, label=f"hi = {hi:g}")]
    for i in (0, 1, 2):
        handles.append(ax.bar([np.nan], [0], color=COLORS[i], label=BUCKETS[i]))
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel("pass rate (share of a prompt's rollouts that passed)")
    ax.set_ylabel("prompts")
    ax.yaxis.set_major_formatter(lambda v, _: _count(int(v)))
    ax.set_title(f"{title}, {_count(p.size)} prompts")
    ax.grid(True, axis="y", alpha=0.3)
    fig.legend(handles=handles, loc="outside lower center", ncols=5, fontsize=8,
               frameon=False)
    return fig


def plot_transitions(
    steps: Sequence, counts: Sequence[dict], matrix: np.ndarray,
    path: str | os.PathLike, *, first: object, last: object,
) -> None:
    """Bucket shares per step and the transition matrix ``first -> last``."""
    save_figure(transitions_figure(steps, counts, matrix, first=first, last=last),
                path, dpi=100)


def transitions_figure(steps: Sequence, counts: Sequence[dict], matrix: np.ndarray,
                       *, first: object, last: object):
    """The figure of :func:`plot_transitions`."""
    fig, (ax, ax2) = new_figure(11, 4.6, ncols=2, width_ratios=(1.3, 1))
    names = [b for b in BUCKETS if any(c[b] for c in counts)]
    x = np.arange(len(steps))
    bottom = np.zeros(len(steps))
    tot = np.array([sum(c.values()) for c in counts], dtype=float)
    for name in names:
        frac = np.array([c[name] for c in counts]) / np.maximum(tot, 1)
        ax.bar(x, frac, bottom=bottom, color=COLORS[BUCKETS.index(name)],
               label=name, width=0.6)
        bottom += frac
    ax.set_xticks(x, [str(s) for s in steps])
    ax.set_xlabel("training step")
    ax.set_ylabel("share of prompts")
    ax.set_ylim(0, 1)
    ax.set_title(f"Buckets over training ({_count(int(tot.max()))} prompts)")
    fig.legend(loc="outside lower center", ncols=len(names), fontsize=8,
               frameon=False, handles=ax.get_legend_handles_labels()[0])
    idx = [BUCKETS.index(nm) for nm in names]
    m = np.asarray(matrix)[np.ix_(idx, idx)]
    ax2.imshow(m, cmap="Blues")
    for i in range(len(idx)):
        for j in range(len(idx)):
            ax2.text(j, i, _count(int(m[i, j])), ha="center", va="center",
                     fontsize=9, color="white" if m[i, j] > m.max() / 2 else "black")
    ax2.set_xticks(range(len(idx)), names, fontsize=8)
    ax2.set_yticks(range(len(idx)), names, fontsize=8)
    ax2.set_xlabel(f"bucket at step {last}")
    ax2.set_ylabel(f"bucket at step {first}")
    ax2.set_title(f"Prompts moving between buckets, step {first} -> {last}")
    return fig
