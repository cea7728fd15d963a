"""Predictors by name: the registry the Planner, simulate and verify use.

Besides the models themselves, two *presets* of the GP are registered under
their own names, so that every place that chooses a predictor by name (the
Planner, ``vipcore simulate --predictor``) reaches them:

* ``"gp_binomial"``: the GP with binomial observation noise
  (``noise="binomial"``);
* ``"gp_authors"``: the settings of the VIP authors' published code (fixed
  length-scale 0.4, prior latent mean -1, jitter 1e-4, logit clipping
  ``eps = 1e-6``), for comparison with Algorithm 1 as published.

>>> sorted(PREDICTORS)
['beta', 'gp', 'gp_authors', 'gp_binomial', 'moving_average', 'pooled', 'ridge']
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType

from vipcore._src._checks import check_choice
from vipcore._src.predict import baselines, beta, gp
from vipcore._src.predict.protocol import PredictorSpec

__all__ = ["PREDICTORS", "AUTHORS_CODE_SETTINGS", "get_predictor",
           "register_predictor", "state_types"]

#: The GP settings of the VIP authors' code (HieuNT91/VIP,
#: ``success_rate_prediction/gaussian_process.py``): RBF length-scale 0.4 on
#: 384-d MiniLM embeddings, prior latent mean -1, jitter 1e-4, and
#: observations clipped to ``[1e-6, 1 - 1e-6]`` before the logit.
AUTHORS_CODE_SETTINGS = dict(bandwidth=0.4, prior_mean=-1.0, jitter=1e-4, eps=1e-6)

_GP_OPTIONS = {"eps": "eps", "bandwidth": "bandwidth", "prior_mean": "prior_mean",
               "jitter": "jitter", "block_size": "block_size", "seed": "seed",
               "latent_bound": "latent_bound"}

_REGISTRY: dict[str, PredictorSpec] = {
    "gp": PredictorSpec(
        factory=gp.gp_predictor,
        state_type=gp.GPState,
        needs_embeddings=True,
        options={**_GP_OPTIONS, "noise": "noise"},
        check_state=gp.check_state,
    ),
    "gp_binomial": PredictorSpec(
        factory=functools.partial(gp.gp_predictor, noise="binomial"),
        state_type=gp.GPState,
        needs_embeddings=True,
        options=_GP_OPTIONS,
        check_state=gp.check_state,
        links=("sigmoid",),
    ),
    "gp_authors": PredictorSpec(
        factory=functools.partial(gp.gp_predictor, **AUTHORS_CODE_SETTINGS),
        state_type=gp.GPState,
        needs_embeddings=True,
        options={"block_size": "block_size", "latent_bound": "latent_bound"},
        check_state=gp.check_state,
        links=("sigmoid",),
    ),
    "beta": PredictorSpec(
        factory=beta.beta_predictor,
        state_type=beta.BetaState,
        needs_embeddings=False,
        options={"discount": "discount", "prior_strength": "prior_strength",
                 "beta_prior": "prior", "eps": "eps", "bandwidth": "bandwidth",
                 "jitter": "jitter", "block_size": "block_size", "seed": "seed",
                 "ridge_capacity": "ridge_capacity", "ridge_lam": "ridge_lam"},
        check_state=beta.check_beta_state,
        links=("sigmoid",),
    ),
    "pooled": PredictorSpec(
        factory=beta.pooled_predictor,
        state_type=beta.PooledState,
        needs_embeddings=False,
        options={"discount": "discount"},
        check_state=beta.check_pooled_state,
        uses_embeddings=False,
    ),
    "moving_average": PredictorSpec(
        factory=baselines.moving_average_predictor,
        state_type=baselines.MovingAverageState,
        needs_embeddings=False,
        options={"window": "window"},
        check_state=baselines.check_moving_average_state,
        uses_embeddings=False,
    ),
    "ridge": PredictorSpec(
        factory=baselines.ridge_predictor,
        state_type=baselines.RidgeState,
        needs_embeddings=True,
        options={"ridge_capacity": "capacity", "ridge_lam": "lam"},
        check_state=baselines.check_ridge_state,
    ),
}

#: Read-only view of the registered predictors, by name.
PREDICTORS: Mapping[str, PredictorSpec] = MappingProxyType(_REGISTRY)


def get_predictor(name: str) -> PredictorSpec:
    """The :class:`PredictorSpec` registered as ``name`` (``ValueError`` if unknown)."""
    check_choice("predictor", name, tuple(_REGISTRY))
    return _REGISTRY[name]


def state_types() -> dict[str, type]:
    """Every registered state class by class name (for loading nested states)."""
    return {spec.state_type.__name__: spec.state_type for spec in _REGISTRY.values()}


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
