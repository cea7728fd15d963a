r"""Pre-rollout prompt selection: which ``B`` prompts a round trains on.

Every round offers each arm the same ordered stream of ``P`` distinct
candidate prompts (its first ``B`` are the batch of the arms that do not
select). A selector returns exactly ``B`` distinct prompts of that stream, so
every arm still spends exactly ``C = B n_bar`` rollouts per round. All
functions are pure and jittable; the state is a per-prompt pytree.

**GRESO-style skipping** (Zheng et al. (2025), "Act Only When It Pays:
Efficient Reinforcement Learning for LLM Reasoning via Selective Rollouts";
code: Infini-AI-Lab/GRESO, ``presampling_selector.py``). A prompt whose last
``z`` visits were all-correct groups (``z_easy``) or all-wrong groups
(``z_hard``) is kept with probability

.. math::

    \pi_{\text{keep}} = \max(p_e^{z}, f), \qquad f = 0.01,

with ``p_e = p_easy`` or ``p_hard``. After each round the exploration
probabilities move by 0.01 (within [0.05, 0.95]) toward a target share of
zero-variance groups of 0.25 (1/3 of it all-correct, 2/3 all-wrong), as in the
reference code, from the second pass over the training pool on. The first
``B`` kept candidates in stream order form the batch; if fewer than ``B``
are kept, the batch is completed with the earliest skipped ones (counted).

**MoPPS-style selection** (Qu et al. (2025), "Can Prompt Difficulty be
Online Predicted for Accelerating RL Finetuning of Reasoning Models?"; code:
thu-rllab/MoPPS, ``mopps.py``). Each prompt has a Beta posterior over its
success rate; after ``s`` successes in ``n`` rollouts

.. math::

    \alpha \leftarrow \lambda \alpha + (1 - \lambda)\alpha_0 + s, \qquad
    \beta \leftarrow \lambda \beta + (1 - \lambda)\beta_0 + n - s,

with ``lambda = 0.5`` and prior ``Beta(1, 1)``. A round draws one Thompson
sample per candidate of the first ``2B`` of the stream and keeps the ``B``
nearest the target rate 1/2.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "GresoState",
    "MoppsState",
    "GRESO_DEFAULTS",
    "MOPPS_DEFAULTS",
    "pool_size",
    "greso_init",
    "greso_keep_probability",
    "greso_select",
    "greso_observe",
    "mopps_init",
    "mopps_select",
    "mopps_observe",
    "mopps_mean",
]

#: GRESO's settings in the reference code (``p_easy = p_hard = 0.5`` at the
#: start, ``target_zero_variance = 0.25``, steps of 0.01 within [0.05, 0.95],
#: floor 0.01) and the candidate stream length, in units of ``B``.
GRESO_DEFAULTS = dict(p_init=0.5, target=0.25, step=0.01, p_min=0.05, p_max=0.95,
                      floor=0.01, pool=4)

#: MoPPS's settings (``bandit_decay_ratio = 0.5``, prior ``Beta(1, 1)``,
#: ``bandit_target_mean = 0.5``) and the candidate pool, in units of ``B``.
MOPPS_DEFAULTS = dict(decay=0.5, prior_alpha=1.0, prior_beta=1.0, target=0.5,
                      pool=2)

#: Candidate stream length in units of ``B`` (the longest any selector reads).
_POOL = max(GRESO_DEFAULTS["pool"], MOPPS_DEFAULTS["pool"])


def pool_size(batch_size: int) -> int:
    """Length ``P`` of the per-round candidate stream."""
    return _POOL * batch_size


class GresoState(NamedTuple):
    """Per-prompt zero-variance streaks and the two exploration probabilities.

    Attributes:
      easy: ``(Q,)`` int32, consecutive visits with every rollout correct.
      hard: ``(Q,)`` int32, consecutive visits with every rollout wrong.
      p_easy, p_hard: scalars, the base ``p_e`` of the keep probability.
    """

    easy: jax.Array
    hard: jax.Array
    p_easy: jax.Array
    p_hard: jax.Array


class MoppsState(NamedTuple):
    """Per-prompt Beta posterior ``Beta(alpha, beta)`` over the success rate."""

    alpha: jax.Array
    beta: jax.Array


def greso_init(num_prompts: int, *, p_init: float = 0.5) -> GresoState:
    """No history: every prompt is kept with probability 1."""
    z = jnp.zeros((num_prompts,), jnp.int32)
    return GresoState(z, z, jnp.float32(p_init), jnp.float32(p_init))


def greso_keep_probability(state: GresoState, idx: jax.Array, *,
                           floor: float = 0.01) -> jax.Array:
    """``max(p_e^z, floor)`` for prompts ``idx`` (1 without a streak)."""
    ze, zh = state.easy[idx], state.hard[idx]
    pe = jnp.maximum(state.p_easy ** ze.astype(jnp.float32), floor)
    ph = jnp.maximum(state.p_hard ** zh.astype(jnp.float32), floor)
    return jnp.where(ze > 0, pe, jnp.where(zh > 0, ph, 1.0))


def greso_select(state: GresoState, pool: jax.Array, key: jax.Array,
                 batch_size: int, *, floor: float = 0.01
                 ) -> tuple[jax.Array, jax.Array]:
    """``B`` prompts of the stream ``pool`` and how many were filled in.

    Kept candidates come first in stream order, then skipped ones (which
    complete the batch only when fewer than ``B`` are kept).
    """
    n = pool.shape[0]
    kept = jax.random.uniform(key, (n,)) < greso_keep_probability(
        state, pool, floor=floor)
    order = jnp.argsort(jnp.where(kept, 0, n) + jnp.arange(n))
    filled = jnp.maximum(batch_size - jnp.sum(kept), 0)
    return pool[order[:batch_size]], filled.astype(jnp.int32)


def greso_observe(state: GresoState, idx: jax.Array, successes: jax.Array,
                  counts: jax.Array, adapt: jax.Array, *, target: float = 0.25,
                  step: float = 0.01, p_min: float = 0.05, p_max: float = 0.95
                  ) -> GresoState:
    """Update the streaks of prompts ``idx`` and (if ``adapt``) ``p_e``."""
    all_ok = successes == counts
    all_bad = successes == 0
    easy = state.easy.at[idx].set(jnp.where(all_ok, state.easy[idx] + 1, 0))
    hard = state.hard.at[idx].set(jnp.where(all_bad, state.hard[idx] + 1, 0))

    def move(p, share, goal):
        new = jnp.where(share >= goal, jnp.maximum(p - step, p_min),
                        jnp.minimum(p + step, p_max))
        return jnp.where(adapt, new, p)

    p_easy = move(state.p_easy, jnp.mean(all_ok), target / 3)
    p_hard = move(state.p_hard, jnp.mean(all_bad), target * 2 / 3)
    return GresoState(easy, hard, p_easy, p_hard)


def mopps_init(num_prompts: int, *, prior_alpha: float = 1.0,
               prior_beta: float = 1.0) -> MoppsState:
    """Every prompt at the prior ``Beta(alpha_0, beta_0)``."""
    return MoppsState(jnp.full((num_prompts,), prior_alpha, jnp.float32),
                      jnp.full((num_prompts,), prior_beta, jnp.float32))


def mopps_select(state: MoppsState, pool: jax.Array, key: jax.Array,
                 batch_size: int, *, target: float = 0.5, candidates: int
                 ) -> jax.Array:
    """Thompson draws for the first ``candidates`` of ``pool``; the ``B``
    nearest ``target`` (ties: earlier in the stream)."""
    cand = pool[:candidates]
    draw = jax.random.beta(key, state.alpha[cand], state.beta[cand])
    order = jnp.argsort((draw - target) ** 2, stable=True)
    return cand[order[:batch_size]]


def mopps_observe(state: MoppsState, idx: jax.Array, successes: jax.Array,
                  counts: jax.Array, *, decay: float = 0.5,
                  prior_alpha: float = 1.0, prior_beta: float = 1.0
                  ) -> MoppsState:
    """Discounted Beta update of prompts ``idx`` (distinct) with ``s`` of ``n``."""
    s = successes.astype(jnp.float32)
    f = counts.astype(jnp.float32) - s
    a = decay * state.alpha[idx] + (1 - decay) * prior_alpha + s
    b = decay * state.beta[idx] + (1 - decay) * prior_beta + f
    return MoppsState(state.alpha.at[idx].set(a), state.beta.at[idx].set(b))


def mopps_mean(state: MoppsState, idx: jax.Array) -> jax.Array:
    """Posterior mean ``alpha / (alpha + beta)`` of prompts ``idx``."""
    a, b = state.alpha[idx], state.beta[idx]
    return a / (a + b)
