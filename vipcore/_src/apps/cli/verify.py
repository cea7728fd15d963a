"""``vipcore verify``: the proofs-as-tests report (the main job).

The command runs the report sections in order, writes ``report.md``,
``results.json`` and the sections' PNG plots into ``--out``, prints the
table, and exits non-zero if any positive check fails or any negative
control passes. Every option is checked at parse time, before any work or
output.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vipcore._src.apps.cli._options import int_in
from vipcore._src.apps.verify.report import format_table
from vipcore._src.apps.verify.runner import MAX_SEED, run_verify, section_names

__all__ = ["add_arguments", "run", "HELP"]

HELP = "run the Monte-Carlo and statistical proofs (report.md, results.json, plots)"


def _sections(text: str) -> tuple[str, ...]:
    known = section_names()
    names = [t.strip() for t in text.split(",")]
    bad = [n for n in names if n not in known]
    if not text.strip() or bad:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated section names from {', '.join(known)}; "
            f"got {text!r}")
    return tuple(known[n] for n in dict.fromkeys(names))


_sections.__name__ = "section list"


def _out_dir(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a directory")
    return path


_out_dir.__name__ = "directory"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=_out_dir, default=Path("vipcore-verify"),
                        help="output directory (default: ./vipcore-verify/)")
    parser.add_argument("--seed", type=int_in(0, MAX_SEED), default=0,
                        help=f"base seed in [0, {MAX_SEED}] (default 0)")
    parser.add_argument("--trials", type=int_in(2, None), default=None,
                        help="Monte-Carlo trials per check, >= 2 (default: per mode)")
    parser.add_argument("--only", type=_sections, default=None, metavar="SECTIONS",
                        help="run only these sections, comma-separated, from "
                        f"{', '.join(section_names())}; thresholds stay those of "
                        "the full report")
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

    kw = {} if args.only is None else {"sections": args.only}
    ok, results = run_verify(
        out=args.out, seed=args.seed, mode=args.mode, trials=args.trials,
        progress=say, **kw,
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
