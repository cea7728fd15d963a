"""Option types for the command line: every value is checked at parse time.

Each factory returns an ``argparse`` ``type=`` callable. A bad value makes
argparse print ``vipcore CMD: error: argument --NAME: ...`` naming the option
the user typed, with the valid range, and exit with status 2 before any work
is done (no traceback, no partial output).

>>> int_in(0, 2**32 - 1)("7")
7
>>> float_in(0, 1, low_open=True)("0.5")
0.5
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["int_in", "float_in", "int_list"]


def _bounds(lo, hi, low_open: bool, high_open: bool) -> str:
    return (f"{'(' if low_open else '['}{lo if lo is not None else '-inf'}, "
            f"{hi if hi is not None else 'inf'}{')' if high_open else ']'}")


def int_in(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """An integer in ``[lo, hi]`` (either bound may be None)."""

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer in {_bounds(lo, hi, False, False)}; "
                f"got {text!r}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(
                f"must be an integer in {_bounds(lo, hi, False, False)}; got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def float_in(lo: float | None = None, hi: float | None = None, *,
             low_open: bool = False, high_open: bool = False
             ) -> Callable[[str], float]:
    """A finite number in the interval (closed unless ``*_open``)."""
    where = _bounds(lo, hi, low_open, high_open)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a number in {where}; got {text!r}") from None
        bad = not math.isfinite(value)
        if lo is not None:
            bad |= value <= lo if low_open else value < lo
        if hi is not None:
            bad |= value >= hi if high_open else value > hi
        if bad:
            raise argparse.ArgumentTypeError(f"must be a number in {where}; "
                                             f"got {text}")
        return value

    parse.__name__ = "number"
    return parse


def int_list(lo: int | None = None, hi: int | None = None
             ) -> Callable[[str], tuple[int, ...]]:
    """A comma-separated list of integers, each in ``[lo, hi]``."""
    one = int_in(lo, hi)

    def parse(text: str) -> tuple[int, ...]:
        parts = [p.strip() for p in text.split(",")]
        if not text.strip() or any(not p for p in parts):
            raise argparse.ArgumentTypeError(
                f"expected comma-separated integers; got {text!r}")
        return tuple(one(p) for p in parts)

    parse.__name__ = "integer list"
    return parse
