"""``vipcore allocate``: the integer rollout allocation for a file of p_hat.

Input (``FILE`` or ``-`` for stdin): a table of prompt ids and success
probabilities (CSV with a header, JSON Lines, JSON records; columns
``prompt_id`` and ``p_hat`` unless ``--id-col``/``--p-col`` say otherwise),
such as the ``prompts.jsonl`` of ``vipcore sweep``; or bare numbers (one per
line, a JSON list, a ``.npy`` array). Numbers are read exactly and checked
before any conversion; errors name the file and line.

Output: with ids, a table of ids and counts (or ``--out FILE.csv|.jsonl|.json``
with ids, p_hat and counts); without ids, one integer per line; ``--json`` adds
the objective and the uniform allocation's objective for comparison. The
input file is never overwritten.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from vipcore._src.apps.cli._options import int_in

HELP = "allocate a rollout budget over prompts from their success probabilities"

#: ``--method`` choices: the registered allocators.
METHODS = ("vip", "uniform", "inverse_accuracy", "inverse_variance")
#: Smallest ``--lower`` per estimator for the exact allocator (convexity).
_MIN_LOWER = {"rloo": 2, "drgrpo": 3, "grpo": 2}


def _column(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a column name; got ''")
    return text


def _out_path(text: str) -> Path:
    from vipcore._src.apps.cli._table import OUT_SUFFIXES

    path = Path(text)
    if path.suffix.lower() not in OUT_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"the file name must end in {', '.join(OUT_SUFFIXES)}; got {text!r}")
    return path


def compilation_cache_dir() -> Path:
    """Where the command keeps compiled programs: ``$XDG_CACHE_HOME/vipcore/jax``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vipcore" / "jax"


def process_setup() -> None:
    """Turn on JAX's persistent compilation cache for this process.

    The first ``vipcore allocate`` compiles the solver (about a second); later
    runs load it from the cache. Only the command-line process does this (the
    library never changes JAX settings); a cache the user configured
    (``JAX_COMPILATION_CACHE_DIR``) wins, and
    ``VIPCORE_NO_COMPILATION_CACHE=1`` turns it off.
    """
    import jax

    if jax.config.jax_compilation_cache_dir or os.environ.get(
            "VIPCORE_NO_COMPILATION_CACHE"):
        return
    path = compilation_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # no writable cache: compile every time
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="prompt ids and p_hat: .csv, .jsonl, .json, "
                                     ".npy, one number per line, or - for stdin")
    parser.add_argument("--budget", "-C", type=int_in(0, 2**31 - 1), required=True,
                        help="total rollouts C (B*L <= C <= B*U, below 2**31)")
    parser.add_argument("--lower", "-L", type=int_in(1, 2**31 - 1), default=2,
                        help="minimum rollouts per prompt (default 2; >= 3 for "
                             "--estimator drgrpo)")
    parser.add_argument("--upper", "-U", type=int_in(1, None), required=True,
                        help="maximum rollouts per prompt (any integer >= --lower)")
    parser.add_argument("--estimator", choices=tuple(_MIN_LOWER), default="rloo",
                        help="advantage estimator whose gradient variance is "
                             "minimised: rloo (default), drgrpo, or grpo "
                             "(std-normalised, the TRL and verl default)")
    parser.add_argument("--method", choices=METHODS, default="vip",
                        help="vip (default) or a heuristic baseline")
    parser.add_argument("--id-col", type=_column, default=None,
                        help="column or key of the prompt ids (default prompt_id, "
                             "if present)")
    parser.add_argument("--p-col", type=_column, default="p_hat",
                        help="column or key of the probabilities (default p_hat)")
    parser.add_argument("--out", type=_out_path, default=None,
                        help="write ids, p_hat and counts to a .csv, .jsonl or "
                             ".json file (never over the input)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON summary with the objective")


def _check_options(args) -> None:
    """Option facts that need two options at once, before any work."""
    if args.method == "vip" and args.lower < _MIN_LOWER[args.estimator]:
        raise ValueError(
            f"--lower must be >= {_MIN_LOWER[args.estimator]} for --estimator "
            f"{args.estimator} (its objective is convex only there); "
            f"got {args.lower}")
    if args.upper < args.lower:
        raise ValueError(f"--upper must be >= --lower; got --upper {args.upper} "
                         f"< --lower {args.lower}")
    if args.out is not None:
        from vipcore._src._files import refuse_overwrite

        refuse_overwrite([args.file], [args.out])


def _check_budget(args, B: int) -> None:
    lo, hi = B * args.lower, B * args.upper
    if not lo <= args.budget <= hi:
        raise ValueError(
            f"--budget {args.budget} is infeasible for {B} prompts with --lower "
            f"{args.lower} and --upper {args.upper}: it must lie in [{lo}, {hi}]")


def _table_text(ids, n) -> str:
    keys = [str(i) for i in ids]
    width = max(len("prompt_id"), *(len(k) for k in keys))
    lines = [f"{'prompt_id':<{width}}  n"]
    lines += [f"{k:<{width}}  {int(v)}" for k, v in zip(keys, n, strict=True)]
    return "\n".join(lines)


_CONVENTION = (
    "objective = sum_q c(n_q) * 4 p_q (1 - p_q), sigma_Z^2 = 1",
    "objective = sum_q Var(G_q) / omega(n_q, p_q)^2 (signal-normalised GRPO "
    "variance, vipcore.grpo_terms), sigma_Z^2 = 1",
)


def _objective(n, p, estimator: str) -> float:
    from vipcore._src import allocation as A
    from vipcore._src.allocation.grpo import grpo_terms

    if estimator == "grpo":
        return float(grpo_terms(p, n).normalized_variance.sum())
    return float(A.allocation_objective(n, p, estimator))


def _summary(args, table, n) -> dict:
    from vipcore._src import allocation as A

    p, C, L, U = table.p, args.budget, args.lower, args.upper
    out = {"n": [int(v) for v in n]}
    if L < _MIN_LOWER[args.estimator]:  # a heuristic below the convex range
        obj = obj_u = None  # the variance is undefined at n < MIN_LOWER
    else:
        uniform = A.allocate_uniform(p, C, L, U)
        obj, obj_u = (_objective(m, p, args.estimator) for m in (n, uniform))
    if table.ids is not None:
        out["prompt_id"] = table.ids
    return {
        **out,
        "budget": C, "lower": L, "upper": U,
        "estimator": args.estimator, "method": args.method,
        "objective": obj,
        "objective_uniform": obj_u,
        "variance_reduction_vs_uniform": (
            None if obj is None else (1 - obj / obj_u) if obj_u > 0 else 0.0),
        "convention": _CONVENTION[args.estimator == "grpo"],
    }


def run(args: argparse.Namespace) -> int:
    from vipcore._src.apps.cli._table import read_table, write_allocation

    _check_options(args)
    table = read_table(args.file, id_col=args.id_col or "prompt_id",
                       p_col=args.p_col, id_required=args.id_col is not None)
    _check_budget(args, len(table.p))
    from vipcore._src import allocation as A

    n = A.get_allocator(args.method)(table.p, args.budget, args.lower, args.upper,
                                     estimator=args.estimator)
    if args.out is not None:
        write_allocation(args.out, table, n, args.id_col or "prompt_id", args.p_col)
        print(f"wrote {len(n)} rows to {args.out}", file=sys.stderr)
    if args.json:
        print(json.dumps(_summary(args, table, n), indent=2))
    elif args.out is None:
        print(_table_text(table.ids, n) if table.ids is not None
              else "\n".join(str(int(v)) for v in n))
    return 0
