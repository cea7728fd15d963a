r"""Allocation under uncertainty: the success probability the allocator is given.

The allocator (problem (5) of Nguyen et al. (2025), "Adaptive Rollout
Allocation for Online Reinforcement Learning with Verifiable Rewards")
minimises :math:`\sum_q a_q c(n_q)` with :math:`a_q = 4 p_q (1 - p_q)`. A
predictor gives a posterior mean :math:`m_q` and, if it has one, a posterior
variance :math:`v_q` of :math:`p_q`. Three rules turn them into the
:math:`p` the allocator sees (an *effective* probability; a common factor of
the :math:`a_q` never changes an allocation):

* ``"plugin"``: :math:`p_q = m_q`, i.e. :math:`a_q = 4 m_q (1 - m_q)`.
* ``"expected"``: the posterior-expected variance

  .. math::

      \mathbb E[4 p (1 - p)] = 4\,(m - m^2 - v),

  which is the Bayes decision: the objective is linear in :math:`a_q`, so
  its posterior expectation is :math:`\sum_q \mathbb E[a_q] c(n_q)`.
* ``"optimistic"``: the point of the interval :math:`m \pm z \sqrt v`
  nearest to :math:`1/2`, so that a prompt whose interval still contains
  mid-range values is not starved at ``L`` (an upper-confidence rule on the
  variance).

The effective probability for a target :math:`a \in [0, 1]` is
:math:`(1 - \sqrt{1 - a})/2` (the root in :math:`[0, 1/2]` of
:math:`4 p (1 - p) = a`). All functions are pure and jittable.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["RULES", "effective_probabilities", "probability_for_variance"]

#: Rules of :func:`effective_probabilities`.
RULES = ("plugin", "expected", "optimistic")


def probability_for_variance(a: jax.Array) -> jax.Array:
    """The ``p`` in ``[0, 1/2]`` with ``4 p (1 - p) = a`` (``a`` clipped to [0, 1]).

    >>> float(probability_for_variance(jnp.asarray(0.75)))
    0.25
    """
    a = jnp.clip(a, 0, 1)
    return (1 - jnp.sqrt(1 - a)) / 2


def effective_probabilities(
    mean: jax.Array, variance: jax.Array | None, *, rule: str = "plugin",
    z: float = 1.0,
) -> jax.Array:
    r"""The probabilities to allocate on (see the module docstring).

    Args:
      mean: posterior means ``m_q`` in [0, 1].
      variance: posterior variances ``v_q >= 0`` (ignored by ``"plugin"``;
        required by the other rules).
      rule: one of :data:`RULES` (static).
      z: width of the ``"optimistic"`` interval in posterior standard
        deviations.

    >>> m, v = jnp.array([0.125, 0.5]), jnp.array([0.015625, 0.0])
    >>> effective_probabilities(m, v, rule="optimistic").tolist()  # 0.125 + 0.125
    [0.25, 0.5]
    """
    m = jnp.clip(mean, 0, 1)
    if rule == "plugin":
        return m
    if variance is None:
        raise ValueError(f"rule={rule!r} needs a posterior variance")
    v = jnp.maximum(variance.astype(m.dtype), 0)
    if rule == "expected":
        return probability_for_variance(4 * (m - m * m - v))
    if rule == "optimistic":
        half = jnp.asarray(z, m.dtype) * jnp.sqrt(v)
        return jnp.clip(jnp.asarray(0.5, m.dtype), m - half, m + half).clip(0, 1)
    raise ValueError(f"rule must be one of {', '.join(map(repr, RULES))}; "
                     f"got {rule!r}")
