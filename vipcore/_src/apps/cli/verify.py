"""``vipcore verify``: the proofs-as-tests report (the main job).

The command runs the report sections in order, writes ``report.md``,
``results.json`` and the sections' PNG plots into ``--out``, prints the
table, and exits non-zero if any positive check fails or any negative
control passes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vipcore._src.apps.verify.report import format_table
from vipcore._src.apps.verify.runner import run_verify

__all__ = ["add_arguments", "run", "HELP"]

HELP = "run the Monte-Carlo and statistical proofs (report.md, results.json, plots)"

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("vipcore-verify"),
                        help="output directory (default: ./vipcore-verify/)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--trials", type=int, default=None,
                        help="Monte-Carlo trials per check (default: per mode)")
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_const", const="quick", dest="mode",
                   help="fast settings (seconds; what the tests use)")
    g.add_argument("--full", action="store_const", const="full", dest="mode",
                   help="large settings (minutes; tighter standard errors)")
    parser.set_defaults(mode="default")


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        print(f"{time.perf_counter() - t0:6.1f}s {msg}", file=sys.stderr, flush=True)

    ok, results = run_verify(
        out=args.out, seed=args.seed, mode=args.mode, trials=args.trials,
        progress=say,
    )
    for r in results:
        print(f"\n## {r.title}\n")
        if r.checks:
            print(format_table(r.checks))
    n_fail = sum(not c.passed for r in results for c in r.checks)
    print(
        f"\n{'PASS' if ok else 'FAIL'}: {n_fail} failing checks; "
        f"report in {args.out / 'report.md'}"
    )
    return 0 if ok else 1
