"""vipcore: variance-aware rollout allocation for GRPO-style RL trainers.

The public surface is re-exported here; implementations live in
``vipcore._src``. Importing vipcore loads only the numerical core: the
command line, ``vipcore.simulate`` and the plotting code load on first use.

Reference: Nguyen, Ma, She, Nguyen, Zhao and Nguyen (2025), "Adaptive Rollout
Allocation for Online Reinforcement Learning with Verifiable Rewards" (the
VIP method).
"""

from importlib import metadata as _metadata

from vipcore import calibration as calibration
from vipcore import gp as gp
from vipcore import montecarlo as montecarlo
from vipcore import planner as planner
from vipcore import predict as predict
from vipcore import predictors as predictors
from vipcore import stats as stats
from vipcore import sweep as sweep
from vipcore._src.allocation import ALLOCATORS as ALLOCATORS
from vipcore._src.allocation import Allocation as Allocation
from vipcore._src.allocation import AllocationStatus as AllocationStatus
from vipcore._src.allocation import allocate as allocate
from vipcore._src.allocation import (
    allocate_inverse_accuracy as allocate_inverse_accuracy,
)
from vipcore._src.allocation import (
    allocate_inverse_variance as allocate_inverse_variance,
)
from vipcore._src.allocation import allocate_uniform as allocate_uniform
from vipcore._src.allocation import allocation_objective as allocation_objective
from vipcore._src.allocation import get_allocator as get_allocator
from vipcore._src.allocation import register_allocator as register_allocator
from vipcore._src.allocation import round_allocation as round_allocation
from vipcore._src.allocation import solve as solve_allocation
from vipcore._src.allocation import solve_continuous as solve_continuous
from vipcore._src.allocation.grpo import GrpoAllocation as GrpoAllocation
from vipcore._src.allocation.grpo import GrpoTerms as GrpoTerms
from vipcore._src.allocation.grpo import allocate_grpo as allocate_grpo
from vipcore._src.allocation.grpo import grpo_terms as grpo_terms
from vipcore._src.allocation.grpo import solve_grpo as solve_grpo
from vipcore._src.embed import embed as embed
from vipcore._src.embed import load_encoder as load_encoder
from vipcore._src.planner import Planner as Planner
from vipcore._src.variance import ESTIMATORS as ESTIMATORS
from vipcore._src.variance import advantages as advantages
from vipcore._src.variance import gradient_variance as gradient_variance
from vipcore._src.variance import (
    gradient_variance_continuous as gradient_variance_continuous,
)
from vipcore._src.variance import grpo_gradient_variance as grpo_gradient_variance
from vipcore._src.variance import variance_factor as variance_factor
from vipcore._src.variance import (
    zero_variance_probability as zero_variance_probability,
)

try:
    __version__ = _metadata.version("vipcore")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0+src"

__all__ = [
    "ALLOCATORS",
    "Allocation",
    "AllocationStatus",
    "ESTIMATORS",
    "GrpoAllocation",
    "GrpoTerms",
    "Planner",
    "advantages",
    "allocate",
    "allocate_grpo",
    "allocate_inverse_accuracy",
    "allocate_inverse_variance",
    "allocate_uniform",
    "allocation_objective",
    "calibration",
    "embed",
    "get_allocator",
    "gp",
    "gradient_variance",
    "gradient_variance_continuous",
    "grpo_gradient_variance",
    "grpo_terms",
    "load_encoder",
    "montecarlo",
    "planner",
    "predict",
    "predictors",
    "register_allocator",
    "round_allocation",
    "solve_allocation",
    "solve_continuous",
    "solve_grpo",
    "stats",
    "sweep",
    "variance_factor",
    "zero_variance_probability",
]
