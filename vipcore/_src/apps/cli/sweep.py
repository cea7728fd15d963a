"""``vipcore sweep FILE``: the pre-flight variance report.

Reads a sweep file (see :mod:`vipcore._src.sweep.io`), buckets the prompts,
prints a summary (bucket counts, improvement potential,
``frac_reward_zero_std``, miss probability, advice, warnings) or, with
``--json``, the same as JSON; with ``--out DIR`` writes ``summary.json``,
``signal.jsonl`` (the prompts worth training on), ``variance.png``,
``pass_rate_hist.png`` and, for several steps, ``transitions.png``.
``--demo`` runs on built-in synthetic data.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from vipcore._src.sweep.analysis import (
    SIGNAL,
    THRESHOLDS,
)
from vipcore._src.sweep.io import (
    SweepData,
    demo_data,
    read_scores,
    write_signal_jsonl,
)
from vipcore._src.sweep.summary import format_summary, summarize

__all__ = ["HELP", "add_arguments", "run", "write_outputs"]

HELP = "pre-flight variance sweep: bucket prompts by pass rate, advise, plot"

def write_outputs(out: Path, data: SweepData, summary: dict, reports: dict,
                  *, plots: bool = True) -> list[str]:
    """Write summary.json, signal.jsonl and the plots into ``out``."""
    from vipcore._src.sweep import plots as sweep_plots

    out.mkdir(parents=True, exist_ok=True)
    written = []
    main = summary["step"]
    ids, rep = reports[main]
    m = rep.metrics
    rows = (
        {
            "prompt_id": ids[i],
            **({"step": main} if main is not None else {}),
            "n": int(m.n[i]),
            "pass_rate": float(m.pass_rate[i]),
            "mean": float(m.mean[i]),
            "std": float(m.std[i]),
            "best": float(m.best[i]),
        }
        for i in np.flatnonzero(rep.buckets == SIGNAL)
    )
    write_signal_jsonl(out / "signal.jsonl", rows)
    written.append("signal.jsonl")
    if plots:
        where = f" (step {main})" if main is not None else ""
        sweep_plots.plot_variance(
            m, rep.buckets, out / "variance.png",
            title=f"Pre-flight variance sweep{where}: mean ± std, best (x)")
        sweep_plots.plot_pass_rate_hist(
            m, out / "pass_rate_hist.png", lo=rep.settings["lo"],
            hi=rep.settings["hi"], title=f"Per-prompt pass rate{where}")
        written += ["variance.png", "pass_rate_hist.png"]
        labels = data.step_labels
        if labels and len(labels) > 1:
            tr = next(t for t in reversed(summary["transitions"])
                      if t["from"] == labels[0] and t["to"] == labels[-1])
            sweep_plots.plot_transitions(
                labels, [reports[s][1].counts for s in labels],
                np.array(tr["matrix"]), out / "transitions.png",
                first=labels[0], last=labels[-1])
            written.append("transitions.png")
    summary = {**summary, "files": written + ["summary.json"]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    written.append("summary.json")
    return written


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", nargs="?", type=Path,
        help="JSONL/CSV/Parquet file: long (prompt_id, score[, step]) or wide "
             "(prompt_id, scores)")
    parser.add_argument("--demo", action="store_true",
                        help="use built-in synthetic data (3 steps, 400 prompts, K=16)")
    parser.add_argument("--seed", type=int, default=0, help="demo seed (default 0)")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as JSON instead of text")
    parser.add_argument("--out", type=Path, default=None,
                        help="write summary.json, signal.jsonl and PNG plots here")
    parser.add_argument("--no-plots", action="store_true",
                        help="with --out: skip the PNG plots")
    parser.add_argument("--thresholds", choices=sorted(THRESHOLDS), default="hard",
                        help="hard: lo=0, hi=1; soft: lo=0.05, hi=0.95 (default hard)")
    parser.add_argument("--lo", type=float, default=None,
                        help="unlearnable if pass rate <= LO (overrides --thresholds)")
    parser.add_argument("--hi", type=float, default=None,
                        help="trivial if pass rate >= HI (overrides --thresholds)")
    parser.add_argument("--pass-threshold", type=float, default=None,
                        help="pass rate = fraction of scores >= T (default: "
                             "mean score)")
    parser.add_argument("--variance-threshold", type=float, default=0.01,
                        help="high-variance filter: variance > T (default 0.01)")
    parser.add_argument("--group-size", type=int, default=8,
                        help="training group size G for frac_reward_zero_std "
                             "(default 8)")
    parser.add_argument("--miss-p", type=float, default=0.05,
                        help="pass rate for the miss-probability line (default 0.05)")
    parser.add_argument("--target-miss", type=float, default=0.05,
                        help="target miss probability for the K advice (default 0.05)")
    parser.add_argument("--step", default=None,
                        help="step to report in detail (default: the last)")
    parser.add_argument("--clip", action="store_true",
                        help="clip scores outside [0, 1] (and report how many)")
    parser.add_argument("--format", choices=("jsonl", "csv", "parquet"), default=None,
                        help="input format (default: from the extension)")
    parser.add_argument("--ignore-extra-columns", action="store_true",
                        help="ignore unknown columns instead of failing")


def run(args: argparse.Namespace) -> int:
    if args.demo == (args.file is not None):
        raise ValueError("give a FILE or --demo (exactly one)")
    lo, hi = THRESHOLDS[args.thresholds]
    lo = lo if args.lo is None else args.lo
    hi = hi if args.hi is None else args.hi
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"need 0 <= lo < hi <= 1; got lo={lo}, hi={hi}")
    if args.group_size < 1:
        raise ValueError(f"--group-size must be >= 1; got {args.group_size}")
    if not 0 < args.miss_p <= 1:
        raise ValueError(f"--miss-p must lie in (0, 1]; got {args.miss_p}")
    if not 0 < args.target_miss < 1:
        raise ValueError(f"--target-miss must lie in (0, 1); got {args.target_miss}")
    if args.pass_threshold is not None and not 0 < args.pass_threshold <= 1:
        raise ValueError(
            f"--pass-threshold must lie in (0, 1]; got {args.pass_threshold}")
    if args.demo:
        data = demo_data(seed=args.seed)
    else:
        data = read_scores(args.file, fmt=args.format, clip=args.clip,
                           ignore_extra_columns=args.ignore_extra_columns)
    summary, reports = summarize(
        data, lo=lo, hi=hi, pass_threshold=args.pass_threshold,
        variance_threshold=args.variance_threshold, group_size=args.group_size,
        miss_p=args.miss_p, target_miss=args.target_miss, step=args.step,
    )
    if args.out is not None:
        files = write_outputs(args.out, data, summary, reports,
                              plots=not args.no_plots)
        summary = {**summary, "files": files}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(summary))
        if args.out is not None:
            print(f"\nwrote {', '.join(summary['files'])} to {args.out}/")
    sys.stdout.flush()
    return 0
