"""Cold-start timings: each measured in a fresh Python process.

* the library: ``import vipcore`` (which loads nothing yet: the public
  names load on first use), loading ``vipcore.allocate`` (JAX and the
  allocator), the first :func:`vipcore.allocate` call (tracing and
  compiling), all three together, and a second, warm call; and the first
  call again with that program compiled with XLA's default options (the
  library compiles it with the elemental emitters);
* the previous solver's first call, for the ratio;
* the command line: the wall time of ``python -m vipcore allocate FILE`` with
  an empty compilation cache, then three times with the cache it filled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["cold_start"]

_LIBRARY = """
import json, time
t0 = time.perf_counter()
import numpy as np
import vipcore
t1 = time.perf_counter()
vipcore.allocate  # loads JAX and the allocator (the lazy namespace)
t2 = time.perf_counter()
if {default_options}:  # allocate()'s program compiled with XLA's defaults
    import importlib
    S = importlib.import_module("vipcore._src.allocation.solve")
    S._solve_n_cpu = S._solve_n
p = np.random.default_rng(0).beta(0.4, 0.4, {B})
n = vipcore.allocate(p, {C}, 2, 32)
t3 = time.perf_counter()
n = vipcore.allocate(p[::-1].copy(), {C}, 2, 32)
t4 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "load_allocator_s": t2 - t1,
                   "first_call_s": t3 - t2, "import_and_first_call_s": t3 - t0,
                   "warm_call_s": t4 - t3}}))
"""


_LEGACY = """
import json, time
import numpy as np
import jax.numpy as jnp
import vipcore
from vipcore._src._padding import pad_to_bucket
from vipcore._src.apps.bench._legacy import legacy_solve
p = np.random.default_rng(0).beta(0.4, 0.4, {B})
pp, mask = pad_to_bucket(p.astype(np.float32), fill=0.5)
t1 = time.perf_counter()
n = np.asarray(legacy_solve(jnp.asarray(pp), {C}, 2, 32, mask=mask))
t2 = time.perf_counter()
print(json.dumps({{"first_call_s": t2 - t1}}))
"""


def _env(extra: dict | None = None) -> dict:
    import vipcore

    env = dict(os.environ)
    root = str(Path(vipcore.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(
        [root, *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra or {})
    return env


def _python(code: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, env=env, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cli_seconds(args: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vipcore", *args], capture_output=True,
                   env=env, timeout=600, check=True)
    return time.perf_counter() - t0


def cold_start(B: int = 512, per_prompt: int = 8, repeats: int = 3) -> dict:
    """Median over ``repeats`` fresh processes of each timing, in seconds."""
    C = per_prompt * B
    lib, plain, legacy = [], [], []
    for _ in range(repeats):  # interleaved, so that a drifting load hits all
        lib.append(_python(_LIBRARY.format(B=B, C=C, default_options=False), _env()))
        plain.append(_python(_LIBRARY.format(B=B, C=C, default_options=True), _env()))
        legacy.append(_python(_LEGACY.format(B=B, C=C), _env()))
    cli = {"empty_cache_s": [], "warm_cache_s": []}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "p.txt"
        rng = np.random.default_rng(1)
        data.write_text("\n".join(f"{x:.6f}" for x in rng.beta(0.4, 0.4, B)))
        args = ["allocate", str(data), "-C", str(C), "-U", "32"]
        for i in range(repeats):
            env = _env({"XDG_CACHE_HOME": str(Path(tmp) / f"cache{i}")})
            cli["empty_cache_s"].append(_cli_seconds(args, env))
            cli["warm_cache_s"] += [_cli_seconds(args, env) for _ in range(3)]

    def med(rows, key):
        return float(np.median([r[key] for r in rows]))

    return {
        "B": B, "repeats": repeats,
        "library": {k: med(lib, k) for k in lib[0]},
        "default_xla_options_first_call_s": med(plain, "first_call_s"),
        "previous_solver_first_call_s": med(legacy, "first_call_s"),
        "cli_allocate_wall_s": {k: float(np.median(v)) for k, v in cli.items()},
        "note": "fresh processes; wall times include Python start-up and "
                "imports for the CLI",
    }
