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


def allocation_objective(
    n: ArrayLike, p_hat: ArrayLike, estimator: str = "rloo", sigma_z2: float = 1.0
) -> jax.Array:
    """Predicted total gradient variance ``sum_q c(n_q) sigma_Z^2 4 p_q (1-p_q)``.

    The objective of problem (5), i.e. the sum of Props 4.2/4.3 over the batch.
    """
    check_choice("estimator", estimator, ESTIMATORS)
    p = as_float_array("p_hat", p_hat)
    a = 4 * p * (1 - p) * sigma_z2
    return jnp.sum(objective_terms(a, jnp.asarray(n), estimator))
