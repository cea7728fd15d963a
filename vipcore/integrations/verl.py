"""verl adapter (see :mod:`vipcore._src.integrations.verl`).

``VIPTrainerMixin`` and :func:`register` need verl (``verl[verl-core]``) at
run time; ``VerlRolloutPlanner`` and ``final_session_scores`` do not.
"""

from vipcore._src.integrations.verl import PENDING_FILE as PENDING_FILE
from vipcore._src.integrations.verl import PLANNER_FILE as PLANNER_FILE
from vipcore._src.integrations.verl import ROLLOUT_N_KEY as ROLLOUT_N_KEY
from vipcore._src.integrations.verl import VerlRolloutPlanner as VerlRolloutPlanner
from vipcore._src.integrations.verl import VIPTrainerMixin as VIPTrainerMixin
from vipcore._src.integrations.verl import (
    default_planner_factory as default_planner_factory,
)
from vipcore._src.integrations.verl import (
    final_session_scores as final_session_scores,
)
from vipcore._src.integrations.verl import register as register

__all__ = [
    "PENDING_FILE",
    "PLANNER_FILE",
    "ROLLOUT_N_KEY",
    "VIPTrainerMixin",
    "VerlRolloutPlanner",
    "default_planner_factory",
    "final_session_scores",
    "register",
]
