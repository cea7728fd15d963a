"""Record the true success probabilities of a uniform ``vipcore simulate`` run.

The replay benchmark (``benchmarks/bench_replay.py``) needs, for every round
of a training run, the prompts of the batch and their *exact* success
probabilities under the policy of that round. ``vipcore simulate`` computes
them (``p_true``) but does not return them, so this script runs the same
training loop for the ``uniform`` method only, with the simulate module's own
task generator, prompt schedule, jitted round function and seeds, and stores
per round the batch ids and their exact ``p``::

    python benchmarks/replay_record.py            # 300 rounds x 3 seeds, ~2 min

Settings: ``QUICK`` of ``vipcore simulate`` (512 training prompts) with 300
rounds, 3 seeds, ``B = 32`` prompts and ``n = 8`` rollouts per prompt, RLOO.
Writes ``benchmarks/results/replay_trajectory_simulate.npz``: ``ids`` and
``p`` of shape ``(seeds, rounds, B)``, the task's ``embeddings`` (the
``(Q, 3)`` difficulty descriptor) and ``features`` (the policy input, for
other embeddings), and ``meta`` (JSON: settings, versions, git commit).
Because the uniform policy's training does not depend on any prediction, one
recording serves every predictor and allocation option in the replay.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vipcore._src.apps.simulate import policy as pol  # noqa: E402
from vipcore._src.apps.simulate import train as tr  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "replay_trajectory_simulate.npz"


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def record(steps: int, seeds: int) -> dict:
    """Train ``uniform`` for ``steps`` rounds and ``seeds`` seeds; return arrays."""
    cfg = tr.SimConfig(**{**tr.QUICK, "steps": steps, "seeds": seeds},
                       methods=("uniform",)).validate()
    train, _ = tr.make_tasks(cfg)
    s, b, n_bar = cfg.seeds, cfg.batch_size, cfg.rollouts_per_prompt
    fns = tr._compiled(cfg.learning_rate, cfg.max_grad_norm, cfg.estimator,
                       cfg.upper, n_bar, cfg.gradvar_replicates, 0)
    params = jax.vmap(lambda k: pol.init_params(
        k, train.features.shape[1], cfg.num_slots, hidden=cfg.hidden,
        depth=cfg.depth))(jax.vmap(lambda i: jax.random.fold_in(
            jax.random.key(1234), i))(jnp.arange(s)))
    opt = jax.vmap(fns.tx.init)(params)
    f, m, a = (jnp.asarray(train.features), jnp.asarray(train.mask),
               jnp.asarray(train.answer))
    base = jax.random.key(cfg.task_seed + 7919)
    ids_all = np.zeros((s, steps, b), np.int32)
    p_all = np.zeros((s, steps, b), np.float32)
    counts = jnp.full((s, b), n_bar, jnp.int32)
    for t in range(steps):
        ids = np.stack([tr.prompt_ids(cfg, k, t) for k in range(s)])
        jids = jnp.asarray(ids)
        p_all[:, t] = np.asarray(fns.trainp(params, f[jids], m[jids], a[jids]))
        ids_all[:, t] = ids
        keys = jax.vmap(lambda k, t=t: jax.random.fold_in(
            jax.random.fold_in(base, k), t))(jnp.arange(s))
        params, opt, *_ = fns.alloc_step(params, opt, keys, f[jids], m[jids],
                                         a[jids], counts)
    return {"ids": ids_all, "p": p_all, "embeddings": train.embeddings,
            "features": train.features, "config": {
                "num_train": cfg.num_train, "steps": steps, "seeds": s,
                "batch_size": b, "rollouts_per_prompt": n_bar,
                "lower": cfg.lower, "upper": cfg.upper,
                "estimator": cfg.estimator, "num_slots": cfg.num_slots,
                "num_values": cfg.num_values, "task_seed": cfg.task_seed,
                "learning_rate": cfg.learning_rate}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rec = record(args.steps, args.seeds)
    meta = {"command": "python benchmarks/replay_record.py "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "config": rec.pop("config"), "git_commit": _git_commit(),
            "versions": {"jax": jax.__version__, "numpy": np.__version__},
            "seconds": time.perf_counter() - t0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **rec, meta=np.frombuffer(
        json.dumps(meta).encode(), np.uint8))
    p = rec["p"]
    print(f"wrote {args.out}: p of shape {p.shape}, mean {p.mean():.3f}, "
          f"share in [0.2, 0.8] {np.mean((p >= .2) & (p <= .8)):.3f} "
          f"({meta['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
