r"""The verifiable task: "which of these numbers is the largest?".

A prompt ``q`` shows ``k_q`` integers ``v_{q,1..k_q}`` in ``{0, ..., D-1}``
(``2 <= k_q <= K``) with a unique maximum; the answer is one token, the index
of the maximum, out of the ``k_q`` valid slots. The reward of a sampled answer
``y`` is ``R = +1`` if ``y = argmax_i v_{q,i}`` and ``-1`` otherwise (the
paper's ±1 convention), checked exactly.

Difficulty varies by construction: an untrained policy succeeds with
probability about ``1/k_q`` (0.5 down to ``1/K``), and prompts whose two
largest numbers differ by 1 stay hard longer than prompts with a wide gap.

Three representations of a prompt:

* ``features`` ``(Q, 2K)``: the policy's input, the values scaled to
  ``[0, 1]`` in the first ``k_q`` slots (0 elsewhere) followed by the slot mask.
* :func:`network_embeddings` ``(Q, d)``: what the predictors see by default,
  a stand-in for a frozen sentence encoder: a fixed, seeded random network
  over the prompt's tokens (one token per shown number and its position),
  L2-normalised. Distinct prompts get distinct vectors; the network knows
  nothing about the task's difficulty.
* ``embeddings`` ``(Q, 3)``: the task's own difficulty descriptors,
  ``[k_q / K, gap_q / (D - 1), argmax_q / (K - 1)]``, where ``gap_q`` is the
  margin between the two largest values. Privileged information no real
  encoder has, and coarse: many prompts share one point. Kept as a secondary
  arm for continuity with earlier reports.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from vipcore._src._checks import check_int

__all__ = ["Task", "make_task", "network_embeddings"]


class Task(NamedTuple):
    """A pool of prompts (all arrays NumPy, first axis = prompt).

    Attributes:
      values: ``(Q, K)`` int, the shown integers; 0 in unused slots.
      k: ``(Q,)`` int, number of valid answer slots ``k_q``.
      answer: ``(Q,)`` int, index of the unique maximum (the correct token).
      mask: ``(Q, K)`` bool, ``True`` on the ``k_q`` valid slots.
      features: ``(Q, 2K)`` float32, the policy input (values / (D-1), mask).
      embeddings: ``(Q, 3)`` float32, the GP embedding (see module docstring).
      gap: ``(Q,)`` int, largest minus second-largest value (>= 1).
    """

    values: np.ndarray
    k: np.ndarray
    answer: np.ndarray
    mask: np.ndarray
    features: np.ndarray
    embeddings: np.ndarray
    gap: np.ndarray

    @property
    def num_prompts(self) -> int:
        """Number of prompts ``Q``."""
        return int(self.k.shape[0])

    @property
    def num_slots(self) -> int:
        """Vocabulary size ``K`` (the largest possible ``k_q``)."""
        return int(self.mask.shape[1])

    def subset(self, idx: np.ndarray) -> Task:
        """The prompts at ``idx`` (NumPy fancy indexing on every field)."""
        return Task(*(np.asarray(f)[idx] for f in self))


def make_task(
    num_prompts: int,
    *,
    num_slots: int = 16,
    num_values: int = 10,
    min_slots: int = 2,
    seed: int = 0,
) -> Task:
    """Generate ``num_prompts`` prompts deterministically from ``seed``.

    ``k_q`` is uniform on ``{min_slots, ..., num_slots}``; the ``k_q`` values
    are drawn uniformly from ``{0, ..., num_values - 1}`` conditioned on a
    unique maximum (rejection sampling).

    Args:
      num_prompts: ``Q >= 1``.
      num_slots: ``K >= 2``, the answer vocabulary size.
      num_values: ``D >= 2``, values lie in ``{0, ..., D-1}``.
      min_slots: smallest ``k_q``, in ``[2, K]``.
      seed: NumPy seed; the same arguments always give the same task.

    >>> t = make_task(4, num_slots=4, seed=1)
    >>> t.features.shape, t.embeddings.shape, bool((t.answer < t.k).all())
    ((4, 8), (4, 3), True)
    """
    q = check_int("num_prompts", num_prompts, minimum=1)
    kmax = check_int("num_slots", num_slots, minimum=2)
    d = check_int("num_values", num_values, minimum=2)
    kmin = check_int("min_slots", min_slots, minimum=2)
    if kmin > kmax:
        raise ValueError(f"min_slots must be in [2, num_slots={kmax}]; got {kmin}")
    rng = np.random.default_rng(seed)
    k = rng.integers(kmin, kmax + 1, size=q)
    values = np.zeros((q, kmax), dtype=np.int64)
    mask = np.arange(kmax)[None, :] < k[:, None]
    todo = np.arange(q)
    while todo.size:
        v = rng.integers(0, d, size=(todo.size, kmax))
        v = np.where(mask[todo], v, -1)
        top = v.max(axis=1, keepdims=True)
        unique = (v == top).sum(axis=1) == 1
        values[todo[unique]] = np.where(mask[todo[unique]], v[unique], 0)
        todo = todo[~unique]
    masked = np.where(mask, values, -1)
    answer = masked.argmax(axis=1)
    srt = np.sort(masked, axis=1)
    gap = srt[:, -1] - srt[:, -2]
    features = np.concatenate(
        [np.where(mask, values / (d - 1), 0.0), mask.astype(np.float64)], axis=1
    ).astype(np.float32)
    embeddings = np.stack(
        [k / kmax, gap / (d - 1), answer / (kmax - 1)], axis=1
    ).astype(np.float32)
    return Task(values, k, answer, mask, features, embeddings, gap)


def network_embeddings(task: Task, *, dim: int = 64, hidden: int = 256,
                       num_values: int | None = None, seed: int = 0
                       ) -> np.ndarray:
    r"""A frozen random-network embedding of each prompt, ``(Q, dim)`` float32.

    The prompt is read as tokens, one per shown number: the one-hot code of
    (slot, value) in a ``K x D`` vocabulary. A two-layer network with fixed
    Gaussian weights (seeded; never trained) maps the bag of tokens to
    ``dim`` numbers, which are L2-normalised:

    .. math::

        e_q = \frac{W_2^\top \tanh(W_1^\top x_q / \sqrt{k_q})}
                  {\lVert W_2^\top \tanh(W_1^\top x_q / \sqrt{k_q}) \rVert_2},
        \qquad (W_1)_{ij} \sim \mathcal N(0, 1),\;
        (W_2)_{ij} \sim \mathcal N(0, 1/h),

    with ``x_q`` the 0/1 indicator of the prompt's tokens and ``h`` the
    hidden width (unit-norm input, so pre-activations are standard normal).

    Prompts that share tokens are close, as with a sentence encoder; prompts
    with different tokens get different vectors (with probability 1 over the
    weights), and identical prompts identical ones.

    Args:
      task: the prompts.
      dim, hidden: output and hidden widths.
      num_values: ``D`` (default: one more than the largest shown value).
      seed: NumPy seed of the frozen weights.

    >>> t = make_task(5, num_slots=4, seed=1)
    >>> e = network_embeddings(t, dim=8)
    >>> e.shape, bool(np.allclose(np.linalg.norm(e, axis=1), 1.0))
    ((5, 8), True)
    """
    d = int(task.values.max()) + 1 if num_values is None else num_values
    if d <= int(task.values.max()):
        raise ValueError(f"num_values must exceed the largest value "
                         f"{int(task.values.max())}; got {d}")
    q, k = task.values.shape
    tokens = np.zeros((q, k * d))
    rows, slot = np.nonzero(task.mask)
    tokens[rows, slot * d + task.values[task.mask]] = 1.0
    tokens /= np.sqrt(task.k)[:, None]  # unit norm: pre-activations ~ N(0, 1)
    rng = np.random.default_rng([seed, 20250])
    w1 = rng.normal(size=(k * d, hidden))
    w2 = rng.normal(size=(hidden, dim)) / np.sqrt(hidden)
    out = np.tanh(tokens @ w1) @ w2
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)
