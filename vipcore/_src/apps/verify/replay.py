r"""Replay of a trajectory of true success probabilities: does a prediction pay?

A *trajectory* lists, for every round ``t`` of a training run, the prompts of
the batch and their exact success probabilities ``p_{q,t}``. The replay feeds
a predictor round by round, exactly as a trainer would: predict the batch,
allocate ``C`` rollouts with the exact VIP allocator on an effective ``p``
(:mod:`vipcore._src.predict.uncertainty`), draw ``n_q`` Bernoulli rollouts
per prompt from the *true* ``p``, observe them. It scores each round by the
allocation objective (problem (5) of Nguyen et al. (2025), "Adaptive Rollout
Allocation for Online Reinforcement Learning with Verifiable Rewards")
evaluated at the true ``p``,

.. math::

    J_t(n) = \sum_{q \in B_t} 4 p_{q,t}(1 - p_{q,t})\, c(n_q),

beside the uniform split (``n_q = C/B``) and the oracle allocation (the
allocator given the true ``p``), and by the *starvation rate*: the share of
mid-range prompts (``lo <= p <= hi``, default ``[0.2, 0.8]``) that got only
``L`` rollouts. The replay is open-loop: the policy's trajectory does not
react to the allocation (the rollouts it draws do feed the predictor).

Everything runs in one jitted ``lax.scan`` over rounds, ``vmap``-ed over
observation seeds, with the predictor used only through its protocol
functions (so any registered predictor replays by name).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vipcore._src.allocation.objective import objective_terms
from vipcore._src.allocation.solve import solve
from vipcore._src.predict.registry import get_predictor
from vipcore._src.predict.uncertainty import effective_probabilities

__all__ = ["Trajectory", "ReplaySettings", "simulate_trajectory",
           "synthetic_trajectory", "random_net_embeddings", "run_replay",
           "summarize", "SPECIAL"]

#: Replay "predictors" that are not registered models: ``"oracle"`` allocates
#: on the true ``p``; ``"previous_p"`` on the exact ``p`` of the prompt's
#: previous visit (the batch mean of the previous round before a first visit).
SPECIAL = ("oracle", "previous_p")

TRAJECTORY_FILE = (Path(__file__).resolve().parents[4] / "benchmarks" / "results"
                   / "replay_trajectory_simulate.npz")


class Trajectory(NamedTuple):
    """Rounds of a training run (NumPy).

    Attributes:
      ids: ``(R, T, B)`` int32 prompt indices (``R`` independent runs).
      p: ``(R, T, B)`` exact success probabilities of those prompts.
      embeddings: ``(Q, d)`` float32 prompt embeddings.
      name: a label for reports.
    """

    ids: np.ndarray
    p: np.ndarray
    embeddings: np.ndarray
    name: str


class ReplaySettings(NamedTuple):
    """Allocation settings of a replay: budget ``C = B * rollouts``, bounds,
    estimator and the mid-range of the starvation rate."""

    rollouts: int = 8
    lower: int = 3
    upper: int = 32
    estimator: str = "rloo"
    mid: tuple[float, float] = (0.2, 0.8)


def random_net_embeddings(features: np.ndarray, *, dim: int = 64, seed: int = 0
                          ) -> np.ndarray:
    """A frozen, seeded random ReLU network over ``features``, L2-normalised:
    distinct embeddings for distinct prompts (a stand-in for a sentence
    encoder)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(features, np.float64)
    h = np.maximum(x @ rng.normal(size=(x.shape[1], 256)) / np.sqrt(x.shape[1])
                   + rng.normal(size=256) * 0.1, 0)
    z = h @ rng.normal(size=(256, dim)) / 16
    return (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)


def simulate_trajectory(path: Path | str | None = None, *,
                        embedding: str = "descriptor") -> Trajectory:
    """The recorded uniform ``vipcore simulate`` run
    (``benchmarks/replay_record.py``); ``embedding`` is ``"descriptor"`` (the
    task's ``(Q, 3)`` difficulty descriptor, many exact duplicates) or
    ``"random_net"`` (:func:`random_net_embeddings` of the policy input)."""
    with np.load(TRAJECTORY_FILE if path is None else path) as z:
        ids, p = z["ids"].astype(np.int32), z["p"].astype(np.float32)
        emb = z["embeddings"] if embedding == "descriptor" else (
            random_net_embeddings(z["features"]))
    return Trajectory(ids, p, emb.astype(np.float32), f"simulate/{embedding}")


def synthetic_trajectory(seed: int, *, steps: int, batch_size: int = 512,
                         runs: int = 1, **params) -> Trajectory:
    """Rounds of the drifting synthetic problem of the prediction section."""
    from vipcore._src.apps.verify import synthetic

    prob = synthetic.drifting_problem(seed, **params)
    q = prob.embeddings.shape[0]
    ids = np.stack([synthetic.batch_schedule(seed + 100 * r, q, batch_size, steps)
                    for r in range(runs)]).astype(np.int32)
    p = np.stack([[synthetic.success_probs(prob, t, ids[r, t])
                   for t in range(steps)] for r in range(runs)])
    return Trajectory(ids, p.astype(np.float32), prob.embeddings, "synthetic")


def _probe(state) -> jax.Array:
    """``(max |m|, share of |m| > 10)`` of a GP latent mean in ``state`` (NaN
    when the predictor has no GP)."""
    from vipcore._src.predict.gp import GPState

    inner = state.prior if hasattr(state, "prior") else state
    if not isinstance(inner, GPState):
        return jnp.full((2,), jnp.nan, jnp.float32)
    m = jnp.abs(inner.mean)
    return jnp.stack([jnp.max(m), jnp.mean(m > 10)]).astype(jnp.float32)


def _round_metrics(pt, m, n, res_oracle, s: ReplaySettings, nbar):
    a = 4 * pt * (1 - pt)
    mid = (pt >= s.mid[0]) & (pt <= s.mid[1])
    uni = jnp.full(n.shape, nbar, n.dtype)
    return jnp.stack([
        jnp.sum(objective_terms(a, n, s.estimator)),
        jnp.sum(objective_terms(a, uni, s.estimator)),
        res_oracle,
        jnp.sum(mid & (n == s.lower)).astype(a.dtype),
        jnp.sum(mid).astype(a.dtype),
        jnp.sum(jnp.abs(m - pt)),
        jnp.sum((m - pt) ** 2),
        jnp.asarray(pt.shape[0], a.dtype),
    ])


#: Names of the per-round metrics :func:`run_replay` returns (last axis).
METRICS = ("objective", "objective_uniform", "objective_oracle", "starved",
           "mid", "abs_err", "sq_err", "prompts")


@functools.lru_cache(maxsize=64)
def _replay_fn(name: str, options: tuple, rule: str, z: float,
               s: ReplaySettings, batch: int):
    pred = None if name in SPECIAL else get_predictor(name).factory(
        link="sigmoid", **dict(options))
    if name == "previous_p":
        pred = get_predictor("moving_average").factory(window=1)
    if rule != "plugin" and (pred is None or pred.variance is None):
        rule = "plugin"
    C, nbar = batch * s.rollouts, s.rollouts

    def body(carry, xs):
        state, key = carry
        idx, pt = xs
        if name == "oracle":
            m, v = pt, None
        else:
            m = pred.predict(state, idx).astype(pt.dtype)
            v = pred.variance(state, idx) if rule != "plugin" else None
        pe = effective_probabilities(m, v, rule=rule, z=z)
        n = solve(pe, C, s.lower, s.upper, estimator=s.estimator).n
        oracle = solve(pt, C, s.lower, s.upper, estimator=s.estimator).objective
        key, k = jax.random.split(key)
        succ = jax.random.binomial(k, n.astype(pt.dtype), pt)
        if name == "previous_p":
            state = pred.update(state, idx, pt, jnp.ones_like(pt))
        elif pred is not None:
            state = pred.update(state, idx, succ / n, n.astype(pt.dtype))
        out = _round_metrics(pt, m, n, oracle, s, nbar)
        return (state, key), (out, _probe(state))

    def run(state0, ids, p, key):
        return jax.lax.scan(body, (state0, key), (ids, p))[1]

    return pred, jax.jit(jax.vmap(run, in_axes=(None, None, None, 0)))


def run_replay(traj: Trajectory, name: str, *, options: dict | None = None,
               rule: str = "plugin", z: float = 1.0,
               settings: ReplaySettings | None = None, seeds: int = 3,
               seed: int = 0) -> dict[str, Any]:
    """Replay every run of ``traj`` with predictor ``name`` and ``seeds``
    observation seeds each.

    Returns ``{"metrics": (R, seeds, T, len(METRICS)), "probe": (R, seeds, T,
    2)}`` as NumPy arrays.
    """
    settings = ReplaySettings() if settings is None else settings
    opts = tuple(sorted((options or {}).items()))
    r_, _, b_ = traj.ids.shape
    pred, fn = _replay_fn(name, opts, rule, float(z), settings, b_)
    mets, probes = [], []
    for r in range(r_):
        state0 = None if name == "oracle" else pred.init(
            traj.embeddings.shape[0],
            None if name in SPECIAL else traj.embeddings)
        keys = jax.random.split(jax.random.key(seed * 7919 + r), seeds)
        out, probe = fn(state0, jnp.asarray(traj.ids[r]), jnp.asarray(traj.p[r]),
                        keys)
        mets.append(np.asarray(out, np.float64))
        probes.append(np.asarray(probe, np.float64))
    return {"metrics": np.stack(mets), "probe": np.stack(probes)}


def summarize(res: dict[str, Any], *, skip: int = 0) -> dict[str, Any]:
    """Ratios of sums over rounds ``>= skip``, pooled and per replicate.

    ``objective_vs_uniform`` and ``objective_vs_oracle`` are
    ``sum_t J_t(n) / sum_t J_t(uniform)`` and ``/ sum_t J_t(oracle)``;
    ``starved`` is the starved share of mid-range prompt-rounds; ``mae`` and
    ``rmse`` compare the prediction with the true ``p``. ``per_replicate``
    holds the objective ratio of every (run, seed) pair, whose spread is the
    replicate spread.
    """
    m = res["metrics"][:, :, skip:]
    tot = m.sum(axis=2)  # (R, S, metrics)
    k = {name: i for i, name in enumerate(METRICS)}
    per = tot[..., k["objective"]] / tot[..., k["objective_uniform"]]
    out = {
        "objective_vs_uniform": float(tot[..., k["objective"]].sum()
                                      / tot[..., k["objective_uniform"]].sum()),
        "oracle_vs_uniform": float(tot[..., k["objective_oracle"]].sum()
                                   / tot[..., k["objective_uniform"]].sum()),
        "objective_vs_oracle": float(tot[..., k["objective"]].sum()
                                     / tot[..., k["objective_oracle"]].sum()),
        "starved": float(tot[..., k["starved"]].sum()
                         / max(tot[..., k["mid"]].sum(), 1)),
        "per_replicate": per.ravel().tolist(),
        "replicate_sd": float(per.std(ddof=1)) if per.size > 1 else float("nan"),
    }
    prompts = tot[..., k["prompts"]].sum()
    out["mae"] = float(tot[..., k["abs_err"]].sum() / prompts)
    out["rmse"] = float(np.sqrt(tot[..., k["sq_err"]].sum() / prompts))
    probe = res["probe"][:, :, skip:]
    if np.isfinite(probe).any():
        out["max_abs_latent"] = float(np.nanmax(probe[..., 0]))
        out["share_abs_latent_gt_10"] = float(np.nanmean(probe[..., 1]))
    return out

