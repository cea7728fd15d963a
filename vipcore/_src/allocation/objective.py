r"""The objective of problem (5) and its marginal gains.

With ``a_q = 4 p_q (1 - p_q)`` (±1 rewards, ``sigma_Z^2 = 1``), the predicted
total gradient variance of an allocation ``n`` is

.. math::

    V(n) = \sum_q a_q\, c(n_q), \qquad c_{\mathrm{RLOO}}(n) = \frac{1}{n-1},
    \qquad c_{\mathrm{DrGRPO}}(n) = \frac{n-1}{n^2},

the sum of Props 4.3 and 4.2 of Nguyen et al. (2025), "Adaptive Rollout
Allocation for Online Reinforcement Learning with Verifiable Rewards", over
the batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from vipcore._src._checks import as_float_array, check_choice
from vipcore._src.variance import ESTIMATORS, variance_factor

__all__ = ["allocation_objective", "marginal", "objective_terms"]


def marginal(n, estimator):
    """``-c'(n)``: the marginal decrease of the objective per unit ``a``.

    RLOO: ``1 / (n - 1)^2``; Dr. GRPO: ``(n - 2) / n^3``.
    """
    if estimator == "rloo":
        return 1 / ((n - 1) * (n - 1))
    return (n - 2) / (n * n * n)


def objective_terms(a, n, estimator):
    """``a_q c(n_q)`` per prompt, exactly 0 where ``a_q = 0`` (padding too)."""
    nf = n.astype(a.dtype)
    pos = a > 0
    safe_n = jnp.where(pos, nf, 3)
    return jnp.where(pos, a * variance_factor(safe_n, estimator).astype(a.dtype), 0)


def _check_objective_args(n, p, estimator, sigma_z2):
    """Eager checks of :func:`allocation_objective` (concrete values only)."""
    from vipcore._src._checks import as_numpy_float, check_probabilities

    pn = as_numpy_float("p_hat", p)
    check_probabilities("p_hat", pn)
    try:
        nn = np.asarray(n)
    except (TypeError, ValueError) as err:
        raise ValueError(f"n must be array-like of numbers: {err}") from None
    if nn.dtype.kind not in "iuf" or nn.dtype == np.bool_:
        raise ValueError(f"n must be numeric; got dtype {nn.dtype}")
    if nn.shape != pn.shape:
        raise ValueError(f"n must have the shape of p_hat {pn.shape}; got {nn.shape}")
    lo = 1 if estimator == "drgrpo" else 2
    bad = ~np.isfinite(nn) | (nn < lo)
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        raise ValueError(
            f"n must be finite and >= {lo} for estimator {estimator!r} (the "
            f"variance is undefined below); got {nn.ravel()[i].item()!r} at index {i}")
    if isinstance(sigma_z2, bool | str) or not np.isscalar(sigma_z2) or not (
            np.isfinite(sigma_z2) and sigma_z2 >= 0):
        raise ValueError(f"sigma_z2 must be a finite number >= 0; got {sigma_z2!r}")


def allocation_objective(
    n: ArrayLike, p_hat: ArrayLike, estimator: str = "rloo", sigma_z2: float = 1.0
) -> jax.Array:
    r"""Predicted total gradient variance ``sum_q c(n_q) sigma_Z^2 4 p_q (1-p_q)``.

    The objective of problem (5), i.e. the sum of Props 4.2/4.3 over the batch:

    .. math::

        V(n) = \sigma_Z^2 \sum_q 4 p_q (1 - p_q)\, c(n_q),

    with ``c(n) = 1/(n - 1)`` (RLOO, ``n >= 2``) or ``(n - 1)/n^2`` (Dr. GRPO,
    ``n >= 1``); ``n`` may be real (the relaxation). Concrete inputs are
    checked (``ValueError`` naming the argument): ``p_hat`` in [0, 1],
    ``n`` finite and in range with the shape of ``p_hat``, ``sigma_z2 >= 0``.
    Inside ``jit`` nothing is checked.

    >>> float(allocation_objective([3, 5], [0.5, 0.5]))
    0.75
    """
    check_choice("estimator", estimator, ESTIMATORS)
    from vipcore._src._checks import is_concrete

    if is_concrete(n, p_hat, sigma_z2):
        _check_objective_args(n, p_hat, estimator, sigma_z2)
    p = as_float_array("p_hat", p_hat)
    a = 4 * p * (1 - p) * sigma_z2
    return jnp.sum(objective_terms(a, jnp.asarray(n), estimator))
