"""Render the sweep plots at 100, 10^4 and 10^6 prompts, to look at them.

Synthetic binary sweeps (K = 16; 30 % of prompts always fail or always pass,
the rest with a Beta(0.6, 0.6) pass rate; a second "step" with pass rates
raised by 0.2) and graded ones (the same rates plus normal noise of sd
0.15, clipped), from ``numpy.random.default_rng(0)``. Writes
``variance_N.png``, ``variance_graded_N.png``, ``hist_N.png`` and
``trans_N.png`` into the directory given.

Run: ``python benchmarks/plot_sweep_scaling.py OUT_DIR``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vipcore import sweep  # noqa: E402


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for n in (100, 10_000, 1_000_000):
        p = np.where(rng.random(n) < 0.3, rng.integers(0, 2, n) * 1.0,
                     rng.beta(0.6, 0.6, n))
        s = (rng.random((n, 16)) < p[:, None]).astype(float)
        rep = sweep.analyze(s)
        sweep.plot_variance(rep.metrics, rep.buckets, out / f"variance_{n}.png")
        sweep.plot_pass_rate_hist(rep.metrics, out / f"hist_{n}.png", lo=0, hi=1)
        later = (rng.random((n, 16)) < np.clip(p + 0.2, 0, 1)[:, None]).astype(float)
        rep2 = sweep.analyze(later)
        sweep.plot_transitions([0, 100], [rep.counts, rep2.counts],
                               sweep.bucket_transitions(rep.buckets, rep2.buckets),
                               out / f"trans_{n}.png", first=0, last=100)
        graded = np.clip(p[:, None] + rng.normal(0, 0.15, (n, 16)), 0, 1)
        repg = sweep.analyze(graded)
        sweep.plot_variance(repg.metrics, repg.buckets,
                            out / f"variance_graded_{n}.png")
        print(f"{n} prompts: done", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
