"""Grid over the Beta posterior's discount and prior strength, by replay.

The replay of ``benchmarks/bench_replay.py`` (predict, allocate ``8B``
rollouts within ``[3, 32]``, draw from the true ``p``, observe), for the
``beta`` predictor with its GP prior at every ``(discount, prior_strength)``
of a grid. The two hyper-parameters are traced arguments of one compiled
program (``vmap`` over the grid and the observation seeds), so the whole grid
costs one compilation per data set. This is how the defaults (0.95, 4) were
chosen::

    python benchmarks/replay_grid.py        # ~10 min on a loaded 2-core CPU

Writes ``benchmarks/results/replay_grid.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vipcore._src._serialize import jsonable  # noqa: E402
from vipcore._src.allocation.solve import solve  # noqa: E402
from vipcore._src.apps.verify import replay as rp  # noqa: E402
from vipcore._src.predict import beta as bm  # noqa: E402

DISCOUNTS = (0.8, 0.9, 0.95, 0.98, 1.0)
STRENGTHS = (0.5, 1.0, 2.0, 4.0, 8.0)


def _grid_fn(traj: rp.Trajectory, s: rp.ReplaySettings):
    models = {n: bm._prior_predictor(
        n, eps=1e-2, bandwidth="median", jitter=None, block_size=None, seed=0,
        ridge_capacity=1024, ridge_lam=1.0, discount=1.0)
        for n in bm.PRIOR_MODELS[1:]}
    c = traj.ids.shape[2] * s.rollouts

    def run(state0, ids, p, key, lam, kappa):
        pred = bm._beta_functions(models, "gp_binomial", lam, kappa, 1e-2)

        def body(carry, xs):
            state, key = carry
            idx, pt = xs
            m = pred.predict(state, idx).astype(pt.dtype)
            n = solve(m, c, s.lower, s.upper, estimator=s.estimator).n
            oracle = solve(pt, c, s.lower, s.upper, estimator=s.estimator).objective
            key, k = jax.random.split(key)
            succ = jax.random.binomial(k, n.astype(pt.dtype), pt)
            state = pred.update(state, idx, succ / n, n.astype(pt.dtype))
            return (state, key), rp._round_metrics(pt, m, n, oracle, s, s.rollouts)

        return jax.lax.scan(body, (state0, key), (ids, p))[1]

    inner = jax.vmap(run, in_axes=(None, None, None, 0, None, None))
    return models, jax.jit(jax.vmap(inner, in_axes=(None, None, None, None, 0, 0)))


def grid(traj: rp.Trajectory, seeds: int) -> list[dict]:
    s = rp.ReplaySettings()
    models, fn = _grid_fn(traj, s)
    pts = list(itertools.product(DISCOUNTS, STRENGTHS))
    lam = jnp.asarray([g[0] for g in pts], jnp.float32)
    kap = jnp.asarray([g[1] for g in pts], jnp.float32)
    outs = []
    for r in range(traj.ids.shape[0]):
        pred0 = bm._beta_functions(models, "gp_binomial", 0.9, 1.0, 1e-2)
        s0 = pred0.init(traj.embeddings.shape[0], traj.embeddings)
        keys = jax.random.split(jax.random.key(r), seeds)
        outs.append(np.asarray(fn(s0, jnp.asarray(traj.ids[r]),
                                  jnp.asarray(traj.p[r]), keys, lam, kap)))
    m = np.stack(outs, 1)  # (grid, runs, seeds, rounds, metrics)
    rows = []
    for g, (d, k) in enumerate(pts):
        summ = rp.summarize({"metrics": m[g], "probe": np.full(
            m[g].shape[:-1] + (2,), np.nan)})
        summ.update(discount=d, prior_strength=k)
        rows.append(summ)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent
                    / "results" / "replay_grid.json")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    data = [rp.simulate_trajectory(embedding="descriptor"),
            rp.simulate_trajectory(embedding="random_net"),
            rp.synthetic_trajectory(0, steps=60, runs=2)]
    out = {"benchmark": "replay grid of the beta predictor (gp_binomial prior, "
           "plugin allocation)",
           "command": "python benchmarks/replay_grid.py "
           + " ".join(argv if argv is not None else sys.argv[1:]),
           "device": str(jax.devices()[0].device_kind),
           "versions": {"jax": jax.__version__, "numpy": np.__version__},
           "load_average_1_5_15_start": list(os.getloadavg()), "datasets": {}}
    for traj in data:
        rows = grid(traj, args.seeds)
        out["datasets"][traj.name] = rows
        best = min(rows, key=lambda r: r["objective_vs_uniform"])
        print(f"{traj.name}: best discount {best['discount']}, strength "
              f"{best['prior_strength']}: {best['objective_vs_uniform']:.3f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    out["load_average_1_5_15_end"] = list(os.getloadavg())
    out["seconds"] = time.perf_counter() - t0
    args.out.write_text(json.dumps(jsonable(out), indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
