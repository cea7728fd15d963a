"""The earlier host loop of ``vipcore simulate``, kept as a reference.

Before the loop moved onto the device, each round was one
``jit(vmap(step))`` call over the runs, with the allocation computed on the
host by :func:`vipcore.allocate` for every run. :func:`host_loop` is that
loop cut down to the arms ``uniform`` and ``vip_oracle`` with one answer
token. The tests check that the device loop reproduces it exactly, and
``benchmarks/bench_simulate.py`` times it as the baseline.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vipcore._src.apps.simulate import policy as pol
from vipcore._src.apps.simulate.config import SimConfig
from vipcore._src.apps.simulate.train import make_tasks, prompt_ids
from vipcore._src.variance import advantages

__all__ = ["host_loop"]


def _step_fn(cfg: SimConfig, feats, mask, answer):
    b, u = cfg.batch_size, cfg.upper
    tx = optax.adam(cfg.learning_rate)

    def step(params, opt, key, ids, counts):
        f, m, a = feats[ids], mask[ids], answer[ids]
        ys = pol.sample(key, params, f, m, u)
        rew = jnp.where(ys == a[:, None], 1.0, -1.0)
        rmask = jnp.arange(u)[None, :] < counts[:, None]
        adv = advantages(rew, cfg.estimator, mask=rmask)
        w = adv / (counts[:, None].astype(adv.dtype) * b)
        g = jax.grad(pol.pg_loss)(params, f, m, ys, w)
        upd, opt = tx.update(g, opt, params)
        lo = jnp.min(jnp.where(rmask, rew, jnp.inf), axis=-1)
        hi = jnp.max(jnp.where(rmask, rew, -jnp.inf), axis=-1)
        return optax.apply_updates(params, upd), opt, jnp.mean(lo == hi)

    return tx, jax.jit(jax.vmap(step))


def host_loop(cfg: SimConfig, arms: tuple[str, ...] = ("uniform", "vip_oracle")
              ) -> dict[str, dict]:
    """Train ``arms`` for the comparison seeds of ``cfg`` the earlier way.

    Returns per arm ``accuracy`` ``(S, evals)``, ``zero_var`` ``(S, steps)``
    and ``seconds_per_round`` (wall-clock after the first round).
    """
    from vipcore import allocate

    train, ev = make_tasks(cfg)
    feats, mask, answer = (jnp.asarray(x) for x in (train.features, train.mask,
                                                     train.answer))
    tx, step = _step_fn(cfg, feats, mask, answer)
    acc_fn = jax.jit(jax.vmap(lambda p: jnp.mean(pol.success_prob(
        p, jnp.asarray(ev.features), jnp.asarray(ev.mask), jnp.asarray(ev.answer)))))
    p_fn = jax.jit(jax.vmap(lambda p, i: pol.success_prob(p, feats[i], mask[i],
                                                         answer[i])))
    base = jax.random.key(cfg.task_seed + 7919)
    numbers = range(cfg.seed_offset, cfg.seed_offset + cfg.seeds)
    seeds = jnp.asarray(list(numbers), jnp.int32)
    out = {}
    for arm in arms:
        params = jax.vmap(lambda k: pol.init_params(
            k, 2 * cfg.num_slots, cfg.num_slots, hidden=cfg.hidden,
            depth=cfg.depth))(jax.vmap(lambda s: jax.random.fold_in(
                jax.random.key(1234), s))(seeds))
        opt = jax.vmap(tx.init)(params)
        acc, zv, t_first = [np.asarray(acc_fn(params))], [], None
        for t in range(cfg.steps):
            if t == 1:
                t_first = time.perf_counter()
            ids = np.stack([prompt_ids(cfg, s, t) for s in numbers])
            counts = np.full(ids.shape, cfg.rollouts_per_prompt)
            if arm == "vip_oracle":
                p = np.asarray(p_fn(params, jnp.asarray(ids)), np.float64)
                counts = np.stack([allocate(np.clip(q, 0, 1), cfg.budget,
                                            cfg.lower, cfg.upper) for q in p])
            keys = jax.vmap(lambda s, t=t: jax.random.fold_in(
                jax.random.fold_in(base, s), t))(seeds)
            params, opt, z = step(params, opt, keys, jnp.asarray(ids),
                                  jnp.asarray(counts))
            zv.append(np.asarray(z))
            if (t + 1) % cfg.eval_every == 0:
                acc.append(np.asarray(acc_fn(params)))
        per_round = ((time.perf_counter() - t_first) / (cfg.steps - 1)
                     if cfg.steps > 1 else float("nan"))
        out[arm] = {"accuracy": np.stack(acc, 1), "zero_var": np.stack(zv, 1),
                    "seconds_per_round": per_round}
    return out
