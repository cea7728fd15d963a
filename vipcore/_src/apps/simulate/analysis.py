r"""The pre-registered analysis of ``vipcore simulate`` (see ``docs/simulate.md``).

Everything is a paired comparison across seeds: seed ``s`` of every arm
shares the initial policy, the candidate prompts and the sampling keys, so
the unit of analysis is the seed and each statistic is computed per seed
first (never pooled over seeds x time points).

* **Primary metric**: a seed's mean held-out accuracy over the evaluations
  at rounds in the window (rounds 150-300 of 300).
* **Ladder fit**: ``beta``, the slope of the primary metric against
  ``ln n_bar`` over the uniform ladder (least squares on the seed means).
  An arm whose primary metric is ``Delta`` above uniform's is worth the
  **equivalent rollout multiplier** ``exp(Delta / beta)``: uniform would need
  that many times more rollouts per round for the same gain. Its 95 %
  interval comes from a paired bootstrap over seeds (``beta`` refitted in
  every resample).
* **Smallest effect of interest**: 10 % of rollouts, ``Delta_min = beta
  ln 1.1``.
* **Confirmatory tests**: the best vipcore planner (chosen on calibration
  seeds) against uniform, DAPO (its better variant on the calibration
  seeds), GRESO and MoPPS: two-sided paired t-tests, Holm-adjusted at
  family-wise level 0.05.
* **Validity gates**: the ladder must show ``n_bar = 16`` above ``n_bar = 8``
  with two-sided ``p < 0.001``; if oracle-p VIP's gain over uniform is below
  ``Delta_min``, the allocation headroom on this system is below 10 %.

p-values of Student's t use the regularised incomplete beta function in
float64 (:func:`t_pvalue`), which agrees with ``scipy.stats.t`` to ~1e-12.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vipcore._src.apps.verify.oracles import betainc as _betainc

__all__ = [
    "t_pvalue",
    "t_quantile",
    "paired_t",
    "holm",
    "primary_metric",
    "ladder_fit",
    "multiplier",
    "per_seed_log_ratio",
    "seeds_for_power",
    "paired_power",
    "choose_best",
    "ALPHA",
    "GATE_P",
    "SMALLEST_MULTIPLIER",
]

#: Family-wise level of the confirmatory tests.
ALPHA = 0.05
#: The ladder gate's level.
GATE_P = 1e-3
#: The smallest effect of interest, as a rollout multiplier.
SMALLEST_MULTIPLIER = 1.10


def t_pvalue(t: float, df: float) -> float:
    r"""Two-sided tail :math:`P(|T_{df}| \ge |t|) = I_{df/(df+t^2)}(df/2, 1/2)`.

    >>> round(t_pvalue(2.0, 10), 6)
    0.073388
    """
    if math.isnan(t) or not df > 0:
        return math.nan
    if math.isinf(t):
        return 0.0
    return _betainc(0.5 * df, 0.5, df / (df + t * t))


def t_quantile(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t (bisection on :func:`t_pvalue`)."""
    if not 0 < q < 1:
        raise ValueError(f"q must lie in (0, 1); got {q}")
    if q == 0.5:
        return 0.0
    tail = 2 * min(q, 1 - q)  # two-sided tail of |t|
    lo, hi = 0.0, 1.0
    while t_pvalue(hi, df) > tail:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_pvalue(mid, df) > tail:
            lo = mid
        else:
            hi = mid
    t = 0.5 * (lo + hi)
    return t if q > 0.5 else -t


def paired_t(diff: np.ndarray) -> dict[str, float]:
    """Mean, standard error, t, df and two-sided p of per-seed differences.

    NaN entries are dropped; fewer than two seeds give NaN statistics.
    """
    d = np.asarray(diff, np.float64)
    d = d[np.isfinite(d)]
    n = int(d.size)
    out = {"mean": float(d.mean()) if n else math.nan, "se": math.nan,
           "t": math.nan, "df": float(n - 1), "p": math.nan, "n": n}
    if n < 2:
        return out
    se = float(d.std(ddof=1) / math.sqrt(n))
    out["se"] = se
    if se == 0:
        out["p"] = math.nan if out["mean"] == 0 else 0.0
        return out
    out["t"] = out["mean"] / se
    out["p"] = t_pvalue(out["t"], n - 1)
    return out


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN, never rejects).

    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, np.float64)
    m = int(np.isfinite(p).sum())
    order = [i for i in np.argsort(np.where(np.isfinite(p), p, np.inf))
             if np.isfinite(p[i])]
    adj = np.full(p.shape, math.nan)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return [float(round(x, 15)) if np.isfinite(x) else math.nan for x in adj]


def primary_metric(accuracy: np.ndarray, eval_steps: list[int],
                   window: tuple[int, int]) -> np.ndarray:
    """Per seed, the mean held-out accuracy over evaluations in ``window``."""
    t = np.asarray(eval_steps)
    sel = (t >= window[0]) & (t <= window[1])
    if not sel.any():
        raise ValueError(f"no evaluation falls in the window {window}")
    return np.asarray(accuracy, np.float64)[:, sel].mean(axis=1)


def ladder_fit(metric: dict[int, np.ndarray]) -> dict[str, Any]:
    r"""``beta``: least-squares slope of the seed-mean metric on ``ln n``.

    .. math::

        \beta = \frac{\sum_k (x_k - \bar x)(\bar y_k - \bar y)}
                     {\sum_k (x_k - \bar x)^2}, \qquad x_k = \ln n_k,

    with ``y_k`` the per-seed primary metric of ladder arm ``n_k``
    (equivalently the slope after removing each seed's mean: the design is
    paired). Needs at least two rungs.
    """
    ks = sorted(metric)
    if len(ks) < 2:
        raise ValueError(f"the ladder needs at least two rungs; got {ks}")
    x = np.log(np.asarray(ks, np.float64))
    y = np.stack([np.asarray(metric[k], np.float64) for k in ks])  # (K, S)
    ybar = y.mean(axis=1)
    xc = x - x.mean()
    beta = float(np.sum(xc * (ybar - ybar.mean())) / np.sum(xc * xc))
    resid = ybar - (ybar.mean() + beta * xc)
    return {"beta": beta, "rungs": ks, "means": ybar.tolist(),
            "residuals": resid.tolist()}


def multiplier(delta: np.ndarray, ladder: dict[int, np.ndarray], *,
               resamples: int = 2000, seed: int = 0) -> dict[str, float]:
    """``exp(mean(delta) / beta)`` and its paired-bootstrap 95 % interval.

    ``delta`` holds per-seed differences of the primary metric; ``ladder``
    the per-seed metric of each ladder rung (same seeds). Each resample
    draws seeds with replacement and refits ``beta``; resamples with
    ``beta <= 0`` count as undefined (reported as a fraction).
    """
    d = np.asarray(delta, np.float64)
    s = d.size
    beta = ladder_fit(ladder)["beta"]
    point = math.exp(d.mean() / beta) if beta > 0 else math.nan
    rng = np.random.default_rng(seed)
    draws = []
    bad = 0
    for _ in range(resamples):
        idx = rng.integers(0, s, s)
        b = ladder_fit({k: np.asarray(v)[idx] for k, v in ladder.items()})["beta"]
        if b <= 0:
            bad += 1
            continue
        draws.append(math.exp(d[idx].mean() / b))
    lo, hi = (np.percentile(draws, [2.5, 97.5]).tolist() if draws
              else (math.nan, math.nan))
    return {"multiplier": point, "low": lo, "high": hi, "beta": beta,
            "undefined_share": bad / resamples}


def per_seed_log_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Per seed, the mean over time of ``log(num / den)`` (finite, positive
    pairs only): the unit for tests of a variance ratio."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    ok = (num > 0) & (den > 0) & np.isfinite(num) & np.isfinite(den)
    lr = np.where(ok, np.log(np.where(ok, num, 1) / np.where(ok, den, 1)), 0)
    cnt = ok.sum(axis=-1)
    return np.where(cnt > 0, lr.sum(axis=-1) / np.maximum(cnt, 1), np.nan)


def paired_power(n: int, delta: float, sd: float, alpha: float) -> float:
    r"""Power of the two-sided paired t-test with ``n`` seeds (shifted-t
    approximation of the noncentral t):

    .. math::

        1 - \beta \approx P\bigl(T_{n-1} > t_{1-\alpha/2, n-1}
            - \delta\sqrt n / \sigma\bigr).
    """
    df = n - 1
    crit = t_quantile(1 - alpha / 2, df)
    shift = delta * math.sqrt(n) / sd
    return _t_cdf(shift - crit, df) + _t_cdf(-shift - crit, df)


def _t_cdf(t: float, df: float) -> float:
    p = 0.5 * t_pvalue(t, df)
    return 1 - p if t > 0 else p


def seeds_for_power(delta: float, sd: float, *, alpha: float, power: float = 0.8
                    ) -> int:
    """The smallest number of paired seeds reaching ``power``."""
    if not (delta > 0 and sd > 0):
        raise ValueError(f"need delta > 0 and sd > 0; got {delta}, {sd}")
    n = 3
    while paired_power(n, delta, sd, alpha) < power:
        n += 1
    return n


def choose_best(metric: dict[str, np.ndarray], candidates: list[str]
                ) -> str | None:
    """The candidate with the highest mean metric (ties: earlier in the list)."""
    best, score = None, -math.inf
    for name in candidates:
        if name in metric:
            m = float(np.mean(metric[name]))
            if m > score:
                best, score = name, m
    return best
