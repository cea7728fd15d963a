"""Monte-Carlo simulation of the projected group gradient (public API).

See :mod:`vipcore._src.montecarlo` for the conventions.
"""

from vipcore._src.montecarlo import REWARDS as REWARDS
from vipcore._src.montecarlo import Z_DISTS as Z_DISTS
from vipcore._src.montecarlo import VarianceEstimate as VarianceEstimate
from vipcore._src.montecarlo import (
    correlated_gradient_moments as correlated_gradient_moments,
)
from vipcore._src.montecarlo import estimate_variance as estimate_variance
from vipcore._src.montecarlo import group_gradient as group_gradient
from vipcore._src.montecarlo import reward_central_moment4 as reward_central_moment4
from vipcore._src.montecarlo import reward_mean as reward_mean
from vipcore._src.montecarlo import reward_variance as reward_variance
from vipcore._src.montecarlo import sample_rollouts as sample_rollouts
from vipcore._src.montecarlo import simulate_batch as simulate_batch
from vipcore._src.montecarlo import simulate_cells as simulate_cells
from vipcore._src.montecarlo import simulate_gradient as simulate_gradient

__all__ = [
    "REWARDS",
    "Z_DISTS",
    "VarianceEstimate",
    "correlated_gradient_moments",
    "estimate_variance",
    "group_gradient",
    "reward_central_moment4",
    "reward_mean",
    "reward_variance",
    "sample_rollouts",
    "simulate_batch",
    "simulate_cells",
    "simulate_gradient",
]
