"""Predictors by name: the registry the Planner, simulate and verify use.

>>> sorted(PREDICTORS)
['gp', 'moving_average', 'ridge']
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vipcore._src._checks import check_choice
from vipcore._src.predict import baselines, gp
from vipcore._src.predict.protocol import PredictorSpec

__all__ = ["PREDICTORS", "get_predictor", "register_predictor"]

_REGISTRY: dict[str, PredictorSpec] = {
    "gp": PredictorSpec(
        factory=gp.gp_predictor,
        state_type=gp.GPState,
        needs_embeddings=True,
        options={"eps": "eps", "noise": "noise", "bandwidth": "bandwidth",
                 "prior_mean": "prior_mean", "block_size": "block_size",
                 "seed": "seed"},
        check_state=gp.state_is_consistent,
    ),
    "moving_average": PredictorSpec(
        factory=baselines.moving_average_predictor,
        state_type=baselines.MovingAverageState,
        needs_embeddings=False,
        options={"window": "window"},
        check_state=baselines.moving_average_state_is_consistent,
    ),
    "ridge": PredictorSpec(
        factory=baselines.ridge_predictor,
        state_type=baselines.RidgeState,
        needs_embeddings=True,
        options={"ridge_capacity": "capacity", "ridge_lam": "lam"},
        check_state=baselines.ridge_state_is_consistent,
    ),
}

#: Read-only view of the registered predictors, by name.
PREDICTORS: Mapping[str, PredictorSpec] = MappingProxyType(_REGISTRY)


def get_predictor(name: str) -> PredictorSpec:
    """The :class:`PredictorSpec` registered as ``name`` (``ValueError`` if unknown)."""
    check_choice("predictor", name, tuple(_REGISTRY))
    return _REGISTRY[name]


def register_predictor(name: str, spec: PredictorSpec, *,
                       overwrite: bool = False) -> None:
    """Register a predictor under ``name`` (for ``Planner(predictor=name)``)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got {name!r}")
    if not isinstance(spec, PredictorSpec):
        raise ValueError(f"spec must be a PredictorSpec; got {type(spec).__name__}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"a predictor named {name!r} is already registered")
    _REGISTRY[name] = spec
