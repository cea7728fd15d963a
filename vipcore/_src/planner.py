r"""The trainer-facing planner: predict, allocate, observe, save.

A :class:`Planner` is a small stateful object over the pure functions of a
registered predictor (:mod:`vipcore.predict`) and the allocator
(:func:`vipcore.allocate`). A trainer's step looks like::

    counts = planner.plan(batch_uids, budget)        # rollouts per prompt
    ...  generate counts[i] rollouts for prompt i, score them  ...
    metrics = planner.observe(batch_uids, rewards)   # ragged or padded rewards
    logger.log(metrics)

Layouts: verl-style trainers repeat each prompt ``n_q`` times
(:func:`repeat_index` gives the prompt of every rollout; :func:`group_rewards`
splits the flat rewards back); TRL-style trainers use a fixed group width:
:func:`padded_mask` gives the ``(B, U)`` boolean mask, and padded entries of
the reward array may hold NaN. When the rollouts observed for planned prompts
differ from the plan (for example padded zeros counted as rollouts), the
planner warns (:class:`PlanMismatchWarning`), or raises with ``strict=True``.

Rewards: ``reward="binary"`` takes per-rollout rewards in ``{0, 1}`` or
``{-1, +1}`` (1 = success; the two failure codes may not be mixed in one
call; booleans are 0/1) or per-prompt ``successes`` and ``counts``; the
predictor models the success probability. ``reward="continuous"`` takes real
rewards and models the per-prompt reward variance with the softplus link
(App. E.2 of the VIP paper): the observation is the sample variance (divisor
``n - 1``, prompts with fewer than 2 rollouts are skipped), pooled with
weights ``n - 1``; the plan then allocates on the predicted variances
``v_q``, entered as the equivalent ``p_q = (1 - sqrt(1 - v_q / max v))/2``
(so that ``4 p_q (1 - p_q) = v_q / max v``; a common factor never changes an
allocation).

Allocation under uncertainty (``uncertainty=``, binary rewards): the
allocator is given the posterior mean (``"plugin"``), the posterior-expected
variance ``E[4p(1-p)] = 4(E[p] - E[p]^2 - Var[p])`` (``"expected"``), or the
point of ``E[p] ± z sd`` nearest 1/2 (``"optimistic"``); see
:mod:`vipcore._src.predict.uncertainty`. The last two need a predictor with
a posterior variance (``"beta"``).

Metrics (the dict :meth:`Planner.observe` returns, also
:attr:`Planner.metrics`):

* ``frac_reward_zero_std`` (TRL's name): fraction of the observed prompts
  whose rewards all coincide (zero standard deviation; no gradient signal).
* ``vip/pred_frac_zero_std``: the same fraction as predicted at plan time,
  :math:`\frac1B \sum_q \hat p_q^{n_q} + (1-\hat p_q)^{n_q}` (binary only).
* ``vip/pred_mean_p``: mean predicted success probability of the planned
  batch (``vip/pred_mean_var``: mean predicted reward variance, continuous).
* ``vip/alloc_min``, ``vip/alloc_max``, ``vip/alloc_std``: spread of the
  planned counts ``n_q``.
* ``vip/pred_var_ratio_vs_uniform``: predicted total gradient variance
  :math:`V(n) = \sum_q a_q c(n_q)` of the plan divided by that of the
  uniform plan ``n_q = C/B`` (``a_q`` the variance the allocator was given,
  ``c`` from :func:`vipcore.variance_factor`); below 1 means the plan is
  predicted to help.
* ``vip/rollouts_saved_vs_uniform``: :math:`B\,n_u - C`, where the (real)
  group size ``n_u`` makes the uniform plan reach the same predicted
  variance, :math:`\sum_q a_q c(n_u) = V(n)`: RLOO
  :math:`n_u = 1 + \sum_q a_q / V(n)`; Dr. GRPO the root ``n_u >= 2`` of
  :math:`(n_u-1)/n_u^2 = V(n)/\sum_q a_q`. ``0`` when every ``a_q = 0``.
  ``vip/rollouts_saved_frac`` is that divided by ``C``.
* ``vip/observed_prompts``, ``vip/observed_rollouts``.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from vipcore._src._checks import check_choice, check_int
from vipcore._src._files import atomic_write_bytes
from vipcore._src.allocation.solve import ALLOCATION_ESTIMATORS
from vipcore._src.allocation.status import INT32_MAX, MIN_LOWER
from vipcore._src.predict import _state_io
from vipcore._src.predict._batch import prepare_batch
from vipcore._src.predict.registry import PREDICTORS, get_predictor, state_types
from vipcore._src.predict.uncertainty import RULES, effective_probabilities

__all__ = [
    "PREDICTORS",
    "DEFAULT_PREDICTOR",
    "MAX_ROLLOUTS",
    "Planner",
    "PlanMismatchWarning",
    "repeat_index",
    "padded_mask",
    "group_rewards",
    "FORMAT",
    "FORMAT_VERSION",
]

REWARDS = ("binary", "continuous")
FORMAT = "vipcore.planner"
FORMAT_VERSION = 2
#: The predictor of ``Planner(...)`` for binary rewards: best in the replay
#: benchmark (``docs/prediction.md``) and, in the pre-registered equal-rollout
#: benchmark (``docs/simulate.md``, results), within noise of the best planner
#: on both tasks and never significantly worse than uniform allocation.
DEFAULT_PREDICTOR = "beta"
#: Largest rollout count of one prompt in one :meth:`Planner.observe` call
#: (every count up to it is exact in float32).
MAX_ROLLOUTS = 2**24
#: Planner keywords that configure the predictor (``None`` = its default).
PREDICTOR_OPTIONS = (
    "eps", "noise", "bandwidth", "prior_mean", "jitter", "block_size",
    "latent_bound", "window", "ridge_capacity", "ridge_lam", "discount",
    "prior_strength", "beta_prior", "seed",
)
#: Seconds after which a temporary file of an interrupted save is removed.
STALE_TMP_SECONDS = 600.0


class PlanMismatchWarning(UserWarning):
    """The rollouts observed for planned prompts differ from the plan."""


def repeat_index(counts: ArrayLike) -> np.ndarray:
    """verl layout: the prompt (batch position) of every rollout.

    >>> repeat_index([2, 3]).tolist()
    [0, 0, 1, 1, 1]
    """
    c = np.asarray(counts)
    if c.ndim != 1 or (c.size and (c.dtype.kind not in "iu" or c.min() < 0)):
        raise ValueError("counts must be a 1-D array of non-negative integers")
    return np.repeat(np.arange(c.shape[0]), c)


def padded_mask(counts: ArrayLike, width: int | None = None) -> np.ndarray:
    """TRL layout: ``(B, width)`` mask, row ``q`` has ``counts[q]`` leading Trues.

    >>> padded_mask([1, 3], 3).astype(int).tolist()
    [[1, 0, 0], [1, 1, 1]]
    """
    c = np.asarray(counts)
    if c.ndim != 1 or (c.size and (c.dtype.kind not in "iu" or c.min() < 0)):
        raise ValueError("counts must be a 1-D array of non-negative integers")
    w = int(c.max(initial=0)) if width is None else check_int("width", width)
    if c.size and c.max() > w:
        raise ValueError(f"width must be >= max(counts) = {c.max()}; got {w}")
    return np.arange(w)[None, :] < c[:, None]


def group_rewards(flat_rewards: ArrayLike, counts: ArrayLike) -> list[np.ndarray]:
    """Split verl-style flat rewards (prompt-major) into per-prompt arrays.

    >>> [g.tolist() for g in group_rewards([1, 0, 1, 1, 0], [2, 3])]
    [[1, 0], [1, 1, 0]]
    """
    r = np.asarray(flat_rewards)
    c = np.asarray(counts)
    if r.ndim != 1 or r.shape[0] != int(c.sum()):
        raise ValueError(
            f"flat_rewards must be 1-D with sum(counts) = {int(c.sum())} entries; "
            f"got shape {r.shape}"
        )
    return np.split(r, np.cumsum(c)[:-1])


# ------------------------------------------------------------------ config


def _plain(name: str, value: Any) -> Any:
    """A JSON-able Python value for an option (NumPy scalars converted)."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"{name} must be finite; got {value!r}")
        return v
    raise ValueError(f"{name} must be a number or a string; got {value!r}")


def _resolve_predictor(predictor, reward, has_embeddings):
    if predictor is not None:
        return predictor
    if reward == "binary":
        return DEFAULT_PREDICTOR
    return "gp" if has_embeddings else "moving_average"


def _validate_config(cfg: dict) -> dict:
    """The checked, normalised planner configuration (used by ``__init__``
    and :meth:`Planner.load`); raises ``ValueError`` naming the setting."""
    keys = {"estimator", "lower", "upper", "predictor", "reward", "uncertainty",
            "optimism", "strict", "options"}
    if set(cfg) != keys:
        raise ValueError(f"config must have the keys {sorted(keys)}; got "
                         f"{sorted(cfg)}")
    est = check_choice("estimator", cfg["estimator"], ALLOCATION_ESTIMATORS)
    if est == "grpo" and cfg["reward"] != "binary":
        raise ValueError("estimator='grpo' needs reward='binary' (its objective "
                         "is exact for 0/1 rewards)")
    lower = MIN_LOWER[est] if cfg["lower"] is None else cfg["lower"]
    lower = check_int("lower", lower, minimum=MIN_LOWER[est])
    upper = check_int("upper", cfg["upper"], minimum=1)
    if not lower <= upper <= INT32_MAX:
        raise ValueError(f"upper must lie in [lower = {lower}, {INT32_MAX}]; got "
                         f"{upper}")
    if not isinstance(cfg["predictor"], str):
        raise ValueError(f"predictor must be a name; got {cfg['predictor']!r}")
    spec = get_predictor(cfg["predictor"])
    reward = check_choice("reward", cfg["reward"], REWARDS)
    link = "sigmoid" if reward == "binary" else "softplus"
    if link not in spec.links:
        raise ValueError(f"predictor {cfg['predictor']!r} does not model "
                         f"reward={reward!r}; use 'gp' or 'moving_average'")
    unc = check_choice("uncertainty", cfg["uncertainty"], RULES)
    if unc != "plugin" and reward != "binary":
        raise ValueError(f"uncertainty={unc!r} needs reward='binary'")
    opt = _plain("optimism", cfg["optimism"])
    if isinstance(opt, bool) or not isinstance(opt, int | float) or not opt > 0:
        raise ValueError(f"optimism must be a number > 0; got {cfg['optimism']!r}")
    if not isinstance(cfg["strict"], bool | np.bool_):
        raise ValueError(f"strict must be True or False; got {cfg['strict']!r}")
    options = _validate_options(cfg["options"], spec, cfg["predictor"])
    return dict(estimator=est, lower=lower, upper=upper,
                predictor=cfg["predictor"], reward=reward, uncertainty=unc,
                optimism=float(opt), strict=bool(cfg["strict"]), options=options)


def _validate_options(options, spec, name) -> dict:
    if not isinstance(options, dict):
        raise ValueError(f"options must be a mapping; got {options!r}")
    out = {}
    for key, value in options.items():
        if key not in PREDICTOR_OPTIONS:
            raise ValueError(f"unknown predictor option {key!r}")
        if key not in spec.options:
            takes = ", ".join(f"{k}=" for k in spec.options) or "no options"
            raise ValueError(f"predictor {name!r} does not take {key}= (it takes "
                             f"{takes})")
        out[key] = _plain(key, value)
    return out


def _build(cfg: dict):
    """``(spec, predictor)`` for a validated config; factory errors name the
    Planner keyword."""
    spec = get_predictor(cfg["predictor"])
    link = "sigmoid" if cfg["reward"] == "binary" else "softplus"
    kw = {spec.options[k]: v for k, v in cfg["options"].items()}
    try:
        pred = spec.factory(link=link, **kw)
    except (TypeError, ValueError) as err:
        msg = str(err)
        for pk, fk in spec.options.items():
            if fk != pk and msg.startswith(fk + " "):
                msg = pk + msg[len(fk):]
        raise ValueError(msg) from None
    if cfg["uncertainty"] != "plugin" and pred.variance is None:
        raise ValueError(f"uncertainty={cfg['uncertainty']!r} needs a predictor "
                         f"with a posterior variance (such as 'beta'); "
                         f"{cfg['predictor']!r} has none")
    return spec, pred


def _as_embeddings(embeddings, name="embeddings"):
    if embeddings is None:
        return None
    emb = np.asarray(embeddings)
    if emb.ndim != 2 or emb.shape[1] < 1:
        raise ValueError(f"{name} must have shape (Q, d); got {emb.shape}")
    if emb.dtype.kind in "iub":
        emb = emb.astype(np.float32)
    elif emb.dtype.kind != "f":
        raise ValueError(f"{name} must be numbers; got dtype {emb.dtype}")
    if not np.isfinite(emb).all():
        raise ValueError(f"{name} must be finite")
    return emb


def _norm_id(i):
    if isinstance(i, str):
        return i
    if isinstance(i, int | np.integer) and not isinstance(i, bool | np.bool_):
        return int(i)
    raise ValueError(f"prompt ids must be strings or integers; got {i!r}")


def _num_prompts(emb, num_prompts, ids) -> int:
    sizes = {}
    if emb is not None:
        sizes["embeddings"] = emb.shape[0]
    if num_prompts is not None:
        sizes["num_prompts"] = check_int("num_prompts", num_prompts, minimum=1)
    if ids is not None:
        sizes["ids"] = len(ids)
    if not sizes:
        raise ValueError("give embeddings, num_prompts or ids (how many prompts)")
    if len(set(sizes.values())) > 1:
        raise ValueError("embeddings rows, num_prompts and len(ids) disagree: "
                         + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    q = next(iter(sizes.values()))
    if q < 1:
        raise ValueError("the planner needs at least one prompt")
    return q


class Planner:
    """Predict success probabilities, allocate rollouts, learn from rewards.

    Args:
      embeddings: optional ``(Q, d)`` prompt embeddings (float32
        recommended); needed by the embedding predictors (``"gp"``,
        ``"gp_binomial"``, ``"gp_authors"``, ``"ridge"``) and used by
        ``"beta"`` for its prior when given.
      num_prompts: ``Q`` when there are neither embeddings nor ids.
      ids: optional sequence of ``Q`` unique prompt ids (strings such as
        dataset uids, or integers); default: the row numbers ``0..Q-1``.
      estimator: the allocation objective: ``"rloo"``, ``"drgrpo"``, or
        ``"grpo"`` (std-normalised advantages, the TRL and verl default; binary
        rewards only).
      lower, upper: bounds ``L <= n_q <= U`` on rollouts per prompt;
        ``lower`` defaults to the smallest valid value (2 for RLOO, 3 for
        Dr. GRPO).
      predictor: a name in :data:`PREDICTORS`; default ``"beta"`` for binary
        rewards (``docs/prediction.md`` and ``docs/simulate.md`` for the
        evidence), and for continuous rewards ``"gp"`` (with embeddings) or
        ``"moving_average"``.
      reward: ``"binary"`` (success probability) or ``"continuous"``
        (reward variance, App. E.2 of the VIP paper).
      uncertainty: ``"plugin"``, ``"expected"`` or ``"optimistic"``: what the
        allocator is given (module docstring).
      optimism: ``z`` of ``"optimistic"`` (posterior standard deviations).
      strict: raise instead of warning when observed rollout counts differ
        from the plan.
      eps, noise, bandwidth, prior_mean, jitter, block_size, latent_bound,
        window, ridge_capacity, ridge_lam, discount, prior_strength,
        beta_prior, seed: settings of the chosen predictor (None = its
        default; a setting the predictor does not take raises). See
        :mod:`vipcore.predict` for their meaning.

    >>> import numpy as np
    >>> pl = Planner(num_prompts=6, ids=list("abcdef"), lower=2, upper=8)
    >>> pl.plan(["a", "b"], 8).tolist()          # prior p = 1/2 everywhere
    [4, 4]
    >>> m = pl.observe(["a", "b"], [[1, 1, 1, 1], [0, 1, 0, 1]])
    >>> m["frac_reward_zero_std"]
    0.5
    """

    def __init__(
        self,
        embeddings: ArrayLike | None = None,
        *,
        num_prompts: int | None = None,
        ids: Sequence[Any] | None = None,
        estimator: str = "rloo",
        lower: int | None = None,
        upper: int = 16,
        predictor: str | None = None,
        reward: str = "binary",
        uncertainty: str = "plugin",
        optimism: float = 1.0,
        strict: bool = False,
        eps: float | None = None,
        noise: str | None = None,
        bandwidth: float | str | None = None,
        prior_mean: float | None = None,
        jitter: float | None = None,
        block_size: int | None = None,
        latent_bound: float | None = None,
        window: int | None = None,
        ridge_capacity: int | None = None,
        ridge_lam: float | None = None,
        discount: float | None = None,
        prior_strength: float | None = None,
        beta_prior: str | None = None,
        seed: int | None = None,
    ):
        given = dict(locals())
        opts = {k: given[k] for k in PREDICTOR_OPTIONS if given[k] is not None}
        emb = _as_embeddings(embeddings)
        if isinstance(ids, str):
            raise ValueError("ids must be a sequence of prompt ids, not one string")
        ids = None if ids is None else list(ids)
        q = _num_prompts(emb, num_prompts, ids)
        name = _resolve_predictor(predictor, reward, emb is not None)
        self._config = _validate_config(dict(
            estimator=estimator, lower=lower, upper=upper, predictor=name,
            reward=reward, uncertainty=uncertainty, optimism=optimism,
            strict=strict, options=opts))
        self._spec, self._predictor = _build(self._config)
        if self._spec.needs_embeddings and emb is None:
            raise ValueError(f"predictor {name!r} needs (Q, d) embeddings; pass "
                             "embeddings= or choose a predictor without them "
                             "('beta', 'pooled', 'moving_average')")
        self._set_ids(ids, q)
        self._state = self._predictor.init(
            q, emb if self._spec.uses_embeddings else None)
        self._reset()
        self.step = 0

    def _reset(self):
        self._metrics: dict[str, float] = {}
        self._last_plan: tuple[np.ndarray, np.ndarray] | None = None

    # ------------------------------------------------------------ ids
    def _set_ids(self, ids, q):
        if ids is None:
            self._ids, self._id_map = None, None
            return
        if len(ids) != q:
            raise ValueError(f"ids must have one entry per prompt ({q}); got "
                             f"{len(ids)}")
        norm = [_norm_id(i) for i in ids]
        id_map = {k: i for i, k in enumerate(norm)}
        if len(id_map) != q:
            raise ValueError("ids must be unique")
        self._ids, self._id_map = norm, id_map

    @property
    def num_prompts(self) -> int:
        """``Q``, the number of prompts."""
        return int(self._state_q())

    @property
    def ids(self) -> list | None:
        """The prompt ids (None: the row numbers are the ids)."""
        return None if self._ids is None else list(self._ids)

    @property
    def config(self) -> dict:
        """The validated settings (a copy)."""
        return json.loads(json.dumps(self._config))

    def _state_q(self):
        # Every registered state stores a per-prompt array as its first field.
        return np.shape(self._state[0])[0]

    def index(self, prompt_ids: Sequence[Any] | ArrayLike) -> np.ndarray:
        """Rows of ``prompt_ids`` (raises naming the first unknown id)."""
        q = self._state_q()
        if self._id_map is None:
            arr = np.asarray(prompt_ids)
            if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
                raise ValueError(
                    "prompt_ids must be a 1-D sequence of integer row numbers "
                    "(pass ids= to the Planner to use other ids)"
                )
            if arr.size and (arr.min() < 0 or arr.max() >= q):
                bad = int(arr[(arr < 0) | (arr >= q)][0])
                raise ValueError(f"unknown prompt id {bad!r} (rows are 0..{q - 1})")
            return arr.astype(np.int32)
        if isinstance(prompt_ids, str):
            raise ValueError("prompt_ids must be a sequence of ids, not one string")
        out = np.empty(len(prompt_ids), np.int32)
        for k, pid in enumerate(prompt_ids):
            try:
                out[k] = self._id_map[_norm_id(pid)]
            except KeyError:
                raise ValueError(f"unknown prompt id {pid!r}") from None
        return out

    # ------------------------------------------------------------ predict
    @property
    def _link(self):
        return "sigmoid" if self._config["reward"] == "binary" else "softplus"

    def predict(self, prompt_ids) -> np.ndarray:
        """Predicted success probabilities (binary) or reward variances."""
        rows = self.index(prompt_ids)
        out = self._predictor.predict(self._state, jnp.asarray(rows))
        return np.asarray(out, np.float64)

    def variance(self, prompt_ids) -> np.ndarray:
        """Posterior variances of the predictions (predictors that have one)."""
        if self._predictor.variance is None:
            raise ValueError(f"predictor {self._config['predictor']!r} has no "
                             "posterior variance")
        rows = self.index(prompt_ids)
        out = self._predictor.variance(self._state, jnp.asarray(rows))
        return np.asarray(out, np.float64)

    def _allocation_p(self, rows, pred):
        """``(p, a)``: what the allocator is given and its ``4 p (1 - p)``."""
        cfg = self._config
        if cfg["reward"] == "binary":
            var = None
            if cfg["uncertainty"] != "plugin":
                var = self._predictor.variance(self._state, jnp.asarray(rows))
            p = np.asarray(effective_probabilities(
                jnp.asarray(np.clip(pred, 0.0, 1.0)), var,
                rule=cfg["uncertainty"], z=cfg["optimism"]), np.float64)
            return p, 4 * p * (1 - p)
        a = np.maximum(pred, 0.0)
        top = a.max(initial=0.0)
        if not top > 0:
            return np.zeros_like(a), a
        return (1 - np.sqrt(np.clip(1 - a / top, 0, 1))) / 2, a

    # ------------------------------------------------------------ plan
    def plan(self, prompt_ids, budget: int) -> np.ndarray:
        """Rollouts per prompt: ``allocate(p, budget, lower, upper)``.

        Returns an int64 array summing to ``budget`` with
        ``lower <= n_q <= upper``; ``budget`` outside
        ``[B * lower, B * upper]`` raises ``ValueError``. ``p`` follows the
        ``uncertainty`` rule (binary rewards) or the continuous-reward
        equivalent (module docstring).
        """
        from vipcore._src.allocation import allocate

        cfg = self._config
        budget = check_int("budget", budget, minimum=1)
        rows = self.index(prompt_ids)
        pred = self.predict(prompt_ids)
        p, a = self._allocation_p(rows, pred)
        counts = np.asarray(
            allocate(p, budget, cfg["lower"], cfg["upper"],
                     estimator=cfg["estimator"]), np.int64,
        )
        self._last_plan = (rows, counts)
        self._metrics = {k: v for k, v in self._metrics.items()
                         if not k.startswith("vip/")}
        self._metrics.update(_plan_metrics(pred, a, counts, budget, cfg))
        return counts

    # ------------------------------------------------------------ observe
    def observe(
        self,
        prompt_ids,
        rewards: Any = None,
        *,
        mask: ArrayLike | None = None,
        successes: ArrayLike | None = None,
        counts: ArrayLike | None = None,
    ) -> dict[str, float]:
        """Update the predictor with one batch of outcomes; return metrics.

        Give either ``rewards`` -- a ragged sequence of per-rollout reward
        arrays (one per prompt), or a padded ``(B, W)`` array whose padding is
        marked by ``mask=False`` or NaN -- or, for binary rewards,
        ``successes`` and ``counts`` per prompt (integers, ``0 <= successes
        <= counts <=`` :data:`MAX_ROLLOUTS`). Prompts with no rollouts are
        skipped (and are not counted in ``frac_reward_zero_std``).

        If the latest :meth:`plan` covered some of these prompts and the
        rollouts observed for them differ from the planned counts, a
        :class:`PlanMismatchWarning` says so (a ``ValueError`` with
        ``strict=True``): a padded reward array whose padding is not marked
        counts every slot as a rollout.
        """
        rows = self.index(prompt_ids)
        cfg = self._config
        if rewards is None:
            s, n = _counts_input(successes, counts, rows.shape[0], cfg["reward"])
            groups = None
        else:
            if successes is not None or counts is not None:
                raise ValueError("give rewards or successes/counts, not both")
            groups = _groups(rewards, mask, rows.shape[0])
            if cfg["reward"] == "binary":
                s, n = _binary_counts(groups)
        if cfg["reward"] == "binary":
            obs, w = np.where(n > 0, s / np.maximum(n, 1), 0.0), n
            zero_std = np.where(n > 0, (s == 0) | (s == n), False)
        else:
            n, obs, zero_std = _continuous_observations(groups)
            w = np.maximum(n - 1, 0)
        self._check_plan(rows, n)
        self._update(rows, obs, w)
        self.step += 1
        seen = n > 0
        self._metrics["frac_reward_zero_std"] = (
            float(zero_std[seen].mean()) if seen.any() else float("nan"))
        self._metrics["vip/observed_prompts"] = float(seen.sum())
        self._metrics["vip/observed_rollouts"] = float(n.sum())
        return dict(self._metrics)

    def _check_plan(self, rows, n):
        if self._last_plan is None:
            return
        planned = dict(zip(self._last_plan[0].tolist(),
                           self._last_plan[1].tolist(), strict=True))
        pairs = [(r, planned[r], n[k]) for k, r in enumerate(rows.tolist())
                 if r in planned]
        bad = [(r, a, b) for r, a, b in pairs if a != b]
        if not bad:
            return
        r, a, b = bad[0]
        pid = r if self._ids is None else self._ids[r]
        msg = (f"observed rollout counts differ from the plan for {len(bad)} of "
               f"{len(pairs)} planned prompts (planned {sum(x[1] for x in pairs)},"
               f" observed {int(sum(x[2] for x in pairs))}; prompt {pid!r}: "
               f"planned {a}, observed {int(b)}). If the rewards are padded to a "
               "common width, mark the padding: observe(ids, rewards, "
               "mask=padded_mask(counts, width)) or NaN in the padded slots.")
        if self._config["strict"]:
            raise ValueError(msg)
        warnings.warn(msg + " (Planner(strict=True) makes this an error.)",
                      PlanMismatchWarning, stacklevel=3)

    def _update(self, rows, obs, w):
        dtype = _float_dtype(self._state)
        batch = prepare_batch(self._state_q(), rows, obs, w, self._link, dtype)
        if batch is not None:
            self._state = self._predictor.update(self._state, *batch)

    # ------------------------------------------------------------ grow
    def add(self, ids: Sequence[Any] | int, embeddings: ArrayLike | None = None
            ) -> None:
        """Add prompts: ``ids`` (new, unique) and, for predictors with
        embeddings, their ``(k, d)`` embeddings.

        A planner without ``ids=`` uses row numbers: pass the number of new
        prompts ``k`` (or the rows ``Q..Q+k-1``). New prompts get the
        prediction of a prompt never observed.
        """
        q = self._state_q()
        new = self._new_ids(ids, q)
        k = len(new)
        emb = _as_embeddings(embeddings)
        if emb is not None and emb.shape[0] != k:
            raise ValueError(f"embeddings must have {k} rows; got {emb.shape[0]}")
        if self._predictor.grow is None:
            raise ValueError(f"predictor {self._config['predictor']!r} cannot add "
                             "prompts")
        if k == 0:
            return
        self._state = self._predictor.grow(self._state, k, emb)
        if self._ids is not None:
            self._ids = self._ids + new
            self._id_map.update({pid: q + i for i, pid in enumerate(new)})

    def _new_ids(self, ids, q) -> list:
        if self._ids is None:
            if isinstance(ids, int | np.integer) and not isinstance(ids, bool):
                k = check_int("ids", ids, minimum=0)
                return list(range(q, q + k))
            new = [_norm_id(i) for i in ids]
            if new != list(range(q, q + len(new))):
                raise ValueError(f"this planner uses row numbers as ids: add the "
                                 f"next rows {q}, {q + 1}, ... or pass a count")
            return new
        if isinstance(ids, str | int | np.integer):
            raise ValueError("ids must be a sequence of new prompt ids")
        new = [_norm_id(i) for i in ids]
        if len(set(new)) != len(new):
            raise ValueError("ids must be unique")
        old = next((i for i in new if i in self._id_map), None)
        if old is not None:
            raise ValueError(f"prompt id {old!r} is already known")
        return new

    @property
    def metrics(self) -> dict[str, float]:
        """Metrics of the latest :meth:`plan` and :meth:`observe`."""
        return dict(self._metrics)

    @property
    def state(self):
        """The predictor's state pytree (read-only use)."""
        return self._state

    # ------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the planner to ``path`` (a ``.npz``), atomically.

        Format (version :data:`FORMAT_VERSION`): an uncompressed NumPy
        ``.npz`` without pickles: one array per state leaf
        (``state.<field>[.<field>]``) and ``meta``, a UTF-8 JSON document
        ``{"format", "version", "predictor", "config", "ids", "step",
        "state_tree", "digest"}``; ``digest`` is the SHA-256 of the rest of
        ``meta`` and of every array, so a file changed after writing is
        refused. The file is written to a temporary file in the same
        directory and renamed over ``path``, so a crash never leaves a
        half-written file; temporary files of interrupted saves older than
        :data:`STALE_TMP_SECONDS` are removed.
        """
        path = Path(path)
        arrays, tree = _state_io.flatten(self._state)
        meta = dict(format=FORMAT, version=FORMAT_VERSION,
                    predictor=self._config["predictor"], config=self._config,
                    ids=self._ids, step=int(self.step), state_tree=tree)
        meta["digest"] = _state_io.digest(meta, arrays)
        buf = io.BytesIO()
        np.savez(buf, **arrays,
                 meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
        _remove_stale_tmp(path)
        try:
            atomic_write_bytes(path, buf.getvalue())
        except OSError as err:
            raise OSError(err.errno, f"cannot write the planner file {path}: "
                          f"{err.strerror or err}") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> Planner:
        """Read a planner written by :meth:`save` (format versions 1 and 2).

        Raises ``ValueError`` naming the file for anything that is not a
        complete, unmodified planner file of a supported version: every
        setting, id, array shape, dtype and value is checked, and the state
        must be one the configured predictor can update.
        """
        path = Path(path)
        data = path.read_bytes()  # FileNotFoundError etc. pass through
        try:
            return cls._from_bytes(data)
        except Exception as err:  # untrusted bytes: every failure is the file's
            raise ValueError(f"{path}: not a valid vipcore planner file "
                             f"({type(err).__name__}: {err})") from None

    @classmethod
    def _from_bytes(cls, data: bytes) -> Planner:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = _read_meta(arrays.pop("meta", None))
        cfg, tree = _meta_config(meta, arrays)
        self = cls.__new__(cls)
        self._config = _validate_config(cfg)
        self._spec, self._predictor = _build(self._config)
        self._state = _state_io.unflatten(arrays, tree, state_types())
        if not isinstance(self._state, self._spec.state_type):
            raise ValueError(f"state type {type(self._state).__name__} does not "
                             f"belong to predictor {self._config['predictor']!r}")
        opts = {self._spec.options[k]: v for k, v in self._config["options"].items()}
        self._spec.check_state(self._state, opts)
        _check_updatable(self._predictor, self._state)
        ids = meta["ids"]
        if ids is not None and not isinstance(ids, list):
            raise ValueError(f"ids must be a list or null; got {type(ids).__name__}")
        self._set_ids(ids, self._state_q())
        step = meta["step"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be an integer >= 0; got {step!r}")
        self.step = step
        self._state = jax.tree.map(jnp.asarray, self._state)
        self._reset()
        return self


# ------------------------------------------------------------ file helpers


def _remove_stale_tmp(path: Path) -> None:
    """Delete temporary files of interrupted saves of ``path`` (old ones only:
    a concurrent save may be writing a fresh one)."""
    folder = path.parent if str(path.parent) else Path(".")
    now = time.time()
    for pattern in (f".{path.name}.*.tmp", f"{path.name}.*.tmp"):
        for tmp in folder.glob(pattern):
            try:
                if now - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                    tmp.unlink()
            except OSError:
                pass


def _read_meta(raw) -> dict:
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError("missing or corrupt metadata")
    meta = json.loads(bytes(raw).decode("utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError("not a vipcore planner file")
    ver = meta.get("version")
    if isinstance(ver, bool) or not isinstance(ver, int) or not (
            1 <= ver <= FORMAT_VERSION):
        raise ValueError(f"format version {ver!r} is not supported (this vipcore "
                         f"reads versions 1..{FORMAT_VERSION})")
    return meta


def _meta_config(meta: dict, arrays: dict) -> tuple[dict, dict]:
    """``(config, state_tree)`` from the metadata of either format version."""
    if meta["version"] == 1:
        keys = {"format", "version", "predictor", "config", "ids", "step", "fields"}
        if set(meta) != keys:
            raise ValueError(f"metadata keys {sorted(meta)} are not {sorted(keys)}")
        return _config_v1(meta), _tree_v1(meta)
    keys = {"format", "version", "predictor", "config", "ids", "step",
            "state_tree", "digest"}
    if set(meta) != keys:
        raise ValueError(f"metadata keys {sorted(meta)} are not {sorted(keys)}")
    rest = {k: v for k, v in meta.items() if k != "digest"}
    if meta["digest"] != _state_io.digest(rest, arrays):
        raise ValueError("the content does not match its digest (the file was "
                         "changed or damaged after it was written)")
    cfg = meta["config"]
    if not isinstance(cfg, dict) or cfg.get("predictor") != meta["predictor"]:
        raise ValueError("config does not name the file's predictor")
    return dict(cfg), meta["state_tree"]


def _config_v1(meta: dict) -> dict:
    old = meta["config"]
    if not isinstance(old, dict) or old.get("predictor") != meta["predictor"]:
        raise ValueError("config does not name the file's predictor")
    spec = get_predictor(meta["predictor"])
    options = {k: old[k] for k in spec.options if k in old}
    return dict(estimator=old.get("estimator"), lower=old.get("lower"),
                upper=old.get("upper"), predictor=meta["predictor"],
                reward=old.get("reward"), uncertainty="plugin", optimism=1.0,
                strict=False, options=options)


def _tree_v1(meta: dict) -> dict:
    spec = get_predictor(meta["predictor"])
    fields = meta["fields"]
    if not (isinstance(fields, list) and all(isinstance(f, str) for f in fields)):
        raise ValueError("fields must be a list of names")
    unknown = set(fields) - set(spec.state_type._fields)
    if unknown:
        raise ValueError(f"unknown state fields {sorted(unknown)}")
    return {"type": spec.state_type.__name__,
            "fields": {f: ("array" if f in fields else None)
                       for f in spec.state_type._fields}}


def _float_dtype(state):
    """The dtype of the state's first floating array (observations are cast
    to it)."""
    for leaf in jax.tree.leaves(state):
        if jnp.issubdtype(np.asarray(leaf).dtype, jnp.floating):
            return np.asarray(leaf).dtype
    return np.dtype(np.float32)


def _check_updatable(pred, state) -> None:
    """The state has the structure, shapes and dtypes ``update`` preserves."""
    q = int(np.shape(state[0])[0])
    dtype = _float_dtype(state)
    batch = (jax.ShapeDtypeStruct((8,), jnp.int32),
             jax.ShapeDtypeStruct((8,), dtype), jax.ShapeDtypeStruct((8,), dtype))
    want = jax.tree.map(lambda a: (np.shape(a), np.asarray(a).dtype), state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. an unsafe cast inside update
        out = jax.eval_shape(pred.update, state, *batch)
    got = jax.tree.map(lambda a: (a.shape, a.dtype), out)
    if jax.tree.structure(want) != jax.tree.structure(got) or jax.tree.leaves(
            want) != jax.tree.leaves(got):
        raise ValueError(f"the state's arrays ({q} prompts) do not have the "
                         "shapes and dtypes the predictor keeps")


# ------------------------------------------------------------ reward input


def _numeric(name, a) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind == "b":
        return arr.astype(np.float64)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be numbers; got dtype {arr.dtype} "
                         f"(e.g. {arr.ravel()[:1].tolist()})")
    return arr.astype(np.float64)


def _counts_input(successes, counts, b, reward):
    if successes is None or counts is None:
        raise ValueError("give rewards, or successes and counts")
    if reward != "binary":
        raise ValueError("successes/counts need reward='binary'")
    s, n = _numeric("successes", successes), _numeric("counts", counts)
    if s.shape != (b,) or n.shape != (b,):
        raise ValueError(f"successes and counts must have shape ({b},); got "
                         f"{s.shape} and {n.shape}")
    for name, a in (("successes", s), ("counts", n)):
        if not (np.isfinite(a).all() and np.all(a == np.round(a))):
            raise ValueError(f"{name} must be whole numbers")
    if not (np.all(n >= 0) and np.all(n <= MAX_ROLLOUTS)):
        raise ValueError(f"counts must lie in [0, {MAX_ROLLOUTS}]")
    if not (np.all(s >= 0) and np.all(s <= n)):
        k = int(np.flatnonzero((s < 0) | (s > n))[0])
        raise ValueError(f"need 0 <= successes <= counts; got {s[k]:g} successes "
                         f"of {n[k]:g} at position {k}")
    return s, n


def _groups(rewards, mask, b):
    """Per-prompt 1-D float arrays of the real rollouts' rewards."""
    if isinstance(rewards, np.ndarray | jax.Array) or mask is not None:
        r = _numeric("rewards", rewards)
        if r.ndim != 2 or r.shape[0] != b:
            raise ValueError(f"padded rewards must have shape ({b}, W); got {r.shape}")
        if mask is None:
            m = ~np.isnan(r)
        else:
            m = np.asarray(mask)
            if m.dtype != np.bool_ or m.shape != r.shape:
                raise ValueError(f"mask must be boolean with shape {r.shape}")
        groups = [r[i][m[i]] for i in range(b)]
    else:
        if isinstance(rewards, str) or len(rewards) != b:
            raise ValueError(f"rewards must have one entry per prompt ({b})")
        groups = []
        for i, g in enumerate(rewards):
            a = _numeric(f"rewards[{i}]", g).reshape(-1)
            groups.append(a[~np.isnan(a)])
    for i, a in enumerate(groups):
        if not np.isfinite(a).all():
            raise ValueError(f"rewards[{i}] must be finite (NaN marks padding)")
        if a.size > MAX_ROLLOUTS:
            raise ValueError(f"rewards[{i}] has more than {MAX_ROLLOUTS} rollouts")
    return groups


def _binary_counts(groups):
    s = np.zeros(len(groups))
    n = np.zeros(len(groups))
    seen_zero = seen_minus = False
    for i, g in enumerate(groups):
        bad = ~np.isin(g, (-1.0, 0.0, 1.0))
        if bad.any():
            raise ValueError(
                f"binary rewards must be in {{0, 1}} or {{-1, +1}}; got {g[bad][0]} "
                f"for prompt {i} (use reward='continuous' for real rewards)"
            )
        seen_zero |= bool((g == 0).any())
        seen_minus |= bool((g == -1).any())
        s[i] = np.sum(g == 1)
        n[i] = g.size
    if seen_zero and seen_minus:
        raise ValueError("binary rewards mix 0 and -1 as failure codes; use "
                         "{0, 1} or {-1, +1}")
    return s, n


def _continuous_observations(groups):
    n = np.array([g.size for g in groups], np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        obs = np.array([g.var(ddof=1) if g.size > 1 else 0.0 for g in groups])
    if not np.isfinite(obs).all():
        k = int(np.flatnonzero(~np.isfinite(obs))[0])
        raise ValueError(f"rewards[{k}] are too large: their variance overflows")
    zero_std = np.array([g.size > 0 and np.ptp(g) == 0 for g in groups])
    return n, obs, zero_std


def _plan_metrics(pred, a, counts, budget, cfg):
    from vipcore._src.variance import variance_factor, zero_variance_probability

    est = cfg["estimator"]
    n = counts.astype(np.float64)
    b = n.shape[0]
    out = {
        "vip/alloc_min": float(n.min()),
        "vip/alloc_max": float(n.max()),
        "vip/alloc_std": float(n.std()),
    }
    if cfg["reward"] == "binary":
        p = np.clip(pred, 0, 1)
        out["vip/pred_mean_p"] = float(p.mean())
        out["vip/pred_frac_zero_std"] = float(np.mean(zero_variance_probability(p, n)))
    else:
        out["vip/pred_mean_var"] = float(np.mean(a))
    if est == "grpo":
        return {**out, **_grpo_plan_metrics(np.clip(pred, 0, 1), counts, budget)}
    c = np.asarray(variance_factor(n, est), np.float64)
    v_plan = float(np.sum(a * c))
    total_a = float(np.sum(a))
    cu = float(np.asarray(variance_factor(budget / b, est)))
    v_unif = total_a * cu
    out["vip/pred_var_ratio_vs_uniform"] = (
        v_plan / v_unif if v_unif > 0 else 1.0)
    if total_a <= 0 or v_plan <= 0:
        n_u = budget / b
    elif est == "rloo":
        n_u = 1 + total_a / v_plan
    else:
        t = v_plan / total_a
        n_u = 2.0 if t >= 0.25 else (1 + math.sqrt(1 - 4 * t)) / (2 * t)
    saved = b * n_u - budget
    out["vip/rollouts_saved_vs_uniform"] = float(saved)
    out["vip/rollouts_saved_frac"] = float(saved / budget)
    return out


def _grpo_plan_metrics(p, counts, budget):
    """Plan metrics under GRPO's signal-normalised objective: the ratio to a
    uniform split of the same budget, and the rollouts a uniform split would
    need to match the plan (linear between integer group sizes)."""
    from vipcore._src.allocation.grpo import GRPO_MAX_N, grpo_terms

    b = p.shape[0]
    v_plan = float(np.sum(grpo_terms(p, counts).normalized_variance))
    hi = int(min(GRPO_MAX_N, max(4 * math.ceil(budget / b), counts.max(), 3)))
    levels = np.arange(2, hi + 1)
    v = np.asarray(grpo_terms(p[:, None], levels[None, :], n_max=hi)
                   .normalized_variance, np.float64).sum(0)  # decreasing in n
    v_unif = float(np.interp(budget / b, levels, v))
    n_u = budget / b if v[0] <= 0 else float(np.interp(v_plan, v[::-1], levels[::-1]))
    saved = b * n_u - budget
    return {"vip/pred_var_ratio_vs_uniform": v_plan / v_unif if v_unif > 0 else 1.0,
            "vip/rollouts_saved_vs_uniform": float(saved),
            "vip/rollouts_saved_frac": float(saved / budget)}
