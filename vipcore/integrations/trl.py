"""TRL adapter: ``VIPGRPOTrainer`` (see :mod:`vipcore._src.integrations.trl`).

Needs ``trl``, ``transformers`` and ``torch`` (``pip install 'vipcore[trl]'``).
"""

from vipcore._src.integrations.trl import LOSS_TYPES as LOSS_TYPES
from vipcore._src.integrations.trl import PLANNER_FILE as PLANNER_FILE
from vipcore._src.integrations.trl import VIPGRPOTrainer as VIPGRPOTrainer
from vipcore._src.integrations.trl import VIPPlannerCallback as VIPPlannerCallback

__all__ = ["LOSS_TYPES", "PLANNER_FILE", "VIPGRPOTrainer", "VIPPlannerCallback"]
