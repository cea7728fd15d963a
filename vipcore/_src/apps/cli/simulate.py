"""``vipcore simulate``: VIP inside a real (small) training loop, end to end.

Trains a small JAX MLP policy with optax on a generated verifiable task with
every allocation method at the same rollout budget, measures the paper's
assumptions on the real policy, and writes ``report.md``, ``results.json``
and plots into ``--out``. See ``docs/simulate.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from pathlib import Path

__all__ = ["HELP", "add_arguments", "run", "config_from_args"]

HELP = "train a small policy with every allocation method; report learning curves"

def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vipcore._src.apps.simulate.train import METHODS, SimConfig
    from vipcore._src.predict.registry import PREDICTORS

    d = SimConfig()
    parser.add_argument("--quick", action="store_true",
                        help="small settings (< 3 min on 2 CPU cores)")
    parser.add_argument("--out", default="./vipcore-simulate/",
                        help="output directory (default ./vipcore-simulate/)")
    parser.add_argument("--seeds", type=int, default=None,
                        help=f"seeds per method (default {d.seeds}; quick 3)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"training rounds (default {d.steps}; quick 60)")
    parser.add_argument("--estimator", choices=("rloo", "drgrpo", "grpo"),
                        default=d.estimator, help="advantage estimator / loss")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="comma-separated subset of " + ",".join(METHODS))
    parser.add_argument("--predictor", choices=tuple(PREDICTORS),
                        default=d.predictor,
                        help="planner predictor for vip and the heuristics")
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--rollouts", type=int, default=d.rollouts_per_prompt,
                        help="mean rollouts per prompt n (budget C = B n)")
    parser.add_argument("--lower", type=int, default=d.lower)
    parser.add_argument("--upper", type=int, default=d.upper)
    parser.add_argument("--lr", type=float, default=d.learning_rate)
    parser.add_argument("--filler-tokens", type=int, default=d.filler_tokens,
                        help="reward-irrelevant tokens per rollout (LLM-like Z; "
                        "default 0 = one-token answers)")
    parser.add_argument("--no-assumptions", action="store_true",
                        help="skip the App. B tests and Props 4.2/4.3 check")


def config_from_args(args: argparse.Namespace):
    """The :class:`SimConfig` the arguments describe (validated)."""
    from vipcore._src.apps.simulate.train import QUICK, SimConfig

    base = dict(QUICK) if args.quick else {}
    if args.seeds is not None:
        base["seeds"] = args.seeds
    if args.steps is not None:
        base["steps"] = args.steps
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    cfg = SimConfig(**base, estimator=args.estimator, methods=methods,
                    predictor=args.predictor, batch_size=args.batch_size,
                    rollouts_per_prompt=args.rollouts, lower=args.lower,
                    upper=args.upper, learning_rate=args.lr,
                    filler_tokens=args.filler_tokens)
    return cfg.validate()


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
