"""Calibration metrics (MAE, Brier score, ECE, reliability curves) and the
allocation a prediction leads to (objective vs uniform and oracle, starvation).

See :mod:`vipcore._src.predict.calibration` and ``docs/prediction.md``.
"""

from vipcore._src.predict.calibration import AllocationMetrics as AllocationMetrics
from vipcore._src.predict.calibration import CalibrationResult as CalibrationResult
from vipcore._src.predict.calibration import ReliabilityCurve as ReliabilityCurve
from vipcore._src.predict.calibration import allocation_metrics as allocation_metrics
from vipcore._src.predict.calibration import brier_score as brier_score
from vipcore._src.predict.calibration import calibration as calibration
from vipcore._src.predict.calibration import (
    expected_calibration_error as expected_calibration_error,
)
from vipcore._src.predict.calibration import mean_absolute_error as mean_absolute_error
from vipcore._src.predict.calibration import reliability_curve as reliability_curve

__all__ = [
    "AllocationMetrics",
    "CalibrationResult",
    "ReliabilityCurve",
    "allocation_metrics",
    "brier_score",
    "calibration",
    "expected_calibration_error",
    "mean_absolute_error",
    "reliability_curve",
]
