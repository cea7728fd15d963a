r"""The predictor protocol: a success-probability model as pure functions.

In the spirit of optax's ``GradientTransformation``, a :class:`Predictor` is a
small NamedTuple of pure functions over a state pytree, with every
hyper-parameter bound by the factory that built it::

    pred = vipcore.predict.gp(noise="binomial")     # or moving_average(), ...
    state = pred.init(num_prompts, embeddings)      # embeddings may be None
    state = pred.update(state, idx, observations, weights)   # padded batch
    p_hat = pred.predict(state, idx)
    var = pred.variance(state, idx)                 # if the model has one
    state = pred.grow(state, num_new, new_embeddings)   # if it can grow

The functions see a *padded batch*: ``idx`` (int32), ``observations``
(success rates in [0, 1], or reward variances with the softplus link) and
``weights`` (rollout counts; 0 marks padding), as produced by
:func:`vipcore._src.predict._batch.prepare_batch`. ``update`` and ``predict``
are jittable; the Planner, ``vipcore simulate`` and ``vipcore verify`` use
predictors only through these functions.

Adding a predictor is one module with a factory returning a
:class:`Predictor` and one :func:`~vipcore._src.predict.registry.register_predictor`
call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax

__all__ = ["Predictor", "PredictorSpec"]

State = Any


class Predictor(NamedTuple):
    """A success-probability predictor (pure functions, hyper-parameters bound).

    Attributes:
      init: ``init(num_prompts, embeddings) -> state``; ``embeddings`` is a
        ``(Q, d)`` array or None for predictors that do not use them.
      update: ``update(state, idx, observations, weights) -> state`` on a
        padded batch (weight 0 = padding; repeated indices are pooled).
      predict: ``predict(state, idx) -> Array``: the predicted success
        probabilities (sigmoid link) or reward variances (softplus link).
      variance: optional ``variance(state, idx) -> Array``: the posterior
        variance of the prediction on the same scale, for allocation under
        uncertainty; None when the model has no posterior.
      grow: optional ``grow(state, num_new, embeddings) -> state``: the state
        with ``num_new`` prompts appended (their ``(num_new, d)`` embeddings,
        or None for predictors without embeddings); a new prompt gets the
        prediction of a prompt never observed. None when the model cannot
        grow.
    """

    init: Callable[[int, jax.Array | None], State]
    update: Callable[[State, jax.Array, jax.Array, jax.Array], State]
    predict: Callable[[State, jax.Array], jax.Array]
    variance: Callable[[State, jax.Array], jax.Array] | None = None
    grow: Callable[[State, int, jax.Array | None], State] | None = None


class PredictorSpec(NamedTuple):
    """A registered predictor: how to build it and how to restore its state.

    Attributes:
      factory: ``factory(*, link, **options) -> Predictor``.
      state_type: the NamedTuple class of its state (for loading saved
        planners; fields that are None are not saved). A field may hold the
        state of another registered predictor (a nested NamedTuple).
      needs_embeddings: whether ``init`` needs the ``(Q, d)`` embeddings.
      options: Planner keyword -> factory keyword, for the settings the
        Planner forwards (e.g. ``{"ridge_lam": "lam"}``).
      check_state: ``check_state(state, options)`` raises ``ValueError``
        (with a message saying what is wrong) unless the arrays of a
        (loaded) state have consistent shapes, valid values, and agree with
        the factory ``options`` the Planner would build it with.
      links: the link functions the predictor supports.
      uses_embeddings: whether ``init`` uses embeddings when given (True
        for every predictor that needs them; optional for some).

    Every state stores a per-prompt array as its first field, so ``Q`` is
    the length of its leading axis.
    """

    factory: Callable[..., Predictor]
    state_type: type
    needs_embeddings: bool
    options: Mapping[str, str]
    check_state: Callable[[Any, Mapping[str, Any]], None]
    links: tuple[str, ...] = ("sigmoid", "softplus")
    uses_embeddings: bool = True
