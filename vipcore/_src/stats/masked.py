"""Pure, jittable Appendix B tests on padded arrays.

Every function here takes padded ``(Q, n_max)`` data plus a boolean mask,
does no value checks, and can be put inside ``jit``/``vmap``. The eager,
validating API is :mod:`vipcore._src.stats.api`, whose docstring states the
conventions (exclusions, NaN, p = 0 or 1, empty input).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from vipcore._src._checks import check_choice
from vipcore._src.stats.distributions import (
    chi2_sf,
    f_sf,
    irwin_hall_cdf,
    norm_cdf,
    t_sf_two_sided,
)

__all__ = [
    "EDGINGTON_EXACT_MAX_Q",
    "PearsonGroupsResult",
    "FisherResult",
    "EdgingtonResult",
    "VarianceTestResult",
    "pearson_masked",
    "fisher_masked",
    "edgington_masked",
    "levene_masked",
    "obrien_masked",
    "levene_transform",
    "obrien_transform",
    "oneway_statistic",
    "f_pvalue",
]

#: Largest number of p-values (the static length of the input) for which
#: ``edgington(method="auto")`` uses the exact Irwin–Hall CDF (cost
#: ``O(Q^2)``). Above it the normal approximation's absolute CDF error is
#: below ``0.028 / Q < 3e-5``; see :func:`edgington`.
EDGINGTON_EXACT_MAX_Q = 1000


class PearsonGroupsResult(NamedTuple):
    """Per-group Pearson correlation tests.

    Attributes:
      statistic: ``(Q,)`` sample correlation ``r_q`` (NaN for excluded groups).
      pvalue: ``(Q,)`` two-sided p-value from ``t_{n_q - 2}`` (NaN if excluded).
      df: ``(Q,)`` integer degrees of freedom ``max(n_q - 2, 0)`` (also for
        excluded groups; never negative).
      used: ``(Q,)`` bool, True where the group was tested.
      n_used: number of tested groups.
      n_excluded: groups with ``n_q < 3`` or constant R or Z.
    """

    statistic: jax.Array
    pvalue: jax.Array
    df: jax.Array
    used: jax.Array
    n_used: jax.Array
    n_excluded: jax.Array


class FisherResult(NamedTuple):
    """Fisher's combination. Attributes: ``statistic`` (``-2 sum ln p``),
    ``pvalue`` (``P(chi2_df >= statistic)``), ``df`` (``2 n_used``, integer),
    ``n_used`` (p-values combined), ``n_excluded`` (p-values masked out)."""

    statistic: jax.Array
    pvalue: jax.Array
    df: jax.Array
    n_used: jax.Array
    n_excluded: jax.Array


class EdgingtonResult(NamedTuple):
    """Edgington's combination. Attributes: ``statistic`` (``S = sum p``),
    ``pvalue`` (lower tail ``P(S' <= S)``, ``S' ~ Irwin-Hall(n_used)``),
    ``n_used``, ``n_excluded`` (as for :class:`FisherResult`)."""

    statistic: jax.Array
    pvalue: jax.Array
    n_used: jax.Array
    n_excluded: jax.Array


class VarianceTestResult(NamedTuple):
    """Levene / O'Brien test of equal variances across groups.

    Attributes:
      statistic: the one-way ANOVA statistic ``W`` of the transformed values.
      pvalue: ``P(F_{dfn, dfd} >= W)``.
      dfn: ``k - 1`` with ``k`` groups used (integer; 0 when ``k = 0``).
      dfd: ``N - k`` with ``N`` observations in used groups (integer, >= 0).
      n_used: groups used (``k``).
      n_excluded: groups too small (Levene ``n < 2``, O'Brien ``n < 3``).
    """

    statistic: jax.Array
    pvalue: jax.Array
    dfn: jax.Array
    dfd: jax.Array
    n_used: jax.Array
    n_excluded: jax.Array


# --------------------------------------------------------------------------
# Pure, jittable functions on padded arrays.


def _count(mask: jax.Array) -> jax.Array:
    return jnp.sum(mask, axis=-1)


def _masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    c = jnp.maximum(_count(mask), 1).astype(x.dtype)
    return jnp.sum(jnp.where(mask, x, 0), axis=-1) / c


def _pow2_rescale(x: jax.Array, mask: jax.Array, axis) -> jax.Array:
    """``x * 2**-e`` with ``max |x|`` over ``mask`` along ``axis`` in
    ``[0.5, 1)``: exact (a power of two), so sums of squares of finite data
    cannot overflow; the tests here are invariant to it. Non-finite or
    all-zero data is left as it is."""
    big = jnp.max(jnp.where(mask, jnp.abs(x), 0), axis=axis, keepdims=True)
    _, e = jnp.frexp(jnp.where(jnp.isfinite(big) & (big > 0), big, 1))
    return jnp.ldexp(x, -e)


def pearson_masked(R: ArrayLike, Z: ArrayLike, mask: ArrayLike) -> PearsonGroupsResult:
    r"""Per-group Pearson test on padded ``(Q, n_max)`` arrays (pure, jittable).

    .. math::

        r_q = \frac{\sum_j (R_{qj}-\bar R_q)(Z_{qj}-\bar Z_q)}
                   {\sqrt{\sum_j (R_{qj}-\bar R_q)^2 \sum_j (Z_{qj}-\bar Z_q)^2}},
        \quad t_q = r_q\sqrt{\frac{n_q-2}{1-r_q^2}},
        \quad p_q = P(|T_{n_q-2}| \ge |t_q|).

    Exact when Z is normal and independent of R (for any R). A group is used
    when ``n_q >= 3`` and neither R nor Z is constant on it (tested exactly,
    ``max > min``); a group with a non-finite used entry is used and gets NaN.
    """
    R, Z, mask = jnp.asarray(R), jnp.asarray(Z), jnp.asarray(mask)
    dt = jnp.result_type(R, Z)
    R = _pow2_rescale(R.astype(dt), mask, -1)
    Z = _pow2_rescale(Z.astype(dt), mask, -1)
    c = _count(mask)

    def centred(x):
        d = jnp.where(mask, x - _masked_mean(x, mask)[..., None], 0)
        scale = jnp.max(jnp.abs(d), axis=-1, keepdims=True)  # avoid over/underflow
        return d / jnp.where(scale > 0, scale, 1)

    def varies(x):
        hi = jnp.max(jnp.where(mask, x, -jnp.inf), axis=-1)
        return hi > jnp.min(jnp.where(mask, x, jnp.inf), axis=-1)

    dr, dz = centred(R), centred(Z)
    finite = jnp.all(jnp.where(mask, jnp.isfinite(R) & jnp.isfinite(Z), True), -1)
    used = (c >= 3) & ((varies(R) & varies(Z)) | ~finite)
    sxx = jnp.sum(dr * dr, -1)
    szz = jnp.sum(dz * dz, -1)
    r = jnp.clip(jnp.sum(dr * dz, -1) / (jnp.sqrt(sxx) * jnp.sqrt(szz)), -1, 1)
    df = jnp.maximum(c - 2, 0)
    dff = df.astype(dt)
    t = r * jnp.sqrt(dff / ((1 - r) * (1 + r)))
    p = t_sf_two_sided(jnp.where(used, t, 0), jnp.maximum(dff, 1))
    n_used = jnp.sum(used, -1)
    return PearsonGroupsResult(
        statistic=jnp.where(used, r, jnp.nan),
        pvalue=jnp.where(used & ~jnp.isnan(t), p, jnp.nan),
        df=df,
        used=used,
        n_used=n_used,
        n_excluded=mask.shape[-2] - n_used,
    )


def _bad_pvalues(p: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.any(mask & ~((p >= 0) & (p <= 1)), axis=-1)


def fisher_masked(pvalues: ArrayLike, mask: ArrayLike) -> FisherResult:
    r"""Fisher's method on ``(Q,)`` p-values where ``mask`` (pure, jittable).

    .. math::

        X = -2\sum_{q:\,\mathrm{mask}_q} \ln p_q, \qquad
        p_{\mathrm{global}} = P(\chi^2_{2k} \ge X),\quad k = \#\{\mathrm{mask}\}.

    ``p_q = 0`` gives ``X = inf``, ``p_global = 0``. A used p-value outside
    ``[0, 1]`` (or NaN), or ``k = 0``, gives NaN.
    """
    p, mask = jnp.asarray(pvalues), jnp.asarray(mask)
    k = _count(mask)
    stat = -2 * jnp.sum(jnp.where(mask, jnp.log(jnp.where(mask, p, 1)), 0), -1)
    invalid = _bad_pvalues(p, mask) | (k == 0)
    stat = jnp.where(invalid, jnp.nan, stat)
    pv = chi2_sf(stat, (2 * k).astype(stat.dtype))
    return FisherResult(stat, jnp.where(invalid, jnp.nan, pv), 2 * k, k,
                        mask.shape[-1] - k)


def edgington_masked(
    pvalues: ArrayLike, mask: ArrayLike, *, method: str = "auto"
) -> EdgingtonResult:
    r"""Edgington's sum-of-p method on ``(Q,)`` p-values (pure, jittable).

    .. math::

        S = \sum_{q:\,\mathrm{mask}_q} p_q, \qquad
        p_{\mathrm{global}} = P(\mathrm{IH}_k \le S)
        \;\approx\; \Phi\!\left(\frac{S - k/2}{\sqrt{k/12}}\right).

    ``method="exact"`` uses the Irwin–Hall CDF (stable recursion,
    :func:`vipcore._src.stats.distributions.irwin_hall_cdf`, ``O(Q^2)``);
    ``"normal"`` the paper's approximation; ``"auto"`` is exact when the
    static length ``Q <= EDGINGTON_EXACT_MAX_Q``.
    """
    check_choice("method", method, ("auto", "exact", "normal"))
    p, mask = jnp.asarray(pvalues), jnp.asarray(mask)
    q_max = p.shape[-1]
    if method == "auto":
        method = "exact" if q_max <= EDGINGTON_EXACT_MAX_Q else "normal"
    k = _count(mask)
    kf = k.astype(p.dtype)
    invalid = _bad_pvalues(p, mask) | (k == 0)
    s = jnp.where(invalid, jnp.nan, jnp.sum(jnp.where(mask, p, 0), -1))
    if method == "exact":
        pv = irwin_hall_cdf(s, k, q_max=q_max)
    else:
        pv = norm_cdf((s - kf / 2) / jnp.sqrt(kf / 12))
    return EdgingtonResult(s, jnp.where(invalid, jnp.nan, pv), k, q_max - k)


def oneway_statistic(
    y: jax.Array, mask: jax.Array, used: jax.Array
) -> VarianceTestResult:
    """One-way ANOVA ``W`` of the groups ``used``, with ``pvalue=None``.

    The second step shared by Levene and O'Brien; :func:`f_pvalue` adds the
    p-value (kept apart so a caller can evaluate many F tails in one call).
    """
    dt = y.dtype
    w = mask & used[..., None]
    y = _pow2_rescale(y, w, (-2, -1))
    c = _count(w).astype(dt)
    k = jnp.sum(used, -1)
    n_obs = jnp.sum(_count(w), -1)
    ybar_q = _masked_mean(y, w)
    ybar = jnp.sum(jnp.where(w, y, 0), (-2, -1)) / jnp.maximum(n_obs, 1).astype(dt)
    ssb = jnp.sum(jnp.where(used, c * (ybar_q - ybar[..., None]) ** 2, 0), -1)
    ssw = jnp.sum(jnp.where(w, (y - ybar_q[..., None]) ** 2, 0), (-2, -1))
    dfn, dfd = jnp.maximum(k - 1, 0), jnp.maximum(n_obs - k, 0)
    ok = (dfn >= 1) & (dfd >= 1)
    stat = jnp.where(ok, (dfd.astype(dt) / dfn.astype(dt)) * (ssb / ssw), jnp.nan)
    return VarianceTestResult(stat, None, dfn, dfd, k, mask.shape[-2] - k)


def f_pvalue(res: VarianceTestResult) -> VarianceTestResult:
    """Fill in ``res.pvalue = P(F_{dfn, dfd} >= statistic)``."""
    dt = res.statistic.dtype
    pv = f_sf(res.statistic, jnp.maximum(res.dfn, 1).astype(dt),
              jnp.maximum(res.dfd, 1).astype(dt))
    return res._replace(pvalue=pv)


def _oneway(y: jax.Array, used: jax.Array, *, mask: jax.Array) -> VarianceTestResult:
    return f_pvalue(oneway_statistic(y, mask, used))


def _masked_median(x: jax.Array, mask: jax.Array) -> jax.Array:
    c = _count(mask)
    xs = jnp.sort(jnp.where(mask, x, jnp.inf), axis=-1)
    lo = jnp.take_along_axis(xs, jnp.maximum((c - 1) // 2, 0)[..., None], -1)
    hi = jnp.take_along_axis(xs, (c // 2)[..., None], -1)
    return (0.5 * (lo + hi))[..., 0]


def levene_masked(
    Z: ArrayLike, mask: ArrayLike, *, center: str = "median"
) -> VarianceTestResult:
    r"""Levene's test of equal variances on padded ``(Q, n_max)`` (pure).

    .. math::

        Y_{qj} = |Z_{qj} - c_q|,\quad
        W = \frac{(N-k)\sum_q n_q(\bar Y_q - \bar Y)^2}
                 {(k-1)\sum_q\sum_j (Y_{qj}-\bar Y_q)^2}
          \sim F_{k-1,\,N-k},

    with ``c_q`` the group median (``center="median"``, Brown–Forsythe, the
    paper's App. B.3) or mean (``center="mean"``, Levene's original). Groups
    with ``n_q < 2`` are excluded. The F law is approximate: measured sizes
    at 5% are in ``docs/stats.md`` (median: conservative; mean: liberal).
    """
    return _oneway(*levene_transform(Z, mask, center=center), mask=mask)


def levene_transform(
    Z: ArrayLike, mask: ArrayLike, *, center: str = "median"
) -> tuple[jax.Array, jax.Array]:
    """``(Y, used)``: absolute deviations from the group centre, ``n_q >= 2``."""
    check_choice("center", center, ("median", "mean"))
    Z, mask = jnp.asarray(Z), jnp.asarray(mask)
    Z = _pow2_rescale(Z, mask, (-2, -1))
    if center == "median":
        ctr = _masked_median(Z, mask)
    else:
        ctr = _masked_mean(Z, mask)
    return jnp.where(mask, jnp.abs(Z - ctr[..., None]), 0), _count(mask) >= 2


def obrien_masked(Z: ArrayLike, mask: ArrayLike) -> VarianceTestResult:
    r"""O'Brien's test of equal variances on padded ``(Q, n_max)`` (pure).

    O'Brien's transform (its group means are the unbiased variances ``s_q^2``)
    followed by the one-way ANOVA ``W`` of :func:`levene_masked` (App. B.4):

    .. math::

        Y_{qj} = \frac{(n_q - 1.5)\,n_q\,(Z_{qj}-\bar Z_q)^2
                       - 0.5\, s_q^2\,(n_q-1)}{(n_q-1)(n_q-2)}.

    Groups with ``n_q < 3`` are excluded.
    """
    return _oneway(*obrien_transform(Z, mask), mask=mask)


def obrien_transform(Z: ArrayLike, mask: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """``(Y, used)``: O'Brien's transform (as ``scipy.stats.obrientransform``),
    groups with ``n_q >= 3``."""
    Z, mask = jnp.asarray(Z), jnp.asarray(mask)
    Z = _pow2_rescale(Z, mask, (-2, -1))
    dt = Z.dtype
    c = _count(mask)
    n = c.astype(dt)[..., None]
    d2 = jnp.where(mask, (Z - _masked_mean(Z, mask)[..., None]) ** 2, 0)
    s2 = jnp.sum(d2, -1, keepdims=True) / jnp.maximum(n - 1, 1)
    y = ((n - 1.5) * n * d2 - 0.5 * s2 * (n - 1)) / jnp.maximum((n - 1) * (n - 2), 1)
    return jnp.where(mask, y, 0), c >= 3
