"""Shared test configuration.

* A deterministic hypothesis profile (as scipy's conftest): no example
  database, derandomised, no deadline (JIT compilation would trip it).
* ``jax_numpy_rank_promotion="raise"`` so implicit broadcasting bugs fail.
* x64 stays as the environment says (``JAX_ENABLE_X64``): CI runs the core
  suites both ways. Tests that need float64 use ``jax.enable_x64(True)``.
"""

import jax
from hypothesis import HealthCheck, settings

settings.register_profile(
    "vipcore",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("vipcore")

jax.config.update("jax_numpy_rank_promotion", "raise")
