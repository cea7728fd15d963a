"""Allocator benchmark: ``python benchmarks/bench_allocate.py [options]``.

The same as ``vipcore bench`` (see ``vipcore bench --help``). To refresh the
committed result: ``python benchmarks/bench_allocate.py --out
benchmarks/results --overwrite``.
"""

import sys

from vipcore._src.apps.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
