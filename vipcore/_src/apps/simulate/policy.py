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
    "filler_log_probs",
    "sample_fillers",
    "sequence_log_prob",
    "projected_gradients",
    "num_params",
]

_NEG = -1e9  # logit of a masked slot; exp underflows to exactly 0


def init_params(key: jax.Array, in_dim: int, out_dim: int, *, hidden: int = 64,
                depth: int = 2, filler_vocab: int = 0) -> dict:
    """He-initialised MLP ``in_dim -> hidden (x depth, ReLU) -> out_dim``.

    The output layer starts small (std ``0.01 / sqrt(hidden)``), so the
    initial policy is nearly uniform over each prompt's valid slots (success
    probability about ``1/k_q``) while the projected gradients ``Z`` are not
    identically zero (a zero output layer makes every ``1^T H(o)`` vanish).

    ``filler_vocab > 0`` adds a second output head (same hidden layers) over
    ``filler_vocab`` "reasoning" tokens; see :func:`sequence_log_prob`.
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
    params = {"layers": layers}
    if filler_vocab:
        wf = jax.random.normal(jax.random.fold_in(key, 99), (hidden, filler_vocab))
        params["filler"] = {"w": wf * (0.01 / hidden**0.5),
                            "b": jnp.zeros((filler_vocab,))}
    return params


def _hidden(params: dict, features: jax.Array) -> jax.Array:
    h = features
    for layer in params["layers"][:-1]:
        h = jax.nn.relu(_dense(h, layer))
    return h


def num_params(params: dict) -> int:
    """Total number of scalar parameters."""
    return int(ravel_pytree(params)[0].size)


def logits(params: dict, features: jax.Array, mask: jax.Array) -> jax.Array:
    """Masked logits ``(..., K)`` for features ``(..., F)``."""
    h = _hidden(params, features)
    return jnp.where(mask, _dense(h, params["layers"][-1]), _NEG)


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


def filler_log_probs(params: dict, features: jax.Array) -> jax.Array:
    """``log pi_f(f | q)`` over the filler vocabulary, ``(..., V_f)``."""
    h = _hidden(params, features)
    return jax.nn.log_softmax(_dense(h, params["filler"]), axis=-1)


def sample_fillers(key: jax.Array, params: dict, features: jax.Array, num: int,
                   tokens: int) -> jax.Array:
    """``tokens`` i.i.d. filler tokens per rollout: int ``(B, num, tokens)``.

    With no filler head (or ``tokens == 0``) the result has a zero-size last
    axis and every function below reduces to the one-token policy.
    """
    b = features.shape[0]
    if tokens == 0 or "filler" not in params:
        return jnp.zeros((b, num, 0), jnp.int32)
    lf = filler_log_probs(params, features)
    return jax.random.categorical(key, lf[:, None, None, :], axis=-1,
                                  shape=(b, num, tokens))


def sequence_log_prob(params: dict, features: jax.Array, mask: jax.Array,
                      answers: jax.Array, fillers: jax.Array) -> jax.Array:
    r"""Per-token average log-likelihood of each rollout, ``(B, n)``.

    A rollout is ``T`` filler tokens (i.i.d. given the prompt, never affecting
    the reward, like the reasoning tokens of an LLM) and the answer token:

    .. math::

        \ell(o) = \frac{1}{T + 1}\Bigl(\log\pi(y \mid q)
          + \sum_{t=1}^{T} \log\pi_f(f_t \mid q)\Bigr),

    the "average log-likelihood" whose gradient is the paper's ``H(o)``.
    ``T = 0`` gives ``log pi(y | q)``.
    """
    lp = jnp.take_along_axis(log_probs(params, features, mask), answers, axis=-1)
    t = fillers.shape[-1]
    if t == 0:
        return lp
    lf = filler_log_probs(params, features)  # (B, V_f)
    b, n = answers.shape
    lpf = jnp.take_along_axis(lf, fillers.reshape(b, n * t), axis=-1)
    return (lp + lpf.reshape(b, n, t).sum(-1)) / (t + 1)


def pg_loss(params: dict, features: jax.Array, mask: jax.Array,
            answers: jax.Array, weights: jax.Array,
            fillers: jax.Array | None = None) -> jax.Array:
    r"""Surrogate whose gradient is the policy gradient estimate.

    .. math::

        \mathcal L(\theta) = -\sum_{q, j} w_{qj} \log\pi_\theta(y_{qj}\mid q),

    with ``log pi`` the per-token average :func:`sequence_log_prob` when
    ``fillers`` are given, ``weights`` ``w_{qj} = A_{qj} / (n_q B)`` for
    rollouts and 0 for padding, so ``-\nabla\mathcal L = \frac1B\sum_q G_q`` with
    ``G_q = \frac{1}{n_q}\sum_j A_{qj} H(o_{qj})``. One update per
    batch, fully on-policy: the PPO ratio is 1 and clipping would be inactive.
    """
    if fillers is None:
        fillers = jnp.zeros(answers.shape + (0,), jnp.int32)
    lpy = sequence_log_prob(params, features, mask, answers, fillers)  # (B, U)
    return -jnp.sum(jax.lax.stop_gradient(weights) * lpy)


def projected_gradients(params: dict, features: jax.Array, mask: jax.Array,
                        answers: jax.Array, fillers: jax.Array | None = None, *,
                        norm: bool = False) -> jax.Array:
    r"""Per-rollout projected gradients, shape of ``answers`` ``(Q, n)``.

    ``norm=False``: ``Z = 1^\top H(o)`` (one JVP along the all-ones tangent).
    ``norm=True``: ``Z = ||H(o)||_2`` (one reverse pass per rollout).
    """

    if fillers is None:
        fillers = jnp.zeros(answers.shape + (0,), jnp.int32)

    def lp_of(p):
        return sequence_log_prob(p, features, mask, answers, fillers)

    if not norm:
        ones = jax.tree.map(jnp.ones_like, params)
        return jax.jvp(lp_of, (params,), (ones,))[1]

    def one(x, m, y, f):
        g = jax.grad(lambda p: sequence_log_prob(
            p, x[None], m[None], y[None, None], f[None, None])[0, 0])(params)
        return jnp.sqrt(sum(jnp.sum(t * t) for t in jax.tree.leaves(g)))

    per_q = jax.vmap(one, in_axes=(None, None, 0, 0))
    return jax.vmap(per_q, in_axes=(0, 0, 0, 0))(features, mask, answers, fillers)
