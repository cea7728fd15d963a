"""The trainer-facing planner: predict, allocate, observe, save/load.

See :mod:`vipcore._src.planner` and ``docs/prediction.md``.
"""

from vipcore._src.planner import DEFAULT_PREDICTOR as DEFAULT_PREDICTOR
from vipcore._src.planner import FORMAT as FORMAT
from vipcore._src.planner import FORMAT_VERSION as FORMAT_VERSION
from vipcore._src.planner import MAX_ROLLOUTS as MAX_ROLLOUTS
from vipcore._src.planner import PREDICTORS as PREDICTORS
from vipcore._src.planner import PlanMismatchWarning as PlanMismatchWarning
from vipcore._src.planner import Planner as Planner
from vipcore._src.planner import group_rewards as group_rewards
from vipcore._src.planner import padded_mask as padded_mask
from vipcore._src.planner import repeat_index as repeat_index

__all__ = [
    "DEFAULT_PREDICTOR",
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_ROLLOUTS",
    "PREDICTORS",
    "PlanMismatchWarning",
    "Planner",
    "group_rewards",
    "padded_mask",
    "repeat_index",
]
