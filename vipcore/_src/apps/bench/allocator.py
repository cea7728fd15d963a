"""Allocator benchmark (``vipcore bench`` and ``benchmarks/bench_allocate.py``).

Measures, on whatever JAX device is the default, each beside the previous
``while_loop`` solver (kept privately in :mod:`._legacy`) and a NumPy greedy
a user would write, all in the same process:

* single-call latency of the jitted exact allocator
  (:func:`vipcore.solve_allocation`) for several batch sizes, input already
  on the device: the integers only (what :func:`vipcore.allocate` and a
  trainer use) and all fields (with the continuous relaxation);
* on CPU, the same latencies with JAX's synchronous dispatch, in a fresh
  process (:mod:`._dispatch`), and beside every size a one-kernel program on
  the same arrays: what a call costs before any work;
* the eager :func:`vipcore.allocate` call (validation, padding, transfer);
* batched throughput (``vmap`` over many independent batches), with the
  search rounds as a ``scan`` (the CPU default) and unrolled (``unroll=True``:
  XLA then spreads each round over the CPU cores);
* scipy's SLSQP on the relaxed problem (the paper's code), its expected
  duration printed first;
* how many random instances give different integers in float32 and float64;
* cold start in fresh processes (import, first call, warm call, and the
  ``vipcore allocate`` command with an empty and a filled compilation cache).

Results are JSON with device, versions, sizes, medians, the machine load
(``os.getloadavg()``) before and after, and the ratios.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

from vipcore._src import allocation as A
from vipcore._src.allocation.threshold import default_sections
from vipcore._src.apps.bench import _peers
from vipcore._src.apps.bench._legacy import legacy_solve

__all__ = ["BenchConfig", "run_benchmark", "latency_rows", "time_call", "environment"]

#: CPU goals (seconds, prompts/s) of the loop-free solver.
CPU_GOALS = {"B512_s": 40e-6, "B65536_s": 3e-3, "throughput": 5e7}
#: Accelerator goals (H100/H200 class).
ACCEL_GOALS = {"B512_s": 100e-6, "throughput": 2e10}


class BenchConfig(NamedTuple):
    """Everything that decides what the benchmark runs."""

    sizes: tuple[int, ...] = (64, 512, 4096, 65536)
    batch_B: int = 512
    n_batches: int | None = None  # None: 256 on CPU, 65536 on accelerators
    slsqp_instances: int = 1
    slsqp_B: int = 128
    greedy_max_B: int = 65536
    precision_instances: int = 400
    cold_start: bool = True
    sync_dispatch: bool = True  # CPU: latency again with synchronous dispatch
    estimator: str = "rloo"
    per_prompt: int = 8
    L: int = 2
    U: int = 32
    reps: int = 50
    #: Each timing runs for at least this long (s), so that a median of fast
    #: calls spans more than a moment of the machine's state.
    min_time: float = 0.5
    seed: int = 0


def environment() -> dict[str, Any]:
    """Device, versions and machine load, recorded with every result."""
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
        "cpu_async_dispatch": bool(
            jax.config.values["jax_cpu_enable_async_dispatch"]),
        "loadavg_start": list(os.getloadavg()),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
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
    return {"median_s": float(np.median(ts)), "min_s": float(ts.min()),
            "max_s": float(ts.max()), "reps": int(ts.size)}


def _instances(rng, n_batches: int, B: int) -> np.ndarray:
    # A realistic mix: many prompts near 0 or 1, some in the middle.
    return rng.beta(0.4, 0.4, size=(n_batches, B)).astype(np.float32)


def _objective(n, p, estimator):
    a = 4 * p.astype(np.float64) * (1 - p.astype(np.float64))
    n = np.asarray(n, np.float64)
    c = 1 / (n - 1) if estimator == "rloo" else (n - 1) / (n * n)
    return float(np.sum(a * c))


def _solvers(cfg: BenchConfig):
    est = cfg.estimator
    return {
        "vip_integers": jax.jit(lambda p, C, L, U: A.solve(
            p, C, L, U, estimator=est).n),
        "vip_all_fields": jax.jit(lambda p, C, L, U: A.solve(
            p, C, L, U, estimator=est)),
        "previous_solver": jax.jit(lambda p, C, L, U: legacy_solve(
            p, C, L, U, estimator=est)),
        # The cost of a call itself: one fused elementwise program on the same
        # arrays. XLA runs a program of under 1000 estimated flops inline on
        # the caller's thread; from B = 512 on this one is dispatched to a
        # worker thread like the solver.
        "one_fusion": jax.jit(lambda p, C, L, U: (p * C + L).astype(jnp.int32) + U),
    }


def _latency_row(cfg: BenchConfig, solvers, p_np, progress) -> dict:
    B = p_np.shape[0]
    C, L, U = cfg.per_prompt * B, cfg.L, cfg.U
    p = jnp.asarray(p_np)
    row: dict[str, Any] = {"B": B}
    for name, fn in solvers.items():
        row[name] = time_call(fn, p, C, L, U, reps=cfg.reps, min_time=cfg.min_time)
    n_vip = np.asarray(solvers["vip_integers"](p, C, L, U))
    n_old = np.asarray(solvers["previous_solver"](p, C, L, U))
    row["objective_vip"] = _objective(n_vip, p_np, cfg.estimator)
    row["objective_previous"] = _objective(n_old, p_np, cfg.estimator)
    row["same_integers_as_previous"] = bool(np.array_equal(n_vip, n_old))
    if B <= cfg.greedy_max_B:
        reps = 3 if B > 4096 else 10
        row["numpy_greedy"] = time_call(
            lambda: _peers.numpy_greedy(p_np, C, L, U, cfg.estimator),
            reps=reps, warmup=1)
        n_g = _peers.numpy_greedy(p_np, C, L, U, cfg.estimator)
        row["objective_numpy_greedy"] = _objective(n_g, p_np, cfg.estimator)
    base = row["vip_integers"]["median_s"]
    row["ratio_previous_over_vip"] = row["previous_solver"]["median_s"] / base
    if "numpy_greedy" in row:
        row["ratio_numpy_greedy_over_vip"] = row["numpy_greedy"]["median_s"] / base
    progress(
        f"B={B}: vip {base * 1e6:.1f} us (all fields "
        f"{row['vip_all_fields']['median_s'] * 1e6:.1f} us) | previous "
        f"{row['previous_solver']['median_s'] * 1e6:.1f} us | one fusion "
        f"{row['one_fusion']['median_s'] * 1e6:.1f} us"
        + (f" | numpy greedy {row['numpy_greedy']['median_s'] * 1e3:.1f} ms"
           if "numpy_greedy" in row else ""))
    return row


def latency_rows(cfg: BenchConfig, rng, progress) -> list[dict]:
    """:func:`_latency_row` for every size of ``cfg``, one instance each."""
    solvers = _solvers(cfg)
    return [_latency_row(cfg, solvers, _instances(rng, 1, B)[0], progress)
            for B in cfg.sizes]


def _eager(cfg: BenchConfig, rng, progress) -> dict:
    p_np = _instances(rng, 1, cfg.batch_B)[0]
    C = cfg.per_prompt * cfg.batch_B
    st = time_call(lambda p: A.allocate(p, C, cfg.L, cfg.U, cfg.estimator),
                   p_np, reps=cfg.reps, min_time=cfg.min_time)
    progress(f"allocate() eager B={cfg.batch_B}: median "
             f"{st['median_s'] * 1e6:.1f} us")
    return {"B": cfg.batch_B, **st}


def _throughput(cfg: BenchConfig, rng, n_batches: int, progress) -> dict:
    P = jnp.asarray(_instances(rng, n_batches, cfg.batch_B))
    C, L, U, est = cfg.per_prompt * cfg.batch_B, cfg.L, cfg.U, cfg.estimator
    fns = {
        "vip_integers": jax.jit(jax.vmap(
            lambda p: A.solve(p, C, L, U, estimator=est).n)),
        "vip_integers_unrolled": jax.jit(jax.vmap(
            lambda p: A.solve(p, C, L, U, estimator=est, unroll=True).n)),
        "vip_all_fields": jax.jit(jax.vmap(
            lambda p: A.solve(p, C, L, U, estimator=est))),
        "previous_solver": jax.jit(jax.vmap(
            lambda p: legacy_solve(p, C, L, U, estimator=est))),
    }
    out: dict[str, Any] = {"B": cfg.batch_B, "n_batches": n_batches}
    for name, fn in fns.items():
        st = time_call(fn, P, reps=max(5, cfg.reps // 10), min_time=cfg.min_time)
        out[name] = {**st, "prompts_per_s": n_batches * cfg.batch_B
                     / st["median_s"]}
    out["ratio_vip_over_previous"] = (out["vip_integers"]["prompts_per_s"]
                                      / out["previous_solver"]["prompts_per_s"])
    progress(f"vmap {n_batches} x {cfg.batch_B}: vip "
             f"{out['vip_integers']['prompts_per_s']:.3e} prompts/s (unrolled "
             f"{out['vip_integers_unrolled']['prompts_per_s']:.3e}), previous "
             f"{out['previous_solver']['prompts_per_s']:.3e}")
    return out


def _slsqp(cfg: BenchConfig, rng, progress) -> dict:
    B, k = cfg.slsqp_B, cfg.slsqp_instances
    if k == 0:
        progress("SLSQP: off (--slsqp 0)")
        return {"B": B, "instances": []}
    expect = _peers.slsqp_expected_seconds(B, k, cfg.estimator, rng)
    progress(f"SLSQP: {k} instance(s) of B={B}, expected roughly {expect:.0f} s "
             "(B=64 scaled as B^3) ...")
    C, L, U, est = cfg.per_prompt * B, cfg.L, cfg.U, cfg.estimator
    solve = jax.jit(lambda p: A.solve(p, C, L, U, estimator=est))
    rows = []
    for p in _instances(rng, k, B):
        t_s, f_s, ok = _peers.slsqp_relaxation(p, C, L, U, est)
        t_v = time_call(solve, jnp.asarray(p), reps=cfg.reps)["median_s"]
        res = solve(jnp.asarray(p))
        with jax.enable_x64(True):
            a64 = 4 * jnp.asarray(p, jnp.float64) * (1 - jnp.asarray(p, jnp.float64))
            x64, _ = A.solve_continuous(a64, C, L, U, estimator=est)
        f_cont = _objective(np.asarray(x64), p, est)
        rows.append({
            "slsqp_s": t_s, "slsqp_objective": f_s, "slsqp_success": ok,
            "vip_s": t_v, "vip_continuous_objective": f_cont,
            "vip_integer_objective": _objective(res.n, p, est),
            "speedup": t_s / t_v, "continuous_not_worse": f_cont <= f_s * (1 + 1e-9),
        })
        progress(f"  SLSQP {t_s:.2f} s, obj {f_s:.6f} | VIP {t_v * 1e6:.1f} us, "
                 f"continuous obj {f_cont:.6f}")
    return {"B": B, "expected_s": expect, "instances": rows,
            "median_speedup": float(np.median([r["speedup"] for r in rows]))}


_DRAWS = {
    "uniform(0, 1)": lambda rng, B: rng.uniform(0, 1, B),
    "uniform(0, 1) to 2 decimals": lambda rng, B: np.round(rng.uniform(0, 1, B), 2),
}


def _precision_pair(p, C, L, U, est):
    """Whether float32 and float64 differ, for this solver and the previous."""
    from vipcore._src._padding import pad_to_bucket

    out = []
    for dt in (np.float32, np.float64):
        with jax.enable_x64(dt == np.float64):
            q = p.astype(dt)
            pp, m = pad_to_bucket(q, fill=0.5)
            old = legacy_solve(jnp.asarray(pp), C, L, U, estimator=est, mask=m)
            out.append((A.allocate(q, C, L, U, est), np.asarray(old)[: len(p)]))
    return [not np.array_equal(a, b) for a, b in zip(*out, strict=True)]


def _precision(cfg: BenchConfig, rng, progress) -> dict:
    """How many random instances give different integers in float32 and
    float64, for this solver and the previous one."""
    B, est, L, U = 256, cfg.estimator, cfg.L, cfg.U
    C = cfg.per_prompt * B
    rows = {}
    for name, draw in _DRAWS.items():
        differ = np.zeros(2, int)
        for _ in range(cfg.precision_instances):
            differ += _precision_pair(draw(rng, B), C, L, U, est)
        rows[name] = {"vip": int(differ[0]), "previous_solver": int(differ[1])}
        progress(f"float32 vs float64, p ~ {name}: vip differs on {differ[0]} of "
                 f"{cfg.precision_instances}, previous on {differ[1]}")
    return {"instances": cfg.precision_instances, "B": B, "C": C, "L": L, "U": U,
            "differing": rows}


def _goals(results: dict, on_cpu: bool) -> dict:
    lat = {r["B"]: r["vip_integers"]["median_s"] for r in results["latency"]}
    thr = results["throughput"]["vip_integers"]["prompts_per_s"]
    g = CPU_GOALS if on_cpu else ACCEL_GOALS
    thr_unrolled = results["throughput"]["vip_integers_unrolled"]["prompts_per_s"]
    out = {
        "B512_latency_goal_s": g["B512_s"],
        "B512_latency_met": lat[512] <= g["B512_s"] if 512 in lat else None,
        "throughput_goal": g["throughput"],
        "throughput_met": thr >= g["throughput"],
        "throughput_unrolled_met": thr_unrolled >= g["throughput"],
    }
    sync = {r["B"]: r["vip_integers"]["median_s"]
            for r in results.get("latency_sync_dispatch", {}).get("latency", [])}
    if 512 in sync:
        out["B512_latency_sync_dispatch_met"] = sync[512] <= g["B512_s"]
    if on_cpu:
        out["B65536_latency_goal_s"] = g["B65536_s"]
        out["B65536_latency_met"] = (lat[65536] <= g["B65536_s"]
                                     if 65536 in lat else None)
    return out


def run_benchmark(cfg: BenchConfig | None = None, *, out: Path | None = None,
                  progress=print) -> dict[str, Any]:
    """Run the allocator benchmark; return (and optionally write) the results."""
    cfg = cfg or BenchConfig()
    rng = np.random.default_rng(cfg.seed)
    env = environment()
    on_cpu = env["platform"] == "cpu"
    n_batches = cfg.n_batches or (256 if on_cpu else 65536)
    results: dict[str, Any] = {
        "benchmark": "allocate", "environment": env,
        "settings": {**cfg._asdict(), "n_batches": n_batches, "dtype": "float32",
                     "sections": default_sections(),
                     "unrolled": jax.default_backend() != "cpu"},
    }
    results["latency"] = latency_rows(cfg, rng, progress)
    if on_cpu and cfg.sync_dispatch:
        from vipcore._src.apps.bench._dispatch import sync_dispatch_latency

        progress("latency with synchronous CPU dispatch (a fresh process) ...")
        sync = results["latency_sync_dispatch"] = sync_dispatch_latency(cfg)
        for r in sync["latency"]:
            progress(f"  B={r['B']}: vip {r['vip_integers']['median_s'] * 1e6:.1f}"
                     f" us | previous {r['previous_solver']['median_s'] * 1e6:.1f} us")
    results["eager_allocate"] = _eager(cfg, rng, progress)
    results["throughput"] = _throughput(cfg, rng, n_batches, progress)
    results["slsqp"] = _slsqp(cfg, rng, progress)
    if cfg.precision_instances:
        results["float32_vs_float64"] = _precision(cfg, rng, progress)
    if cfg.cold_start:
        from vipcore._src.apps.bench._cold import cold_start

        progress("cold start (fresh processes) ...")
        cold = results["cold_start"] = cold_start(cfg.batch_B, cfg.per_prompt)
        progress(f"  first allocate() {cold['library']['first_call_s']:.2f} s, "
                 f"vipcore allocate {cold['cli_allocate_wall_s']}")
    results["goals"] = _goals(results, on_cpu)
    results["environment"]["loadavg_end"] = list(os.getloadavg())
    if out is not None:
        from vipcore._src._files import atomic_write_text
        from vipcore._src._serialize import jsonable

        atomic_write_text(out, json.dumps(jsonable(results), indent=2) + "\n")
        progress(f"wrote {out}")
    return results
