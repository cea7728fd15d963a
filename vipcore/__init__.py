"""vipcore: variance-aware rollout allocation for GRPO-style RL trainers.

The public surface is re-exported here; implementations live in
``vipcore._src``. Importing vipcore is cheap: each public name is loaded on
first use (PEP 562), so ``vipcore allocate`` from the shell imports the
allocator, not the predictors, the sweep or the statistics.

Reference: Nguyen, Ma, She, Nguyen, Zhao and Nguyen (2025), "Adaptive Rollout
Allocation for Online Reinforcement Learning with Verifiable Rewards" (the
VIP method).
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING

#: The public submodules, and per implementation module the names it gives.
_MODULES = ("calibration", "gp", "montecarlo", "planner", "predict",
            "predictors", "stats", "sweep")
_NAMES = {
    "vipcore._src.allocation": (
        "ALLOCATORS Allocation AllocationStatus allocate "
        "allocate_inverse_accuracy allocate_inverse_variance allocate_uniform "
        "allocation_objective get_allocator register_allocator "
        "round_allocation solve_continuous"),
    "vipcore._src.allocation.grpo": (
        "GrpoAllocation GrpoTerms allocate_grpo grpo_terms solve_grpo"),
    "vipcore._src.embed": "embed load_encoder",
    "vipcore._src.planner": "Planner",
    "vipcore._src.variance": (
        "ESTIMATORS advantages gradient_variance gradient_variance_continuous "
        "grpo_gradient_variance variance_factor zero_variance_probability"),
}
#: Public name -> (module, attribute); attribute None: the module itself.
_EXPORTS: dict[str, tuple[str, str | None]] = {
    **{m: (f"vipcore.{m}", None) for m in _MODULES},
    **{n: (mod, n) for mod, names in _NAMES.items() for n in names.split()},
    "solve_allocation": ("vipcore._src.allocation", "solve"),
}

if _TYPE_CHECKING:  # the same names, for type checkers and IDEs
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


def __getattr__(name: str):
    """Load a public name on first use, then keep it in the namespace."""
    if name == "__version__":
        from importlib import metadata

        try:
            value = metadata.version("vipcore")
        except metadata.PackageNotFoundError:  # running from a source tree
            value = "0.1.0+src"
    elif name in _EXPORTS:
        module, attr = _EXPORTS[name]
        value = _importlib.import_module(module)
        if attr is not None:
            value = getattr(value, attr)
    else:
        raise AttributeError(f"module 'vipcore' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
