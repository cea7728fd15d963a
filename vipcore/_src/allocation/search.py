"""Fixed-length searches: a monotone predicate narrowed in a static number of rounds.

Both searches run a number of rounds fixed at trace time (no data-dependent
loop, no early exit), each evaluating the predicate at ``sections - 1``
points at once. On accelerators the rounds are unrolled into one program; on
CPU they are a ``lax.scan`` of fixed length (the same arithmetic, compiled
once instead of once per round, which keeps the first call fast).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["default_unroll", "fixed_rounds", "bracket_search", "search_bits",
           "rounds_for"]


def default_unroll() -> bool:
    """Unroll the rounds on accelerators (each round is then a few fused
    kernels, no loop); scan on CPU, where a loop step costs nothing and
    compiling one round instead of thirty keeps cold starts short."""
    return jax.default_backend() != "cpu"


def fixed_rounds(step, state, rounds: int, unroll: bool | None = None):
    """``state = step(state)`` exactly ``rounds`` times (a static count)."""
    if unroll is None:
        unroll = default_unroll()
    if unroll:
        for _ in range(rounds):
            state = step(state)
        return state
    state, _ = lax.scan(lambda s, _: (step(s), None), state, None, length=rounds)
    return state


def rounds_for(span_bits: int, sections: int) -> int:
    """Rounds that shrink ``2**span_bits`` grid steps to one with ``sections``."""
    k = max(2, int(sections))
    span, rounds = 1 << span_bits, 0
    while span > 1:
        span = -(-span // k)
        rounds += 1
    return rounds


def bracket_search(pred, lo, hi, dtype, sections: int, unroll: bool | None = None):
    """Narrow ``[lo, hi]`` around the point where ``pred`` turns false.

    ``pred(t)`` maps a vector of points to booleans that are true on a prefix
    of ``[lo, hi]`` (monotone); ``pred(lo)`` is true and ``pred(hi)`` false.
    The rounds shrink the bracket by ``2**-32`` (float32) or ``2**-60``
    (float64), which reaches the dtype's resolution for the brackets used
    here.
    """
    bits = 60 if jnp.finfo(dtype).bits >= 64 else 32
    K = max(2, int(sections))
    frac = jnp.arange(1, K, dtype=dtype) / K

    def step(bracket):
        lo, hi = bracket
        t = lo + (hi - lo) * frac
        cnt = jnp.sum(pred(t))
        return (jnp.where(cnt > 0, t[jnp.maximum(cnt - 1, 0)], lo),
                jnp.where(cnt < K - 1, t[jnp.minimum(cnt, K - 2)], hi))

    def bisect(br):  # br = [lo, hi]: one vector, so one update per round
        mid = 0.5 * (br[0] + br[1])
        ok = pred(mid[None])[0]
        return jnp.where(jnp.arange(2) == 1 - ok.astype(jnp.int32), mid, br)

    lo, hi = jnp.asarray(lo, dtype), jnp.asarray(hi, dtype)
    if K == 2:
        br = fixed_rounds(bisect, jnp.stack([lo, hi]), rounds_for(bits, K), unroll)
        return br[0], br[1]
    return fixed_rounds(step, (lo, hi), rounds_for(bits, K), unroll)


def _bits_type(dt):
    return jnp.int32 if jnp.finfo(dt).bits == 32 else jnp.int64


def search_bits(pred, lo, hi, dt, sections: int, span_bits: int,
                unroll: bool | None = None):
    """Smallest positive float ``u`` in ``(lo, hi]`` with ``pred(u)`` true.

    ``pred`` maps a vector of floats to booleans, false below and true from
    some point on; ``pred(lo)`` is false and ``pred(hi)`` true. The search
    runs over the integer bit patterns of positive floats (ordered like the
    floats), so the rounds needed to shrink ``2**span_bits`` patterns to
    adjacent floats reach the dtype's full resolution whatever the scale.
    """
    it = _bits_type(dt)
    k = max(2, int(sections))
    jk = jnp.arange(1, k, dtype=it)

    def bisect(br):  # br = [lo, hi]: one vector, so one update per round
        mid = br[0] + (br[1] - br[0]) // 2
        ok = pred(lax.bitcast_convert_type(mid, dt)[None])[0]
        return jnp.where(jnp.arange(2) == ok.astype(jnp.int32), mid, br)

    def step(bracket):
        lo, hi = bracket
        w = hi - lo
        q, r = w // k, w % k

        def point(j):  # lo + floor(w j / k), without overflow
            return lo + q * j + (r * j) // k

        below = jnp.sum(~pred(lax.bitcast_convert_type(point(jk), dt)))
        c = below.astype(it)
        return point(c), jnp.where(c < k - 1, point(c + 1), hi)

    lo = lax.bitcast_convert_type(jnp.asarray(lo, dt), it)
    hi = lax.bitcast_convert_type(jnp.asarray(hi, dt), it)
    rounds = rounds_for(span_bits, k)
    if k == 2:
        hi = fixed_rounds(bisect, jnp.stack([lo, hi]), rounds, unroll)[1]
    else:
        _, hi = fixed_rounds(step, (lo, hi), rounds, unroll)
    return lax.bitcast_convert_type(hi, dt)
