"""Wall-clock of ``vipcore simulate``'s device loop, against the earlier host loop.

1. **Setting**: the whole training of a setting (``--quick``: every arm, 8
   comparison + 4 calibration seeds, 300 rounds, the CPU goal of <= 5 min;
   ``--full``: 256 + 32 seeds, the confirmatory run, goal <= 5 min on one
   H100/H200), on whatever ``jax.devices()[0]`` is: per program the compile
   and run seconds, and the total.
2. **Baseline in the same process**: uniform and oracle-p VIP for ``--seeds``
   seeds and ``--steps`` rounds, once with the earlier host loop
   (:func:`vipcore._src.apps.simulate.reference.host_loop`: one jitted call
   per round, the allocation on the host) and once with the device loop
   (compiled beforehand): seconds per round and their ratio.

Usage::

    python benchmarks/bench_simulate.py --quick         # CPU
    python benchmarks/bench_simulate.py --full          # one GPU
    python benchmarks/bench_simulate.py --baseline-only --seeds 8 --steps 40

Writes ``benchmarks/results/simulate_bench_<platform>[_quick|_full].json``
with the device, versions, sizes, machine load and the numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vipcore._src.apps.simulate.config import FULL, QUICK, SimConfig  # noqa: E402
from vipcore._src.apps.simulate.reference import host_loop  # noqa: E402
from vipcore._src.apps.simulate.train import run_training  # noqa: E402


def _versions() -> dict:
    import jaxlib
    import optax

    import vipcore

    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "numpy": np.__version__, "optax": optax.__version__,
            "vipcore": vipcore.__version__, "python": platform.python_version()}


def bench_setting(cfg: SimConfig) -> dict:
    """Train ``cfg`` once; compile and run seconds per program."""
    t0 = time.perf_counter()
    res = run_training(cfg, progress=lambda s: print(s, file=sys.stderr))
    wall = time.perf_counter() - t0
    runs = sum(t["runs"] for t in res["timing"].values())
    run_s = sum(t["run_s"] for t in res["timing"].values())
    return {"config": dataclasses.asdict(cfg), "wall_s": wall,
            "programs": res["timing"], "run_s": run_s,
            "compile_s": sum(t["compile_s"] for t in res["timing"].values()),
            "run_rounds_per_s": runs * cfg.steps / run_s if run_s else None,
            "skipped": res["skipped"]}


def bench_baseline(seeds: int, steps: int, repeats: int) -> dict:
    """Seconds per round, host loop vs device loop (uniform + oracle VIP)."""
    cfg = SimConfig(seeds=seeds, steps=steps, calibration_seeds=0,
                    arms=("uniform", "vip_oracle"))
    run_training(cfg)  # compile the device program (cached for the repeats)
    device, host = [], []
    for _ in range(repeats):
        res = run_training(cfg)
        device.append(sum(t["run_s"] for t in res["timing"].values()) / steps)
        ref = host_loop(cfg)
        host.append(sum(r["seconds_per_round"] for r in ref.values()))
    dev, hst = float(np.median(device)), float(np.median(host))
    return {"seeds": seeds, "steps": steps, "arms": ["uniform", "vip_oracle"],
            "repeats": repeats, "device_loop_s_per_round_median": dev,
            "host_loop_s_per_round_median": hst,
            "host_over_device": hst / dev if dev > 0 else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true")
    mode.add_argument("--full", action="store_true")
    mode.add_argument("--baseline-only", action="store_true")
    ap.add_argument("--seeds", type=int, default=8, help="baseline seeds")
    ap.add_argument("--steps", type=int, default=40, help="baseline rounds")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    dev = jax.devices()[0]
    out = {"benchmark": "vipcore simulate: device loop vs host loop",
           "device": f"{dev.platform}: {dev.device_kind}",
           "versions": _versions(), "cpu_count": os.cpu_count(),
           "load_average_1_5_15_start": list(os.getloadavg()),
           "xla_flags": os.environ.get("XLA_FLAGS", ""),
           "goals_s": {"quick_cpu": 300, "full_h100": 300}}
    suffix = ""
    if args.quick or args.full:
        suffix = "_quick" if args.quick else "_full"
        out["setting"] = bench_setting(SimConfig(**(QUICK if args.quick else FULL)))
    out["baseline"] = bench_baseline(args.seeds, args.steps, args.repeats)
    out["load_average_1_5_15_end"] = list(os.getloadavg())
    path = Path(args.out or Path(__file__).resolve().parent / "results" /
                f"simulate_bench_{dev.platform}{suffix}.json")
    path.write_text(json.dumps(out, indent=1))
    print(json.dumps({k: out[k] for k in ("device", "baseline")}, indent=1))
    if "setting" in out:
        s = out["setting"]
        print(f"setting: wall {s['wall_s']:.1f} s (compile {s['compile_s']:.1f} s, "
              f"run {s['run_s']:.1f} s)")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
