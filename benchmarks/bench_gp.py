"""Scale benchmark of one GP step: update with a batch + predict the next batch.

One step = ``gp.update_step`` on a batch of ``B`` prompts (Algorithm 1, kernel
slice ``K[:, B]`` streamed from the embeddings) followed by ``predict`` for
the next batch of ``B`` prompts, jitted together, on whatever
``jax.devices()[0]`` is. Baselines in the same process (for ``Q`` up to
``--cached-max``): the paper's approach, a precomputed ``Q x Q`` kernel
(its one-off build time is reported too) with the same step on cached slices,
and the VIP authors' NumPy/SciPy step on the cached kernel (Cholesky solve of
``K_BB + 1e-4 I``, ``K[:, B] @ alpha``), as the simple baseline a user would
write. The eager ``gp.update`` (validation, padding, transfer) is timed too.

Usage::

    python benchmarks/bench_gp.py                       # Q = 1k, 17k, 100k (CPU)
    python benchmarks/bench_gp.py --sizes 1000,17000,100000,1000000
    python benchmarks/bench_gp.py --sizes 17000 --repeats 50
    python benchmarks/bench_gp.py --sizes 2000 --dim 32 --batch 256 \
        --out benchmarks/results/gp_cpu_q2000_d32.json     # cached vs NumPy

On a shared, loaded CPU the multi-threaded XLA runtime stalls on thread
barriers (the identical Q = 1k step varied from 7 ms to 570 ms); pinning one
core gives stable numbers:

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
        taskset -c 1 python benchmarks/bench_gp.py

Writes ``benchmarks/results/gp_<platform>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vipcore._src.predict import gp  # noqa: E402


def _step_fn(block_size):
    # Returns the new mean, not the whole state: a jitted function that
    # returned the state would copy its unchanged arrays (the Q x Q kernel of
    # the cached path) at every call, which no trainer loop needs.
    def step(state, idx, obs, w, next_idx):
        state = gp.update_step(state, idx, obs, w, block_size=block_size)
        return state.mean, jax.nn.sigmoid(state.mean[next_idx])

    return jax.jit(step, donate_argnums=())


def _time(fn, args, repeats):
    out = fn(*args)
    jax.block_until_ready(out)  # compile + warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(*args)
        jax.block_until_ready(out)
        ts.append(time.perf_counter() - t0)
    ts = np.asarray(ts) * 1e3
    return {"median_ms": float(np.median(ts)), "min_ms": float(ts.min()),
            "max_ms": float(ts.max()), "repeats": repeats}


def _numpy_step(kernel, idx, obs, mean, nxt):
    """The authors' cached-kernel step in NumPy/SciPy (float32 kernel)."""
    import scipy.linalg as sl

    pc = np.clip(obs, 0.01, 0.99)
    g = np.log(pc / (1 - pc))
    kbb = kernel[np.ix_(idx, idx)] + 1e-4 * np.eye(len(idx), dtype=kernel.dtype)
    chol = sl.cholesky(kbb, lower=True, check_finite=False)
    alpha = sl.cho_solve((chol, True), g - mean[idx], check_finite=False)
    out = mean + kernel[:, idx] @ alpha
    out[idx] = g
    return 1 / (1 + np.exp(-out[nxt]))


def _time_host(fn, repeats):
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts = np.asarray(ts) * 1e3
    return {"median_ms": float(np.median(ts)), "min_ms": float(ts.min()),
            "max_ms": float(ts.max()), "repeats": repeats}


def _cached_baselines(res, state, emb, idx, obs, w, nxt, block_size, repeats):
    """The cached-kernel paths beside the streamed one (same process)."""
    t0 = time.perf_counter()
    cached = gp.init(emb, bandwidth=float(state.bandwidth), cache_kernel=True)
    jax.block_until_ready(cached)
    res["cached_kernel_build_s"] = time.perf_counter() - t0
    res["cached"] = _time(_step_fn(None), (cached, idx, obs, w, nxt), repeats)
    res["streamed_over_cached"] = (res["streamed"]["median_ms"]
                                   / res["cached"]["median_ms"])
    a = _step_fn(block_size)(state, idx, obs, w, nxt)[0]
    b = _step_fn(None)(cached, idx, obs, w, nxt)[0]
    res["max_abs_diff_streamed_vs_cached"] = float(jnp.max(jnp.abs(a - b)))
    kern = np.asarray(cached.kernel)
    host = [np.asarray(v) for v in (idx, obs, cached.mean, nxt)]
    res["numpy_cached"] = _time_host(lambda: _numpy_step(kern, *host), repeats)
    res["cached_over_numpy"] = (res["cached"]["median_ms"]
                                / res["numpy_cached"]["median_ms"])
    for name, st in (("eager_update_streamed", state), ("eager_update_cached",
                                                        cached)):
        res[name] = _time_host(lambda st=st: jax.block_until_ready(gp.update(
            st, host[0], host[1], weights=np.asarray(w)).mean), repeats)


def bench_size(q, *, batch, dim, repeats, block_size, cached_max, seed=0):
    key = jax.random.key(seed)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    emb = jax.random.normal(k1, (q, dim), jnp.float32)
    emb = emb / jnp.linalg.norm(emb, axis=1, keepdims=True)
    jax.block_until_ready(emb)
    t0 = time.perf_counter()
    state = gp.init(emb)  # median heuristic (2048-point subsample above 2048)
    jax.block_until_ready(state)
    init_s = time.perf_counter() - t0
    idx = jax.random.choice(k2, q, (batch,), replace=False).astype(jnp.int32)
    nxt = jax.random.choice(k3, q, (batch,), replace=False).astype(jnp.int32)
    obs = jax.random.randint(k4, (batch,), 0, 9).astype(jnp.float32) / 8
    w = jnp.full((batch,), 8.0, jnp.float32)
    res = {"Q": q, "B": batch, "d": dim, "block_size": block_size,
           "init_s": init_s, "bandwidth": float(state.bandwidth)}
    res["streamed"] = _time(_step_fn(block_size), (state, idx, obs, w, nxt), repeats)
    if q <= cached_max:
        _cached_baselines(res, state, emb, idx, obs, w, nxt, block_size, repeats)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=None,
                    help="comma-separated Q values (default 1000,17000,100000; "
                         "add 1000000 on an accelerator)")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--block-size", type=int, default=None,
                    help="row blocking of K[:, B] @ alpha (default: none)")
    ap.add_argument("--cached-max", type=int, default=20000,
                    help="largest Q for the cached-kernel baseline")
    ap.add_argument("--cpu-max", type=int, default=100000,
                    help="on CPU, sizes above this are skipped (recorded)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    dev = jax.devices()[0]
    plat = jax.default_backend()
    if args.sizes is None:
        sizes = [1000, 17000, 100000] + ([1000000] if plat != "cpu" else [])
    else:
        sizes = [int(s) for s in args.sizes.split(",")]
    results, skipped = [], []
    for q in sizes:
        if plat == "cpu" and q > args.cpu_max:
            gflop = q * args.batch * args.dim * 2 / 1e9
            skipped.append({"Q": q, "reason": f"CPU run: Q > --cpu-max "
                            f"{args.cpu_max} (one step is ~{gflop:.0f} GFLOP of "
                            "distances; use an accelerator)"})
            print(f"Q={q}: skipped on CPU", flush=True)
            continue
        r = bench_size(q, batch=args.batch, dim=args.dim, repeats=args.repeats,
                       block_size=args.block_size, cached_max=args.cached_max)
        results.append(r)
        line = f"Q={q:>8}: step median {r['streamed']['median_ms']:.2f} ms"
        if "cached" in r:
            line += (f" | cached-kernel step {r['cached']['median_ms']:.2f} ms, "
                     f"kernel build {r['cached_kernel_build_s']:.2f} s | NumPy "
                     f"cached step {r['numpy_cached']['median_ms']:.2f} ms")
        print(line, flush=True)
    payload = {
        "benchmark": "gp_step (update_step + predict next batch)",
        "command": "python benchmarks/bench_gp.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "device": str(dev.device_kind), "platform": plat,
        "versions": {"jax": jax.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "cpu_count": os.cpu_count(),
        # other jobs on a shared machine inflate CPU timings: record the load
        "load_average_1_5_15": list(os.getloadavg()),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "cpu_affinity": sorted(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity") else None,
        "results": results, "skipped": skipped,
        "goals_ms": {"cpu_Q17k": 150, "h100_Q17k": 3, "h100_Q1M": 50},
    }
    out = args.out or Path(__file__).resolve().parent / "results" / f"gp_{plat}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
