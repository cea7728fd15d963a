"""vipcore: variance-aware rollout allocation for GRPO-style RL trainers.

The public surface is re-exported here; implementations live in
``vipcore._src``.
"""

from importlib.metadata import PackageNotFoundError, version

from vipcore._src.variance import ESTIMATORS as ESTIMATORS
from vipcore._src.variance import advantages as advantages
from vipcore._src.variance import gradient_variance as gradient_variance
from vipcore._src.variance import (
    gradient_variance_continuous as gradient_variance_continuous,
)
from vipcore._src.variance import variance_factor as variance_factor

try:
    __version__ = version("vipcore")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0+src"

__all__ = [
    "ESTIMATORS",
    "advantages",
    "gradient_variance",
    "gradient_variance_continuous",
    "variance_factor",
]
