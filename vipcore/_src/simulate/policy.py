r"""A small MLP policy over the task's answer slots.

The policy maps a prompt's features ``x_q`` to logits over the ``K`` answer
slots; invalid slots (``j >= k_q``) are masked out, so

.. math::

    \pi_\theta(y \mid q) = \operatorname{softmax}_y\bigl(f_\theta(x_q)
      + \log \mathbb 1[y < k_q]\bigr).

An answer is one token, so a rollout's log-likelihood gradient is
``H(o) = \nabla_\theta \log \pi_\theta(y \mid q)`` and the paper's projected
gradient is ``Z = 1^\top H(o)`` (App. B). :func:`projected_gradients` computes
it for every rollout at once as a forward-mode derivative along the all-ones
direction, ``Z = \frac{d}{d\epsilon} \log\pi_{\theta + \epsilon 1}(y\mid q)``,
and the norm-based variant ``||H(o)||_2`` with one reverse pass per rollout.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

__all__ = [
    "init_params",
    "logits",
    "log_probs",
    "success_prob",
    "sample",
    "pg_loss",
    "projected_gradients",
    "num_params",
]

_NEG = -1e9  # logit of a masked slot; exp underflows to exactly 0


def init_params(key: jax.Array, in_dim: int, out_dim: int, *, hidden: int = 64,
                depth: int = 2) -> dict:
    """He-initialised MLP ``in_dim -> hidden (x depth, ReLU) -> out_dim``.

    The output layer starts small (std ``0.01 / sqrt(hidden)``), so the
    initial policy is nearly uniform over each prompt's valid slots (success
    probability about ``1/k_q``) while the projected gradients ``Z`` are not
    identically zero (a zero output layer makes every ``1^T H(o)`` vanish).
    """
    sizes = [in_dim] + [hidden] * depth
    keys = jax.random.split(key, depth + 1)
    layers = []
    for i in range(depth):
        w = jax.random.normal(keys[i], (sizes[i], sizes[i + 1])) * jnp.sqrt(
            2.0 / sizes[i])
        layers.append({"w": w, "b": jnp.zeros((sizes[i + 1],))})
    w_out = jax.random.normal(keys[depth], (hidden, out_dim)) * (0.01 / hidden**0.5)
    layers.append({"w": w_out, "b": jnp.zeros((out_dim,))})
    return {"layers": layers}


def num_params(params: dict) -> int:
    """Total number of scalar parameters."""
    return int(ravel_pytree(params)[0].size)


def logits(params: dict, features: jax.Array, mask: jax.Array) -> jax.Array:
    """Masked logits ``(..., K)`` for features ``(..., F)``."""
    h = features
    layers = params["layers"]
    for layer in layers[:-1]:
        h = jax.nn.relu(_dense(h, layer))
    return jnp.where(mask, _dense(h, layers[-1]), _NEG)


def _dense(h: jax.Array, layer: dict) -> jax.Array:
    hw = h @ layer["w"]
    return hw + jnp.broadcast_to(layer["b"], hw.shape)


def log_probs(params: dict, features: jax.Array, mask: jax.Array) -> jax.Array:
    """``log pi(y | q)`` for every slot, ``(..., K)``; masked slots ~ -1e9."""
    return jax.nn.log_softmax(logits(params, features, mask), axis=-1)


def success_prob(params: dict, features: jax.Array, mask: jax.Array,
                 answer: jax.Array) -> jax.Array:
    """Exact success probability ``p_q = pi(answer_q | q)``, shape ``(...)``."""
    lp = log_probs(params, features, mask)
    return jnp.exp(jnp.take_along_axis(lp, answer[..., None], axis=-1)[..., 0])


def sample(key: jax.Array, params: dict, features: jax.Array, mask: jax.Array,
           num: int) -> jax.Array:
    """``num`` i.i.d. answers per prompt: int array ``(B, num)``."""
    lg = logits(params, features, mask)
    return jax.random.categorical(key, lg[:, None, :], axis=-1,
                                  shape=(lg.shape[0], num))


def pg_loss(params: dict, features: jax.Array, mask: jax.Array,
            answers: jax.Array, weights: jax.Array) -> jax.Array:
    r"""Surrogate whose gradient is the policy gradient estimate.

    .. math::

        \mathcal L(\theta) = -\sum_{q, j} w_{qj} \log\pi_\theta(y_{qj}\mid q),

    with ``weights`` ``w_{qj} = A_{qj} / (n_q B)`` for rollouts and 0 for
    padding, so ``-\nabla\mathcal L = \frac1B\sum_q G_q`` with
    ``G_q = \frac{1}{n_q}\sum_j A_{qj} H(o_{qj})`` (SPEC §1). One update per
    batch, fully on-policy: the PPO ratio is 1 and clipping would be inactive.
    """
    lp = log_probs(params, features, mask)  # (B, K)
    lpy = jnp.take_along_axis(lp, answers, axis=-1)  # (B, U)
    return -jnp.sum(jax.lax.stop_gradient(weights) * lpy)


def projected_gradients(params: dict, features: jax.Array, mask: jax.Array,
                        answers: jax.Array, *, norm: bool = False) -> jax.Array:
    r"""Per-rollout projected gradients, shape of ``answers`` ``(Q, n)``.

    ``norm=False``: ``Z = 1^\top H(o)`` (one JVP along the all-ones tangent).
    ``norm=True``: ``Z = ||H(o)||_2`` (one reverse pass per rollout).
    """

    def lp_of(p):
        lp = log_probs(p, features, mask)
        return jnp.take_along_axis(lp, answers, axis=-1)

    if not norm:
        ones = jax.tree.map(jnp.ones_like, params)
        return jax.jvp(lp_of, (params,), (ones,))[1]

    def one(x, m, y):
        g = jax.grad(lambda p: jnp.take_along_axis(
            log_probs(p, x, m), y[None], axis=-1)[0])(params)
        return jnp.sqrt(sum(jnp.sum(t * t) for t in jax.tree.leaves(g)))

    per_q = jax.vmap(one, in_axes=(None, None, 0))
    return jax.vmap(per_q, in_axes=(0, 0, 0))(features, mask, answers)
