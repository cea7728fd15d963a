"""Options shared by the commands that read prompt tables (sweep, embed).

Every value is checked at parse time, so a bad one stops argparse with
``vipcore CMD: error: argument --NAME: ...`` before any file is read.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["column_name", "float_pair", "out_file", "add_column_arguments",
           "column_kwargs"]


def column_name(text: str) -> str:
    """A non-empty column name, exactly as written in the file."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a column name; got an empty string")
    return text


def float_pair(text: str) -> tuple[float, float]:
    """``LO,HI``: two finite numbers with ``LO < HI``."""
    parts = [p.strip() for p in text.split(",")]
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected LO,HI (two numbers, e.g. -1,1); got {text!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise argparse.ArgumentTypeError(
            f"expected finite LO < HI; got {text!r}")
    return lo, hi


def out_file(*suffixes: str):
    """A file name ending in one of ``suffixes``."""

    def parse(text: str) -> str:
        if not text.lower().endswith(suffixes):
            raise argparse.ArgumentTypeError(
                f"expected a file name ending in {' or '.join(suffixes)}; got {text!r}")
        return text

    parse.__name__ = "file name"
    return parse


def add_column_arguments(parser: argparse.ArgumentParser, *, scores: bool) -> None:
    """``--id-col``, ``--id-from-text``, ``--format`` (+ score options)."""
    g = parser.add_argument_group("columns of FILE")
    g.add_argument("--format", choices=("jsonl", "csv", "parquet", "arrow"),
                   default=None, help="input format (default: from the extension)")
    g.add_argument("--id-col", type=column_name, default=None, metavar="COL",
                   help="column holding the prompt id (default prompt_id)")
    g.add_argument("--id-from-text", type=column_name, default=None, metavar="COL",
                   help="use a stable hash of the prompt text in COL as the id "
                        "(the text is kept in the outputs)")
    if not scores:
        return
    g.add_argument("--score-col", type=column_name, default=None, metavar="COL",
                   help="column holding the score(s) (default score or scores)")
    g.add_argument("--step-col", type=column_name, default=None, metavar="COL",
                   help="column holding the checkpoint (default step, if present)")
    g.add_argument("--text-col", type=column_name, default=None, metavar="COL",
                   help="prompt-text column to keep in prompts.jsonl")
    g.add_argument("--reward-range", type=float_pair, default=None, metavar="LO,HI",
                   help="rescale rewards from [LO, HI] to [0, 1], e.g. -1,1 for "
                        "{-1, +1} rewards (reported in the summary)")
    g.add_argument("--clip", action="store_true",
                   help="clip finite scores outside the range (and report how many)")
    g.add_argument("--ignore-extra-columns", action="store_true",
                   help="without --id-col/--score-col: ignore unknown columns")


def column_kwargs(args: argparse.Namespace) -> dict:
    """The reader keywords the column options stand for."""
    out = {"id_col": args.id_col, "id_from_text": args.id_from_text}
    for name in ("score_col", "step_col", "text_col", "reward_range", "clip",
                 "ignore_extra_columns"):
        if hasattr(args, name):
            out[name] = getattr(args, name)
    return out
