"""``vipcore simulate``: a pre-registered, equal-rollout benchmark on the device.

Trains a small JAX MLP policy on a generated verifiable task with every arm
(uniform, the uniform ladder, VIP with oracle and predicted success
probabilities, DAPO, GRESO- and MoPPS-style selection, a negative control) at
exactly ``C`` rollouts per round, for many paired seeds at once on one
device; picks the best vipcore planner on separate calibration seeds; and
writes ``report.md``, ``results.json`` and plots into ``--out``. See
``docs/simulate.md`` for the protocol.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from pathlib import Path

from vipcore._src.apps.cli._options import float_in, int_in

__all__ = ["HELP", "add_arguments", "run", "config_from_args"]

HELP = "equal-rollout benchmark of VIP against uniform, DAPO, GRESO and MoPPS"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vipcore._src.apps.simulate.config import QUICK, TASKS, SimConfig

    d = SimConfig()
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: every arm, {QUICK['seeds']} seeds, "
                        f"{QUICK['calibration_seeds']} calibration seeds")
    parser.add_argument("--out", default="./vipcore-simulate/",
                        help="output directory (default ./vipcore-simulate/)")
    parser.add_argument("--task", choices=tuple(TASKS), default=d.task,
                        help="task shape (default %(default)s)")
    parser.add_argument("--seeds", type=int_in(2, 100_000), default=None,
                        help=f"paired seeds per arm (default {d.seeds}; "
                        f"quick {QUICK['seeds']})")
    parser.add_argument("--calibration-seeds", type=int_in(0, 100_000),
                        default=None, help="seeds of the run that picks the best "
                        f"planner (default {d.calibration_seeds}; quick "
                        f"{QUICK['calibration_seeds']}; 0 = none: exploratory)")
    parser.add_argument("--seed-offset", type=int_in(0, 2**31 - 2), default=None,
                        help="number of the first seed (default 0; quick "
                        f"{QUICK['seed_offset']})")
    parser.add_argument("--steps", type=int_in(1, 100_000), default=None,
                        help=f"training rounds (default {d.steps})")
    parser.add_argument("--arms", default="",
                        help="comma-separated arm names (default: every arm)")
    parser.add_argument("--estimator", choices=("rloo", "drgrpo", "grpo"),
                        default=d.estimator, help="advantage estimator / loss")
    parser.add_argument("--batch-size", type=int_in(1, 100_000),
                        default=d.batch_size)
    parser.add_argument("--rollouts", type=int_in(2, 100_000),
                        default=d.rollouts_per_prompt,
                        help="mean rollouts per prompt n (budget C = B n)")
    parser.add_argument("--lower", type=int_in(2, 100_000), default=d.lower)
    parser.add_argument("--upper", type=int_in(2, 100_000), default=d.upper)
    parser.add_argument("--lr", type=float_in(0, None, low_open=True),
                        default=d.learning_rate)
    parser.add_argument("--filler-tokens", type=int_in(0, 4096),
                        default=d.filler_tokens,
                        help="reward-irrelevant tokens per rollout (LLM-like Z; "
                        "default 0 = one-token answers)")
    parser.add_argument("--no-assumptions", action="store_true",
                        help="skip the App. B tests and Props 4.2/4.3 check")


def config_from_args(args: argparse.Namespace):
    """The :class:`SimConfig` the arguments describe (validated, arms checked)."""
    from vipcore._src.apps.simulate.arms import resolve_arms
    from vipcore._src.apps.simulate.config import QUICK, SimConfig, with_task

    base = dict(QUICK) if args.quick else {}
    for name in ("seeds", "steps", "calibration_seeds", "seed_offset"):
        if getattr(args, name) is not None:
            base[name] = getattr(args, name)
    arms = tuple(a.strip() for a in args.arms.split(",") if a.strip())
    cfg = with_task(SimConfig(**base), args.task)
    cfg = dataclasses.replace(
        cfg, estimator=args.estimator, arms=arms, batch_size=args.batch_size,
        rollouts_per_prompt=args.rollouts, lower=args.lower, upper=args.upper,
        learning_rate=args.lr, filler_tokens=args.filler_tokens).validate()
    resolve_arms(cfg)  # unknown arm names raise here, before any work
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    out = Path(args.out)
    t0 = time.perf_counter()

    def say(msg):
        print(f"[{time.perf_counter() - t0:6.1f} s] {msg}", file=sys.stderr,
              flush=True)

    from vipcore._src.apps.simulate.run import simulate

    say(f"config: {dataclasses.asdict(cfg)}")
    cmd = "vipcore simulate " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if len(sys.argv) > 1 and sys.argv[1] == "simulate" else "vipcore simulate"
    simulate(cfg, out, assumptions=not args.no_assumptions, quick=args.quick,
             command=cmd, progress=say)
    print(f"wrote {out / 'report.md'} (total {time.perf_counter() - t0:.0f} s)")
    return 0
