"""Latency with JAX's synchronous CPU dispatch, measured in a fresh process.

On CPU, JAX's runtime is asynchronous by default: a program's loop steps
and independent kernels run on its thread pool. For the solver at small
batch sizes on a small machine those thread hops cost about as much as the
work, and they vary from call to call (a one-kernel program costs the same
either way; the latency rows time one beside the solver). JAX can run CPU
computations inline instead (``jax_cpu_enable_async_dispatch =
False``); the setting belongs to the process and must be made before the
first computation, so it is measured here in a child process, with the
previous solver timed beside the current one in that same child. vipcore
never changes the setting for its users: a latency-bound caller on CPU may
set it in its own program.
"""

from __future__ import annotations

import json

from vipcore._src.apps.bench import _cold

__all__ = ["sync_dispatch_latency"]

_CHILD = """
import jax
jax.config.update("jax_cpu_enable_async_dispatch", False)
import json
from vipcore._src.apps.bench import _dispatch
print(json.dumps(_dispatch._rows({cfg!r})))
"""


def _rows(cfg_json: str) -> dict:
    """The rows of :func:`.allocator.latency_rows` (in the child),
    with the dispatch setting the child really ran under."""
    import jax
    import numpy as np

    from vipcore._src.apps.bench import allocator as bench

    cfg = bench.BenchConfig(**json.loads(cfg_json))
    rows = bench.latency_rows(cfg, np.random.default_rng(cfg.seed), lambda msg: None)
    return {"cpu_async_dispatch": jax.config.values["jax_cpu_enable_async_dispatch"],
            "latency": rows}


def sync_dispatch_latency(cfg) -> dict:
    """``{"cpu_async_dispatch": False, "latency": rows}``: the rows of
    :func:`.allocator.latency_rows` for ``cfg`` (a ``BenchConfig``; the NumPy
    greedy left out), with synchronous dispatch."""
    fields = {**cfg._asdict(), "greedy_max_B": 0}
    code = _CHILD.format(cfg=json.dumps(fields))
    return _cold._python(code, _cold._env())
