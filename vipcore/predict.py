"""The predictor protocol and the registered success-probability models.

A :class:`Predictor` is a NamedTuple of pure functions (``init``, ``update``,
``predict``, optional ``variance`` and ``grow``) with its hyper-parameters
bound by a factory, in the spirit of optax's ``GradientTransformation``::

    pred = vipcore.predict.beta(discount=0.95)     # or gp(noise="binomial"), ...
    state = pred.init(num_prompts, embeddings)
    state = pred.update(state, idx, success_rates, rollout_counts)
    p_hat = pred.predict(state, idx)

``PREDICTORS`` maps names to :class:`PredictorSpec` entries; the
:class:`vipcore.Planner` builds its predictor from there. See
``docs/architecture.md`` for how to add one.
"""

from vipcore._src.predict.baselines import (
    moving_average_predictor as moving_average,
)
from vipcore._src.predict.baselines import ridge_predictor as ridge
from vipcore._src.predict.beta import beta_predictor as beta
from vipcore._src.predict.beta import pooled_predictor as pooled
from vipcore._src.predict.gp import gp_predictor as gp
from vipcore._src.predict.protocol import Predictor as Predictor
from vipcore._src.predict.protocol import PredictorSpec as PredictorSpec
from vipcore._src.predict.registry import PREDICTORS as PREDICTORS
from vipcore._src.predict.registry import get_predictor as get_predictor
from vipcore._src.predict.registry import register_predictor as register_predictor
from vipcore._src.predict.uncertainty import RULES as UNCERTAINTY_RULES
from vipcore._src.predict.uncertainty import (
    effective_probabilities as effective_probabilities,
)

__all__ = [
    "PREDICTORS",
    "Predictor",
    "PredictorSpec",
    "UNCERTAINTY_RULES",
    "beta",
    "effective_probabilities",
    "get_predictor",
    "gp",
    "moving_average",
    "pooled",
    "register_predictor",
    "ridge",
]
