r"""A posterior estimate of each prompt's success probability from its sweep.

With ``s`` successes in ``n`` rollouts and a ``Beta(a0, b0)`` prior, the
posterior of ``p`` is ``Beta(a0 + s, b0 + n - s)``. The default prior is
Jeffreys' ``Beta(1/2, 1/2)``:

.. math::

    \hat p = \frac{s + a_0}{n + a_0 + b_0},\qquad
    [p_{lo}, p_{hi}] = \big[F^{-1}(\tfrac{1-c}{2}),\ F^{-1}(\tfrac{1+c}{2})\big],

``F`` the posterior CDF and ``c`` the credibility (0.95): the Jeffreys
interval of Brown, Cai and DasGupta (2001), "Interval Estimation for a
Binomial Proportion", Statistical Science 16(2), with their convention
``p_lo = 0`` when ``s = 0`` and ``p_hi = 1`` when ``s = n``. Unlike the raw
pass rate, ``p_hat`` is never exactly 0 or 1: a prompt that failed 16 times
still has ``p_hat = 0.5/17 = 0.029``, which keeps it in an allocator's view.

Graded scores in [0, 1] enter as fractional successes ``s = sum of scores``
(the "fractional Bernoulli" view). A graded score has variance at most
``m(1 - m)`` for mean ``m``, so the interval is then conservative (wider than
needed), not too narrow.

Everything is NumPy ``float64``: the regularised incomplete beta function by
its continued fraction (modified Lentz), and its inverse by Newton steps kept
inside a bisection bracket, on the distinct ``(s, n)`` pairs only. The tests
compare with ``scipy.stats.beta`` to ``1e-10``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Posterior", "posterior_p", "beta_cdf", "beta_ppf"]

_TINY = 1e-300
_EPS = 2e-15


class Posterior(NamedTuple):
    """Posterior summary of ``p`` per prompt.

    Attributes:
      p_hat: posterior mean.
      p_lo: lower end of the equal-tailed credible interval.
      p_hi: upper end.
      level: the credibility of the interval.
      prior: the ``(a0, b0)`` of the Beta prior.
    """

    p_hat: np.ndarray
    p_lo: np.ndarray
    p_hi: np.ndarray
    level: float
    prior: tuple[float, float]


def _lbeta(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lg = np.vectorize(math.lgamma, otypes=[np.float64])
    return lg(a) + lg(b) - lg(a + b)


def _betacf(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Continued fraction of I_x(a, b) (modified Lentz), elementwise."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones_like(x)
    d = 1.0 - qab * x / qap
    d = np.where(np.abs(d) < _TINY, _TINY, d)
    d = 1.0 / d
    h = d.copy()
    active = np.ones(x.shape, dtype=bool)
    for m in range(1, 100_000):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = np.where(np.abs(d) < _TINY, _TINY, d)
            c = 1.0 + aa / c
            c = np.where(np.abs(c) < _TINY, _TINY, c)
            d = 1.0 / d
            delta = d * c
            h = np.where(active, h * delta, h)
        active &= np.abs(delta - 1.0) > 3e-16
        if not active.any():
            break
    return h


def _cdf(x: np.ndarray, a: np.ndarray, b: np.ndarray, lb: np.ndarray) -> np.ndarray:
    """I_x(a, b) for 0 < x < 1, given ``lb = log B(a, b)``."""
    front = np.exp(a * np.log(x) + b * np.log1p(-x) - lb)
    direct = x < (a + 1.0) / (a + b + 2.0)
    # I_x(a, b) directly, or 1 - I_{1-x}(b, a), whichever converges fast
    cf = front * _betacf(np.where(direct, a, b), np.where(direct, b, a),
                         np.where(direct, x, 1 - x)) / np.where(direct, a, b)
    return np.where(direct, cf, 1.0 - cf)


def beta_cdf(x: Any, a: Any, b: Any) -> np.ndarray:
    r"""The regularised incomplete beta function :math:`I_x(a, b)` (Beta CDF).

    >>> round(float(beta_cdf(0.5, 2.0, 3.0)), 12)
    0.6875
    """
    x, a, b = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x, a, b)))
    out = np.where(x >= 1, 1.0, 0.0)
    inside = (x > 0) & (x < 1)
    if inside.any():
        ai, bi = a[inside], b[inside]
        out[inside] = _cdf(x[inside], ai, bi, _lbeta(ai, bi))
    return out


def _start(q: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A first guess: the normal approximation on the logit scale."""
    from statistics import NormalDist

    z = np.vectorize(NormalDist().inv_cdf, otypes=[np.float64])(q)
    m, s = np.log(a / b), np.sqrt(1 / a + 1 / b)
    return np.clip(1 / (1 + np.exp(-(m + z * s))), 1e-12, 1 - 1e-12)


def beta_ppf(q: Any, a: Any, b: Any) -> np.ndarray:
    """The inverse of :func:`beta_cdf` in ``x`` (the Beta quantile function).

    Newton steps on ``I_x(a, b) = q``, replaced by bisection whenever they
    would leave the bracket that the signs of ``I_x(a, b) - q`` give; each
    entry stops once its Newton step is below ``2e-15`` relative.

    >>> round(float(beta_ppf(0.6875, 2.0, 3.0)), 12)
    0.5
    """
    q, a, b = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (q, a, b)))
    shape = q.shape
    q, a, b = q.ravel(), a.ravel(), b.ravel()
    x = np.where(q <= 0, 0.0, 1.0)
    todo = np.flatnonzero((q > 0) & (q < 1))
    qt, at, bt = q[todo], a[todo], b[todo]
    lb = _lbeta(at, bt)
    lo, hi = np.zeros(todo.size), np.ones(todo.size)
    xt = _start(qt, at, bt)
    live = np.arange(todo.size)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        for _ in range(400):
            xs, qs, as_, bs, ls = xt[live], qt[live], at[live], bt[live], lb[live]
            f = _cdf(xs, as_, bs, ls) - qs
            lo[live] = np.where(f < 0, xs, lo[live])
            hi[live] = np.where(f > 0, xs, hi[live])
            pdf = np.exp((as_ - 1) * np.log(xs) + (bs - 1) * np.log1p(-xs) - ls)
            newton = xs - f / np.maximum(pdf, _TINY)
            inside = (newton > lo[live]) & (newton < hi[live])
            nxt = np.where(inside, newton, 0.5 * (lo[live] + hi[live]))
            stop = (f == 0) | (np.abs(newton - xs) <= _EPS * np.maximum(xs, _TINY)) | (
                hi[live] - lo[live] <= _EPS * hi[live])
            xt[live] = np.where(f == 0, xs, np.where(stop, newton, nxt))
            live = live[~stop]
            if not live.size:
                break
    x[todo] = xt
    return x.reshape(shape)


def posterior_p(
    successes: Any, n: Any, *, level: float = 0.95,
    prior: tuple[float, float] = (0.5, 0.5),
) -> Posterior:
    """Posterior mean and equal-tailed credible interval of ``p`` per prompt.

    Args:
      successes: successes per prompt (fractional for graded scores), in
        ``[0, n]``.
      n: rollouts per prompt (``>= 1``).
      level: credibility of the interval, in (0, 1).
      prior: ``(a0, b0) > 0`` of the Beta prior (Jeffreys ``(1/2, 1/2)``;
        ``(1, 1)`` is the uniform prior).

    >>> post = posterior_p([0, 8, 16], [16, 16, 16])
    >>> [round(v, 4) for v in post.p_hat.tolist()]
    [0.0294, 0.5, 0.9706]
    >>> float(post.p_lo[0]), float(post.p_hi[2])
    (0.0, 1.0)
    """
    s = np.asarray(successes, dtype=np.float64)
    nn = np.asarray(n, dtype=np.float64)
    if s.shape != nn.shape or s.ndim != 1:
        raise ValueError(f"successes and n must be 1-D of equal length; got "
                         f"{s.shape} and {nn.shape}")
    if not (0 < level < 1):
        raise ValueError(f"level must lie in (0, 1); got {level!r}")
    a0, b0 = (float(v) for v in prior)
    if not (a0 > 0 and b0 > 0 and math.isfinite(a0) and math.isfinite(b0)):
        raise ValueError(f"prior must be two finite numbers > 0; got {prior!r}")
    if not np.all(nn >= 1) or not np.all((s >= 0) & (s <= nn)):
        raise ValueError("need n >= 1 and 0 <= successes <= n for every prompt")
    a, b = s + a0, nn - s + b0
    pairs, inv = np.unique(np.stack([a, b]), axis=1, return_inverse=True)
    inv = inv.reshape(-1)
    tail = (1 - level) / 2
    lo = beta_ppf(tail, pairs[0], pairs[1])[inv]
    hi = beta_ppf(1 - tail, pairs[0], pairs[1])[inv]
    lo = np.where(s <= 0, 0.0, lo)
    hi = np.where(s >= nn, 1.0, hi)
    return Posterior(a / (a + b), lo, hi, float(level), (a0, b0))
