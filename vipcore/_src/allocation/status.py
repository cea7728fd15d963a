"""Allocation status codes and the one rule table behind them.

The exact allocator has two faces: :func:`vipcore.solve_allocation` runs under
``jit``/``vmap`` and reports a problem as a status code, and
:func:`vipcore.allocate` validates eagerly and raises ``ValueError``. Both
evaluate the same ordered :data:`RULES`, so the two cannot drift apart: the
first rule an input violates decides the code (traced) or the message
(eager). This is the pattern of optimistix's ``RESULTS``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "AllocationStatus",
    "MIN_LOWER",
    "INT32_MAX",
    "Rule",
    "RULES",
    "traced_status",
    "check_allocation_args",
    "traced_scalar",
]

#: Largest budget or bound the solver represents (its counts are ``int32``).
INT32_MAX = 2**31 - 1

#: Smallest lower bound for which each objective is convex (``None``: the
#: heuristic baselines, which need at least one rollout per prompt).
MIN_LOWER = {"rloo": 2, "drgrpo": 3, "grpo": 2, None: 1}


class AllocationStatus(enum.IntEnum):
    """Why an allocation could not be computed (``Allocation.status``).

    ``int(status) == 0`` means success; every other code comes with a
    :attr:`message`. Codes are stable integers, so a batched caller can test
    ``res.status == vipcore.AllocationStatus.INFEASIBLE`` under ``vmap``.
    """

    OK = 0
    #: ``C < B*L`` or ``C > B*U``: no integer allocation satisfies the bounds.
    INFEASIBLE = 1
    #: ``L`` is not an integer in ``[MIN_LOWER[estimator], 2**31)``, or ``U``
    #: is not an integer ``>= L`` (any size: ``U`` above ``C`` changes nothing).
    BAD_BOUNDS = 2
    #: some ``p_hat`` is NaN or outside [0, 1].
    BAD_P = 3
    #: ``C`` is not a finite integer in ``[0, 2**31)``.
    BAD_BUDGET = 4

    @property
    def message(self) -> str:
        """A one-line description of the code."""
        return _MESSAGES[self]


_MESSAGES = {
    AllocationStatus.OK: "ok",
    AllocationStatus.INFEASIBLE: "the budget C lies outside [B*L, B*U]",
    AllocationStatus.BAD_BOUNDS: (
        "L and U must be integers with MIN_LOWER[estimator] <= L < 2**31 and "
        "U >= L"
    ),
    AllocationStatus.BAD_P: "p_hat must lie in [0, 1] and contain no NaN",
    AllocationStatus.BAD_BUDGET: "C must be a finite integer in [0, 2**31)",
}


class _Args(NamedTuple):
    """What the rules see: arrays under ``jit``, NumPy/Python values eagerly.

    ``shown`` holds the values as the user passed them, for messages (a
    400-digit integer is compared as ``inf`` but named by its digits).
    """

    p: Any
    valid: Any
    B: Any
    C: Any
    L: Any
    U: Any
    estimator: str | None
    shown: dict | None = None

    def show(self, name: str) -> str:
        return (self.shown or {}).get(name) or repr(getattr(self, name))


def _is_integer(xp, x):
    """``x`` is a finite integer value (exact for ints and floats)."""
    return xp.isfinite(x) & (xp.floor(x) == x)


def _is_int32(xp, x):
    """``x`` is a finite integer in ``[0, 2**31)``."""
    return _is_integer(xp, x) & (x >= 0) & (x <= INT32_MAX)


def _bad_p(xp, a: _Args):
    ok = (a.p >= 0) & (a.p <= 1)  # NaN compares false
    return ~xp.all(ok | ~a.valid)


def _bad_budget(xp, a: _Args):
    return ~_is_int32(xp, a.C)


def _bad_lower(xp, a: _Args):
    return ~_is_int32(xp, a.L) | (a.L < MIN_LOWER[a.estimator])


def _bad_upper(xp, a: _Args):
    return ~_is_integer(xp, a.U) | (a.U < a.L)


def _infeasible(xp, a: _Args):
    # C < B L  <=>  C // B < L, and C > B U  <=>  ceil(C / B) > U, for B > 0:
    # no product that could overflow int32 under jit, exact for integers.
    # No real prompt (all masked): only C = 0 is feasible.
    B = xp.maximum(a.B, 1)
    return ((a.C // B < a.L) | (-(-a.C // B) > a.U)) & (a.B > 0) | (
        (a.B == 0) & (a.C != 0))


def _explain_p(a: _Args) -> str:
    p = np.asarray(a.p)[np.asarray(a.valid, bool)]
    nan = np.isnan(p)
    if nan.any():
        return f"p_hat must not contain NaN (first NaN at index {int(np.argmax(nan))})"
    bad = int(np.argmax((p < 0) | (p > 1)))
    return f"p_hat must lie in [0, 1]; got {float(p[bad]):.10g} at index {bad}"


def _explain_budget(a: _Args) -> str:
    return f"C must be an integer in [0, 2**31); got C={a.show('C')}"


def _explain_lower(a: _Args) -> str:
    lo = MIN_LOWER[a.estimator]
    if not _is_int32(np, np.float64(a.L)):
        return f"L must be an integer in [{lo}, 2**31); got L={a.show('L')}"
    why = (f" for estimator {a.estimator!r} (its objective is convex only there)"
           if a.estimator else "")
    return f"L must be >= {lo}{why}; got L={a.show('L')}"


def _explain_upper(a: _Args) -> str:
    if not _is_integer(np, np.float64(a.U)):
        return f"U must be an integer >= L; got U={a.show('U')}"
    return f"L must be <= U; got L={a.show('L')} > U={a.show('U')}"


def _explain_infeasible(a: _Args) -> str:
    hi = a.B * int(a.U)
    return (
        f"C={a.show('C')} is infeasible for B={a.B} prompts with L={a.show('L')}, "
        f"U={a.show('U')}: C must lie in [B*L, B*U] = [{a.B * int(a.L)}, {hi}]"
    )


class Rule(NamedTuple):
    """One validity rule: ``violated(xp, args)`` is a boolean (array)."""

    status: AllocationStatus
    violated: Callable[[Any, _Args], Any]
    explain: Callable[[_Args], str]


#: The rules, in the order they are checked: the first violated one decides.
RULES: tuple[Rule, ...] = (
    Rule(AllocationStatus.BAD_P, _bad_p, _explain_p),
    Rule(AllocationStatus.BAD_BUDGET, _bad_budget, _explain_budget),
    Rule(AllocationStatus.BAD_BOUNDS, _bad_lower, _explain_lower),
    Rule(AllocationStatus.BAD_BOUNDS, _bad_upper, _explain_upper),
    Rule(AllocationStatus.INFEASIBLE, _infeasible, _explain_infeasible),
)


#: The rules on the budget and the bounds alone: every rule but ``BAD_P``.
BOUND_RULES: tuple[Rule, ...] = tuple(
    r for r in RULES if r.status != AllocationStatus.BAD_P)


def traced_status(p, valid, C, L, U, estimator: str | None,
                  rules: tuple[Rule, ...] = RULES):
    """The ``int32`` status code of ``rules`` (default :data:`RULES`) for
    (possibly traced) arrays; ``p`` may be None when no rule reads it."""
    import jax.numpy as jnp

    a = _Args(p, valid, jnp.sum(valid), jnp.asarray(C), jnp.asarray(L),
              jnp.asarray(U), estimator)
    status = jnp.asarray(AllocationStatus.OK, jnp.int32)
    for rule in reversed(rules):
        status = jnp.where(rule.violated(jnp, a), jnp.int32(rule.status), status)
    return status


def traced_bounds_ok(valid, C, L, U, estimator: str | None):
    """``True`` where no rule of :data:`BOUND_RULES` is violated.

    The budget and bounds alone, not ``p``: a solver that replaces bad
    arguments by safe stand-ins can choose them from this, so that bounds
    given as Python numbers stay constants the compiler folds.
    """
    status = traced_status(None, valid, C, L, U, estimator, BOUND_RULES)
    return status == AllocationStatus.OK


def _shown(x: Any) -> str:
    """``repr(x)``, with long integers shortened to their ends and length."""
    text = repr(x)
    if isinstance(x, int) and len(text) > 24:
        digits = len(text.lstrip("-"))
        return f"{text[:10]}...{text[-4:]} ({digits} digits)"
    return text


def _eager_scalar(name: str, x: Any) -> tuple[int | float, str]:
    """``(value for the rules, text for messages)`` of a budget or bound.

    Bools and text are refused. Integers beyond 2**53 become ``+-inf`` (``C``
    and ``L``: out of range whatever their digits) or ``2**53`` (``U``: a
    larger upper bound allows nothing more), so the rules' arithmetic stays
    exact and no conversion can overflow.
    """
    if isinstance(x, bool | np.bool_) or isinstance(x, str | bytes):
        raise ValueError(f"{name} must be an integer; got {x!r}")
    if not isinstance(x, int | float):
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an integer; got {x!r}") from None
        if arr.shape != () or arr.dtype.kind not in "iuf":
            raise ValueError(f"{name} must be an integer; got {x!r}")
        x = arr.item()
    shown = _shown(x)
    if isinstance(x, int) and abs(x) > 2**53:
        if name == "U" and x > 0:
            return 2**53, shown
        return (float("inf") if x > 0 else float("-inf")), shown
    if isinstance(x, float) and x.is_integer() and abs(x) <= 2**53:
        return int(x), shown
    return x, shown


def check_allocation_args(p_hat, C, L, U, estimator: str | None):
    """Validate eager arguments with :data:`RULES`; return ``(p, C, L, U)``.

    ``p`` is the input as a NumPy floating array in its own precision
    (validated before any cast, so ``1 + 1e-9`` is refused, not rounded to 1);
    ``C``, ``L`` and ``U`` are Python ints, ``U`` capped at ``2**31 - 1``
    (no allocation can use more, since ``C < 2**31``). Raises ``ValueError``
    naming the argument and the valid range.
    """
    from vipcore._src._checks import as_numpy_float

    p = as_numpy_float("p_hat", p_hat)
    if p.ndim != 1:
        raise ValueError(f"p_hat must be one-dimensional (B,); got shape {p.shape}")
    if p.shape[0] == 0:
        raise ValueError("p_hat is empty: the batch needs at least one prompt")
    (C, sC), (L, sL), (U, sU) = (
        _eager_scalar(n, v) for n, v in (("C", C), ("L", L), ("U", U)))
    a = _Args(p, np.ones(p.shape, bool), p.shape[0], C, L, U, estimator,
              {"C": sC, "L": sL, "U": sU})
    for rule in RULES:
        if rule.violated(np, a):
            raise ValueError(rule.explain(a))
    return p, int(C), int(L), int(min(U, INT32_MAX))


def traced_scalar(name: str, x: Any) -> Any:
    """A budget or bound for :func:`vipcore.solve_allocation`, ready for ``jit``.

    Static facts raise ``ValueError`` naming the argument: it must be a real
    number of shape ``()`` (a Python or NumPy number, or a JAX scalar, traced
    or not; no bool, text or sequence). Value facts become status codes: a
    concrete integer the solver's ``int32`` cannot hold is replaced by an
    equivalent value (``U``: capped) or one its rule refuses, where JAX would
    otherwise wrap ``np.int64(2**32 + 32)`` to 32 or raise ``OverflowError``.
    """
    dtype = getattr(x, "dtype", None)
    if dtype is not None and hasattr(x, "shape"):  # NumPy or JAX, maybe traced
        if x.shape != () or np.dtype(dtype).kind not in "iuf":
            raise ValueError(f"{name} must be a real number (a scalar); got "
                             f"{np.dtype(dtype).name} of shape {x.shape}")
        if isinstance(x, np.ndarray | np.generic):
            x = x.item()
        else:
            return x  # a JAX scalar: its dtype already fits
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise ValueError(f"{name} must be a real number; got {x!r}")
    if isinstance(x, float) and not (math.isfinite(x) and x.is_integer()):
        return x  # NaN, inf or a fraction: its rule refuses it, in any dtype
    if 0 <= x <= INT32_MAX:
        return x
    if name == "U" and x > 0:
        return INT32_MAX
    return float("inf") if x > 0 else float("-inf")


def describe(status: Any) -> str:
    """The message of a status code (an int or 0-d array)."""
    code = int(status)
    try:
        return AllocationStatus(code).message
    except ValueError:
        return f"unknown status {code}"

