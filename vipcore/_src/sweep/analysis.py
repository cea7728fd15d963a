r"""Pre-flight variance sweep: which prompts can teach a GRPO trainer anything?

Sources: the variance-plot method of "Variance-Based RL Sample Selection"
(run the base model a few times per sample, keep the samples that sometimes
pass; best-of-K potential; compute-multiplier advice) and the GRPO
reward-variance analysis "60% of your dataset is doing the work" (buckets,
the miss probability ``(1 - p)^K``, the recommended ``K = 16``).

For every prompt the base policy is run ``K``
times and each rollout scored in ``[0, 1]`` (binary or graded). From the
scores this module computes per-prompt metrics, sorts prompts into buckets,
and summarises what that means for training: improvement potential,
compute-multiplier advice, the chance the sweep itself misses a rare success,
and the expected fraction of zero-variance groups at the training group size
(TRL's ``frac_reward_zero_std``).

Why NumPy and not JAX
---------------------
This module is I/O plus segmented reductions over *ragged* data (``K`` may
differ per prompt, prompts arrive as rows of a file). NumPy's
``ufunc.reduceat`` does each reduction in one pass over the flat score array
with no padding and no compilation; a JAX version would either pad to
``max K`` and pay a compile per distinct shape, or use
``jax.ops.segment_sum`` with a recompile per number of prompts. At the sizes
that matter (10^6 rollouts) all reductions together take well under 0.1 s in
NumPy, two orders of magnitude below the cost of parsing the file, so JAX
could not make the sweep faster, only slower to start. Results are therefore
NumPy arrays (``float64``; inputs of any real dtype are promoted).

Conventions
-----------
* **Ragged layout.** ``scores`` is one flat array with each prompt's ``n_i``
  scores stored contiguously, and ``counts[i] = n_i``. A ``(prompts, K)``
  matrix or a list of per-prompt lists is accepted too.
* **Variance** is the population variance (divisor ``n``, ``np.var``), as
  in the variance-plot method; ``std`` is its square root.
* **Pass rate.** By default the pass rate is the *mean score* (the
  reward-variance analysis's
  ``sum(rewards) / len(rewards)``, which it applies to graded rewards too).
  With ``pass_threshold=t`` it is the fraction of scores ``>= t``. For binary
  ``{0, 1}`` scores both conventions agree for every ``t`` in ``(0, 1]``.
* **Buckets** (first rule that applies):

  1. ``single``: fewer than 2 rollouts. One score says nothing about spread;
     such prompts are reported, never silently bucketed.
  2. ``unlearnable``: ``pass_rate <= lo``.
  3. ``trivial``: ``pass_rate >= hi``.
  4. ``flat``: ``lo < pass_rate < hi`` but the scores barely vary: their
     std is below ``min_std`` (all scores equal when ``min_std = 0``). Only
     graded scores can do this (every rollout scores 0.5, or 0.50/0.55):
     the GRPO advantage is zero or mostly grader noise, so such a prompt is
     *not* signal.
  5. ``signal``: everything else: ``lo < pass_rate < hi`` with spread.

  **Graded rewards.** :func:`analyze` uses ``min_std = 0.1`` when some score
  is neither 0 nor 1 (the variance-plot method's high-variance threshold,
  variance 0.01, as a standard deviation) and ``min_std = 0`` for binary
  scores, where any disagreement is a full-size reward difference (so binary
  buckets never depend on it). Under GRPO's std-normalised advantage a tiny
  spread is scaled up to unit-size advantages, i.e. noise is amplified;
  under Dr. GRPO and RLOO it gives a gradient proportional to the spread.

  Hard thresholds are ``lo=0, hi=1`` (``pass_rate == 0`` / ``== 1``), soft
  ones ``lo=0.05, hi=0.95`` (the bucket rules use ``<=``/``>=``; the
  reward-variance analysis writes
  ``<``/``>``, which differs only for pass rates exactly on a threshold).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from vipcore._src.variance import zero_variance_probability

__all__ = [
    "BUCKETS",
    "THRESHOLDS",
    "PromptMetrics",
    "Potential",
    "Advice",
    "ZeroStd",
    "SweepReport",
    "as_ragged",
    "prompt_metrics",
    "assign_buckets",
    "bucket_counts",
    "high_variance",
    "improvement_potential",
    "advise",
    "miss_probability",
    "rollouts_for_miss_rate",
    "zero_std_probability",
    "frac_reward_zero_std",
    "bucket_transitions",
    "analyze",
]

#: Bucket names; :func:`assign_buckets` returns indices into this tuple.
BUCKETS = ("unlearnable", "signal", "trivial", "flat", "single")
UNLEARNABLE, SIGNAL, TRIVIAL, FLAT, SINGLE = range(5)

#: The default ``min_std`` for graded scores (``sqrt`` of the variance-plot
#: method's high-variance threshold 0.01).
GRADED_MIN_STD = 0.1

#: Named threshold pairs ``(lo, hi)``.
THRESHOLDS = {"hard": (0.0, 1.0), "soft": (0.05, 0.95)}


class PromptMetrics(NamedTuple):
    """Per-prompt statistics of a sweep (all arrays have one entry per prompt).

    Attributes:
      n: rollouts per prompt (``int64``).
      mean: mean score.
      best: highest score (best-of-``n``).
      worst: lowest score.
      var: population variance (divisor ``n``).
      std: ``sqrt(var)``.
      pass_rate: mean score, or the fraction of scores ``>= pass_threshold``
        when one was given.
    """

    n: np.ndarray
    mean: np.ndarray
    best: np.ndarray
    worst: np.ndarray
    var: np.ndarray
    std: np.ndarray
    pass_rate: np.ndarray


class Potential(NamedTuple):
    """Best-of-K improvement potential (the variance-plot method).

    Attributes:
      current: mean over prompts of the per-prompt mean score.
      best_of_k: mean over prompts of the per-prompt best score.
      gain: ``best_of_k - current`` (absolute).
      relative: ``gain / current`` (NaN when ``current == 0``).
      n_prompts: prompts included (those with at least 2 rollouts).
    """

    current: float
    best_of_k: float
    gain: float
    relative: float
    n_prompts: int


class Advice(NamedTuple):
    """Interpretation and compute-multiplier advice (the variance-plot method).

    Attributes:
      signal_fraction: fraction of bucketed prompts in ``signal``.
      level: ``"too_little"`` (< 10 %), ``"low"`` (10-15 %), ``"healthy"``
        (15-30 %) or ``"high"`` (> 30 %).
      multiplier: recommended compute-multiplier range ``(low, high)``, or
        None below 10 % signal, where more exploration will not fix the data.
      messages: human-readable interpretation and warnings, one per line.
    """

    signal_fraction: float
    level: str
    multiplier: tuple[int, int] | None
    messages: tuple[str, ...]


class ZeroStd(NamedTuple):
    """Expected zero-variance groups at training group size ``G``.

    Attributes:
      per_prompt: estimated ``P(all G rewards of the group are equal)``.
      mean: mean of ``per_prompt`` over the prompts considered: the expected
        ``frac_reward_zero_std`` of a training batch drawn from them.
      group_size: ``G``.
      unbiased: True when every prompt had ``n >= G`` rollouts, so the exact
        U-statistic was used (see :func:`frac_reward_zero_std`).
    """

    per_prompt: np.ndarray
    mean: float
    group_size: int
    unbiased: bool


class SweepReport(NamedTuple):
    """Everything :func:`analyze` computes for one sweep.

    Attributes:
      metrics: per-prompt :class:`PromptMetrics`.
      buckets: per-prompt bucket index into :data:`BUCKETS` (``int8``).
      counts: prompts per bucket name (all of :data:`BUCKETS`, summing to the
        number of prompts).
      high_variance: the variance-plot method's filter ``var > variance_threshold and
        0 < mean < 1`` (boolean per prompt).
      potential: :class:`Potential` over prompts with at least 2 rollouts.
      zero_std_all: :class:`ZeroStd` over all prompts with at least 2 rollouts
        (training on the whole data set).
      zero_std_signal: :class:`ZeroStd` over the ``signal`` prompts only
        (training on the filtered data set); ``mean`` is NaN if there are none.
      advice: :class:`Advice`.
      settings: the thresholds and options used (JSON-serialisable).
    """

    metrics: PromptMetrics
    buckets: np.ndarray
    counts: dict[str, int]
    high_variance: np.ndarray
    potential: Potential
    zero_std_all: ZeroStd
    zero_std_signal: ZeroStd
    advice: Advice
    settings: dict[str, Any]


# --------------------------------------------------------------------------
# Input normalisation


def _check_unit_interval(name: str, flat: np.ndarray, counts: np.ndarray) -> None:
    bad = ~((flat >= 0) & (flat <= 1))  # also catches NaN
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        prompt = int(np.searchsorted(np.cumsum(counts), i, side="right"))
        start = int(np.sum(counts[:prompt]))
        raise ValueError(
            f"{name} must be numbers in [0, 1]; got {float(flat[i])!r} "
            f"(prompt {prompt}, rollout {i - start})"
        )


def as_ragged(
    scores: Any, *, counts: Any = None, check: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Normalise scores to the flat ragged layout ``(flat, counts)``.

    Args:
      scores: a ``(prompts, K)`` matrix, a sequence of per-prompt score
        sequences (``K`` may differ), or a flat array when ``counts`` is given.
        Booleans count as 1 (pass) and 0 (fail).
      counts: rollouts per prompt for a flat ``scores``; must be ``>= 1`` and
        sum to ``len(scores)``.
      check: raise ``ValueError`` unless every score is a number in [0, 1].

    Returns:
      ``(flat, counts)``: ``float64`` scores, prompt by prompt, and ``int64``
      counts.

    >>> flat, counts = as_ragged([[1, 0], [1, 1, 0]])
    >>> flat.tolist(), counts.tolist()
    ([1.0, 0.0, 1.0, 1.0, 0.0], [2, 3])
    """
    if counts is not None:
        flat = _float_array("scores", scores)
        if flat.ndim != 1:
            raise ValueError(
                f"scores must be 1-D when counts is given; got shape {flat.shape}"
            )
        c = np.asarray(counts)
        if c.ndim != 1 or not (c.dtype.kind in "iu" or c.size == 0):
            raise ValueError("counts must be a 1-D integer array")
        c = c.astype(np.int64)
        if c.size and c.min() < 1:
            raise ValueError(f"counts must be >= 1; got {int(c.min())}")
        if int(c.sum()) != flat.size:
            raise ValueError(
                f"counts must sum to len(scores) = {flat.size}; got {int(c.sum())}"
            )
    else:
        try:
            arr = np.asarray(scores)
        except (TypeError, ValueError):
            arr = None  # ragged lists: handled below
        if arr is not None and arr.dtype == object and arr.ndim == 1:
            arr = None  # a sequence of per-prompt arrays of different lengths
        if arr is not None:
            if arr.dtype.kind not in "biuf":
                raise ValueError(f"scores must be numeric; got dtype {arr.dtype}")
            arr = arr.astype(np.float64)
            if arr.ndim == 2:
                if arr.shape[1] < 1:
                    raise ValueError(
                        "scores must have at least one rollout per prompt"
                    )
                flat = arr.reshape(-1)
                c = np.full(arr.shape[0], arr.shape[1], dtype=np.int64)
            elif arr.ndim == 1 and arr.size == 0:
                flat, c = arr, np.zeros(0, dtype=np.int64)
            elif arr.ndim == 1:
                raise ValueError(
                    "1-D scores need counts= (rollouts per prompt); or pass a "
                    "(prompts, K) matrix or a list of per-prompt lists"
                )
            else:
                raise ValueError(
                    f"scores must be a (prompts, K) matrix or a list of "
                    f"per-prompt lists; got an array of shape {arr.shape}"
                )
        else:
            rows = [_float_array(f"scores[{i}]", r) for i, r in enumerate(scores)]
            for i, r in enumerate(rows):
                if r.ndim != 1 or r.size == 0:
                    raise ValueError(
                        f"scores[{i}] must be a non-empty 1-D list of scores"
                    )
            c = np.array([r.size for r in rows], dtype=np.int64)
            flat = np.concatenate(rows) if rows else np.zeros(0)
    if check:
        _check_unit_interval("scores", flat, c)
    return flat, c


def _float_array(name: str, x: Any) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be array-like of numbers: {err}") from None
    if arr.dtype.kind not in "biuf":  # booleans are pass/fail: 1/0
        raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


# --------------------------------------------------------------------------
# Metrics and buckets


def prompt_metrics(
    scores: Any,
    *,
    counts: Any = None,
    pass_threshold: float | None = None,
) -> PromptMetrics:
    r"""Per-prompt mean, best, worst, population variance, std and pass rate.

    For prompt ``i`` with scores ``s_{i1..in}``:

    .. math::

        \bar s_i = \frac1n\sum_j s_{ij},\quad
        \mathrm{var}_i = \frac1n\sum_j (s_{ij}-\bar s_i)^2,\quad
        \mathrm{pass}_i = \begin{cases}\bar s_i & \text{default}\\
          \frac1n\#\{j: s_{ij}\ge t\} & \text{pass\_threshold}=t.\end{cases}

    Args:
      scores: see :func:`as_ragged` (matrix, ragged lists, or flat + counts).
      counts: rollouts per prompt for flat ``scores``.
      pass_threshold: None for pass rate = mean score; a number ``t`` in
        ``(0, 1]`` for the fraction of scores ``>= t``.

    Returns:
      :class:`PromptMetrics`; the variance uses two passes (no cancellation).

    >>> m = prompt_metrics([[1, 0, 1, 0], [1, 1, 1, 1]])
    >>> m.mean.tolist(), m.var.tolist(), m.best.tolist()
    ([0.5, 1.0], [0.25, 0.0], [1.0, 1.0])
    """
    flat, c = as_ragged(scores, counts=counts)
    if pass_threshold is not None and not 0 < pass_threshold <= 1:
        raise ValueError(f"pass_threshold must lie in (0, 1]; got {pass_threshold}")
    if c.size == 0:
        z = np.zeros(0)
        return PromptMetrics(c, z, z, z, z, z, z)
    starts = np.concatenate([[0], np.cumsum(c)[:-1]])
    nf = c.astype(np.float64)
    mean = np.add.reduceat(flat, starts) / nf
    dev = flat - np.repeat(mean, c)
    var = np.add.reduceat(dev * dev, starts) / nf
    best = np.maximum.reduceat(flat, starts)
    worst = np.minimum.reduceat(flat, starts)
    # rounding can leave a tiny variance for equal scores; equal means zero.
    var = np.where(best == worst, 0.0, var)
    if pass_threshold is None:
        pass_rate = np.clip(mean, worst, best)
    else:
        passed = (flat >= pass_threshold).astype(np.float64)
        pass_rate = np.add.reduceat(passed, starts) / nf
    return PromptMetrics(c, mean, best, worst, var, np.sqrt(var), pass_rate)


def _check_thresholds(lo: float, hi: float) -> None:
    if not (0 <= lo < hi <= 1):
        raise ValueError(
            f"thresholds must satisfy 0 <= lo < hi <= 1; got lo={lo}, hi={hi}"
        )


def _check_min_std(min_std: float) -> None:
    if not (isinstance(min_std, int | float | np.floating) and 0 <= min_std <= 0.5):
        raise ValueError(f"min_std must be a number in [0, 0.5]; got {min_std!r}")


def assign_buckets(
    metrics: PromptMetrics, *, lo: float = 0.0, hi: float = 1.0,
    min_std: float = 0.0,
) -> np.ndarray:
    """Bucket index per prompt (into :data:`BUCKETS`), rules in the module doc.

    ``single`` (n < 2), then ``unlearnable`` (pass rate <= lo), ``trivial``
    (>= hi), ``flat`` (all scores equal, or std < ``min_std``), else
    ``signal``. Raising ``lo`` or lowering ``hi`` only moves prompts out of
    ``signal``/``flat`` into the neighbouring bucket; never between
    ``unlearnable`` and ``trivial``. Raising ``min_std`` only moves prompts
    from ``signal`` to ``flat``.

    >>> m = prompt_metrics([[0, 0], [0, 1], [1, 1], [0.5, 0.5], [1], [.5, .6]])
    >>> [BUCKETS[b] for b in assign_buckets(m, min_std=0.1)]
    ['unlearnable', 'signal', 'trivial', 'flat', 'single', 'flat']
    """
    _check_thresholds(lo, hi)
    _check_min_std(min_std)
    p = metrics.pass_rate
    out = np.full(p.shape, SIGNAL, dtype=np.int8)
    # a relative 1e-9 keeps a spread of exactly min_std (0.5, 0.7) out of flat
    out[(metrics.best == metrics.worst) | (metrics.std < min_std * (1 - 1e-9))] = FLAT
    out[p >= hi] = TRIVIAL
    out[p <= lo] = UNLEARNABLE
    out[metrics.n < 2] = SINGLE
    return out


def bucket_counts(buckets: np.ndarray) -> dict[str, int]:
    """Prompts per bucket name (every name of :data:`BUCKETS`, zeros included)."""
    c = np.bincount(np.asarray(buckets, dtype=np.int64), minlength=len(BUCKETS))
    return {name: int(c[i]) for i, name in enumerate(BUCKETS)}


def high_variance(metrics: PromptMetrics, *, threshold: float = 0.01) -> np.ndarray:
    """Seed 000's filter: ``var > threshold and 0 < mean < 1`` (boolean mask).

    Prompts with a single rollout have zero variance and never pass.
    """
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0; got {threshold}")
    m = metrics
    return (m.var > threshold) & (m.mean > 0) & (m.mean < 1) & (m.n >= 2)


def improvement_potential(
    metrics: PromptMetrics, *, mask: np.ndarray | None = None
) -> Potential:
    r"""Best-of-K improvement potential (the variance-plot method).

    .. math::

        \text{current} = \frac1P\sum_i \bar s_i,\quad
        \text{best} = \frac1P\sum_i \max_j s_{ij},\quad
        \text{gain} = \text{best} - \text{current},\quad
        \text{relative} = \text{gain} / \text{current}.

    The best of ``K`` grows with ``K`` (for binary scores it is the empirical
    pass@K), so compare potentials only at equal ``K``. ``mask`` selects the
    prompts (default: those with at least 2 rollouts).
    """
    if mask is None:
        mask = metrics.n >= 2
    n = int(np.count_nonzero(mask))
    if n == 0:
        nan = float("nan")
        return Potential(nan, nan, nan, nan, 0)
    cur = float(np.mean(metrics.mean[mask]))
    best = float(np.mean(metrics.best[mask]))
    gain = best - cur
    rel = gain / cur if cur > 0 else float("nan")
    return Potential(cur, best, gain, rel, n)


def advise(
    counts: dict[str, int],
    *,
    potential: Potential | None = None,
    low_potential: float = 0.05,
    min_std: float = 0.0,
) -> Advice:
    """Interpretation and compute-multiplier advice from the bucket counts.

    Seed 000's rules on the fraction ``f`` of bucketed prompts (all but
    ``single``) that carry signal:

    * ``f < 10 %``: warning, the data set is too hard (most prompts
      unlearnable) or too easy (most trivial); no multiplier is advised,
      because more exploration cannot create signal that is not there;
    * ``10 % <= f < 15 %``: low, compute multiplier 2-4;
    * ``15 % <= f <= 30 %``: healthy, multiplier 1-2;
    * ``f > 30 %``: high, multiplier 1.

    Best-of-K ≈ mean (absolute ``gain < low_potential``) is flagged as low
    improvement potential. With ``min_std > 0`` (graded scores) a message
    says how many prompts were set aside as ``flat`` for barely varying.
    """
    n = sum(v for k, v in counts.items() if k != "single")
    f = counts["signal"] / n if n else float("nan")
    msgs = []
    of = f" of {n} bucketed prompts" if counts.get("single") else ""
    if not n:
        level, mult = "too_little", None
        msgs.append("no prompt has 2 or more rollouts: nothing can be bucketed")
    elif f < 0.10:
        level, mult = "too_little", None
        side = (
            "too hard (most prompts are unlearnable)"
            if counts["unlearnable"] >= counts["trivial"]
            else "too easy (most prompts are trivial)"
        )
        msgs.append(
            f"WARNING: only {100 * f:.1f}% of prompts{of} carry signal (< 10%): the "
            f"data set looks {side}. A larger compute multiplier will not fix "
            "this; change the data or the reward (the variance-plot method)."
        )
    elif f < 0.15:
        level, mult = "low", (2, 4)
        msgs.append(
            f"{100 * f:.1f}% signal{of} (10-15%): low; use compute multiplier 2-4 "
            "for more exploration."
        )
    elif f <= 0.30:
        level, mult = "healthy", (1, 2)
        msgs.append(
            f"{100 * f:.1f}% signal{of} (15-30%): healthy; compute multiplier 1-2."
        )
    else:
        level, mult = "high", (1, 1)
        msgs.append(
            f"{100 * f:.1f}% signal{of} (> 30%): plenty of learning signal; "
            "compute multiplier 1 may suffice."
        )
    if n and counts["signal"] < n:
        dead = 1 - f
        msgs.append(
            f"{100 * dead:.1f}% of prompts give zero gradient now; training on "
            "the signal bucket only saves that share of rollouts (re-run the "
            "sweep during training: buckets move)."
        )
    if min_std > 0 and counts.get("flat"):
        msgs.append(
            f"graded rewards: {counts['flat']} prompt(s) whose scores barely vary "
            f"(std < {min_std:g}) count as 'flat', not signal: under GRPO's "
            "std-normalised advantage their small differences (often grader "
            "noise) become unit-size advantages; under Dr. GRPO / RLOO they "
            "give little gradient.")
    if potential is not None and potential.n_prompts:
        if potential.gain < low_potential:
            msgs.append(
                f"WARNING: best-of-K ≈ mean (gain {potential.gain:.3f} < "
                f"{low_potential}): the model is very consistent; low improvement "
                "potential."
            )
    return Advice(float(f), level, mult, tuple(msgs))


# --------------------------------------------------------------------------
# Estimation error of the sweep itself


def miss_probability(p: Any, k: Any, *, lo: float = 0.0) -> np.ndarray:
    r"""Probability that a prompt with true pass rate ``p`` looks unlearnable.

    With ``K`` binary rollouts the observed pass rate is ``X/K``,
    ``X ~ Binomial(K, p)``, and the prompt lands in ``unlearnable`` when
    ``X/K <= lo``. For hard thresholds (``lo = 0``) this is

    .. math::

        P(X = 0) = (1 - p)^K

    (the reward-variance analysis: ``K = 8, p = 0.05 -> 0.66``). For
    ``lo > 0`` it is the binomial
    CDF at the largest ``x`` with ``x/K <= lo`` (the same floating-point
    comparison :func:`assign_buckets` makes). By symmetry the chance of
    looking trivial is ``miss_probability(1 - p, k, lo=1 - hi)``.

    >>> round(float(miss_probability(0.05, 8)), 2)
    0.66
    """
    p = np.asarray(p, dtype=np.float64)
    if np.any(~((p >= 0) & (p <= 1))):
        raise ValueError("p must lie in [0, 1]")
    if not 0 <= lo < 1:
        raise ValueError(f"lo must lie in [0, 1); got {lo}")
    k_arr = np.asarray(k)
    if k_arr.dtype.kind not in "iu" or np.any(k_arr < 1):
        raise ValueError("k must be an integer >= 1")
    if lo == 0:
        return (1 - p) ** k_arr
    if k_arr.ndim:
        raise ValueError("k must be a scalar when lo > 0")
    kk = int(k_arr)
    out = np.zeros_like(p)
    for x in range(kk + 1):
        if x / kk <= lo:  # the comparison assign_buckets makes
            out = out + math.comb(kk, x) * p**x * (1 - p) ** (kk - x)
    return np.minimum(out, 1.0)


def rollouts_for_miss_rate(p: float, target: float = 0.05) -> int:
    r"""Smallest ``K`` with ``(1 - p)^K <= target`` (hard threshold).

    .. math::

        K = \left\lceil \frac{\ln(\text{target})}{\ln(1 - p)} \right\rceil.

    ``p = 0`` can never be seen, so it raises; ``p = 1`` needs ``K = 1``.
    Computed with logs (``log1p``) and checked in log form, so a tiny ``p``
    such as ``1e-300`` returns at once (``K`` about ``3e300``) instead of
    looping. Where one more rollout changes ``K ln(1 - p)`` by less than its
    rounding (``K`` above about ``10^15``), the result is the closed form to
    float64 precision.

    >>> rollouts_for_miss_rate(0.05, 0.05)
    59
    """
    if isinstance(p, bool) or not isinstance(p, int | float | np.number) or not (
            0 < p <= 1):
        raise ValueError(f"p must lie in (0, 1]; got {p!r}")
    if isinstance(target, bool) or not isinstance(
            target, int | float | np.number) or not 0 < target < 1:
        raise ValueError(f"target must lie in (0, 1); got {target}")
    if p == 1:
        return 1
    log_q, log_t = math.log1p(-p), math.log(target)
    ratio = log_t / log_q
    if not math.isfinite(ratio):
        raise ValueError(f"p = {p!r} is too small: K = ln(target) / ln(1 - p) "
                         "overflows a float")
    k = max(1, math.ceil(ratio))
    # guard against rounding in the logs, in log form (no pow underflow, no
    # loop that never ends when 1 - p rounds to 1): at most a few steps.
    for _ in range(4):
        if k * log_q > log_t:
            k += 1
        elif k > 1 and (k - 1) * log_q <= log_t:
            k -= 1
        else:
            break
    return k


def zero_std_probability(p: Any, g: int) -> np.ndarray:
    r"""``P(all G binary rewards are equal) = p^G + (1 - p)^G``.

    The probability that a training group of size ``G`` for a prompt with
    success probability ``p`` has zero reward std (no gradient).

    >>> float(zero_std_probability(0.5, 4))
    0.125
    """
    p = np.asarray(p, dtype=np.float64)
    if np.any(~((p >= 0) & (p <= 1))):
        raise ValueError("p must lie in [0, 1]")
    if isinstance(g, bool) or int(g) != g or g < 1:
        raise ValueError(f"g must be an integer >= 1; got {g!r}")
    return zero_variance_probability(p, g)


def frac_reward_zero_std(
    scores: Any,
    *,
    counts: Any = None,
    group_size: int = 8,
    mask: np.ndarray | None = None,
) -> ZeroStd:
    r"""Expected fraction of zero-std training groups of size ``G``.

    TRL logs ``frac_reward_zero_std``: the share of groups whose ``G``
    rewards are all equal. For a prompt whose sweep saw ``n`` scores, with
    ``m_v`` of them equal to the value ``v``, the estimate of
    ``P(G fresh rewards all equal)`` is

    .. math::

        \hat\pi = \sum_v \binom{m_v}{G} \Big/ \binom{n}{G}
        \quad (G \le n), \qquad
        \hat\pi = \sum_v (m_v / n)^G \quad (G > n).

    For ``G <= n`` this is the U-statistic: the chance that ``G`` of the ``n``
    observed scores drawn without replacement are all equal, an *unbiased*
    estimate of ``P(G i.i.d. rewards equal)`` (for binary scores,
    ``E[C(X,G)/C(n,G)] = p^G`` with ``X ~ Bin(n, p)``, so the target is
    ``p^G + (1-p)^G``). For graded scores the same formula counts exact ties
    among values, which is what a trainer's ``std == 0`` test sees; continuous
    scores with no ties give 0. For ``G > n`` the plug-in estimate is biased
    (upwards for prompts near 0 or 1) and :attr:`ZeroStd.unbiased` is False.

    Args:
      scores, counts: see :func:`as_ragged`.
      group_size: the training group size ``G`` (the reward-variance
        analysis trains with 8).
      mask: prompts to average over (default: those with ``n >= 2``).
    """
    flat, c = as_ragged(scores, counts=counts)
    if isinstance(group_size, bool) or int(group_size) != group_size or group_size < 1:
        raise ValueError(f"group_size must be an integer >= 1; got {group_size!r}")
    g = int(group_size)
    nprompt = c.size
    if mask is None:
        mask = c >= 2
    mask = np.asarray(mask, dtype=bool)
    if nprompt == 0:
        return ZeroStd(np.zeros(0), float("nan"), g, True)
    gid = np.repeat(np.arange(nprompt), c)
    order = np.lexsort((flat, gid))
    fs, gs = flat[order], gid[order]
    new = np.ones(fs.size, dtype=bool)
    new[1:] = (fs[1:] != fs[:-1]) | (gs[1:] != gs[:-1])
    run_start = np.flatnonzero(new)
    m = np.diff(np.append(run_start, fs.size)).astype(np.float64)
    run_gid = gs[run_start]
    n = c[run_gid].astype(np.float64)
    ratio = np.ones_like(m)
    exact = n >= g
    for i in range(g):  # C(m, G) / C(n, G) = prod_i (m - i) / (n - i)
        ratio = np.where(exact, ratio * np.maximum(m - i, 0) / np.maximum(n - i, 1),
                         ratio)
    ratio = np.where(exact, ratio, (m / n) ** g)
    per = np.bincount(run_gid, weights=ratio, minlength=nprompt)
    per = np.minimum(per, 1.0)
    sel = mask & (c >= 1)
    mean = float(np.mean(per[sel])) if sel.any() else float("nan")
    return ZeroStd(per, mean, g, bool(np.all(c[sel] >= g)))


# --------------------------------------------------------------------------
# Sweeps over training


def bucket_transitions(before: Any, after: Any) -> np.ndarray:
    """Transition counts between two sweeps of the same prompts.

    ``out[i, j]`` is the number of prompts in bucket ``BUCKETS[i]`` in the
    first sweep and ``BUCKETS[j]`` in the second; ``before`` and ``after`` are
    aligned bucket-index arrays (one entry per prompt, same order). Row sums
    are the first sweep's counts, column sums the second's.

    >>> bucket_transitions([0, 0, 1], [1, 0, 2])[:3, :3].tolist()
    [[1, 1, 0], [0, 0, 1], [0, 0, 0]]
    """
    a = np.asarray(before, dtype=np.int64)
    b = np.asarray(after, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"before and after must be 1-D of equal length; got {a.shape}, {b.shape}"
        )
    nb = len(BUCKETS)
    if a.size and (a.min() < 0 or a.max() >= nb or b.min() < 0 or b.max() >= nb):
        raise ValueError(f"bucket indices must lie in [0, {nb})")
    return np.bincount(a * nb + b, minlength=nb * nb).reshape(nb, nb)


# --------------------------------------------------------------------------
# One call for everything


def analyze(
    scores: Any,
    *,
    counts: Any = None,
    lo: float = 0.0,
    hi: float = 1.0,
    pass_threshold: float | None = None,
    variance_threshold: float = 0.01,
    group_size: int = 8,
    low_potential: float = 0.05,
    min_std: float | None = None,
) -> SweepReport:
    """Metrics, buckets, potential, advice and ``frac_reward_zero_std``.

    Args:
      scores, counts: see :func:`as_ragged`.
      lo, hi: bucket thresholds (:data:`THRESHOLDS`: hard ``0, 1``; soft
        ``0.05, 0.95``).
      pass_threshold: pass-rate convention (see :func:`prompt_metrics`).
      variance_threshold: the variance-plot method's high-variance filter threshold.
      group_size: training group size ``G`` for ``frac_reward_zero_std``.
      low_potential: absolute best-of-K gain below which potential is "low".
      min_std: a prompt needs a score std of at least this to be ``signal``;
        None: :data:`GRADED_MIN_STD` when some score is neither 0 nor 1,
        else 0 (see the module doc).

    >>> r = analyze([[0, 0, 0], [0, 1, 1], [1, 1, 1], [1, 0, 0]])
    >>> r.counts["signal"], r.advice.level
    (2, 'high')
    """
    _check_thresholds(lo, hi)
    flat, c = as_ragged(scores, counts=counts)
    m = prompt_metrics(flat, counts=c, pass_threshold=pass_threshold)
    graded = bool(np.any((flat != 0) & (flat != 1)))
    if min_std is None:
        min_std = GRADED_MIN_STD if graded else 0.0
    b = assign_buckets(m, lo=lo, hi=hi, min_std=min_std)
    cnt = bucket_counts(b)
    pot = improvement_potential(m)
    zs_all = frac_reward_zero_std(flat, counts=c, group_size=group_size)
    zs_sig = ZeroStd(
        zs_all.per_prompt,
        float(np.mean(zs_all.per_prompt[b == SIGNAL])) if cnt["signal"] else
        float("nan"),
        zs_all.group_size,
        bool(np.all(c[b == SIGNAL] >= group_size)),
    )
    adv = advise(cnt, potential=pot, low_potential=low_potential, min_std=min_std)
    settings = {
        "lo": lo,
        "hi": hi,
        "pass_rate": "mean" if pass_threshold is None else f">= {pass_threshold}",
        "variance_threshold": variance_threshold,
        "group_size": int(group_size),
        "low_potential": low_potential,
        "min_std": float(min_std),
        "graded": graded,
    }
    return SweepReport(
        metrics=m,
        buckets=b,
        counts=cnt,
        high_variance=high_variance(m, threshold=variance_threshold),
        potential=pot,
        zero_std_all=zs_all,
        zero_std_signal=zs_sig,
        advice=adv,
        settings=settings,
    )
