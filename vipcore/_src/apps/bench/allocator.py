"""Allocator benchmark (``vipcore bench`` and ``benchmarks/bench_allocate.py``).

Measures, on whatever JAX device is the default:

* single-call latency of the jitted exact allocator (:func:`solve`: KKT +
  exact rounding) for several batch sizes, input already on the device;
* the eager :func:`allocate` call users make (validation, padding, transfer);
* batched throughput (``vmap`` over many independent batches of 512);
* scipy's SLSQP on the relaxed problem for the same B = 512 instances (the
  paper's own code), in the same process: time and objective, and the ratio.

Results are written as JSON (device, versions, sizes, median/min/max).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

from vipcore._src import allocation as A

__all__ = ["run_benchmark", "time_call", "environment"]


def environment() -> dict[str, Any]:
    """Device and versions, recorded with every result."""
    import scipy

    from vipcore import __version__

    dev = jax.devices()[0]
    return {
        "device": str(dev.device_kind),
        "platform": dev.platform,
        "n_devices": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "vipcore": __version__,
        "x64": bool(jax.config.jax_enable_x64),
    }


def time_call(fn, *args, reps: int = 50, warmup: int = 3, min_time: float = 0.0):
    """Median/min/max wall time of ``fn(*args)`` (blocking on the result), s."""
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times = []
    t_start = time.perf_counter()
    while len(times) < reps or time.perf_counter() - t_start < min_time:
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
        if len(times) >= 100 * reps:
            break
    ts = np.asarray(times)
    return {
        "median_s": float(np.median(ts)),
        "min_s": float(ts.min()),
        "max_s": float(ts.max()),
        "reps": int(ts.size),
    }


def _instances(rng, n_batches: int, B: int) -> np.ndarray:
    # A realistic mix: many prompts near 0 or 1, some in the middle.
    return rng.beta(0.4, 0.4, size=(n_batches, B)).astype(np.float32)


def _slsqp(p: np.ndarray, C: int, L: int, U: int, estimator: str):
    from scipy.optimize import minimize

    a = 4 * p.astype(np.float64) * (1 - p.astype(np.float64))
    if estimator == "rloo":
        def f(n):
            return np.sum(a / (n - 1))

        def g(n):
            return -a / (n - 1) ** 2
    else:
        def f(n):
            return np.sum(a * (n - 1) / n**2)

        def g(n):
            return a * (2 - n) / n**3

    B = p.shape[0]
    t0 = time.perf_counter()
    res = minimize(
        f, np.full(B, C / B), jac=g, method="SLSQP", bounds=[(L, U)] * B,
        constraints=[{"type": "eq", "fun": lambda n: n.sum() - C,
                      "jac": lambda n: np.ones_like(n)}],
        options={"maxiter": 1000, "ftol": 1e-10},
    )
    return time.perf_counter() - t0, float(res.fun), bool(res.success)


def run_benchmark(
    *,
    sizes=(64, 512, 4096, 65536),
    batch_B: int = 512,
    n_batches: int | None = None,
    slsqp_instances: int = 3,
    estimator: str = "rloo",
    per_prompt: int = 8,
    L: int = 2,
    U: int = 32,
    reps: int = 50,
    seed: int = 0,
    out: Path | None = None,
    progress=print,
) -> dict[str, Any]:
    """Run the allocator benchmark and return (and optionally write) results."""
    rng = np.random.default_rng(seed)
    env = environment()
    on_cpu = env["platform"] == "cpu"
    if n_batches is None:
        n_batches = 256 if on_cpu else 65536
    results: dict[str, Any] = {
        "benchmark": "allocate",
        "environment": env,
        "settings": {
            "estimator": estimator, "rollouts_per_prompt": per_prompt, "L": L,
            "U": U, "seed": seed, "dtype": "float32",
        },
        "latency": [],
    }
    solve = jax.jit(A.solve, static_argnames=("estimator",))
    for B in sizes:
        p = jnp.asarray(_instances(rng, 1, B)[0])
        C = per_prompt * B
        stats = time_call(
            lambda p, C=C: solve(p, C, L, U, estimator=estimator).n, p, reps=reps
        )
        # The same with C, L, U compiled in (no host-to-device scalar copies).
        baked = jax.jit(lambda p, C=C: A.solve(p, C, L, U, estimator=estimator).n)
        stats_baked = time_call(baked, p, reps=reps)
        progress(
            f"solve B={B}: median {stats['median_s'] * 1e6:.1f} us "
            f"({stats_baked['median_s'] * 1e6:.1f} us with C, L, U compiled in)"
        )
        results["latency"].append(
            {"B": B, **stats, "median_s_constants_compiled_in": stats_baked["median_s"]}
        )

    # The eager call a trainer makes (validation + padding + host transfer).
    p_np = _instances(rng, 1, batch_B)[0]
    C = per_prompt * batch_B
    eager = time_call(lambda p: A.allocate(p, C, L, U, estimator), p_np, reps=reps)
    progress(f"allocate() eager B={batch_B}: median {eager['median_s'] * 1e6:.1f} us")
    results["eager_allocate"] = {"B": batch_B, **eager}

    # Batched throughput: vmap over independent batches.
    P = jnp.asarray(_instances(rng, n_batches, batch_B))
    vsolve = jax.jit(jax.vmap(lambda p: A.solve(p, C, L, U, estimator=estimator).n))
    st = time_call(vsolve, P, reps=max(5, reps // 10))
    thr = n_batches * batch_B / st["median_s"]
    progress(f"vmap {n_batches} x {batch_B}: {thr:.3e} prompts/s")
    results["throughput"] = {
        "B": batch_B, "n_batches": n_batches, **st, "prompts_per_s": thr,
    }

    # scipy SLSQP on the same B = 512 instances, same process.
    rows = []
    P_np = np.asarray(P[:slsqp_instances])
    for i in range(slsqp_instances):
        t_s, f_s, ok = _slsqp(P_np[i], C, L, U, estimator)
        res = solve(jnp.asarray(P_np[i]), C, L, U, estimator=estimator)
        t_v = time_call(
            lambda p: solve(p, C, L, U, estimator=estimator).n,  # noqa: B023
            jnp.asarray(P_np[i]), reps=reps,
        )["median_s"]
        with jax.enable_x64(True):
            x64, _ = A.solve_continuous(
                4 * jnp.asarray(P_np[i], jnp.float64)
                * (1 - jnp.asarray(P_np[i], jnp.float64)), C, L, U,
                estimator=estimator,
            )
            f_cont = float(A.allocation_objective(x64, P_np[i].astype(np.float64),
                                                  estimator))
            f_int = float(A.allocation_objective(np.asarray(res.n),
                                                 P_np[i].astype(np.float64),
                                                 estimator))
        rows.append({
            "slsqp_s": t_s, "slsqp_objective": f_s, "slsqp_success": ok,
            "vip_s": t_v, "vip_continuous_objective": f_cont,
            "vip_integer_objective": f_int,
            "speedup": t_s / t_v,
            "continuous_not_worse": f_cont <= f_s * (1 + 1e-9),
        })
        progress(
            f"SLSQP instance {i}: {t_s * 1e3:.0f} ms, obj {f_s:.6f} | VIP "
            f"{t_v * 1e6:.1f} us, continuous obj {f_cont:.6f}, integer {f_int:.6f}"
        )
    speedups = [r["speedup"] for r in rows]
    results["slsqp"] = {
        "B": batch_B,
        "instances": rows,
        "median_speedup": float(np.median(speedups)) if rows else None,
    }
    lat512 = next((r for r in results["latency"] if r["B"] == 512), None)
    results["goals"] = {
        "cpu_B512_latency_le_100us": (
            lat512["median_s"] <= 100e-6 if (lat512 and on_cpu) else None
        ),
        "speedup_vs_slsqp_ge_1e4": (
            min(speedups) >= 1e4 if rows else None
        ),
        "gpu_throughput_ge_2e10": (None if on_cpu else thr >= 2e10),
        "gpu_B512_latency_le_100us": (
            None if on_cpu or not lat512 else lat512["median_s"] <= 100e-6
        ),
    }
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        progress(f"wrote {out}")
    return results
