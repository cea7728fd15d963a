"""Allocator benchmark: ``python benchmarks/bench_allocate.py [--sizes ...]``.

Same as ``vipcore bench``; writes ``benchmarks/results/allocate_<platform>.json``.
"""

import sys

from vipcore._src.apps.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
