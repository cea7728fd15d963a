"""Simulated Appendix B data sets and the battery of global tests on them.

Used by the ``vipcore verify`` section (:mod:`vipcore._src.apps.verify.stats`) and
the calibration tests. Data come from
:func:`vipcore._src.montecarlo.sample_rollouts`: for each of ``Q`` questions a
success probability ``p_q ~ U(0, 1)`` (fixed across replicates: a fixed
design), ``n`` rollouts with ±1 rewards ``R`` and gradients

.. math::

    Z_{qj} = \\mu_Z + \\sigma_q \\varepsilon_{qj} + c\\,R_{qj},
    \\qquad \\log\\sigma_q = h\\, g_q,\\ g_q \\sim N(0, 1),

with ``eps`` standardised from ``z_dist``. ``c = 0`` and ``h = 0`` is
Assumption 4.1 with equal variances; ``c != 0`` breaks (ii) (R–Z
correlation), ``h > 0`` breaks the equal-variance assumption of App. B.3.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from vipcore._src.montecarlo import sample_rollouts
from vipcore._src.stats.masked import (
    edgington_masked,
    f_pvalue,
    fisher_masked,
    levene_transform,
    obrien_transform,
    oneway_statistic,
    pearson_masked,
)

__all__ = ["TESTS", "CHUNK", "battery", "battery_one", "simulate_pvalues"]

#: Global tests in the order :func:`battery` returns their p-values.
TESTS = ("fisher", "edgington", "levene_median", "levene_mean", "obrien")


def battery(R: jax.Array, Z: jax.Array, mask: jax.Array) -> jax.Array:
    """Global p-values of :data:`TESTS` for one data set ``(Q, n)`` (pure)."""
    pr = pearson_masked(R, Z, mask)
    # The three variance tests share one vmapped ANOVA and one F-tail call
    # (fewer special-function instances to compile).
    ys, useds = zip(levene_transform(Z, mask, center="median"),
                    levene_transform(Z, mask, center="mean"),
                    obrien_transform(Z, mask), strict=True)
    var = jax.vmap(oneway_statistic, in_axes=(0, None, 0))(
        jnp.stack(ys), mask, jnp.stack(useds))
    return jnp.concatenate([
        jnp.stack([fisher_masked(pr.pvalue, pr.used).pvalue,
                   edgington_masked(pr.pvalue, pr.used, method="exact").pvalue]),
        f_pvalue(var).pvalue,
    ])


_battery_batch = jax.jit(jax.vmap(battery, in_axes=(0, 0, None)))

#: Data sets per compiled call of :func:`simulate_pvalues` (its default).
CHUNK = 100


def battery_one(R: jax.Array, Z: jax.Array, mask: jax.Array,
                *, chunk: int = CHUNK) -> jax.Array:
    """:func:`battery` on one float32 data set through the compiled program of
    :func:`simulate_pvalues` (the data set repeated ``chunk`` times: cheaper
    than compiling another program)."""
    tile = (chunk, *R.shape)
    R = jnp.broadcast_to(jnp.asarray(R, jnp.float32), tile)
    Z = jnp.broadcast_to(jnp.asarray(Z, jnp.float32), tile)
    return _battery_batch(R, Z, mask)[0]


def _sample(kdesign, kd, z_mean, corr, het, *, q, n, trials, z_dist, dtype):
    # Not jitted as a whole: sample_rollouts validates its arguments eagerly
    # (it is jitted inside) and is vmapped over questions here.
    kp, kg = jax.random.split(kdesign)
    p = jax.random.uniform(kp, (q,), dtype)
    z_var = jnp.exp(2 * het * jax.random.normal(kg, (q,), dtype))

    def one(k, pq, vq):
        return sample_rollouts(k, pq, n, trials, z_dist=z_dist, z_mean=z_mean,
                               z_var=vq, corr=corr, dtype=dtype)

    R, Z = jax.vmap(one)(jax.random.split(kd, q), p, z_var)
    return jnp.swapaxes(R, 0, 1), jnp.swapaxes(Z, 0, 1)


def simulate_pvalues(
    key: jax.Array,
    *,
    q: int = 600,
    n: int = 16,
    trials: int = 1000,
    z_dist: str = "normal",
    z_mean: float = 0.0,
    corr: float = 0.0,
    het: float = 0.0,
    dtype=jnp.float32,
    chunk: int = CHUNK,
) -> np.ndarray:
    """p-values of :data:`TESTS` on ``trials`` simulated data sets.

    Args:
      key: ``jax.random`` key; the design (``p_q``, ``sigma_q``) is drawn from
        it, so one key gives one fixed design.
      q, n: questions and rollouts per question (the paper: 600 and 16).
      trials: independent data sets (replicates).
      z_dist, z_mean: family and mean of ``Z`` (see ``sample_rollouts``).
      corr: ``c``, the R–Z coupling (0 = Assumption 4.1 (ii) holds).
      het: ``h``, the spread of ``log sigma_q`` (0 = equal variances).
      dtype: float dtype of the data and tests.
      chunk: replicates per compiled call (bounds memory; one compilation).

    Returns:
      ``(trials, len(TESTS))`` NumPy array of p-values.
    """
    kdesign, kdata = jax.random.split(key)
    mask = jnp.ones((q, n), bool)
    chunk = min(chunk, trials)
    out = []
    for i in range((trials + chunk - 1) // chunk):
        # the design key is shared by all chunks: the same p_q and sigma_q
        R, Z = _sample(kdesign, jax.random.fold_in(kdata, i), z_mean, corr, het,
                       q=q, n=n, trials=chunk, z_dist=z_dist,
                       dtype=jnp.dtype(dtype))
        out.append(np.asarray(_battery_batch(R, Z, mask)))
    return np.concatenate(out)[:trials]
