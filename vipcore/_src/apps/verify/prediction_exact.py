r"""Exact rows of the prediction section: the predictors against dense oracles.

No Monte Carlo: each row runs a function a user calls
(:func:`vipcore.gp.median_bandwidth`, :func:`vipcore.gp.init` and
:func:`vipcore.gp.update` with their defaults, the moving-average and ridge
baselines of :mod:`vipcore.predictors`, the pooled predictor
``vipcore.predict.pooled``, the metrics of :mod:`vipcore.calibration`) on a
small instance and compares it with an oracle written here in float64 NumPy
from the definition, by a different route (explicit pairwise differences
and a dense solve, Python lists of observations, loops over bins):

.. math::

    h = \operatorname{median}_{i<j} \lVert x_i - x_j \rVert, \qquad
    m_{B^c} \leftarrow m_{B^c} + K_{B^c B}(K_{BB} + \delta I)^{-1}
        (\hat g_B - m_B), \quad m_B \leftarrow \hat g_B,

with ``delta = sqrt(eps_dtype)`` (Algorithm 1 and §5.1 of Nguyen et al.
(2025), "Adaptive Rollout Allocation for Online Reinforcement Learning with
Verifiable Rewards"); the moving average of each prompt's last ``w``
observations, closed-form ridge regression with an intercept on centred
embeddings clipped to ``[0, 1]``, the pooled mean
``(w_0 p_0 + sum lambda^(T-t) n y) / (w_0 + sum lambda^(T-t) n)`` and MAE,
Brier score, ECE and reliability curve on success rates (the Fig. 2 metrics).

The GP instance places two prompts of the batch close together
(``lambda_min(K_BB)`` about ``1e-3``), so that the jitter ``delta`` moves the
posterior mean by far more than the row's tolerance in float32 and float64;
negative controls show that the oracle without the jitter is rejected.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from vipcore._src.apps.verify.exact import F32_TOL, F64_TOL, Worst, exact_check
from vipcore._src.apps.verify.report import Check
from vipcore._src.predict import calibration as cal
from vipcore._src.predict import gp
from vipcore._src.predict.baselines import (
    moving_average_init,
    moving_average_predict,
    moving_average_update,
    ridge_init,
    ridge_predict,
    ridge_update,
)
from vipcore._src.predict.beta import pooled_predictor
from vipcore._src.predict.registry import get_predictor

__all__ = ["exact_rows", "gp_instance", "ridge_instance", "oracle_median_bandwidth",
           "oracle_gp_update",
           "oracle_moving_average", "oracle_ridge", "oracle_metrics",
           "oracle_pooled"]

# --------------------------------------------------------------------------
# Oracles (float64 NumPy; nothing here calls the library)
# --------------------------------------------------------------------------


def _distances(x: np.ndarray) -> np.ndarray:
    diff = x[:, None, :] - x[None, :, :]
    return np.sqrt(np.sum(diff * diff, axis=-1))


def oracle_median_bandwidth(x) -> float:
    """Median of the ``Q (Q - 1) / 2`` pairwise Euclidean distances."""
    x = np.asarray(x, np.float64)
    i, j = np.triu_indices(x.shape[0], 1)
    return float(np.median(_distances(x)[i, j]))


def _pool(idx, obs, weights):
    """``{prompt: (weighted mean observation, total weight)}`` of one batch."""
    out = {}
    for i, y, w in zip(idx, obs, weights, strict=True):
        if w > 0:
            s, n = out.get(int(i), (0.0, 0.0))
            out[int(i)] = (s + w * y, n + w)
    return {i: (s / n, n) for i, (s, n) in out.items()}


def oracle_gp_update(x, prior_mean, idx, obs, weights, *, bandwidth, jitter,
                     eps=1e-2, binomial=False) -> np.ndarray:
    """One step of Algorithm 1 with the full ``Q x Q`` kernel (dense solve).

    ``binomial=True``: the empirical-logit noise variance
    ``1/(s + 1/2) + 1/(n - s + 1/2)`` joins the diagonal and every prompt,
    observed ones included, gets the posterior mean.
    """
    x = np.asarray(x, np.float64)
    m = np.asarray(prior_mean, np.float64) * np.ones(x.shape[0])
    k = np.exp(-_distances(x) ** 2 / (2 * bandwidth * bandwidth))
    pooled = _pool(idx, obs, weights)
    b = np.array(sorted(pooled))
    y = np.array([pooled[i][0] for i in b])
    n = np.array([pooled[i][1] for i in b])
    yc = np.clip(y, eps, 1 - eps)
    g = np.log(yc / (1 - yc))
    a = k[np.ix_(b, b)] + jitter * np.eye(len(b))
    if binomial:
        a += np.diag(1 / (y * n + 0.5) + 1 / (n - y * n + 0.5))
    new = m + k[:, b] @ np.linalg.solve(a, g - m[b])
    if not binomial:
        new[b] = g
    return new


def oracle_moving_average(batches, num_prompts, window, prior=0.5) -> np.ndarray:
    """Each prompt's last ``window`` pooled observations, kept in a list; a
    prompt never observed gets the weighted mean of the latest batch."""
    hist = {q: [] for q in range(num_prompts)}
    fallback = prior
    for idx, obs, w in batches:
        for i, (y, _) in _pool(idx, obs, w).items():
            hist[i].append(y)
        fallback = float(np.sum(np.asarray(w) * obs) / np.sum(w))
    return np.array([np.mean(h[-window:]) if h else fallback
                     for h in hist.values()])


def oracle_ridge(x, batches, capacity, lam) -> tuple[np.ndarray, np.ndarray]:
    """Ridge with an intercept on the last ``capacity`` pooled observations
    (one per prompt and batch): ``(clipped, unclipped)`` predictions."""
    x = np.asarray(x, np.float64)
    stream = []
    for idx, obs, w in batches:
        stream += sorted(_pool(idx, obs, w).items())
    keep = stream[-capacity:]
    xs = x[[i for i, _ in keep]]
    ys = np.array([y for _, (y, _) in keep])
    xm, ym = xs.mean(0), ys.mean()
    xc, yc = xs - xm, ys - ym
    coef = np.linalg.solve(xc.T @ xc + lam * np.eye(x.shape[1]), xc.T @ yc)
    raw = x @ coef + (ym - xm @ coef)
    return np.clip(raw, 0, 1), raw


def oracle_metrics(p, s, n, n_bins) -> dict:
    """MAE on rates, per-rollout Brier score, reliability curve and ECE."""
    p, s, n = (np.asarray(a, np.float64) for a in (p, s, n))
    out = {"mae": float(np.mean(np.abs(p - s / n))),
           "brier": float(sum(si * (1 - pi) ** 2 + (ni - si) * pi ** 2
                              for pi, si, ni in zip(p, s, n, strict=True))
                          / np.sum(n))}
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    cnt, pred, obs = np.zeros(n_bins), np.full(n_bins, np.nan), np.full(n_bins,
                                                                        np.nan)
    for b in range(n_bins):
        top = p <= 1 if b == n_bins - 1 else p < edges[b + 1]
        inb = (p >= edges[b]) & top
        cnt[b] = np.sum(n[inb])
        if cnt[b] > 0:
            pred[b] = np.sum(n[inb] * p[inb]) / cnt[b]
            obs[b] = np.sum(s[inb]) / cnt[b]
    full = cnt > 0
    out.update(count=cnt, mean_predicted=pred, observed=obs,
               ece=float(np.sum(cnt[full] * np.abs(obs[full] - pred[full]))
                         / np.sum(cnt)))
    return out


def oracle_pooled(batches, discount, prior, prior_weight) -> float:
    """``(w0 p0 + sum_t lambda^(T-t) sum n y) / (w0 + sum_t lambda^(T-t) sum n)``."""
    t_now = len(batches)
    num, den = prior_weight * prior, prior_weight
    for t, (_, obs, w) in enumerate(batches, start=1):
        f = discount ** (t_now - t)
        num += f * float(np.sum(np.asarray(w) * obs))
        den += f * float(np.sum(w))
    return num / den


# --------------------------------------------------------------------------
# Instances and rows
# --------------------------------------------------------------------------


def gp_instance(seed: int = 3, separation: float = 0.3):
    """``(x, idx, obs, weights)``: Q = 42 prompts in d = 5 (861 pairs, an odd
    count, so the median is one distance), a batch of 14 with one repeated
    prompt, and batch members ``idx[0]`` and ``idx[1]`` at distance
    ``separation`` (about 0.1 h: ``K_BB`` nearly singular)."""
    rng = np.random.default_rng(seed)
    q, d, b = 42, 5, 14
    x = rng.normal(size=(q, d))
    idx = rng.choice(q, b, replace=False)
    u = rng.normal(size=d)
    x[idx[1]] = x[idx[0]] + separation * u / np.linalg.norm(u)
    idx = np.append(idx, idx[5])  # a repeat, pooled with its weights
    obs = rng.integers(1, 8, b + 1) / 8
    weights = rng.integers(4, 13, b + 1).astype(np.float64)
    return x, idx, obs, weights


def _gp_tolerance(x, idx, h, delta, eps_dtype) -> float:
    """``10 cond(K_BB + delta I) eps_dtype`` (backward-stable solve), at least
    the float64 tolerance."""
    b = np.unique(idx)
    k = np.exp(-_distances(np.asarray(x, np.float64)[b]) ** 2 / (2 * h * h))
    return max(10 * np.linalg.cond(k + delta * np.eye(len(b))) * eps_dtype, F64_TOL)


def _scaled(lib, ref, case) -> Worst:
    """Errors relative to ``max |ref|`` (latent means cross zero)."""
    w = Worst(floor=float(np.max(np.abs(ref))))
    w.add(lib, ref, case)
    return w


def _gp_rows(dtype, x64: bool) -> list[Check]:
    """Default bandwidth and jitter: one positive row and the no-jitter control."""
    x, idx, obs, w = gp_instance()
    name = np.dtype(dtype).name
    x = x.astype(dtype)
    eps_dt = float(np.finfo(dtype).eps)
    delta = math.sqrt(eps_dt)
    h = oracle_median_bandwidth(x)
    with jax.enable_x64(x64):
        st = gp.update(gp.init(x), idx, obs, weights=w, latent_bound=None)
        got = np.asarray(st.mean, np.float64)
    args = (x, 0.0, idx, obs, w)
    ref = oracle_gp_update(*args, bandwidth=h, jitter=delta)
    bad = oracle_gp_update(*args, bandwidth=h, jitter=0.0)
    tol = _gp_tolerance(x, idx, h, delta, eps_dt)
    return [
        exact_check(f"gp.update with the default bandwidth and jitter == dense "
                    f"Algorithm 1 ({name}, near-duplicate prompts in the batch)",
                    _scaled(got, ref, f"delta = {delta:.3g}, h = {h:.4g}"), tol,
                    note="tolerance 10 cond(K_BB + delta I) eps"),
        exact_check(f"negative control: the oracle without the jitter is "
                    f"rejected ({name})", _scaled(got, bad, "delta = 0"), tol,
                    negative=True),
    ]


def _median_rows() -> list[Check]:
    """``median_bandwidth`` in float64 and float32 on three scales (``h``
    from about 0.6 to 14, so that ``h`` and ``h^2`` differ)."""
    rows = []
    for dtype, x64, tol in ((np.float64, True, F64_TOL), (np.float32, False, F32_TOL)):
        rng = np.random.default_rng(11)
        w = Worst()
        for scale in (0.2, 1.0, 5.0):  # Q = 31: 465 pairs, an odd number
            x = (rng.normal(size=(31, 4)) * scale + 3.0).astype(dtype)
            with jax.enable_x64(x64):
                lib = gp.median_bandwidth(x)
            w.add(lib, oracle_median_bandwidth(x), f"scale {scale}")
        rows.append(exact_check(
            f"median_bandwidth == median of pairwise distances "
            f"({np.dtype(dtype).name})", w, tol))
    return rows


def _batches(rng, q, steps, size, unique=False):
    """``steps`` batches of ``size`` entries (rates in eighths, rollout counts
    as weights) with one repeated prompt each, pooled by the predictors."""
    out = []
    for _ in range(steps):
        idx = rng.choice(q, size - 1, replace=not unique)
        idx = np.append(idx, idx[0])
        obs = rng.integers(0, 9, size) / 8
        out.append((idx, obs, rng.integers(1, 9, size).astype(np.float64)))
    return out


def _moving_average_row() -> Check:
    """Window 3 after 12 batches of 6 over 5 prompts (each seen > 3 times) and
    a never-observed sixth prompt."""
    rng = np.random.default_rng(5)
    batches = _batches(rng, 5, 12, 6)
    w = Worst()
    with jax.enable_x64(True):
        st = moving_average_init(6, window=3, dtype=jnp.float64)
        for idx, obs, wt in batches:
            st = moving_average_update(st, idx, obs, weights=wt)
        got = moving_average_predict(st, np.arange(6))
    w.add(got, oracle_moving_average(batches, 6, 3), "window 3, 12 batches")
    return exact_check("moving average == mean of each prompt's last w "
                       "observations (list oracle)", w, F64_TOL)


def ridge_instance(seed: int = 9):
    """Embeddings off-centre (mean about 1.5, so the intercept correction
    matters), steep rates in eighths, 5 batches of 8 distinct prompts (one
    repeated entry each), capacity 16 (the last two batches)."""
    rng = np.random.default_rng(seed)
    q, d = 30, 4
    x = rng.normal(size=(q, d)) + 1.5
    beta = rng.normal(size=d)
    rate = np.clip(np.round(8 * (0.5 + 0.35 * (x - 1.5) @ beta)) / 8, 0, 1)
    batches = []
    for _ in range(5):
        idx = rng.choice(q, 8, replace=False)
        idx = np.append(idx, idx[3])
        batches.append((idx, rate[idx], rng.integers(1, 9, 9).astype(np.float64)))
    return x, batches


def _ridge_rows() -> list[Check]:
    x, batches = ridge_instance()
    cap, lam = 16, 4.0
    with jax.enable_x64(True):
        st = ridge_init(x, capacity=cap, lam=lam)
        for idx, obs, wt in batches:
            st = ridge_update(st, idx, obs, weights=wt)
        got = np.asarray(ridge_predict(st, np.arange(x.shape[0])), np.float64)
    ref, raw = oracle_ridge(x, batches, cap, lam)
    weak, _ = oracle_ridge(x, batches, cap, 1e-6)
    outside = int(np.sum((raw < 0) | (raw > 1)))
    return [
        exact_check(f"ridge == closed-form ridge with intercept, clipped to "
                    f"[0, 1] (lambda = {lam:g}, capacity {cap}; {outside} of "
                    f"{raw.size} raw predictions outside [0, 1])",
                    _scaled(got, ref, "all prompts"), F64_TOL),
        exact_check("negative control: the oracle without the penalty is "
                    "rejected", _scaled(got, weak, "lambda = 1e-6"), F64_TOL,
                    negative=True),
    ]


def _metrics_row() -> Check:
    """MAE, Brier, ECE and the reliability curve on 40 prompts with 1 to 16
    rollouts each, predictions including 0 and 1, 10 and 7 bins."""
    rng = np.random.default_rng(13)
    p = np.concatenate([rng.uniform(size=38), [0.0, 1.0]])
    n = rng.integers(1, 17, p.size).astype(np.float64)
    s = rng.binomial(n.astype(int), rng.uniform(size=p.size)).astype(np.float64)
    w = Worst()
    with jax.enable_x64(True):
        for nb in (10, 7):
            ref = oracle_metrics(p, s, n, nb)
            curve = cal.reliability_curve(p, s, n, n_bins=nb)
            full = ref["count"] > 0
            w.add(cal.mean_absolute_error(p, s, n), ref["mae"], "MAE")
            w.add(cal.brier_score(p, s, n), ref["brier"], "Brier")
            w.add(cal.expected_calibration_error(p, s, n, n_bins=nb), ref["ece"],
                  f"ECE, {nb} bins")
            w.add(curve.count, ref["count"], f"bin counts, {nb} bins")
            for key in ("mean_predicted", "observed"):
                lib = np.asarray(getattr(curve, key))
                w.add(np.where(full, lib, 0.0), np.where(full, ref[key], 0.0),
                      f"{key}, {nb} bins")
                w.add(np.isnan(lib), ~full, f"empty bins, {nb} bins")
    return exact_check("calibration metrics (MAE, Brier, ECE, reliability "
                       "curve) == their definitions on rates", w, F64_TOL)


def _pooled_row() -> Check:
    """``pooled(discount=0.7, prior=0.3, prior_weight=5)`` after 4 batches."""
    rng = np.random.default_rng(17)
    batches = _batches(rng, 10, 4, 7)
    lam, p0, w0 = 0.7, 0.3, 5.0
    with jax.enable_x64(True):
        pred = pooled_predictor(discount=lam, prior=p0, prior_weight=w0)
        st = pred.init(10, None)
        for idx, obs, wt in batches:
            st = pred.update(st, jnp.asarray(idx, jnp.int32), jnp.asarray(obs),
                             jnp.asarray(wt))
        got = np.asarray(pred.predict(st, jnp.arange(10)))
    w = Worst()
    w.add(got, np.full(10, oracle_pooled(batches, lam, p0, w0)), "4 batches")
    return exact_check(f"pooled predictor == discounted pooled mean (prior "
                       f"weight w0 = {w0:g}, p0 = {p0:g}, lambda = {lam:g})",
                       w, F64_TOL)


def _binomial_row() -> Check:
    """``noise="binomial"`` with the default bandwidth and jitter (float64),
    through :func:`vipcore.gp.update` and the registered ``gp_binomial``
    predictor (the Planner's path)."""
    x, idx, obs, w = gp_instance()
    with jax.enable_x64(True):
        st = gp.update(gp.init(x), idx, obs, weights=w, noise="binomial")
        pred = get_predictor("gp_binomial").factory()
        ps = pred.update(pred.init(x.shape[0], x), jnp.asarray(idx, jnp.int32),
                         jnp.asarray(obs), jnp.asarray(w))
        got, got_pred = np.asarray(st.mean), np.asarray(ps.mean)
    h = oracle_median_bandwidth(x)
    ref = oracle_gp_update(x, 0.0, idx, obs, w, bandwidth=h,
                           jitter=math.sqrt(np.finfo(np.float64).eps),
                           binomial=True)
    worst = _scaled(got, ref, "gp.update")
    worst.add(got_pred, ref, "predictor 'gp_binomial'")
    return exact_check("GP with binomial noise (gp.update and the 'gp_binomial' "
                       "predictor) == dense posterior mean with the "
                       "empirical-logit noise variance (float64)", worst, F64_TOL)


def exact_rows() -> list[Check]:
    """Every exact row of this module (about 2 s on 2 CPU cores, most of it
    compilation)."""
    return [*_median_rows(), *_gp_rows(np.float64, True),
            *_gp_rows(np.float32, False), _binomial_row(), _moving_average_row(),
            *_ridge_rows(), _metrics_row(), _pooled_row()]
