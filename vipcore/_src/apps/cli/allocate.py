"""``vipcore allocate``: the integer rollout allocation for a file of p_hat.

Input (``FILE`` or ``-`` for stdin), one success probability per prompt:

* ``.npy``: a 1-D float array (loaded with ``allow_pickle=False``);
* ``.json``: a list of numbers, or an object with a ``"p_hat"`` list;
* anything else (``.csv``, ``.txt``, stdin): one number per line; an optional
  first line ``p_hat`` is a header; blank lines and ``#`` comments are
  skipped. Stdin that starts with ``[`` or ``{`` is read as JSON.

A value that is not a number names the file and line. Output: one integer
per line, or ``--json`` with the allocation, its objective and the uniform
allocation's objective for comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HELP = "allocate a rollout budget over prompts from their success probabilities"

#: ``--method`` choices: the registered allocators.
METHODS = ("vip", "uniform", "inverse_accuracy", "inverse_variance")


def read_probabilities(source: str) -> np.ndarray:
    """Read p_hat from a path or ``-`` (stdin); errors name file and line."""
    if source == "-":
        name, text = "<stdin>", sys.stdin.read()
        if text.lstrip()[:1] in ("[", "{"):
            return _from_json(name, text)
        return _from_lines(name, text)
    path = Path(source)
    if not path.exists():
        raise ValueError(f"{source}: no such file")
    if path.suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise ValueError(f"{source}: not a readable .npy array ({err})") from None
        if arr.ndim != 1 or arr.dtype.kind not in "fiu":
            raise ValueError(
                f"{source}: expected a 1-D numeric array; got shape {arr.shape}, "
                f"dtype {arr.dtype}"
            )
        return arr.astype(np.float64 if arr.dtype == np.float64 else np.float32)
    text = path.read_text()
    if path.suffix == ".json":
        return _from_json(source, text)
    return _from_lines(source, text)


def _from_json(name: str, text: str) -> np.ndarray:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{name}: line {err.lineno}: invalid JSON ({err.msg})"
        ) from None
    if isinstance(obj, dict):
        if "p_hat" not in obj:
            raise ValueError(f"{name}: a JSON object needs a 'p_hat' list")
        obj = obj["p_hat"]
    if not isinstance(obj, list):
        raise ValueError(f"{name}: expected a JSON list of numbers")
    for i, v in enumerate(obj):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"{name}: item {i}: expected a number, got {v!r}")
    return np.asarray(obj, dtype=np.float32)


def _from_lines(name: str, text: str) -> np.ndarray:
    values = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip().rstrip(",")
        if not line:
            continue
        if not values and line.lower() in ("p_hat", "p", "prob", "probability"):
            continue
        try:
            values.append(float(line))
        except ValueError:
            raise ValueError(
                f"{name}: line {lineno}: expected one number per line, got {raw!r}"
            ) from None
    return np.asarray(values, dtype=np.float32)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="p_hat values: .json, .csv/.txt, .npy, or - "
                                     "for stdin")
    parser.add_argument("--budget", "-C", type=int, required=True,
                        help="total rollouts C (B*L <= C <= B*U)")
    parser.add_argument("--lower", "-L", type=int, default=2,
                        help="minimum rollouts per prompt (default 2; >= 3 for "
                             "drgrpo)")
    parser.add_argument("--upper", "-U", type=int, required=True,
                        help="maximum rollouts per prompt")
    parser.add_argument("--estimator", choices=("rloo", "drgrpo"), default="rloo")
    parser.add_argument("--method", choices=METHODS, default="vip",
                        help="vip (default) or a heuristic baseline")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from vipcore._src import allocation as A

    p = read_probabilities(args.file)
    C, L, U = args.budget, args.lower, args.upper
    n = A.get_allocator(args.method)(p, C, L, U, estimator=args.estimator)
    if not args.json:
        print("\n".join(str(int(v)) for v in n))
        return 0
    uniform = A.allocate_uniform(p, C, L, U)
    obj = float(A.allocation_objective(n, p, args.estimator))
    obj_u = float(A.allocation_objective(uniform, p, args.estimator))
    print(json.dumps({
        "n": [int(v) for v in n],
        "budget": C, "lower": L, "upper": U,
        "estimator": args.estimator, "method": args.method,
        "objective": obj,
        "objective_uniform": obj_u,
        "variance_reduction_vs_uniform": (1 - obj / obj_u) if obj_u > 0 else 0.0,
        "convention": "objective = sum_q c(n_q) * 4 p_q (1 - p_q), sigma_Z^2 = 1",
    }, indent=2))
    return 0
