"""Baseline success-probability predictors: moving average and ridge.

See :mod:`vipcore._src.predict.baselines` and ``docs/prediction.md``.
"""

from vipcore._src.predict.baselines import MovingAverageState as MovingAverageState
from vipcore._src.predict.baselines import RidgeState as RidgeState
from vipcore._src.predict.baselines import moving_average_init as moving_average_init
from vipcore._src.predict.baselines import (
    moving_average_predict as moving_average_predict,
)
from vipcore._src.predict.baselines import (
    moving_average_update as moving_average_update,
)
from vipcore._src.predict.baselines import ridge_init as ridge_init
from vipcore._src.predict.baselines import ridge_predict as ridge_predict
from vipcore._src.predict.baselines import ridge_update as ridge_update

__all__ = [
    "MovingAverageState",
    "RidgeState",
    "moving_average_init",
    "moving_average_predict",
    "moving_average_update",
    "ridge_init",
    "ridge_predict",
    "ridge_update",
]
