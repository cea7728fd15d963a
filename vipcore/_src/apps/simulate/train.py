r"""Every arm at its rollout budget, trained on the device.

:func:`run_training` groups the arms by program (:meth:`Arm.program`), builds
each program's initial state on the host (policy parameters, optimizer,
predictor and selector states, candidate streams) and runs it with
:func:`vipcore._src.apps.simulate.loop.run_program`: one compiled call per
program for all rounds, arms and seeds.

Paired design (common random numbers): for seed ``s`` every arm starts from
the same parameters, is offered the same candidate stream (whose first ``B``
prompts are the batch of every arm that does not select) and uses the same
sampling keys.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vipcore._src.apps.simulate import loop
from vipcore._src.apps.simulate import policy as pol
from vipcore._src.apps.simulate import selectors as sel
from vipcore._src.apps.simulate.arms import Arm, resolve_arms
from vipcore._src.apps.simulate.config import SimConfig
from vipcore._src.apps.simulate.task import Task, make_task, network_embeddings

__all__ = [
    "make_tasks",
    "prompt_ids",
    "candidate_pools",
    "prompt_embeddings",
    "initial_params",
    "run_training",
]


def make_tasks(cfg: SimConfig) -> tuple[Task, Task]:
    """Disjoint training pool and held-out set from one generated task."""
    full = make_task(cfg.num_train + cfg.num_eval, num_slots=cfg.num_slots,
                     num_values=cfg.num_values, seed=cfg.task_seed)
    idx = np.arange(full.num_prompts)
    return full.subset(idx[:cfg.num_train]), full.subset(idx[cfg.num_train:])


def prompt_ids(cfg: SimConfig, seed: int, step: int) -> np.ndarray:
    """The ``B`` training prompts of round ``step`` for seed ``seed``."""
    rng = np.random.default_rng([cfg.task_seed, seed, step])
    return rng.choice(cfg.num_train, size=cfg.batch_size, replace=False)


def _stream(cfg: SimConfig, seed: int, step: int, size: int) -> np.ndarray:
    rng = np.random.default_rng([cfg.task_seed, seed, step])
    first = rng.choice(cfg.num_train, size=cfg.batch_size, replace=False)
    rest = np.delete(np.arange(cfg.num_train), first)
    return np.concatenate([first, rng.choice(rest, size - cfg.batch_size,
                                             replace=False)])


def candidate_pools(cfg: SimConfig, seeds: Sequence[int]) -> np.ndarray:
    """``(steps, S, P)`` int32 candidate streams: ``P`` distinct prompts per
    round and seed, the first ``B`` equal to :func:`prompt_ids`."""
    size = sel.pool_size(cfg.batch_size)
    out = np.empty((cfg.steps, len(seeds), size), np.int32)
    for j, s in enumerate(seeds):
        for t in range(cfg.steps):
            out[t, j] = _stream(cfg, int(s), t, size)
    return out


def prompt_embeddings(cfg: SimConfig, train: Task, kind: str) -> np.ndarray:
    """``"network"`` (frozen random encoder) or ``"descriptor"`` embeddings."""
    if kind == "descriptor":
        return train.embeddings
    return network_embeddings(train, dim=cfg.embedding_dim,
                              num_values=cfg.num_values, seed=cfg.task_seed)


def initial_params(cfg: SimConfig, seeds: Sequence[int]):
    """Stacked initial policy parameters, one row per seed number."""
    in_dim = 2 * cfg.num_slots
    fv = cfg.filler_vocab if cfg.filler_tokens else 0
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(1234), s))(
        jnp.asarray(seeds, jnp.int32))
    return jax.vmap(lambda k: pol.init_params(
        k, in_dim, cfg.num_slots, hidden=cfg.hidden, depth=cfg.depth,
        filler_vocab=fv))(keys)


def _broadcast(tree, reps: int):
    return jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x),
                                                   (reps,) + jnp.shape(x)), tree)


def _static(cfg: SimConfig, arms: list[Arm], ck_run: int) -> loop.Static:
    every = cfg.eval_every
    cks = tuple(sorted({int(round(f * cfg.steps / every)) * every
                        for f in cfg.checkpoints}))
    arm = arms[0]
    pred = (arm.predictor, arm.predictor_options) if arm.predictor else None
    return loop.Static(
        num_prompts=cfg.num_train, batch=cfg.batch_size, upper=cfg.upper,
        lower=cfg.lower, n_bar=cfg.rollouts_per_prompt, tokens=cfg.filler_tokens,
        every=every, blocks=cfg.steps // every, gv_every=cfg.gradvar_every,
        reps=cfg.gradvar_replicates, estimator=cfg.estimator,
        alloc_estimator=cfg.alloc_estimator, learning_rate=cfg.learning_rate,
        max_grad_norm=cfg.max_grad_norm, task_seed=cfg.task_seed,
        predictor=pred, selection=any(a.selector != "batch" for a in arms),
        dapo=any(a.learner == "dapo" for a in arms),
        ck_steps=cks if ck_run >= 0 else (), ck_run=ck_run)


def _initial_carry(cfg: SimConfig, st: loop.Static, arm: Arm, params, train):
    """Per-run initial state for ``R`` runs whose parameters are ``params``."""
    reps = jax.tree.leaves(params)[0].shape[0]
    tx = loop._optimizer(st.learning_rate, st.max_grad_norm)
    pred = ()
    if st.predictor is not None:
        from vipcore._src.predict.registry import get_predictor

        spec = get_predictor(arm.predictor)
        emb = prompt_embeddings(cfg, train, arm.embedding) \
            if spec.needs_embeddings else None
        pred = _broadcast(loop.predictor_for(st.predictor).init(cfg.num_train, emb),
                          reps)
    m = sel.MOPPS_DEFAULTS
    selector_state = _broadcast((
        sel.greso_init(cfg.num_train, p_init=sel.GRESO_DEFAULTS["p_init"]),
        sel.mopps_init(cfg.num_train, prior_alpha=m["prior_alpha"],
                       prior_beta=m["prior_beta"])), reps) if st.selection else ()
    b, u, t = st.batch, st.upper, st.tokens
    dapo = _broadcast((jnp.zeros((b,), jnp.int32), jnp.zeros((b, u), jnp.int32),
                       jnp.zeros((b, u, t), jnp.int32), jnp.int32(0)), reps) \
        if st.dapo else ()
    calib = _broadcast((jnp.float32(0), jnp.float32(0),
                        jnp.zeros((3, loop.ECE_BINS), jnp.float32)), reps)
    return loop.Carry(params, jax.vmap(tx.init)(params), pred, selector_state,
                      dapo, calib)


def _arm_params(cfg: SimConfig, arms: list[Arm], reps: int) -> loop.ArmParams:
    def col(fn, dtype):
        return jnp.asarray(np.repeat([fn(a) for a in arms], reps), dtype)

    return loop.ArmParams(
        n_bar=col(lambda a: a.n_bar or cfg.rollouts_per_prompt, jnp.int32),
        vip=col(lambda a: a.allocation != "uniform", bool),
        expected=col(lambda a: a.allocation == "vip_expected", bool),
        permute=col(lambda a: a.permute, bool),
        selector=col(lambda a: loop.SELECTORS[a.selector], jnp.int32),
        posterior=col(lambda a: a.source == "posterior", bool),
        dapo=col(lambda a: a.learner == "dapo", bool),
        equal_steps=col(lambda a: a.equal_steps, bool))


def _groups(arms: list[Arm]) -> list[list[Arm]]:
    out: dict[tuple, list[Arm]] = {}
    for a in arms:
        out.setdefault(a.program(), []).append(a)
    return list(out.values())


_COMPILED: dict[Any, Any] = {}


def _cache_key(st: loop.Static, args: tuple):
    leaves, tree = jax.tree.flatten(args)
    return (st, tree, tuple((x.shape, str(x.dtype)) for x in leaves))


def _compile_all(jobs: list[tuple[loop.Static, tuple]]) -> list[float]:
    """Compile ``run_program`` for every ``(st, args)`` not compiled yet in
    this process, in parallel threads (XLA compiles outside the GIL); return
    each job's compile seconds (0 for a cache hit)."""
    from concurrent.futures import ThreadPoolExecutor

    todo = {}
    for st, args in jobs:
        key = _cache_key(st, args)
        if key not in _COMPILED and key not in todo:
            todo[key] = loop.run_program.lower(st, *args)

    def compile_one(item):
        t0 = time.perf_counter()
        return item[0], item[1].compile(), time.perf_counter() - t0

    seconds = {}
    workers = max(1, min(len(todo), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for key, fn, dt in pool.map(compile_one, todo.items()):
            _COMPILED[key] = fn
            seconds[key] = dt
    return [seconds.get(_cache_key(st, args), 0.0) for st, args in jobs]


def _ece(bins: np.ndarray) -> np.ndarray:
    """``sum_b |S_b - sum p_hat_b| / N`` from ``(..., 3, bins)`` sums."""
    n = bins[..., 0, :].sum(-1)
    return np.abs(bins[..., 2, :] - bins[..., 1, :]).sum(-1) / np.maximum(n, 1)


def _split(cfg: SimConfig, arms: list[Arm], s: int, result) -> dict[str, dict]:
    """Per-arm records (numpy, seeds first) from one program's output."""
    outs, acc, acc0, calib, _ = jax.tree.map(np.asarray, result)
    t = cfg.steps
    rec: dict[str, dict] = {}
    for i, arm in enumerate(arms):
        sl = slice(i * s, (i + 1) * s)
        d = {k: np.swapaxes(v.reshape((t,) + v.shape[2:])[:, sl], 0, 1)
             for k, v in outs.items()}
        d["gradvar"] = d["gradvar"][:, ::cfg.gradvar_every]
        d["accuracy"] = np.concatenate([acc0[sl, None], acc[:, sl].T], axis=1)
        brier, n, bins = calib[0][sl], calib[1][sl], calib[2][sl]
        d["brier"] = brier / np.maximum(n, 1)
        d["ece"] = _ece(bins)
        rec[arm.name] = d
    return rec


def _prepare(cfg, arms, seeds, pools, data, train, checkpoints: bool):
    """The static settings and arguments of one program."""
    s = len(seeds)
    names = [a.name for a in arms]
    ck_run = names.index("uniform") * s if checkpoints and "uniform" in names \
        else -1
    st = _static(cfg, arms, ck_run)
    params = jax.tree.map(lambda x: jnp.concatenate([x] * len(arms)),
                          initial_params(cfg, seeds))
    carry = _initial_carry(cfg, st, arms[0], params, train)
    args = (data, _arm_params(cfg, arms, s),
            jnp.asarray(np.tile(seeds, len(arms)), jnp.int32),
            jnp.asarray(np.tile(np.arange(s), len(arms)), jnp.int32), carry, pools)
    return st, args


def _run_group(cfg, arms, st, args, s: int):
    t0 = time.perf_counter()
    result = jax.block_until_ready(_COMPILED[_cache_key(st, args)](*args))
    ck = {step: jax.tree.map(np.asarray, c)
          for step, c in zip(st.ck_steps, result[4], strict=True)}
    return _split(cfg, arms, s, result), ck, time.perf_counter() - t0


def _first_reach(curve: np.ndarray, rollouts: np.ndarray, target: float):
    hit = np.flatnonzero(np.asarray(curve) >= target)
    return int(rollouts[hit[0]]) if hit.size else None


def _package(cfg: SimConfig, arms: list[Arm], skipped, seeds, rows, methods):
    """The results dict of the seeds ``seeds`` (rows ``rows`` of ``methods``)."""
    out: dict[str, dict] = {}
    rollouts = {}
    for arm in arms:
        c = cfg.batch_size * (arm.n_bar or cfg.rollouts_per_prompt)
        rollouts[arm.name] = np.asarray(cfg.eval_steps) * c
        d = {k: v[rows] for k, v in methods[arm.name].items()}
        d["rollouts_to_target"] = [_first_reach(a, rollouts[arm.name],
                                                cfg.target_accuracy)
                                   for a in d["accuracy"]]
        out[arm.name] = d
    return {
        "config": dataclasses.asdict(cfg),
        "arms": {a.name: dataclasses.asdict(a) for a in arms},
        "skipped": skipped,
        "seeds": [int(x) for x in seeds],
        "eval_steps": cfg.eval_steps,
        "gradvar_steps": list(range(0, cfg.steps, cfg.gradvar_every)),
        "budget_per_round": {a.name: cfg.batch_size * (a.n_bar or
                                                       cfg.rollouts_per_prompt)
                             for a in arms},
        "rollouts": rollouts,
        "methods": out,
    }


def run_training(cfg: SimConfig, *, progress: Callable[[str], None] | None = None,
                 checkpoints: bool = True) -> dict[str, Any]:
    """Train every arm of ``cfg`` for its paired seeds.

    The ``cfg.seeds`` comparison seeds (from ``cfg.seed_offset``) and the
    ``cfg.calibration_seeds`` calibration seeds (from
    ``cfg.calibration_offset``) run
    in the same programs; their results are returned apart.

    Returns a dict with the configuration, the arms run and skipped (with
    the reason), and per arm (under ``"methods"``) NumPy arrays with seeds
    first: ``accuracy`` ``(S, evals)``, per-round records ``(S, steps)``
    (``rollouts``, ``zero_var``, ``objective``, ``objective_uniform``,
    ``mid``, ``starved``, ``saturated_share``, ``abs_err``, ``updated``,
    ``filled``, ``distinct``, ``n_min``, ``n_max``), ``gradvar``
    ``(S, measurements, 4)`` (``tr Cov`` and ``Var(1^T g)`` with the arm's
    counts, then with ``n_bar`` each), ``brier`` and ``ece`` ``(S,)``, and
    ``rollouts_to_target``. ``"calibration"`` holds the same for the
    calibration seeds (None without them); ``"_checkpoints"`` the uniform
    arm's parameters for the first seed at the checkpoint rounds.
    """
    cfg.validate()
    say = progress or (lambda s: None)
    arms, skipped = resolve_arms(cfg)
    train, evalt = make_tasks(cfg)
    main = np.arange(cfg.seed_offset, cfg.seed_offset + cfg.seeds)
    cal = np.arange(cfg.calibration_offset,
                    cfg.calibration_offset + cfg.calibration_seeds)
    seeds = np.concatenate([main, cal])
    t_start = time.perf_counter()
    pools = jnp.asarray(candidate_pools(cfg, seeds))
    data = loop.Data(*(jnp.asarray(x) for x in (
        train.features, train.mask, train.answer, evalt.features, evalt.mask,
        evalt.answer)))
    methods: dict[str, dict] = {}
    timing: dict[str, dict] = {}
    ck: dict[int, Any] = {}
    groups = _groups(arms)
    jobs = [_prepare(cfg, g, seeds, pools, data, train, checkpoints)
            for g in groups]
    say(f"compiling {len(jobs)} programs")
    compile_s = _compile_all(jobs)
    for group, (st, args), tc in zip(groups, jobs, compile_s, strict=True):
        names = [a.name for a in group]
        rec, ck_g, tr = _run_group(cfg, group, st, args, len(seeds))
        methods.update(rec)
        ck.update(ck_g)
        timing[",".join(names)] = {"compile_s": tc, "run_s": tr,
                                   "runs": len(group) * len(seeds)}
        say(f"{', '.join(names)}: compiled in {tc:.1f} s, ran in {tr:.1f} s")
    s = cfg.seeds
    out = _package(cfg, arms, skipped, main, slice(0, s), methods)
    out["calibration"] = _package(cfg, arms, skipped, cal, slice(s, None),
                                  methods) if cfg.calibration_seeds else None
    out.update(timing=timing, wall_s=time.perf_counter() - t_start,
               _checkpoints=ck)
    return out
