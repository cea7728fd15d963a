"""``vipcore bench``: the allocator benchmark on the default JAX device.

Writes ``allocate_<platform>.json`` into ``--out DIR`` (default: a new
directory ``vipcore-bench-<date>-<time>`` in the working directory). It never
writes into the installed package and never replaces an existing result
unless ``--overwrite`` is given. SLSQP runs one small instance by default
and prints its expected duration first; ``--slsqp 0`` turns it off.
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

from vipcore._src.apps.cli._options import float_in, int_in, int_list

HELP = "benchmark the allocator (latency, vmap throughput, cold start, peers)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=int_list(1, 2**22), default=(64, 512, 4096,
                                                                    65536),
                        help="comma-separated batch sizes for latency "
                             "(default 64,512,4096,65536)")
    parser.add_argument("--batches", type=int_in(1, 2**20), default=None,
                        help="batches for the vmap throughput (default 256 on "
                             "CPU, 65536 on accelerators)")
    parser.add_argument("--batch-size", type=int_in(1, 2**22), default=512,
                        help="B for the eager call, throughput and cold start "
                             "(default 512)")
    parser.add_argument("--slsqp", type=int_in(0, 100), default=1,
                        help="SLSQP instances (default 1; 0 turns it off)")
    parser.add_argument("--slsqp-size", type=int_in(2, 4096), default=128,
                        help="B of the SLSQP instances (default 128; 512 takes "
                             "minutes)")
    parser.add_argument("--greedy-max", type=int_in(0, 2**22), default=65536,
                        help="largest B for the NumPy greedy (default 65536)")
    parser.add_argument("--precision", type=int_in(0, 10**6), default=400,
                        help="random instances for float32 vs float64 (default "
                             "400; 0 turns it off)")
    parser.add_argument("--no-cold-start", action="store_true",
                        help="skip the fresh-process cold-start timings")
    parser.add_argument("--no-sync-dispatch", action="store_true",
                        help="skip the CPU latencies with JAX's synchronous "
                             "dispatch (a fresh process)")
    parser.add_argument("--estimator", choices=("rloo", "drgrpo"), default="rloo")
    parser.add_argument("--reps", type=int_in(1, 10**6), default=50,
                        help="timed repetitions per measurement (default 50)")
    parser.add_argument("--min-time", type=float_in(0, 60), default=0.5,
                        help="seconds each timing runs at least (default 0.5: "
                             "a median of fast calls then spans more than a "
                             "moment of the machine's state)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default: a new vipcore-bench-"
                             "<date>-<time> directory here)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing allocate_<platform>.json in --out")


def _new_dir() -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(f"vipcore-bench-{stamp}")
    out, i = base, 1
    while out.exists():
        i += 1
        out = Path(f"{base}-{i}")
    return out


def output_path(out_dir: Path | None, platform: str, overwrite: bool) -> Path:
    """The result file: refuse the package tree and existing results."""
    import vipcore

    out_dir = out_dir if out_dir is not None else _new_dir()
    package = Path(vipcore.__file__).resolve().parent
    resolved = out_dir.resolve()
    if resolved == package or package in resolved.parents:
        raise ValueError(f"--out {out_dir} is inside the vipcore package "
                         f"({package}); choose a directory outside it")
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} exists and is not a directory")
    path = out_dir / f"allocate_{platform}.json"
    if path.exists() and not overwrite:
        raise ValueError(f"refusing to replace {path} (pass --overwrite, or "
                         "choose another --out)")
    return path


def run(args: argparse.Namespace) -> int:
    import jax

    from vipcore._src.apps.bench.allocator import BenchConfig, run_benchmark

    lower = 3 if args.estimator == "drgrpo" else 2
    path = output_path(args.out, jax.default_backend(), args.overwrite)
    cfg = BenchConfig(
        sizes=tuple(args.sizes), batch_B=args.batch_size, n_batches=args.batches,
        slsqp_instances=args.slsqp, slsqp_B=args.slsqp_size,
        greedy_max_B=args.greedy_max, precision_instances=args.precision,
        cold_start=not args.no_cold_start, sync_dispatch=not args.no_sync_dispatch,
        estimator=args.estimator, L=lower, reps=args.reps, min_time=args.min_time,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    run_benchmark(cfg, out=path)
    return 0
