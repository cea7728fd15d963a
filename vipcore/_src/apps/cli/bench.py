"""``vipcore bench``: the allocator benchmark on the default JAX device."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "benchmark the allocator (latency, vmap throughput, vs scipy SLSQP)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes", type=lambda s: tuple(int(x) for x in s.split(",")),
        default=(64, 512, 4096, 65536),
        help="comma-separated batch sizes for latency (default 64,512,4096,65536)",
    )
    parser.add_argument("--batches", type=int, default=None,
                        help="batches of 512 for throughput (default 256 CPU, "
                             "65536 accelerator)")
    parser.add_argument("--batch-size", type=int, default=512,
                        help="B for the eager, throughput and SLSQP runs (512)")
    parser.add_argument("--slsqp", type=int, default=2,
                        help="SLSQP instances to compare against (default 3)")
    parser.add_argument("--estimator", choices=("rloo", "drgrpo"), default="rloo")
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON output (default benchmarks/results/"
                             "allocate_<platform>.json)")


def run(args: argparse.Namespace) -> int:
    import jax

    from vipcore._src.apps.bench.allocator import run_benchmark

    for name in ("batches", "slsqp", "reps", "batch_size"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1; got {v}")
    if any(b < 1 for b in args.sizes):
        raise ValueError(f"--sizes must be positive integers; got {args.sizes}")
    out = args.out or Path("benchmarks/results") / (
        f"allocate_{jax.default_backend()}.json"
    )
    run_benchmark(
        sizes=args.sizes, batch_B=args.batch_size, n_batches=args.batches,
        slsqp_instances=args.slsqp,
        estimator=args.estimator, reps=args.reps, out=out,
    )
    return 0
