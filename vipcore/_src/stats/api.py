r"""Statistical tests of Assumption 4.1 (the VIP paper's App. B).

Two families, each in two layers:

* **pure, masked** functions in :mod:`vipcore._src.stats.masked`
  (``pearson_masked``, ``fisher_masked``,
  ``edgington_masked``, ``levene_masked``, ``obrien_masked``) take padded
  arrays ``(Q, n_max)`` plus a boolean mask, do no value checks, and can be put
  inside ``jit``/``vmap`` (e.g. ``jax.vmap(levene_masked)`` tests thousands of
  simulated data sets in one call);
* **eager** wrappers (``pearson_groups``, ``fisher``, ``edgington``,
  ``levene``, ``obrien``) also take ragged input (a list of 1-D groups, or a
  padded array with ``lengths`` or ``mask``), validate it, and call the jitted
  pure function.

Conventions (the same in both layers unless stated):

* Groups that cannot be tested are **excluded and counted** (``n_excluded``),
  never silently dropped: Pearson needs ``n >= 3`` and non-constant R and Z;
  Levene needs ``n >= 2``, O'Brien ``n >= 3``. Constant groups are *kept* by
  the variance tests (a zero variance is data, not a defect).
* Eager wrappers raise ``ValueError`` for NaN/inf in the data, p-values
  outside ``[0, 1]`` (NaN included) and empty input (no groups, no p-values,
  or fewer than two groups for the variance tests). The pure functions do not
  raise: a NaN/inf in a used entry propagates to a NaN p-value, and a result
  with nothing left to test (all groups excluded) has a NaN statistic/p-value.
* p-values of exactly 0 and 1 are valid inputs: Fisher maps ``p = 0`` to
  ``statistic = inf`` and ``pvalue = 0``; Edgington takes them as they are.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from vipcore._src._checks import check_choice, is_concrete
from vipcore._src._padding import bucket_size, pad_to
from vipcore._src.stats.inputs import (
    as_groups,
    as_pvalues,
    check_finite_groups,
    unpad,
)
from vipcore._src.stats.masked import (
    EDGINGTON_EXACT_MAX_Q,
    EdgingtonResult,
    FisherResult,
    PearsonGroupsResult,
    VarianceTestResult,
    edgington_masked,
    fisher_masked,
    levene_masked,
    obrien_masked,
    pearson_masked,
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
    "pearson_groups",
    "fisher",
    "edgington",
    "levene",
    "obrien",
]


# --------------------------------------------------------------------------
# Eager wrappers: ragged input, validation, jitted calls. Inputs are padded
# up to a few bucket sizes (8, 12, 16, 24, 32, 48, ...) so that calls with
# varying Q or n reuse a handful of compiled programs; padded rows are masked
# and removed again from the result.

_pearson_jit = jax.jit(pearson_masked)
_fisher_jit = jax.jit(fisher_masked)
_edgington_jit = jax.jit(edgington_masked, static_argnames=("method",))
_levene_jit = jax.jit(levene_masked, static_argnames=("center",))
_obrien_jit = jax.jit(obrien_masked)


def pearson_groups(
    R: Any, Z: Any, *, lengths: ArrayLike | None = None, mask: ArrayLike | None = None
) -> PearsonGroupsResult:
    r"""Per-question Pearson correlation between rewards and gradients (App. B.1).

    See :func:`pearson_masked` for the formula and exclusion rules.

    Args:
      R: rewards, a list of 1-D groups or a padded ``(Q, n_max)`` array.
      Z: projected gradients, the same structure as ``R``.
      lengths: for padded input, the number of real entries of each row.
      mask: for padded input, a boolean array marking real entries.

    Returns:
      A :class:`PearsonGroupsResult`; pass it straight to :func:`fisher` or
      :func:`edgington`, which then skip the excluded groups.

    >>> R = [[1., -1, 1, -1], [1., 1, 1]]
    >>> res = pearson_groups(R, [[.3, .1, .5, .2], [1., 2, 3]])
    >>> round(float(res.statistic[0]), 4), int(res.n_excluded)
    (0.8452, 1)
    """
    r, m = as_groups("R", R, lengths=lengths, mask=mask, per_group_scale=True)
    z, mz = as_groups("Z", Z, lengths=lengths, mask=mask, per_group_scale=True)
    if r.shape != z.shape or not _same(m, mz):
        raise ValueError(
            f"R and Z must have the same groups and lengths; got shapes {r.shape} "
            f"and {z.shape}"
        )
    if r.shape[0] == 0:
        raise ValueError("R and Z must contain at least one group; got none")
    check_finite_groups("R", R, m)
    check_finite_groups("Z", Z, m)
    q, n = r.shape
    shape = (bucket_size(q), bucket_size(n))
    dt = jnp.promote_types(r.dtype, z.dtype)
    res = _pearson_jit(pad_to(r.astype(dt), shape), pad_to(z.astype(dt), shape),
                       pad_to(m, shape))
    return unpad(res, shape[0] - q, q, ("statistic", "pvalue", "df", "used"))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    return a is b or not is_concrete(a, b) or bool(jnp.all(a == b))


def _combine(fn, pvalues: Any, mask: Any, **kw) -> Any:
    if isinstance(pvalues, PearsonGroupsResult):
        if mask is not None:
            raise ValueError("mask is taken from the PearsonGroupsResult; omit it")
        pvalues, mask = pvalues.pvalue, pvalues.used
    p, m = as_pvalues(pvalues, mask)
    q = p.shape[0]
    b = bucket_size(q)
    if kw.get("method") == "auto":  # decided by the real Q, not the padded one
        kw["method"] = "exact" if q <= EDGINGTON_EXACT_MAX_Q else "normal"
    return unpad(fn(pad_to(p, (b,)), pad_to(m, (b,)), **kw), b - q, q)


def fisher(pvalues: Any, *, mask: ArrayLike | None = None) -> FisherResult:
    r"""Fisher's combined p-value (App. B.1); see :func:`fisher_masked`.

    Args:
      pvalues: 1-D p-values in ``[0, 1]``, or a :class:`PearsonGroupsResult`
        (its excluded groups are left out and counted in ``n_excluded``).
      mask: optional boolean, False marks p-values to leave out.

    >>> r = fisher([0.01, 0.2, 0.5])
    >>> round(float(r.statistic), 4), int(r.df), round(float(r.pvalue), 4)
    (13.8155, 6, 0.0318)
    """
    return _combine(_fisher_jit, pvalues, mask)


def edgington(
    pvalues: Any, *, mask: ArrayLike | None = None, method: str = "auto"
) -> EdgingtonResult:
    r"""Edgington's combined p-value (App. B.2); see :func:`edgington_masked`.

    The exact Irwin–Hall CDF is evaluated with a recursion whose steps are
    convex combinations, so it keeps full precision at every ``Q`` (relative
    error <= 5e-15 in float64, <= 3e-6 in float32 up to ``Q = 600``). The
    textbook alternating sum does not: it loses 7e-7 relative at ``Q = 50``
    in float64 and everything by ``Q = 30`` in float32. ``method="auto"``
    switches to the normal approximation above ``EDGINGTON_EXACT_MAX_Q``
    = 1000 p-values only because the exact cost is ``O(Q^2)``; there the
    approximation's absolute error is below 3e-5 (it is ``~0.028/Q``; at the
    paper's ``Q = 600``, 4.6e-5). Deep in the lower tail the normal
    approximation is relatively poor (Irwin–Hall has bounded support).

    Args:
      pvalues: as for :func:`fisher`.
      mask: as for :func:`fisher`.
      method: ``"auto"``, ``"exact"`` or ``"normal"`` (the paper's formula).

    >>> r = edgington([0.01, 0.2, 0.5])
    >>> round(float(r.statistic), 2), round(float(r.pvalue), 6)
    (0.71, 0.059652)
    """
    check_choice("method", method, ("auto", "exact", "normal"))
    return _combine(_edgington_jit, pvalues, mask, method=method)


def _variance(fn, groups, lengths, mask, **kw) -> VarianceTestResult:
    z, m = as_groups("groups", groups, lengths=lengths, mask=mask)
    if z.shape[0] < 2:
        raise ValueError(f"groups must contain at least 2 groups; got {z.shape[0]}")
    check_finite_groups("groups", groups, m)
    q, n = z.shape
    shape = (bucket_size(q), bucket_size(n))
    return unpad(fn(pad_to(z, shape), pad_to(m, shape), **kw), shape[0] - q, q)


def levene(
    groups: Any,
    *,
    lengths: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    center: str = "median",
) -> VarianceTestResult:
    r"""Levene / Brown–Forsythe test of equal variances (App. B.3).

    See :func:`levene_masked` for the formula. ``groups`` is a list of 1-D
    arrays or a padded ``(Q, n_max)`` array with ``lengths`` or ``mask``.

    >>> r = levene([[1., 2, 4, 8], [1., 1.5, 2, 2.5], [0., 3, 6, 9]])
    >>> round(float(r.statistic), 4), int(r.dfn), int(r.dfd)
    (2.9625, 2, 9)
    """
    check_choice("center", center, ("median", "mean"))
    return _variance(_levene_jit, groups, lengths, mask, center=center)


def obrien(
    groups: Any, *, lengths: ArrayLike | None = None, mask: ArrayLike | None = None
) -> VarianceTestResult:
    r"""O'Brien's test of equal variances (App. B.4); see :func:`obrien_masked`.

    >>> r = obrien([[1., 2, 4, 8], [1., 1.5, 2, 2.5], [0., 3, 6, 9]])
    >>> round(float(r.statistic), 4), int(r.n_used)
    (1.3797, 3)
    """
    return _variance(_obrien_jit, groups, lengths, mask)
