r"""Synthetic drifting success probabilities mirroring the paper's Fig. 2.

The paper logs per-prompt success rates of a policy during 55 RLOO steps and
asks each predictor for the next mini-batch before seeing it. Without a policy
to train we generate data with the same structure:

* embeddings: ``num_clusters`` Gaussian clusters in ``R^dim``, normalised to
  the unit sphere (like sentence-transformer embeddings);
* latent logit of prompt ``q`` at step ``t``

  .. math::

      \ell_{q,t} = a\,f(x_q) + c + u_q + r\,t\,(1 + h(x_q)),

  with ``f`` and ``h`` smooth random functions (random Fourier features of an
  RBF kernel with length scale ``length_scale``, unit variance), ``u_q ~
  N(0, noise^2)`` per-prompt noise that no embedding can explain, and a drift
  whose speed ``r (1 + h(x))`` varies smoothly over the embedding space (some
  topics improve faster than others);
* success probability ``p_{q,t} = sigmoid(l_{q,t})``; each prompt in a batch
  gets ``rollouts`` Bernoulli rollouts.

Batches of ``batch_size`` prompts come from an epoch-wise random permutation
(a dataloader without replacement). :data:`FIG2_PARAMS` is the setting used by
the prediction benchmark; it was fixed before any predictor was compared on it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["FIG2_PARAMS", "DriftingProblem", "drifting_problem", "success_probs",
           "batch_schedule"]

#: Generator parameters of the prediction benchmark (fixed before comparing).
FIG2_PARAMS = dict(
    num_prompts=8192,
    dim=32,
    num_clusters=16,
    cluster_std=0.5,
    length_scale=0.7,
    num_features=128,
    amplitude=1.5,
    offset=-0.5,
    noise=0.7,
    drift=0.04,
)


class DriftingProblem(NamedTuple):
    """A synthetic prompt set.

    Attributes (NumPy arrays):
      embeddings: ``(Q, dim)`` unit-norm float32 embeddings.
      base_logit: ``(Q,)`` ``a f(x_q) + c + u_q``.
      drift_rate: ``(Q,)`` ``r (1 + h(x_q))``, logits gained per step.
      smooth_part: ``(Q,)`` ``a f(x_q) + c`` (the part embeddings can explain).
    """

    embeddings: np.ndarray
    base_logit: np.ndarray
    drift_rate: np.ndarray
    smooth_part: np.ndarray


def _random_function(rng, x, length_scale, num_features):
    """A unit-variance sample path of an RBF-kernel GP (random features)."""
    w = rng.normal(size=(x.shape[1], num_features)) / length_scale
    b = rng.uniform(0, 2 * np.pi, num_features)
    return np.sqrt(2.0 / num_features) * np.cos(x @ w + b[None, :]).sum(axis=1)


def drifting_problem(seed: int, **params) -> DriftingProblem:
    """Draw a prompt set (NumPy, seeded); ``params`` override :data:`FIG2_PARAMS`.

    >>> prob = drifting_problem(0, num_prompts=100)
    >>> prob.embeddings.shape, prob.embeddings.dtype
    ((100, 32), dtype('float32'))
    """
    unknown = set(params) - set(FIG2_PARAMS)
    if unknown:
        raise ValueError(f"unknown parameters {sorted(unknown)}; valid: "
                         f"{sorted(FIG2_PARAMS)}")
    p = {**FIG2_PARAMS, **params}
    rng = np.random.default_rng(seed)
    q, d, c = int(p["num_prompts"]), int(p["dim"]), int(p["num_clusters"])
    centres = rng.normal(size=(c, d))
    lab = rng.integers(0, c, q)
    x = centres[lab] + p["cluster_std"] * rng.normal(size=(q, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    f = _random_function(rng, x, p["length_scale"], int(p["num_features"]))
    h = _random_function(rng, x, p["length_scale"], int(p["num_features"]))
    smooth = p["amplitude"] * f + p["offset"]
    u = p["noise"] * rng.normal(size=q)
    return DriftingProblem(x.astype(np.float32), smooth + u, p["drift"] * (1 + h),
                           smooth)


def success_probs(problem: DriftingProblem, step, idx=None) -> np.ndarray:
    """``p_{q,t} = sigmoid(base_logit + drift_rate * t)`` for prompts ``idx``."""
    base, rate = problem.base_logit, problem.drift_rate
    if idx is not None:
        base, rate = base[idx], rate[idx]
    return 1 / (1 + np.exp(-(base + rate * step)))


def batch_schedule(seed: int, num_prompts: int, batch_size: int, steps: int
                   ) -> np.ndarray:
    """``(steps, batch_size)`` prompt indices: epoch-wise permutations."""
    rng = np.random.default_rng(seed)
    per_epoch = num_prompts // batch_size
    out = []
    while len(out) < steps:
        perm = rng.permutation(num_prompts)
        out.extend(perm[i * batch_size:(i + 1) * batch_size]
                   for i in range(per_epoch))
    return np.stack(out[:steps])
