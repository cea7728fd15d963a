r"""Framework-free pieces of the trainer adapters (NumPy and the core only).

A trainer with a fixed group width ``n̄`` (TRL's ``num_generations``) hands
the adapter ``B n̄`` rows: ``B`` prompts, each ``n̄`` times. The adapter plans
counts ``n_q`` with ``sum_q n_q = B n̄`` (the same number of completions, so
every batch-size invariant of the trainer still holds), repeats prompt ``q``
``n_q`` times, and after scoring computes the advantages over the ragged
groups with :func:`vipcore.advantages`.

Group advantages as TRL computes them (``trl/trainer/grpo_trainer.py``,
``_generate_and_score_completions``), with ``R`` the weighted sum of the
reward functions (NaN when every function returned ``None``):

.. math::

    A_j = \frac{R_j - \bar R_{g(j)}}{s + 10^{-4}},\qquad
    s = \begin{cases}
      \mathrm{std}_1(R_{g(j)}) & \texttt{scale\_rewards="group"}\\
      \mathrm{std}_1(R) & \texttt{"batch"}\\
      \text{no division} & \texttt{"none"}
    \end{cases}

with ``std_1`` the sample standard deviation (Bessel's correction) over the
non-missing rewards and missing rewards given advantage 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from vipcore._src.variance import advantages

__all__ = [
    "SCALE_REWARDS",
    "AGGREGATIONS",
    "TRL_EPS",
    "GroupedRewards",
    "unique_prompts",
    "expand_rows",
    "group_index",
    "process_slice",
    "trl_advantages",
    "zero_std_groups",
]

#: ``scale_rewards`` modes of TRL's ``GRPOConfig`` the adapter reproduces.
SCALE_REWARDS = ("group", "batch", "none")
#: ``multi_objective_aggregation`` modes of TRL's ``GRPOConfig``.
AGGREGATIONS = ("sum_then_normalize", "normalize_then_sum")
#: The constant TRL adds to the standard deviation.
TRL_EPS = 1e-4


class GroupedRewards(NamedTuple):
    """Rewards and advantages of one generation batch, in row order.

    Attributes:
      rewards: ``(C,)`` the weighted sum of the reward functions per
        completion (NaN: unscorable), what the planner observes.
      advantages: ``(C,)`` advantages (0 for unscorable completions).
      zero_std: ``(B,)`` True where a prompt's rewards have zero spread
        (at least two scorable completions, all with the same reward).
    """

    rewards: np.ndarray
    advantages: np.ndarray
    zero_std: np.ndarray


def unique_prompts(
    rows: Sequence[dict[str, Any]], id_column: str, n_bar: int
) -> tuple[list[dict[str, Any]], list[Any]]:
    """The distinct prompts of a generation batch, in order of appearance.

    Checks that every prompt id appears exactly ``n_bar`` times (the stock
    ``RepeatSampler`` layout) and raises ``ValueError`` otherwise: a duplicate
    id in the dataset column would otherwise merge two prompts.
    """
    first: dict[Any, int] = {}
    seen: Counter = Counter()
    for i, row in enumerate(rows):
        if id_column not in row:
            raise ValueError(f"the dataset has no column {id_column!r} (id_column)")
        pid = row[id_column]
        try:
            first.setdefault(pid, i)
        except TypeError:
            raise ValueError(f"prompt ids in column {id_column!r} must be hashable "
                             f"(strings or integers); got {pid!r}") from None
        seen[pid] += 1
    for pid, k in seen.items():
        if k != n_bar:
            raise ValueError(
                f"prompt id {pid!r} appears {k} times in the generation batch; "
                f"expected num_generations = {n_bar}. Ids in column {id_column!r} "
                "must be unique per dataset row"
            )
    ids = list(first)
    return [rows[first[p]] for p in ids], ids


def expand_rows(rows: Sequence[dict[str, Any]], counts: np.ndarray) -> list[dict]:
    """Row ``q`` repeated ``counts[q]`` times (shallow copies, prompt-major)."""
    return [dict(row) for row, c in zip(rows, counts, strict=True) for _ in range(c)]


def group_index(counts: np.ndarray) -> np.ndarray:
    """The prompt (0..B-1) of every expanded row."""
    return np.repeat(np.arange(len(counts)), np.asarray(counts, np.int64))


def process_slice(total: int, num_processes: int, process_index: int) -> slice:
    """Equal contiguous share of ``total`` rows for one process."""
    if total % num_processes:
        raise ValueError(f"{total} completions cannot be split evenly over "
                         f"{num_processes} processes")
    per = total // num_processes
    return slice(process_index * per, (process_index + 1) * per)


def _nanstd1(x: np.ndarray) -> float:
    """Sample std over the non-NaN entries (NaN below two of them)."""
    v = x[~np.isnan(x)]
    return float(np.std(v, ddof=1)) if v.size > 1 else float("nan")


def trl_advantages(
    rewards_per_func: np.ndarray,
    weights: np.ndarray,
    counts: np.ndarray,
    *,
    scale_rewards: str = "group",
    aggregation: str = "sum_then_normalize",
    eps: float = TRL_EPS,
) -> GroupedRewards:
    """TRL's group advantages over ragged groups of ``counts[q]`` rows.

    ``rewards_per_func`` is ``(C, F)`` (one column per reward function, NaN
    for ``None``), ``weights`` is ``(F,)``. Computed in float32 as TRL does,
    with :func:`vipcore.advantages` over the groups (``ddof=1``,
    ``singleton="zero"``: a prompt left with one scorable completion gets 0,
    which is what TRL's NaN std leads to).
    """
    rpf = np.asarray(rewards_per_func, np.float32)
    w = np.asarray(weights, np.float32)
    sizes = np.asarray(counts, np.int64)
    if rpf.ndim != 2 or rpf.shape[1] != w.shape[0] or rpf.shape[0] != sizes.sum():
        raise ValueError(f"rewards_per_func must be (sum(counts), len(weights)) = "
                         f"({sizes.sum()}, {w.shape[0]}); got {rpf.shape}")
    unscorable = np.isnan(rpf).all(axis=1)
    raw = np.nansum(rpf * w, axis=1, dtype=np.float32)
    raw[unscorable] = np.nan
    kw = dict(sizes=sizes, ddof=1, eps=eps, singleton="zero")
    if aggregation == "normalize_then_sum":
        per_func = [np.asarray(advantages(rpf[:, k], "grpo", **kw))
                    for k in range(rpf.shape[1])]
        rewards = (np.stack(per_func, axis=1) * w).sum(axis=1, dtype=np.float32)
        ok = ~unscorable
        adv = np.zeros_like(rewards)
        if ok.any():
            rewards[unscorable] = np.nan
            adv[ok] = (rewards[ok] - rewards[ok].mean()) / np.float32(
                _nanstd1(rewards) + eps)
    elif aggregation == "sum_then_normalize":
        rewards = raw
        if scale_rewards == "group":
            adv = np.asarray(advantages(rewards, "grpo", **kw))
        elif scale_rewards in ("none", "batch"):
            adv = np.asarray(advantages(rewards, "drgrpo", **kw))
            if scale_rewards == "batch":
                adv = adv / np.float32(_nanstd1(rewards) + eps)
        else:
            raise ValueError(f"scale_rewards must be one of {SCALE_REWARDS}; "
                             f"got {scale_rewards!r}")
    else:
        raise ValueError(f"multi_objective_aggregation must be one of {AGGREGATIONS}; "
                         f"got {aggregation!r}")
    adv = np.nan_to_num(adv.astype(np.float32), nan=0.0)
    return GroupedRewards(raw, adv, zero_std_groups(raw, sizes))


def zero_std_groups(rewards: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per prompt: at least two scorable rewards, all equal."""
    out = np.zeros(len(counts), bool)
    for q, g in enumerate(np.split(np.asarray(rewards), np.cumsum(counts)[:-1])):
        v = g[~np.isnan(g)]
        out[q] = v.size > 1 and bool(np.all(v == v[0]))
    return out
