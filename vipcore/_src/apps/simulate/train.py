r"""The training loop: every allocation method at the same rollout budget.

One *round* spends exactly ``C = B * n_bar`` rollouts for every method:

* ``uniform``: ``n_q = n_bar`` for each of the ``B`` prompts.
* ``vip``: GP prediction of ``p_q`` (Algorithm 1) + :func:`allocate` (problem 5).
* ``vip_oracle``: :func:`allocate` with the policy's exact ``p_q`` (the upper
  bound of any predictor).
* ``inverse_accuracy`` / ``inverse_variance``: the App. C.1 heuristics, fed by
  the same GP prediction as ``vip`` (only the allocation rule differs).
* ``dapo``: DAPO-style dynamic filtering. **Accounting rule**: each round draws
  the same ``B`` prompts as every other method with ``n_bar`` rollouts each
  (``C`` rollouts, all counted); groups whose rewards are all equal are
  dropped; the surviving groups go to a buffer; when the buffer holds ``B``
  groups the policy takes one step on exactly those ``B`` groups and the
  surplus surviving groups of that round are discarded (still counted). Until
  the buffer is full no update happens, so buffered groups are on-policy. DAPO
  therefore takes at most one update per round and never more rollouts than
  the others; its x-axis is the same rollouts consumed.

All other methods take one Adam step per round on their ``B`` groups with the
policy-gradient estimate ``(1/B) sum_q G_q``, ``G_q = (1/n_q) sum_j A_qj H(o_qj)``
and advantages from :func:`vipcore._src.variance.advantages` (KL = 0,
Assumption 3.1). The runs of one method family are stacked on a leading axis
and advanced by one ``jit(vmap(step))`` call per round (seeds x methods);
allocation and the GP run on the host, where their wall-clock is measured.

Paired design (common random numbers): for seed ``s`` every method starts
from the same parameters, sees the same prompt sequence and uses the same
sampling keys.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from vipcore._src.apps.simulate import policy as pol
from vipcore._src.apps.simulate.task import Task, make_task
from vipcore._src.variance import advantages, variance_factor

__all__ = [
    "METHODS",
    "SimConfig",
    "QUICK",
    "run_training",
]

#: Methods compared, in report order.
METHODS = ("uniform", "vip", "vip_oracle", "inverse_accuracy", "inverse_variance",
           "dapo")
_GP_METHODS = ("vip", "inverse_accuracy", "inverse_variance")


@dataclass(frozen=True)
class SimConfig:
    """Everything that defines a simulation (fixed before any comparison).

    Attributes:
      num_train, num_eval: training prompt pool and held-out set sizes.
      num_slots, num_values: task ``K`` and ``D`` (see :mod:`.task`).
      task_seed: seed of the generated task (train and eval are disjoint draws).
      hidden, depth: MLP width and number of hidden layers.
      learning_rate: Adam step size; ``max_grad_norm`` optional global-norm clip.
      batch_size: ``B`` prompts per round.
      rollouts_per_prompt: ``n_bar``; the per-round budget is ``C = B n_bar``.
      lower, upper: per-prompt bounds ``L <= n_q <= U`` for the allocators.
      steps: rounds per run; ``seeds``: independent runs per method.
      estimator: ``"rloo"``, ``"drgrpo"`` or ``"grpo"`` (GRPO allocates with
        the RLOO objective: the paper gives no closed form for it).
      methods: subset of :data:`METHODS`.
      predictor: planner predictor for ``vip`` and the heuristics.
      eval_every: rounds between held-out evaluations.
      gradvar_every, gradvar_replicates: rounds between gradient-variance
        measurements and the number of independent rollout draws per measurement.
      target_accuracy: held-out accuracy for "rollouts to reach target".
      checkpoints: fractions of training at which the ``uniform`` seed-0 policy
        is saved for the assumption tests.
      filler_tokens, filler_vocab: ``T`` reward-irrelevant "reasoning" tokens
        per rollout from a second head over ``filler_vocab`` symbols (0 = the
        one-token policy). They make ``Z`` a sum over many tokens as in an LLM
        (see :func:`vipcore._src.apps.simulate.policy.sequence_log_prob`).
    """

    num_train: int = 1024
    num_eval: int = 512
    num_slots: int = 8
    num_values: int = 10
    task_seed: int = 0
    hidden: int = 64
    depth: int = 2
    learning_rate: float = 3e-3
    max_grad_norm: float | None = None
    batch_size: int = 32
    rollouts_per_prompt: int = 8
    lower: int = 3
    upper: int = 32
    steps: int = 200
    seeds: int = 8
    estimator: str = "rloo"
    methods: tuple[str, ...] = METHODS
    predictor: str = "gp"
    eval_every: int = 5
    gradvar_every: int = 20
    gradvar_replicates: int = 16
    target_accuracy: float = 0.6
    checkpoints: tuple[float, ...] = (0.0, 0.5, 1.0)
    filler_tokens: int = 0
    filler_vocab: int = 16

    @property
    def budget(self) -> int:
        """Rollouts per round, ``C = B * n_bar``."""
        return self.batch_size * self.rollouts_per_prompt

    @property
    def alloc_estimator(self) -> str:
        """Objective used by the allocators (``rloo`` for GRPO)."""
        return "drgrpo" if self.estimator == "drgrpo" else "rloo"

    def validate(self) -> SimConfig:
        """Raise ``ValueError`` on inconsistent settings; return ``self``."""
        bad = [m for m in self.methods if m not in METHODS]
        if bad or not self.methods:
            raise ValueError(f"methods must be a non-empty subset of {METHODS}; "
                             f"got {self.methods}")
        if self.estimator not in ("rloo", "drgrpo", "grpo"):
            raise ValueError("estimator must be one of 'rloo', 'drgrpo', 'grpo'; "
                             f"got {self.estimator!r}")
        lmin = 3 if self.alloc_estimator == "drgrpo" else 2
        if not lmin <= self.lower <= self.rollouts_per_prompt <= self.upper:
            raise ValueError(
                f"need {lmin} <= lower <= rollouts_per_prompt <= upper; got lower="
                f"{self.lower}, rollouts_per_prompt={self.rollouts_per_prompt}, "
                f"upper={self.upper}")
        for name in ("num_train", "num_eval", "batch_size", "steps", "seeds",
                     "eval_every", "gradvar_every", "hidden", "depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.batch_size > self.num_train:
            raise ValueError(f"batch_size must be <= num_train={self.num_train}; "
                             f"got {self.batch_size}")
        if self.filler_tokens < 0 or self.filler_vocab < 2:
            raise ValueError("need filler_tokens >= 0 and filler_vocab >= 2; got "
                             f"{self.filler_tokens}, {self.filler_vocab}")
        if self.gradvar_replicates < 2:
            raise ValueError("gradvar_replicates must be >= 2; got "
                             f"{self.gradvar_replicates}")
        if not 0 < self.target_accuracy < 1:
            raise ValueError("target_accuracy must lie in (0, 1); got "
                             f"{self.target_accuracy}")
        return self


#: The ``--quick`` settings (CI and the notebook): a few seeds, short runs.
QUICK = dict(num_train=512, num_eval=256, steps=60, seeds=3, eval_every=5,
             gradvar_every=20, gradvar_replicates=8)


# --------------------------------------------------------------------------
# Device code: one round for a stack of runs.


def _rewards(ys, answer):
    return jnp.where(ys == answer[:, None], 1.0, -1.0)


def _batch_grad(params, feats, smask, ys, fil, rew, rmask, counts, estimator):
    """Policy-gradient estimate (as the gradient of the surrogate)."""
    adv = advantages(rew, estimator, mask=rmask)
    b = counts.shape[0]
    w = adv / (counts[:, None].astype(adv.dtype) * b)
    return jax.grad(pol.pg_loss)(params, feats, smask, ys, w, fil)


def _sample(key, params, feats, smask, num, tokens):
    """Answers ``(B, num)`` and fillers ``(B, num, T)``; the answer draw uses
    ``key`` itself, so ``T = 0`` reproduces the one-token runs exactly."""
    ys = pol.sample(key, params, feats, smask, num)
    fil = pol.sample_fillers(jax.random.fold_in(key, 1), params, feats, num, tokens)
    return ys, fil


def _make_alloc_step(tx, estimator: str, upper: int, tokens: int):
    def step(params, opt_state, key, feats, smask, answer, counts):
        ys, fil = _sample(key, params, feats, smask, upper, tokens)
        rew = _rewards(ys, answer)
        rmask = jnp.arange(upper)[None, :] < counts[:, None]
        g = _batch_grad(params, feats, smask, ys, fil, rew, rmask, counts,
                        estimator)
        updates, opt_state = tx.update(g, opt_state, params)
        params = optax.apply_updates(params, updates)
        lo = jnp.min(jnp.where(rmask, rew, jnp.inf), axis=-1)
        hi = jnp.max(jnp.where(rmask, rew, -jnp.inf), axis=-1)
        zero_var = jnp.mean((lo == hi).astype(jnp.float32))
        return params, opt_state, rew, rmask, zero_var

    return step


def _make_dapo_step(tx, estimator: str, n: int, tokens: int):
    def step(params, opt_state, buf, key, feats, smask, answer, ids, table):
        f_all, m_all, a_all = table
        b = ids.shape[0]
        ys, fil = _sample(key, params, feats, smask, n, tokens)
        rew = _rewards(ys, answer)
        valid = jnp.any(rew != rew[:, :1], axis=-1)
        buf_ids, buf_ys, buf_fil, count = buf
        pos = count + jnp.cumsum(valid) - 1
        take = valid & (pos < b)
        dest = jnp.where(take, pos, b)  # index b is dropped
        buf_ids = buf_ids.at[dest].set(ids.astype(buf_ids.dtype), mode="drop")
        buf_ys = buf_ys.at[dest].set(ys.astype(buf_ys.dtype), mode="drop")
        buf_fil = buf_fil.at[dest].set(fil.astype(buf_fil.dtype), mode="drop")
        new_count = jnp.minimum(count + jnp.sum(valid), b)
        full = new_count == b
        # the update on the (possibly incomplete) buffer; applied only if full
        bf, bm, ba = f_all[buf_ids], m_all[buf_ids], a_all[buf_ids]
        brew = _rewards(buf_ys, ba)
        rmask = jnp.ones(buf_ys.shape, dtype=bool)
        counts = jnp.full((b,), n)
        g = _batch_grad(params, bf, bm, buf_ys, buf_fil, brew, rmask, counts,
                        estimator)
        updates, new_opt = tx.update(g, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        pick = functools.partial(jnp.where, full)
        params = jax.tree.map(pick, new_params, params)
        opt_state = jax.tree.map(pick, new_opt, opt_state)
        count = jnp.where(full, 0, new_count)
        zero_var = 1.0 - jnp.mean(valid.astype(jnp.float32))
        return params, opt_state, (buf_ids, buf_ys, buf_fil, count), zero_var, full

    return step


def _make_grad_moments(estimator: str, upper: int, reps: int, tokens: int):
    """Across ``reps`` independent rollout draws: tr Cov(g) and Var(1^T g)."""

    def one(params, key, feats, smask, answer, counts):
        ys, fil = _sample(key, params, feats, smask, upper, tokens)
        rew = _rewards(ys, answer)
        rmask = jnp.arange(upper)[None, :] < counts[:, None]
        g = _batch_grad(params, feats, smask, ys, fil, rew, rmask, counts,
                        estimator)
        return ravel_pytree(g)[0]

    def moments(params, key, feats, smask, answer, counts):
        keys = jax.random.split(key, reps)
        gs = jax.vmap(one, in_axes=(None, 0, None, None, None, None))(
            params, keys, feats, smask, answer, counts)  # (reps, P)
        tr = jnp.sum(jnp.var(gs, axis=0, ddof=1))
        proj = jnp.var(jnp.sum(gs, axis=1), ddof=1)
        return tr, proj

    return moments


class _Fns(NamedTuple):
    tx: Any
    alloc_step: Callable
    dapo_step: Callable
    grad_mom: Callable
    eval: Callable
    trainp: Callable


@functools.lru_cache(maxsize=8)
def _compiled(lr, max_grad_norm, estimator, upper, n_bar, reps, tokens) -> _Fns:
    """Jitted round functions, cached so repeated runs reuse compilations."""
    tx = optax.adam(lr)
    if max_grad_norm is not None:
        tx = optax.chain(optax.clip_by_global_norm(max_grad_norm), tx)
    return _Fns(
        tx=tx,
        alloc_step=jax.jit(jax.vmap(_make_alloc_step(tx, estimator, upper,
                                                     tokens))),
        dapo_step=jax.jit(jax.vmap(_make_dapo_step(tx, estimator, n_bar, tokens),
                                   in_axes=(0, 0, 0, 0, 0, 0, 0, 0, None))),
        grad_mom=jax.jit(jax.vmap(_make_grad_moments(estimator, upper, reps,
                                                     tokens))),
        eval=jax.jit(jax.vmap(lambda p, f, m, a: jnp.mean(pol.success_prob(
            p, f, m, a)), in_axes=(0, None, None, None))),
        trainp=jax.jit(jax.vmap(pol.success_prob)),
    )


# --------------------------------------------------------------------------
# Host side.


def _make_planner(cfg: SimConfig, embeddings: np.ndarray):
    from vipcore._src.planner import Planner

    return Planner(embeddings, estimator=cfg.alloc_estimator, lower=cfg.lower,
                   upper=cfg.upper, predictor=cfg.predictor)


def _allocate(method, cfg, p_hat):
    if method == "uniform":
        return np.full(p_hat.shape, cfg.rollouts_per_prompt, dtype=np.int64)
    from vipcore._src.allocation import get_allocator

    fn = get_allocator("vip" if method == "vip_oracle" else method)
    p = np.clip(np.asarray(p_hat, dtype=np.float64), 0.0, 1.0)
    return fn(p, cfg.budget, cfg.lower, cfg.upper, estimator=cfg.alloc_estimator)


def _stack(tree, reps: int):
    return jax.tree.map(lambda x: jnp.repeat(x[None], reps, axis=0)
                        if x.ndim == 0 else jnp.concatenate([x] * reps, axis=0),
                        tree)


@dataclass
class _Timer:
    """Wall-clock totals and call counts; round 0 (JIT compilation) is skipped."""

    totals: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    active: bool = False

    def add(self, name: str, dt: float, calls: int = 1) -> None:
        if self.active:
            self.totals[name] = self.totals.get(name, 0.0) + dt
            self.calls[name] = self.calls.get(name, 0) + calls


def prompt_ids(cfg: SimConfig, seed: int, step: int) -> np.ndarray:
    """The ``B`` training prompts of round ``step`` for seed ``seed`` (all methods)."""
    rng = np.random.default_rng([cfg.task_seed, seed, step])
    return rng.choice(cfg.num_train, size=cfg.batch_size, replace=False)


def make_tasks(cfg: SimConfig) -> tuple[Task, Task]:
    """Disjoint training pool and held-out set from one generated task."""
    full = make_task(cfg.num_train + cfg.num_eval, num_slots=cfg.num_slots,
                     num_values=cfg.num_values, seed=cfg.task_seed)
    idx = np.arange(full.num_prompts)
    return full.subset(idx[:cfg.num_train]), full.subset(idx[cfg.num_train:])


def run_training(cfg: SimConfig, *, progress: Callable[[str], None] | None = None
                 ) -> dict[str, Any]:
    """Train every method in ``cfg.methods`` for ``cfg.seeds`` seeds.

    Returns a JSON-ready dict (lists, floats) with, per method, the held-out
    accuracy curves ``(seeds, evals)``, zero-variance group fractions
    ``(seeds, steps)``, gradient-variance measurements, rollouts consumed,
    allocation/GP wall-clock, and the saved checkpoints (params, not JSON: under
    the key ``"_checkpoints"``).
    """
    cfg.validate()
    say = progress or (lambda s: None)
    train, evalt = make_tasks(cfg)
    S, B, U, n_bar = cfg.seeds, cfg.batch_size, cfg.upper, cfg.rollouts_per_prompt
    in_dim, K = train.features.shape[1], cfg.num_slots
    T = cfg.filler_tokens
    fns = _compiled(cfg.learning_rate, cfg.max_grad_norm, cfg.estimator, U, n_bar,
                    cfg.gradvar_replicates, T)
    tx = fns.tx

    F = jnp.asarray(train.features)
    M = jnp.asarray(train.mask)
    A = jnp.asarray(train.answer)
    Fe, Me, Ae = (jnp.asarray(evalt.features), jnp.asarray(evalt.mask),
                  jnp.asarray(evalt.answer))

    seed_params = jax.vmap(lambda k: pol.init_params(
        k, in_dim, K, hidden=cfg.hidden, depth=cfg.depth,
        filler_vocab=cfg.filler_vocab if T else 0))(
        jax.vmap(lambda s: jax.random.fold_in(jax.random.key(1234), s))(
            jnp.arange(S)))

    alloc_methods = [m for m in cfg.methods if m != "dapo"]
    use_dapo = "dapo" in cfg.methods
    Ma = len(alloc_methods)
    run_seed = np.tile(np.arange(S), Ma)  # run r = (method r // S, seed r % S)

    def keys_for(step, seeds):
        base = jax.random.key(cfg.task_seed + 7919)
        return jax.vmap(lambda s: jax.random.fold_in(jax.random.fold_in(base, s),
                                                     step))(jnp.asarray(seeds))

    def eval_fn(p):
        return fns.eval(p, Fe, Me, Ae)

    def trainp_fn(p, ids):
        return fns.trainp(p, F[ids], M[ids], A[ids])

    alloc_step, grad_mom = fns.alloc_step, fns.grad_mom

    params_a = _stack(seed_params, Ma) if Ma else None
    opt_a = jax.vmap(tx.init)(params_a) if Ma else None
    if use_dapo:
        dapo_step = fns.dapo_step
        params_d = seed_params
        opt_d = jax.vmap(tx.init)(params_d)
        buf = (jnp.zeros((S, B), jnp.int32), jnp.zeros((S, B, n_bar), jnp.int32),
               jnp.zeros((S, B, n_bar, T), jnp.int32), jnp.zeros((S,), jnp.int32))
        dapo_updates = np.zeros((S,), np.int64)

    planners: dict[int, Any] = {}
    for r in range(Ma * S):
        if alloc_methods[r // S] in _GP_METHODS:
            planners[r] = _make_planner(cfg, train.embeddings)

    eval_steps = [t for t in range(cfg.steps + 1) if t % cfg.eval_every == 0
                  or t == cfg.steps]
    acc = {m: np.zeros((S, len(eval_steps))) for m in cfg.methods}
    zero_var = {m: np.zeros((S, cfg.steps)) for m in cfg.methods}
    pred_var = {m: np.zeros((S, cfg.steps)) for m in alloc_methods}
    mae = {m: [] for m in _GP_METHODS if m in alloc_methods}
    gv_steps = [t for t in range(cfg.steps) if t % cfg.gradvar_every == 0]
    gradvar = {m: {"trace": np.zeros((S, len(gv_steps))),
                   "projected": np.zeros((S, len(gv_steps)))} for m in alloc_methods}
    controlled_rules = [m for m in ("uniform", "vip_oracle", "inverse_accuracy",
                                    "inverse_variance")]
    controlled = {m: {"trace": np.zeros((S, len(gv_steps))),
                      "projected": np.zeros((S, len(gv_steps)))}
                  for m in controlled_rules}
    timer = _Timer()
    n_hist = {m: [] for m in alloc_methods}
    checkpoints: dict[int, Any] = {}
    ck_steps = sorted({int(round(f * cfg.steps)) for f in cfg.checkpoints})

    def evaluate(ei):
        if Ma:
            a = np.asarray(eval_fn(params_a))
            for i, m in enumerate(alloc_methods):
                acc[m][:, ei] = a[i * S:(i + 1) * S]
        if use_dapo:
            acc["dapo"][:, ei] = np.asarray(eval_fn(params_d))

    ei = 0
    t_start = time.perf_counter()
    for t in range(cfg.steps + 1):
        if t in ck_steps and "uniform" in alloc_methods:
            i = alloc_methods.index("uniform")
            checkpoints[t] = jax.tree.map(lambda x, i=i: np.asarray(x[i * S]),
                                          params_a)
        if ei < len(eval_steps) and eval_steps[ei] == t:
            evaluate(ei)
            ei += 1
        if t == cfg.steps:
            break
        timer.active = t > 0
        ids_s = np.stack([prompt_ids(cfg, s, t) for s in range(S)])  # (S, B)
        if Ma:
            t0 = time.perf_counter()
            ids = ids_s[run_seed]
            p_true = np.asarray(trainp_fn(params_a, jnp.asarray(ids)))
            counts = np.zeros((Ma * S, B), np.int64)
            for r in range(Ma * S):
                m = alloc_methods[r // S]
                if m in _GP_METHODS:
                    ta = time.perf_counter()
                    p_hat = np.asarray(planners[r].predict(ids[r]))
                    timer.add("gp_predict", time.perf_counter() - ta)
                    mae[m].append(float(np.mean(np.abs(p_hat - p_true[r]))))
                else:
                    p_hat = p_true[r]
                ta = time.perf_counter()
                counts[r] = _allocate(m, cfg, p_hat)
                timer.add("allocate", time.perf_counter() - ta)
                if counts[r].sum() != cfg.budget:
                    raise RuntimeError(f"{m} spent {counts[r].sum()} != {cfg.budget}")
            for i, m in enumerate(alloc_methods):
                c = counts[i * S:(i + 1) * S]
                pt = p_true[i * S:(i + 1) * S]
                pred_var[m][:, t] = np.sum(np.asarray(variance_factor(
                    c, cfg.alloc_estimator)) * 4 * pt * (1 - pt), axis=1) / B**2
                n_hist[m].append(c)
            if t in gv_steps:
                gi = gv_steps.index(t)
                gk = keys_for(t + 10**6, run_seed)
                tr, pj = grad_mom(params_a, gk, F[ids], M[ids], A[ids],
                                  jnp.asarray(counts))
                tr, pj = np.asarray(tr), np.asarray(pj)
                for i, m in enumerate(alloc_methods):
                    gradvar[m]["trace"][:, gi] = tr[i * S:(i + 1) * S]
                    gradvar[m]["projected"][:, gi] = pj[i * S:(i + 1) * S]
                if "uniform" in alloc_methods:
                    iu = alloc_methods.index("uniform")
                    pu = jax.tree.map(lambda x, iu=iu: x[iu * S:(iu + 1) * S],
                                      params_a)
                    pt = p_true[iu * S:(iu + 1) * S]
                    cc = np.concatenate([np.stack([_allocate(m, cfg, pt[s])
                                                   for s in range(S)])
                                         for m in controlled_rules])
                    nr = len(controlled_rules)
                    if nr < Ma:  # pad to the main stack's shape: one compilation
                        cc = np.concatenate([cc, np.tile(cc[:S], (Ma - nr, 1))])
                        nr = Ma
                    cids = np.tile(ids_s, (nr, 1))
                    ctr, cpj = grad_mom(_stack(pu, nr), keys_for(
                        t + 2 * 10**6, np.tile(np.arange(S), nr)), F[cids],
                        M[cids], A[cids], jnp.asarray(cc))
                    ctr, cpj = np.asarray(ctr), np.asarray(cpj)
                    for i, m in enumerate(controlled_rules):
                        controlled[m]["trace"][:, gi] = ctr[i * S:(i + 1) * S]
                        controlled[m]["projected"][:, gi] = cpj[i * S:(i + 1) * S]
            jids = jnp.asarray(ids)
            ta = time.perf_counter()
            params_a, opt_a, rew, rmask, zv = alloc_step(
                params_a, opt_a, keys_for(t, run_seed), F[jids], M[jids], A[jids],
                jnp.asarray(counts))
            zv = np.asarray(zv)
            timer.add("device_step_alloc_methods", time.perf_counter() - ta)
            for i, m in enumerate(alloc_methods):
                zero_var[m][:, t] = zv[i * S:(i + 1) * S]
            if planners:
                rew_np, mask_np = np.asarray(rew), np.asarray(rmask)
                ta = time.perf_counter()
                succ = np.sum((rew_np > 0) & mask_np, axis=-1)
                for r, pl in planners.items():
                    pl.observe(ids[r], successes=succ[r], counts=counts[r])
                timer.add("gp_observe", time.perf_counter() - ta, len(planners))
            timer.add("round_alloc_methods", time.perf_counter() - t0)
        if use_dapo:
            t0 = time.perf_counter()
            jids = jnp.asarray(ids_s)
            params_d, opt_d, buf, zv, full = dapo_step(
                params_d, opt_d, buf, keys_for(t, np.arange(S)), F[jids], M[jids],
                A[jids], jids, (F, M, A))
            zero_var["dapo"][:, t] = np.asarray(zv)
            dapo_updates += np.asarray(full).astype(np.int64)
            timer.add("round_dapo", time.perf_counter() - t0)
        if (t + 1) % max(1, cfg.steps // 10) == 0:
            say(f"round {t + 1}/{cfg.steps}  "
                f"({time.perf_counter() - t_start:.0f} s)")

    rollouts = [int(t * cfg.budget) for t in eval_steps]
    out: dict[str, Any] = {
        "config": dataclasses.asdict(cfg),
        "budget_per_round": cfg.budget,
        "eval_steps": eval_steps,
        "rollouts": rollouts,
        "gradvar_steps": gv_steps,
        "methods": {},
        "controlled_gradvar": {m: {k: v.tolist() for k, v in d.items()}
                               for m, d in controlled.items()}
        if "uniform" in alloc_methods else {},
        "timing_s": dict(timer.totals),
        "timing_calls": dict(timer.calls),
        "runs_per_device_step": Ma * S,
        "wall_s": time.perf_counter() - t_start,
        "_checkpoints": checkpoints,
    }
    for m in cfg.methods:
        d: dict[str, Any] = {
            "accuracy": acc[m].tolist(),
            "zero_variance_fraction": zero_var[m].tolist(),
            "rollouts_per_round": [cfg.budget] * cfg.steps,
            "rollouts_to_target": [_first_reach(acc[m][s], rollouts,
                                                cfg.target_accuracy)
                                   for s in range(S)],
        }
        if m in alloc_methods:
            d["gradvar"] = {k: v.tolist() for k, v in gradvar[m].items()}
            d["predicted_sum_var_g"] = pred_var[m].tolist()
            c = np.stack(n_hist[m])  # (steps, S, B)
            d["counts_min"] = int(c.min())
            d["counts_max"] = int(c.max())
            d["counts_std_mean"] = float(c.std(axis=-1).mean())
        if m in mae:
            d["gp_mae"] = float(np.mean(mae[m])) if mae[m] else math.nan
        if m == "dapo":
            d["updates"] = dapo_updates.tolist()
        out["methods"][m] = d
    return out


def _first_reach(curve: np.ndarray, rollouts: list[int], target: float):
    hit = np.flatnonzero(np.asarray(curve) >= target)
    return int(rollouts[hit[0]]) if hit.size else None
