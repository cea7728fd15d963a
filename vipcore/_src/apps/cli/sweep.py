"""``vipcore sweep FILE``: the pre-flight variance report.

Reads a sweep file (see :mod:`vipcore._src.sweep.io`; columns can be named
with ``--id-col``, ``--score-col``, ``--step-col``, ``--id-from-text``),
buckets the prompts and prints a summary (bucket counts, improvement
potential, ``frac_reward_zero_std``, miss probability, advice, warnings) or,
with ``--json``, the same as JSON. With ``--out DIR`` it writes
``summary.json`` (every setting and the vipcore version included),
``prompts.jsonl`` (every prompt: bucket, metrics, posterior ``p_hat`` and
interval), ``signal.jsonl`` (the prompts worth training on),
``variance.png``, ``pass_rate_hist.png`` and, for several steps,
``transitions.png``. ``--fail-under F`` exits with status 1 when the signal
fraction is below ``F``. ``--demo`` runs on built-in synthetic data.

Exit status: 0 done; 1 signal fraction below ``--fail-under``; 2 bad input
(one line on stderr, nothing written).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import numpy as np

from vipcore._src._files import atomic_write_text, refuse_overwrite
from vipcore._src.apps.cli._columns import add_column_arguments, column_kwargs, out_file
from vipcore._src.apps.cli._options import float_in, int_in
from vipcore._src.sweep.analysis import SIGNAL, THRESHOLDS
from vipcore._src.sweep.io import SweepData, demo_data, read_scores, write_jsonl
from vipcore._src.sweep.summary import format_summary, prompt_table, summarize

__all__ = ["HELP", "add_arguments", "run", "write_outputs"]

HELP = "pre-flight variance sweep: bucket prompts by pass rate, advise, plot"

#: Files ``--out`` may write (besides ``--prompts``).
OUTPUTS = ("summary.json", "signal.jsonl", "variance.png", "pass_rate_hist.png",
           "transitions.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file", nargs="?", type=Path,
        help="JSONL/CSV/Parquet/Arrow file: long (prompt_id, score[, step]) or "
             "wide (prompt_id, scores); other column names with --id-col etc.")
    parser.add_argument("--demo", action="store_true",
                        help="use built-in synthetic data (3 steps, 400 prompts, K=16)")
    parser.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0,
                        help="demo seed (default 0)")
    add_column_arguments(parser, scores=True)
    g = parser.add_argument_group("analysis")
    g.add_argument("--thresholds", choices=sorted(THRESHOLDS), default="hard",
                   help="hard: lo=0, hi=1; soft: lo=0.05, hi=0.95 (default hard)")
    g.add_argument("--lo", type=float_in(0, 1, high_open=True), default=None,
                   help="unlearnable if pass rate <= LO (overrides --thresholds)")
    g.add_argument("--hi", type=float_in(0, 1, low_open=True), default=None,
                   help="trivial if pass rate >= HI (overrides --thresholds)")
    g.add_argument("--pass-threshold", type=float_in(0, 1, low_open=True),
                   default=None, help="pass rate = fraction of scores >= T "
                                      "(default: mean score)")
    g.add_argument("--min-std", type=float_in(0, 0.5), default=None,
                   help="signal needs a score std >= this (default: 0.1 for graded "
                        "scores, 0 for binary)")
    g.add_argument("--variance-threshold", type=float_in(0, 1), default=0.01,
                   help="high-variance filter: variance > T (default 0.01)")
    g.add_argument("--group-size", type=int_in(1, 1_000_000), default=8,
                   help="training group size G for frac_reward_zero_std (default 8)")
    g.add_argument("--miss-p", type=float_in(0, 1, low_open=True), default=0.05,
                   help="pass rate for the miss-probability line (default 0.05)")
    g.add_argument("--target-miss", type=float_in(0, 1, low_open=True,
                                                  high_open=True), default=0.05,
                   help="target miss probability for the K advice (default 0.05)")
    g.add_argument("--step", default=None,
                   help="step to report in detail (default: the last)")
    g.add_argument("--credibility", type=float_in(0, 1, low_open=True,
                                                  high_open=True), default=0.95,
                   help="credibility of the p_lo..p_hi interval (default 0.95)")
    o = parser.add_argument_group("output")
    o.add_argument("--json", action="store_true",
                   help="print the summary as JSON instead of text")
    o.add_argument("--out", type=Path, default=None,
                   help="write summary.json, prompts.jsonl, signal.jsonl and PNG "
                        "plots here")
    o.add_argument("--prompts", type=out_file(".jsonl", ".csv"), default=None,
                   help="where to write the per-prompt table (.jsonl or .csv; "
                        "default OUT/prompts.jsonl with --out)")
    o.add_argument("--no-plots", action="store_true",
                   help="with --out: skip the PNG plots")
    o.add_argument("--fail-under", type=float_in(0, 1), default=None, metavar="F",
                   help="exit with status 1 when the signal fraction is below F")


def _prompts_path(args) -> Path | None:
    if args.prompts is not None:
        return Path(args.prompts)
    return args.out / "prompts.jsonl" if args.out is not None else None


def _check(args) -> tuple[float, float]:
    """Checks across options, before any work."""
    if args.demo == (args.file is not None):
        raise ValueError("give a FILE or --demo (exactly one)")
    given = [f"--{k.replace('_', '-')}" for k, v in column_kwargs(args).items() if v]
    if args.demo and (given or args.format):
        raise ValueError(f"{', '.join(given or ['--format'])} appl"
                         f"{'ies' if len(given) < 2 else 'y'} to FILE, not --demo")
    lo, hi = THRESHOLDS[args.thresholds]
    lo = lo if args.lo is None else args.lo
    hi = hi if args.hi is None else args.hi
    if not lo < hi:
        raise ValueError(f"need lo < hi (--lo, --hi, --thresholds); got lo={lo:g}, "
                         f"hi={hi:g}")
    outputs = [args.out / name for name in OUTPUTS] if args.out is not None else []
    prompts = _prompts_path(args)
    refuse_overwrite([args.file], outputs + ([prompts] if prompts else []))
    return lo, hi


def _load(args) -> SweepData:
    if args.demo:
        return demo_data(seed=args.seed)
    limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)  # this command reads long prompt texts
    try:
        return read_scores(args.file, fmt=args.format, **column_kwargs(args))
    finally:
        csv.field_size_limit(limit)


def _settings(args) -> dict:
    return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple)
                else v) for k, v in vars(args).items() if k != "command"}


def run(args: argparse.Namespace) -> int:
    lo, hi = _check(args)
    data = _load(args)
    summary, reports = summarize(
        data, lo=lo, hi=hi, pass_threshold=args.pass_threshold,
        variance_threshold=args.variance_threshold, group_size=args.group_size,
        min_std=args.min_std, miss_p=args.miss_p, target_miss=args.target_miss,
        step=args.step)
    summary = {**summary, "command": _settings(args)}
    files = write_outputs(args, data, summary, reports)
    if files:
        summary = {**summary, "files": files}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(summary))
        if files:
            print(f"\nwrote {', '.join(files)}")
    sys.stdout.flush()
    return _gate(summary, args.fail_under)


def _gate(summary: dict, fail_under: float | None) -> int:
    if fail_under is None:
        return 0
    f = summary["report"]["advice"]["signal_fraction"]
    if f is None or not f >= fail_under:
        shown = "undefined (no bucketed prompt)" if f is None else f"{f:.4f}"
        print(f"vipcore sweep: signal fraction {shown} is below --fail-under "
              f"{fail_under:g}", file=sys.stderr)
        return 1
    return 0


def _write_table(path: Path, rows: list[dict]) -> None:
    if path.suffix.lower() == ".csv":
        buf = io.StringIO()
        keys = list(rows[0]) if rows else ["prompt_id"]
        w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(path, buf.getvalue())
    else:
        write_jsonl(path, rows)


def write_outputs(args, data: SweepData, summary: dict, reports: dict) -> list[str]:
    """Write the per-prompt table, and with ``--out`` everything else."""
    main = summary["step"]
    ids, rep = reports[main]
    written = []
    prompts = _prompts_path(args)
    if prompts is None and args.out is None:
        return written
    rows = prompt_table(ids, rep, step=main, texts=data.texts, level=args.credibility)
    if prompts is not None:
        prompts.parent.mkdir(parents=True, exist_ok=True)
        _write_table(prompts, rows)
        written.append(str(prompts))
    out = args.out
    if out is None:
        return written
    out.mkdir(parents=True, exist_ok=True)
    sig = [r for r, b in zip(rows, rep.buckets.tolist(), strict=True) if b == SIGNAL]
    write_jsonl(out / "signal.jsonl", sig)
    written.append(str(out / "signal.jsonl"))
    if not args.no_plots:
        written += _plots(out, data, summary, reports)
    written.append(str(out / "summary.json"))
    atomic_write_text(out / "summary.json",
                      json.dumps({**summary, "files": written}, indent=2) + "\n")
    return written


def _plots(out: Path, data: SweepData, summary: dict, reports: dict) -> list[str]:
    from vipcore._src.sweep import plots

    main = summary["step"]
    ids, rep = reports[main]
    where = f" (step {main})" if main is not None else ""
    plots.plot_variance(rep.metrics, rep.buckets, out / "variance.png",
                        title=f"Pre-flight sweep{where}: score spread per prompt")
    plots.plot_pass_rate_hist(rep.metrics, out / "pass_rate_hist.png",
                              lo=rep.settings["lo"], hi=rep.settings["hi"],
                              title=f"Per-prompt pass rate{where}")
    written = [str(out / "variance.png"), str(out / "pass_rate_hist.png")]
    labels = data.step_labels
    if labels and len(labels) > 1:
        tr = next(t for t in reversed(summary["transitions"])
                  if t["from"] == labels[0] and t["to"] == labels[-1])
        plots.plot_transitions(labels, [reports[s][1].counts for s in labels],
                               np.array(tr["matrix"]), out / "transitions.png",
                               first=labels[0], last=labels[-1])
        written.append(str(out / "transitions.png"))
    return written
