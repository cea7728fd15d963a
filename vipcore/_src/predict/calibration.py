r"""Calibration metrics for success-probability predictions.

Every metric takes predictions ``p_hat`` and the outcome of the rollouts,
as per-prompt ``successes`` out of ``counts`` rollouts (``counts=1`` for
single binary outcomes), and weights prompts by their rollouts, so that the
Brier score and the ECE are the usual per-rollout quantities.

* MAE against the realised success rates ``y_q = s_q / n_q`` (the paper's
  Fig. 2 metric), unweighted over prompts:
  :math:`\frac1B\sum_q |\hat p_q - y_q|`.
* Brier score over rollouts:
  :math:`\frac{\sum_q s_q (1-\hat p_q)^2 + (n_q - s_q)\hat p_q^2}{\sum_q n_q}`.
* Expected calibration error with ``n_bins`` equal-width bins of ``p_hat``:
  :math:`\sum_b \frac{N_b}{N}\,|\bar y_b - \bar p_b|`, with ``N_b`` the
  rollouts whose prediction falls in bin ``b``.

MAE, Brier and ECE do not measure what a prediction is *for*: a constant
predictor can have a worse MAE than a model and still allocate as well, and
starving one mid-range prompt costs far more than over-sampling a saturated
one. :func:`allocation_metrics` scores the allocation a prediction leads to,
at the true success probabilities ``p`` (problem (5) of Nguyen et al. (2025),
"Adaptive Rollout Allocation for Online Reinforcement Learning with
Verifiable Rewards"):

.. math::

    J(n) = \sum_q 4 p_q (1 - p_q)\, c(n_q),

for the allocation from ``p_hat``, the uniform split and the oracle
allocation (from ``p`` itself), and the *starvation rate*: the share of
mid-range prompts (``lo <= p_q <= hi``) that got only ``L`` rollouts.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from vipcore._src._checks import as_float_array, check_int, check_probabilities

__all__ = [
    "CalibrationResult",
    "ReliabilityCurve",
    "mean_absolute_error",
    "brier_score",
    "expected_calibration_error",
    "reliability_curve",
    "calibration",
    "AllocationMetrics",
    "allocation_metrics",
]


class ReliabilityCurve(NamedTuple):
    """Reliability diagram data (per bin of ``p_hat``).

    Attributes:
      bin_edges: ``(n_bins + 1,)`` equal-width edges on [0, 1].
      mean_predicted: ``(n_bins,)`` rollout-weighted mean ``p_hat`` in the bin
        (NaN for an empty bin).
      observed: ``(n_bins,)`` observed success frequency in the bin (NaN if
        empty).
      count: ``(n_bins,)`` rollouts whose prediction falls in the bin.
    """

    bin_edges: jax.Array
    mean_predicted: jax.Array
    observed: jax.Array
    count: jax.Array


class CalibrationResult(NamedTuple):
    """Summary metrics (see the module docstring for the formulas).

    Attributes:
      mae: mean absolute error against realised success rates.
      brier: per-rollout Brier score.
      ece: expected calibration error.
      n_prompts: number of prompts.
      n_rollouts: total rollouts.
    """

    mae: jax.Array
    brier: jax.Array
    ece: jax.Array
    n_prompts: int
    n_rollouts: float


def _inputs(p_hat, successes, counts):
    check_probabilities("p_hat", p_hat)
    p = as_float_array("p_hat", p_hat)
    if p.ndim != 1:
        raise ValueError(f"p_hat must be 1-D; got shape {p.shape}")
    sn = np.asarray(successes, np.float64)
    nn = np.ones(p.shape) if counts is None else np.asarray(counts, np.float64)
    for name, a in (("successes", sn), ("counts", nn)):
        if a.shape != p.shape:
            raise ValueError(f"{name} must have the shape of p_hat {p.shape}; "
                             f"got {a.shape}")
    if not (np.all(nn > 0) and np.all(sn >= 0) and np.all(sn <= nn)):
        raise ValueError("need counts > 0 and 0 <= successes <= counts")
    return p, jnp.asarray(sn, p.dtype), jnp.asarray(nn, p.dtype)


def mean_absolute_error(
    p_hat: ArrayLike, successes: ArrayLike, counts: ArrayLike | None = None
) -> jax.Array:
    """MAE of ``p_hat`` against realised rates ``successes / counts``.

    >>> round(float(mean_absolute_error([0.5, 0.2], [3, 0], [4, 4])), 6)
    0.225
    """
    p, s, n = _inputs(p_hat, successes, counts)
    return _mae(p, s, n)


@jax.jit
def _mae(p, s, n):
    return jnp.mean(jnp.abs(p - s / n))


@jax.jit
def _brier(p, s, n):
    return jnp.sum(s * (1 - p) ** 2 + (n - s) * p**2) / jnp.sum(n)


def brier_score(
    p_hat: ArrayLike, successes: ArrayLike, counts: ArrayLike | None = None
) -> jax.Array:
    """Per-rollout Brier score.

    >>> float(brier_score([0.5], [1], [2]))
    0.25
    """
    p, s, n = _inputs(p_hat, successes, counts)
    return _brier(p, s, n)


def reliability_curve(
    p_hat: ArrayLike,
    successes: ArrayLike,
    counts: ArrayLike | None = None,
    *,
    n_bins: int = 10,
) -> ReliabilityCurve:
    """Binned predicted vs. observed success frequency (rollout-weighted).

    Bin ``b`` holds ``edges[b] <= p_hat < edges[b+1]`` (the last bin includes 1).
    """
    nb = check_int("n_bins", n_bins, minimum=1)
    p, s, n = _inputs(p_hat, successes, counts)
    return _reliability(p, s, n, nb)


@functools.partial(jax.jit, static_argnums=3)
def _reliability(p, s, n, nb):
    edges = jnp.linspace(0, 1, nb + 1, dtype=p.dtype)
    b = jnp.clip(jnp.floor(p * nb).astype(jnp.int32), 0, nb - 1)
    cnt = jax.ops.segment_sum(n, b, num_segments=nb)
    ps = jax.ops.segment_sum(n * p, b, num_segments=nb)
    ss = jax.ops.segment_sum(s, b, num_segments=nb)
    safe = jnp.where(cnt > 0, cnt, 1)
    nan = jnp.asarray(jnp.nan, p.dtype)
    return ReliabilityCurve(
        edges, jnp.where(cnt > 0, ps / safe, nan), jnp.where(cnt > 0, ss / safe, nan),
        cnt,
    )


def expected_calibration_error(
    p_hat: ArrayLike,
    successes: ArrayLike,
    counts: ArrayLike | None = None,
    *,
    n_bins: int = 10,
) -> jax.Array:
    """ECE: rollout-weighted mean ``|observed - predicted|`` over bins.

    >>> float(expected_calibration_error([0.25, 0.75], [1, 3], [4, 4], n_bins=2))
    0.0
    """
    c = reliability_curve(p_hat, successes, counts, n_bins=n_bins)
    return _ece(c.count, c.observed, c.mean_predicted)


@jax.jit
def _ece(count, observed, predicted):
    gap = jnp.where(count > 0, jnp.abs(observed - predicted), 0)
    return jnp.sum(count * gap) / jnp.sum(count)


def calibration(
    p_hat: ArrayLike,
    successes: ArrayLike,
    counts: ArrayLike | None = None,
    *,
    n_bins: int = 10,
) -> CalibrationResult:
    """MAE, Brier score and ECE in one call."""
    p, s, n = _inputs(p_hat, successes, counts)
    return CalibrationResult(
        mae=mean_absolute_error(p, s, n),
        brier=brier_score(p, s, n),
        ece=expected_calibration_error(p, s, n, n_bins=n_bins),
        n_prompts=int(p.shape[0]),
        n_rollouts=float(jnp.sum(n)),
    )


def _objective(n, p, estimator) -> float:
    """``sum_q 4 p_q (1 - p_q) c(n_q)`` in float64 (0 where ``p_q`` is 0 or 1)."""
    n = np.asarray(n, np.float64)
    a = 4 * p * (1 - p)
    c = 1 / (n - 1) if estimator == "rloo" else (n - 1) / (n * n)
    return float(np.sum(np.where(a > 0, a * c, 0.0)))


class AllocationMetrics(NamedTuple):
    """The allocation a prediction leads to, scored at the true ``p``.

    Attributes:
      objective: ``J(n)`` of the allocation from ``p_hat``.
      uniform: ``J`` of the most even split of the budget.
      oracle: ``J`` of the allocation from the true ``p`` (the best possible).
      vs_uniform: ``objective / uniform`` (below 1: the prediction pays).
      vs_oracle: ``objective / oracle`` (1 at best).
      starved: starved mid-range prompts (``n_q = L`` and ``lo <= p_q <= hi``).
      mid: mid-range prompts.
      starvation_rate: ``starved / mid`` (NaN when ``mid = 0``).

    Over several rounds, sum ``objective``, ``uniform``, ``oracle``,
    ``starved`` and ``mid`` and take the ratios of the sums.
    """

    objective: float
    uniform: float
    oracle: float
    vs_uniform: float
    vs_oracle: float
    starved: int
    mid: int
    starvation_rate: float


def allocation_metrics(
    p_hat: ArrayLike,
    p_true: ArrayLike,
    budget: int,
    lower: int,
    upper: int,
    *,
    estimator: str = "rloo",
    mid: tuple[float, float] = (0.2, 0.8),
) -> AllocationMetrics:
    r"""Objective at the true ``p`` of the allocation from ``p_hat``, relative to
    uniform and to the oracle, and the starvation rate (module docstring).

    The allocations are :func:`vipcore.allocate` (from ``p_hat`` and from
    ``p_true``) and :func:`vipcore.allocate_uniform`; ``budget``, ``lower``,
    ``upper`` and ``estimator`` are theirs.

    >>> m = allocation_metrics([0.5, 0.5], [0.5, 0.02], 8, 2, 6)
    >>> round(m.vs_uniform, 4), round(m.vs_oracle, 4), m.starvation_rate
    (1.0, 1.2912, 0.0)
    """
    from vipcore._src.allocation import allocate, allocate_uniform

    check_probabilities("p_hat", p_hat)
    check_probabilities("p_true", p_true)
    ph = np.asarray(p_hat, np.float64)
    pt = np.asarray(p_true, np.float64)
    if ph.ndim != 1 or pt.shape != ph.shape:
        raise ValueError(f"p_hat and p_true must be 1-D of one shape; got "
                         f"{ph.shape} and {pt.shape}")
    lo, hi = (float(v) for v in mid)
    if not 0 <= lo <= hi <= 1:
        raise ValueError(f"mid must be (lo, hi) with 0 <= lo <= hi <= 1; got {mid}")
    runs = {
        "objective": allocate(ph, budget, lower, upper, estimator),
        "uniform": allocate_uniform(ph, budget, lower, upper),
        "oracle": allocate(pt, budget, lower, upper, estimator),
    }
    j = {k: _objective(n, pt, estimator) for k, n in runs.items()}
    is_mid = (pt >= lo) & (pt <= hi)
    starved = int(np.sum(is_mid & (runs["objective"] == int(lower))))
    n_mid = int(np.sum(is_mid))

    def ratio(a, b):
        return a / b if b > 0 else (1.0 if a == b else math.inf)

    return AllocationMetrics(
        j["objective"], j["uniform"], j["oracle"],
        ratio(j["objective"], j["uniform"]), ratio(j["objective"], j["oracle"]),
        starved, n_mid, starved / n_mid if n_mid else math.nan)
