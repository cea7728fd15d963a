"""Exact variance-minimising rollout allocation and its baselines.

Modules: :mod:`.status` (the rule table and status codes), :mod:`.objective`,
:mod:`.search` (fixed-length searches), :mod:`.threshold` (the exact integer
solver: a threshold on the marginal gains),
:mod:`.continuous` (the KKT relaxation), :mod:`.rounding` (exact integer
rounding), :mod:`.solve` (the jitted solver and the eager ``allocate``),
:mod:`.heuristics` (uniform, inverse accuracy, inverse variance) and
:mod:`.registry` (allocators by name).
"""

from vipcore._src.allocation.continuous import solve_continuous as solve_continuous
from vipcore._src.allocation.heuristics import (
    allocate_inverse_accuracy as allocate_inverse_accuracy,
)
from vipcore._src.allocation.heuristics import (
    allocate_inverse_variance as allocate_inverse_variance,
)
from vipcore._src.allocation.heuristics import allocate_uniform as allocate_uniform
from vipcore._src.allocation.objective import (
    allocation_objective as allocation_objective,
)
from vipcore._src.allocation.registry import ALLOCATORS as ALLOCATORS
from vipcore._src.allocation.registry import get_allocator as get_allocator
from vipcore._src.allocation.registry import register_allocator as register_allocator
from vipcore._src.allocation.rounding import round_allocation as round_allocation
from vipcore._src.allocation.solve import Allocation as Allocation
from vipcore._src.allocation.solve import allocate as allocate
from vipcore._src.allocation.solve import solve as solve
from vipcore._src.allocation.status import MIN_LOWER as MIN_LOWER
from vipcore._src.allocation.status import AllocationStatus as AllocationStatus
from vipcore._src.allocation.status import (
    check_allocation_args as check_allocation_args,
)
from vipcore._src.allocation.threshold import TIE_RTOL as TIE_RTOL

__all__ = [
    "ALLOCATORS",
    "Allocation",
    "AllocationStatus",
    "MIN_LOWER",
    "TIE_RTOL",
    "allocate",
    "allocate_inverse_accuracy",
    "allocate_inverse_variance",
    "allocate_uniform",
    "allocation_objective",
    "check_allocation_args",
    "get_allocator",
    "register_allocator",
    "round_allocation",
    "solve",
    "solve_continuous",
]
