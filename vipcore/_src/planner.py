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
the reward array may hold NaN.

Rewards: ``reward="binary"`` takes per-rollout rewards in ``{0, 1}`` or
``{-1, +1}`` (1 = success; the two failure codes may not be mixed in one call)
or per-prompt ``successes`` and ``counts``; the GP models the success
probability with the sigmoid link. ``reward="continuous"`` takes real rewards
and models the per-prompt reward variance with the softplus link (App. E.2):
the observation is the sample variance (divisor ``n - 1``, prompts with fewer
than 2 rollouts are skipped), pooled with weights ``n - 1``.

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
  uniform plan ``n_q = C/B`` (``a_q = 4 \hat p_q (1-\hat p_q)`` or the
  predicted variance, ``c`` from :func:`vipcore.variance_factor`); below 1
  means the plan is predicted to help.
* ``vip/rollouts_saved_vs_uniform``: :math:`B\,n_u - C`, where the (real)
  group size ``n_u`` makes the uniform plan reach the same predicted
  variance, :math:`\sum_q a_q c(n_u) = V(n)`: RLOO
  :math:`n_u = 1 + \sum_q a_q / V(n)`; Dr. GRPO the root ``n_u >= 2`` of
  :math:`(n_u-1)/n_u^2 = V(n)/\sum_q a_q`. ``0`` when every ``a_q = 0``.
  ``vip/rollouts_saved_frac`` is that divided by ``C``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from vipcore._src._checks import check_choice, check_int
from vipcore._src.predict import gp as _gp
from vipcore._src.predict._batch import prepare_batch
from vipcore._src.predict.registry import PREDICTORS, get_predictor
from vipcore._src.variance import ESTIMATORS

__all__ = [
    "PREDICTORS",
    "Planner",
    "repeat_index",
    "padded_mask",
    "group_rewards",
    "FORMAT",
    "FORMAT_VERSION",
]

REWARDS = ("binary", "continuous")
FORMAT = "vipcore.planner"
FORMAT_VERSION = 1


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


class Planner:
    """Predict success probabilities, allocate rollouts, learn from rewards.

    Args:
      embeddings: ``(Q, d)`` prompt embeddings (float32 recommended).
      ids: optional sequence of ``Q`` unique prompt ids (strings such as
        dataset uids, or integers); default: the row numbers ``0..Q-1``.
      estimator: ``"rloo"`` or ``"drgrpo"`` (the allocation objective).
      lower, upper: bounds ``L <= n_q <= U`` on rollouts per prompt.
      predictor: ``"gp"`` (Algorithm 1), ``"moving_average"`` or ``"ridge"``.
      reward: ``"binary"`` (success probability) or ``"continuous"``
        (reward variance, App. E.2).
      eps: GP clipping ``epsilon``.
      noise: GP observation noise, ``"none"`` (Algorithm 1 as published) or
        ``"binomial"`` (empirical-logit noise; binary rewards only; more
        accurate on the synthetic benchmark, see ``docs/prediction.md``).
      bandwidth: GP bandwidth, ``"median"`` or a number.
      prior_mean: GP prior latent mean.
      block_size: GP row blocking (see :func:`vipcore.gp.update_step`).
      window: moving-average window.
      ridge_capacity, ridge_lam: ridge buffer size and penalty.
      seed: seed of the median-heuristic subsample (large ``Q``).

    >>> import numpy as np
    >>> emb = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    >>> pl = Planner(emb, ids=list("abcdef"), lower=2, upper=8)
    >>> pl.plan(["a", "b"], 8).tolist()          # prior p = 1/2 everywhere
    [4, 4]
    >>> m = pl.observe(["a", "b"], [[1, 1, 1, 1], [0, 1, 0, 1]])
    >>> m["frac_reward_zero_std"]
    0.5
    """

    def __init__(
        self,
        embeddings: ArrayLike,
        *,
        ids: Sequence[Any] | None = None,
        estimator: str = "rloo",
        lower: int = 2,
        upper: int = 16,
        predictor: str = "gp",
        reward: str = "binary",
        eps: float = 1e-2,
        noise: str = "none",
        bandwidth: float | str = "median",
        prior_mean: float = 0.0,
        block_size: int | None = None,
        window: int = 3,
        ridge_capacity: int = 1024,
        ridge_lam: float = 1.0,
        seed: int = 0,
    ):
        check_choice("estimator", estimator, ESTIMATORS)
        get_predictor(predictor)  # raises for an unknown name
        check_choice("reward", reward, REWARDS)
        check_choice("noise", noise, _gp.NOISE_MODELS)
        if noise != "none" and reward != "binary":
            raise ValueError("noise='binomial' needs reward='binary'")
        lower = check_int("lower", lower, minimum=2 if estimator == "rloo" else 3)
        upper = check_int("upper", upper)
        if upper < lower:
            raise ValueError(f"upper must be >= lower = {lower}; got {upper}")
        emb = np.asarray(embeddings)
        if emb.ndim != 2:
            raise ValueError(f"embeddings must have shape (Q, d); got {emb.shape}")
        if emb.dtype.kind != "f":
            emb = emb.astype(np.float32)
        q = emb.shape[0]
        self._config = dict(
            estimator=estimator, lower=lower, upper=upper, predictor=predictor,
            reward=reward, eps=float(eps), noise=noise, bandwidth=bandwidth,
            prior_mean=float(prior_mean), block_size=block_size,
            window=int(window), ridge_capacity=int(ridge_capacity),
            ridge_lam=float(ridge_lam), seed=int(seed),
        )
        self._set_ids(ids, q)
        self._build_predictor()
        self._state = self._predictor.init(q, emb)
        self._metrics: dict[str, float] = {}
        self._last_plan: tuple[np.ndarray, np.ndarray] | None = None
        self.step = 0

    # ------------------------------------------------------------ ids
    def _set_ids(self, ids, q):
        if ids is None:
            self._ids = None
            self._id_map = None
            return
        ids = list(ids)
        if len(ids) != q:
            raise ValueError(f"ids must have one entry per embedding row ({q}); "
                             f"got {len(ids)}")
        norm = [self._norm_id(i) for i in ids]
        if len(set(norm)) != q:
            raise ValueError("ids must be unique")
        self._ids = norm
        self._id_map = {k: i for i, k in enumerate(norm)}

    @staticmethod
    def _norm_id(i):
        if isinstance(i, str):
            return i
        if isinstance(i, bool | np.bool_):
            raise ValueError(f"prompt ids must be strings or integers; got {i!r}")
        if isinstance(i, int | np.integer):
            return int(i)
        raise ValueError(f"prompt ids must be strings or integers; got {i!r}")

    def _build_predictor(self):
        """The configured :class:`~vipcore.predict.Predictor` from the registry."""
        cfg = self._config
        spec = get_predictor(cfg["predictor"])
        opts = {fk: cfg[pk] for pk, fk in spec.options.items()}
        self._spec = spec
        self._predictor = spec.factory(link=self._link, **opts)

    @property
    def num_prompts(self) -> int:
        """``Q``."""
        return int(self._state_q())

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
        out = np.empty(len(prompt_ids), np.int32)
        for k, pid in enumerate(prompt_ids):
            try:
                out[k] = self._id_map[self._norm_id(pid)]
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

    # ------------------------------------------------------------ plan
    def plan(self, prompt_ids, budget: int) -> np.ndarray:
        """Rollouts per prompt: ``allocate(p_hat, budget, lower, upper)``.

        Returns an int64 array summing to ``budget`` with
        ``lower <= n_q <= upper``; ``budget`` outside
        ``[B * lower, B * upper]`` raises ``ValueError``. For continuous
        rewards the predicted variances ``v_q`` enter as the equivalent
        ``p_q = (1 - sqrt(1 - v_q / max v))/2`` (``4 p (1 - p) = v / max v``;
        a common factor never changes the allocation).
        """
        from vipcore._src.allocation import allocate

        cfg = self._config
        budget = check_int("budget", budget, minimum=1)
        rows = self.index(prompt_ids)
        pred = self.predict(prompt_ids)
        if cfg["reward"] == "binary":
            p = np.clip(pred, 0.0, 1.0)
            a = 4 * p * (1 - p)
        else:
            a = np.maximum(pred, 0.0)
            top = a.max(initial=0.0)
            p = (1 - np.sqrt(np.clip(1 - a / top, 0, 1))) / 2 if top > 0 else (
                np.zeros_like(a))
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
        ``successes`` and ``counts`` per prompt. Prompts with no rollouts are
        skipped (and are not counted in ``frac_reward_zero_std``).
        """
        rows = self.index(prompt_ids)
        b = rows.shape[0]
        cfg = self._config
        if rewards is None:
            if successes is None or counts is None:
                raise ValueError("give rewards, or successes and counts")
            if cfg["reward"] != "binary":
                raise ValueError("successes/counts need reward='binary'")
            s = np.asarray(successes, np.float64)
            n = np.asarray(counts, np.float64)
            if s.shape != (b,) or n.shape != (b,):
                raise ValueError(f"successes and counts must have shape ({b},)")
            if not (np.all(n >= 0) and np.all(s >= 0) and np.all(s <= n)):
                raise ValueError("need 0 <= successes <= counts")
            groups = None
        else:
            if successes is not None or counts is not None:
                raise ValueError("give rewards or successes/counts, not both")
            groups = _groups(rewards, mask, b)
        if groups is not None and cfg["reward"] == "binary":
            s, n = _binary_counts(groups)
        if cfg["reward"] == "binary":
            obs = np.where(n > 0, s / np.maximum(n, 1), 0.0)
            w = n
            zero_std = np.where(n > 0, (s == 0) | (s == n), False)
            seen = n > 0
        else:
            n = np.array([g.size for g in groups], np.float64)
            obs = np.array([g.var(ddof=1) if g.size > 1 else 0.0 for g in groups])
            w = np.maximum(n - 1, 0)
            zero_std = np.array([g.size > 0 and np.ptp(g) == 0 for g in groups])
            seen = n > 0
        self._update(rows, obs, w)
        self.step += 1
        nseen = int(seen.sum())
        self._metrics["frac_reward_zero_std"] = (
            float(zero_std[seen].mean()) if nseen else float("nan"))
        self._metrics["vip/observed_prompts"] = float(nseen)
        self._metrics["vip/observed_rollouts"] = float(n.sum())
        return dict(self._metrics)

    def _update(self, rows, obs, w):
        dtype = jnp.asarray(self._state[0]).dtype
        batch = prepare_batch(self._state_q(), rows, obs, w, self._link, dtype)
        if batch is not None:
            self._state = self._predictor.update(self._state, *batch)

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
        ``.npz`` without pickles: one array ``state.<field>`` per state field
        and ``meta``, a UTF-8
        JSON document ``{"format", "version", "predictor", "config", "ids",
        "step", "fields"}``. It is written to a temporary file in the same
        directory and renamed over ``path`` (``os.replace``), so a crash never
        leaves a half-written file behind.
        """
        path = Path(path)
        arrays = {}
        fields = []
        for name, val in self._state._asdict().items():
            if val is None:
                continue
            arrays[f"state.{name}"] = np.asarray(val)
            fields.append(name)
        meta = dict(format=FORMAT, version=FORMAT_VERSION,
                    predictor=self._config["predictor"], config=self._config,
                    ids=self._ids, step=self.step, fields=fields)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp",
                                   dir=path.parent if str(path.parent) else ".")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike) -> Planner:
        """Read a planner written by :meth:`save`.

        Raises ``ValueError`` naming the file for anything that is not a
        complete planner file of a supported version.
        """
        path = Path(path)
        with open(path, "rb") as f:  # FileNotFoundError passes through
            try:
                with np.load(f, allow_pickle=False) as z:
                    data = {k: z[k] for k in z.files}
            except (zipfile.BadZipFile, EOFError, OSError, ValueError,
                    KeyError, zlib.error) as err:
                raise ValueError(f"{path}: not a readable vipcore planner file "
                                 f"({type(err).__name__}: {err})") from None
        try:
            meta = json.loads(bytes(data.pop("meta")).decode())
        except (KeyError, ValueError, UnicodeDecodeError):
            raise ValueError(f"{path}: missing or corrupt metadata") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a vipcore planner file")
        ver = meta.get("version")
        if not isinstance(ver, int) or ver > FORMAT_VERSION or ver < 1:
            raise ValueError(f"{path}: format version {ver!r} is not supported "
                             f"(this vipcore reads versions 1..{FORMAT_VERSION})")
        pred = meta.get("predictor")
        if pred not in PREDICTORS:
            raise ValueError(f"{path}: unknown predictor {pred!r}")
        spec = get_predictor(pred)
        scls = spec.state_type
        fields = {}
        for name in scls._fields:
            key = f"state.{name}"
            if key in data:
                fields[name] = jnp.asarray(data[key])
            elif scls._field_defaults.get(name, ...) is not None:
                raise ValueError(f"{path}: missing array {key!r}")
        state = scls(**fields)
        self = cls.__new__(cls)
        self._config = dict(meta["config"])
        self._state = state
        if not spec.check_state(state):
            raise ValueError(f"{path}: inconsistent array shapes in the saved state")
        self._build_predictor()
        q = self._state_q()
        try:
            self._set_ids(meta.get("ids"), q)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        self._metrics = {}
        self._last_plan = None
        self.step = int(meta.get("step", 0))
        return self


def _groups(rewards, mask, b):
    """Per-prompt 1-D float arrays of the real rollouts' rewards."""
    if isinstance(rewards, np.ndarray | jnp.ndarray) or (
        mask is not None
    ):
        r = np.asarray(rewards, np.float64)
        if r.ndim != 2 or r.shape[0] != b:
            raise ValueError(f"padded rewards must have shape ({b}, W); got {r.shape}")
        if mask is None:
            m = ~np.isnan(r)
        else:
            m = np.asarray(mask)
            if m.dtype != np.bool_ or m.shape != r.shape:
                raise ValueError(f"mask must be boolean with shape {r.shape}")
        return [r[i][m[i]] for i in range(b)]
    if len(rewards) != b:
        raise ValueError(f"rewards must have one entry per prompt ({b}); "
                         f"got {len(rewards)}")
    out = []
    for i, g in enumerate(rewards):
        a = np.asarray(g, np.float64).reshape(-1)
        a = a[~np.isnan(a)]
        out.append(a)
        if not np.isfinite(a).all():
            raise ValueError(f"rewards[{i}] must be finite (NaN marks padding)")
    return out


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
