"""Replay benchmark: does a predictor's allocation beat uniform at the true p?

For every predictor and allocation rule, replays trajectories of exact
success probabilities round by round (predict the batch, allocate ``C =
B * 8`` rollouts with the exact VIP allocator within ``[3, 32]``, draw the
rollouts from the true ``p``, observe them) and reports, beside uniform and
oracle allocation run in the same process:

* the allocation objective ``sum 4p(1-p)/(n-1)`` at the true ``p`` relative
  to uniform (ratio of sums over rounds; lower is better) and to the oracle;
* the share of mid-range prompts (``0.2 <= p <= 0.8``) starved at ``n = L``;
* MAE and RMSE of the prediction against the true ``p``;
* for GP predictors, the largest ``|m|`` of the latent mean and the share of
  ``|m| > 10``;
* the replicate spread (every trajectory x observation seed).

Data:

* ``simulate/descriptor``, ``simulate/random_net``: the recorded uniform
  ``vipcore simulate`` run (``benchmarks/replay_record.py``: 3 training
  seeds x 300 rounds, 512 prompts, 32 per round), with the task's 3-d
  difficulty descriptor as embedding (many exact duplicates) or a frozen
  random network of the policy input (distinct embeddings);
* ``synthetic``: the drifting problem of ``vipcore verify``'s prediction
  section (8192 prompts, 512 per round, 60 rounds, 2 schedules).

Usage::

    python benchmarks/bench_replay.py            # everything (~30 min, loaded CPU)
    python benchmarks/bench_replay.py --quick    # simulate/descriptor only

Writes ``benchmarks/results/replay.json`` and ``replay.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vipcore._src._plotting import new_figure, save_figure  # noqa: E402
from vipcore._src._serialize import jsonable  # noqa: E402
from vipcore._src.apps.verify import replay as rp  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

#: (label, predictor name, options, allocation rule, z). Fixed before the
#: runs below; "gp (Algorithm 1, unbounded)" is Algorithm 1 exactly.
ROWS = (
    ("oracle p", "oracle", {}, "plugin", 1.0),
    ("exact p at the previous visit", "previous_p", {}, "plugin", 1.0),
    ("gp (Algorithm 1, unbounded)", "gp", {"latent_bound": None}, "plugin", 1.0),
    ("gp (Algorithm 1, bounded latent mean)", "gp", {}, "plugin", 1.0),
    ("gp, binomial noise", "gp_binomial", {}, "plugin", 1.0),
    ("gp, authors' code settings", "gp_authors", {"latent_bound": None},
     "plugin", 1.0),
    ("moving average (w = 3)", "moving_average", {}, "plugin", 1.0),
    ("ridge (last 1024)", "ridge", {}, "plugin", 1.0),
    ("pooled mean (constant)", "pooled", {}, "plugin", 1.0),
    ("beta (default: gp prior, discount 0.95, strength 4)", "beta", {},
     "plugin", 1.0),
    ("beta, expected variance", "beta", {}, "expected", 1.0),
    ("beta, optimistic (z = 1)", "beta", {}, "optimistic", 1.0),
    ("beta, no forgetting (discount 1)", "beta", {"discount": 1.0}, "plugin", 1.0),
    ("beta, ridge prior", "beta", {"prior": "ridge"}, "plugin", 1.0),
    ("beta, pooled prior (no embeddings)", "beta", {"prior": "pooled"},
     "plugin", 1.0),
)


def datasets(quick: bool) -> list[rp.Trajectory]:
    out = [rp.simulate_trajectory(embedding="descriptor")]
    if not quick:
        out.append(rp.simulate_trajectory(embedding="random_net"))
        out.append(rp.synthetic_trajectory(0, steps=60, runs=2))
    return out


def run(traj: rp.Trajectory, seeds: int, say) -> list[dict]:
    rows = []
    for label, name, opts, rule, z in ROWS:
        t0 = time.perf_counter()
        res = rp.run_replay(traj, name, options=opts, rule=rule, z=z, seeds=seeds)
        summ = rp.summarize(res)
        summ.update(label=label, predictor=name, options=opts, rule=rule, z=z,
                    seconds=time.perf_counter() - t0)
        rows.append(summ)
        say(f"{traj.name:20s} {label:52s} obj/uniform "
            f"{summ['objective_vs_uniform']:.3f} (sd {summ['replicate_sd']:.3f})"
            f" starved {100 * summ['starved']:.2f}% mae {summ['mae']:.3f}")
    return rows


def plot(results: dict, path: Path) -> None:
    names = list(results["datasets"])
    fig, axes = new_figure(6 * len(names), 6.5, ncols=len(names))
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, names, strict=True):
        rows = results["datasets"][name]["rows"]
        y = np.arange(len(rows))[::-1]
        vals = [r["objective_vs_uniform"] for r in rows]
        lo = [min(r["per_replicate"]) for r in rows]
        hi = [max(r["per_replicate"]) for r in rows]
        ax.barh(y, vals, color="#4c72b0", alpha=0.8)
        ax.errorbar(vals, y, xerr=[np.subtract(vals, lo), np.subtract(hi, vals)],
                    fmt="none", ecolor="k", capsize=2, lw=0.8)
        ax.axvline(1.0, color="k", lw=0.8, ls="--")
        ax.set_yticks(y)
        ax.set_yticklabels([r["label"] for r in rows], fontsize=7)
        ax.set_xlabel("objective at the true p / uniform (lower is better)")
        ax.set_title(name, fontsize=9)
        ax.set_xlim(0.6, max(1.4, min(max(hi) * 1.05, 2.5)))
    fig.suptitle("Replay: allocation objective at the true success probabilities "
                 "(bars: pooled ratio; whiskers: replicate range)", fontsize=9)
    save_figure(fig, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=3,
                    help="observation seeds per trajectory (default 3)")
    ap.add_argument("--out", type=Path, default=RESULTS / "replay.json")
    ap.add_argument("--cache-dir", default="/tmp/vipcore-jax-cache",
                    help="JAX compilation cache of this process ('' = none)")
    args = ap.parse_args(argv)
    if args.cache_dir:  # this script's own process only
        jax.config.update("jax_compilation_cache_dir", args.cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    t0 = time.perf_counter()

    def say(msg):
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    results = {"benchmark": "replay of true-p trajectories (objective vs uniform)",
               "command": "python benchmarks/bench_replay.py "
               + " ".join(argv if argv is not None else sys.argv[1:]),
               "device": str(jax.devices()[0].device_kind),
               "platform": jax.default_backend(),
               "versions": {"jax": jax.__version__, "numpy": np.__version__,
                            "python": platform.python_version()},
               "cpu_count": os.cpu_count(),
               "load_average_1_5_15_start": list(os.getloadavg()),
               "settings": rp.ReplaySettings()._asdict(), "datasets": {}}
    for traj in datasets(args.quick):
        r, t, b = traj.ids.shape
        results["datasets"][traj.name] = {
            "runs": r, "rounds": t, "batch": b, "prompts": traj.embeddings.shape[0],
            "embedding_dim": traj.embeddings.shape[1], "seeds": args.seeds,
            "rows": run(traj, args.seeds, say)}
    results["load_average_1_5_15_end"] = list(os.getloadavg())
    results["seconds"] = time.perf_counter() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(jsonable(results), indent=1))
    plot(results, args.out.with_suffix(".png"))
    say(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
