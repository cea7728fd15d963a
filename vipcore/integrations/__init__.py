"""Adapters that plug a :class:`vipcore.Planner` into RL trainers.

* :mod:`vipcore.integrations.trl`: ``VIPGRPOTrainer``, a subclass of TRL's
  ``GRPOTrainer`` (needs ``pip install 'vipcore[trl]'``).
* :mod:`vipcore.integrations.verl`: a mixin for verl's v1 PPO trainers and
  the trainer registration recipe (needs verl).

Importing this package imports neither trainer; each submodule imports its
trainer when it is imported. See ``docs/integrations.md``.
"""

__all__ = ["trl", "verl"]
