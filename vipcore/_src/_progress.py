"""A plain-text progress bar on a stream (no tqdm, no global state)."""

from __future__ import annotations

import math
import time

__all__ = ["Progress"]


class Progress:
    """``label [#####.....] done/total unit pct rate ETA`` redrawn in place.

    Args:
      label: the word in front (``"sweep"``, ``"embed"``).
      total: the number of units of work.
      done: units already done (a resumed job).
      stream: where to draw (``None`` or ``enabled=False``: draw nothing).
      unit: the name of one unit (``"evals"``, ``"texts"``).
      every: seconds between redraws.
    """

    def __init__(self, label: str, total: int, done: int, stream, enabled: bool,
                 *, unit: str = "evals", every: float = 0.2):
        self.label, self.total, self.done, self.stream = label, total, done, stream
        self.enabled = enabled and stream is not None
        self.every, self.unit = every, unit
        self.t0 = time.perf_counter()
        self.start_done = done
        self.last = -math.inf

    def update(self, n: int = 1, *, force: bool = False) -> None:
        """Count ``n`` more units done and redraw (at most every ``every`` s)."""
        self.done += n
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last < self.every:
            return
        self.last = now
        frac = self.done / self.total if self.total else 1.0
        width = 30
        fill = int(round(width * frac))
        rate = (self.done - self.start_done) / max(now - self.t0, 1e-9)
        left = (self.total - self.done) / rate if rate > 0 else math.inf
        eta = "?" if not math.isfinite(left) else time.strftime(
            "%H:%M:%S", time.gmtime(left))
        self.stream.write(
            f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] "
            f"{self.done}/{self.total} {self.unit} {100 * frac:5.1f}% "
            f"{rate:6.1f}/s ETA {eta}")
        self.stream.flush()

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self.enabled:
            self.update(0, force=True)
            self.stream.write("\n")
            self.stream.flush()
