"""The one way vipcore makes a figure: a ``Figure`` on an Agg canvas.

matplotlib is imported inside these functions (so ``import vipcore`` never
loads it), and nothing here touches pyplot or the global backend: a user's
interactive matplotlib session is left exactly as it was.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["new_figure", "save_figure"]


def new_figure(width: float, height: float, *, nrows: int = 1, ncols: int = 1,
               **subplot_kw: Any):
    """``(fig, axes)``: a constrained-layout figure with a grid of axes.

    ``axes`` is a single ``Axes`` for a 1 x 1 grid, else an array, as
    ``Figure.subplots`` returns it; ``subplot_kw`` goes to ``subplots``
    (``sharex``, ``height_ratios``, ...).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **subplot_kw)


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 110) -> None:
    """Write ``fig`` as a PNG."""
    fig.savefig(path, format="png", dpi=dpi)
