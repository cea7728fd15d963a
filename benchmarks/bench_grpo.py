"""GRPO allocation benchmark: ``python benchmarks/bench_grpo.py [--quick]``.

Writes ``benchmarks/results/grpo_<platform>.json`` with, on the default JAX
device:

* quality: on random batches (p ~ Beta(0.5, 0.5), C = 8 B, L = 2, U = 64) the
  GRPO objective (the signal-normalised variance, sum_q V_{n_q}(p_q)) of the
  uniform split, the RLOO allocation, the exact GRPO allocation and the
  minimiser of GRPO's raw variance (dynamic programme), relative to the GRPO
  optimum; how often the RLOO and GRPO allocations coincide; the expected
  number of constant groups;
* speed: medians of the eager ``allocate_grpo`` and the jitted
  ``solve_grpo`` against the RLOO allocator (``vipcore.allocate``) in the same
  process, and of the dynamic programme (the general exact solver).

Every record carries the device, versions, sizes and ``os.getloadavg()``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import vipcore
from vipcore._src.allocation.grpo import (
    allocate_grpo,
    grpo_terms,
    solve_grpo,
    solve_separable_dp,
)
from vipcore._src.apps.bench.allocator import environment, time_call

L, U, PER_PROMPT = 2, 64, 8


def _quality(B: int, seeds: int) -> dict:
    rng = np.random.default_rng(B)
    rel = {k: [] for k in ("uniform", "rloo", "raw_variance_minimiser")}
    zero = {k: [] for k in ("uniform", "rloo", "grpo", "raw_variance_minimiser")}
    same = 0
    for _ in range(seeds):
        p = rng.beta(0.5, 0.5, B)
        C = PER_PROMPT * B
        allocs = {
            "uniform": vipcore.allocate_uniform(p, C, L, U),
            "rloo": vipcore.allocate(p, C, L, U, "rloo"),
            "grpo": allocate_grpo(p, C, L, U),
        }
        if B <= 256:
            table = grpo_terms(p[:, None], jnp.arange(L, U + 1)[None, :])
            m, _ = solve_separable_dp(table.variance, C - B * L)
            allocs["raw_variance_minimiser"] = np.asarray(m) + L
        terms = {k: grpo_terms(p, v) for k, v in allocs.items()}
        best = float(terms["grpo"].normalized_variance.sum())
        for k, t in terms.items():
            if k != "grpo":
                rel[k].append(float(t.normalized_variance.sum()) / best)
            zero[k].append(float((1 - t.nonzero).sum()))
        same += bool(np.array_equal(allocs["rloo"], allocs["grpo"]))
    out = {"B": B, "C": PER_PROMPT * B, "seeds": seeds,
           "rloo_equals_grpo": same / seeds}
    for k, v in rel.items():
        if v:
            out[f"objective_ratio_{k}"] = dict(median=float(np.median(v)),
                                               min=float(np.min(v)),
                                               max=float(np.max(v)))
    out["constant_groups_mean"] = {k: float(np.mean(v)) for k, v in zero.items() if v}
    return out


def _speed(B: int, reps: int, U_: int = U) -> dict:
    p = np.random.default_rng(0).beta(0.5, 0.5, B).astype(np.float32)
    C = PER_PROMPT * B
    pj = jnp.asarray(p)
    out = {"B": B, "C": C, "L": L, "U": U_, "load_before": os.getloadavg()}
    out["allocate_rloo"] = time_call(lambda: vipcore.allocate(p, C, L, U_, "rloo"),
                                     reps=reps)
    out["allocate_grpo"] = time_call(lambda: allocate_grpo(p, C, L, U_), reps=reps)
    out["solve_rloo_jit"] = time_call(
        lambda: vipcore.solve_allocation(pj, C, L, U_).n, reps=reps)
    out["solve_grpo_jit"] = time_call(lambda: solve_grpo(pj, C, L, U_).n, reps=reps)
    if B <= 256 and U_ <= 64:
        table = grpo_terms(p[:, None], jnp.arange(L, U_ + 1)[None, :])
        cost = table.normalized_variance
        out["dp"] = time_call(lambda: solve_separable_dp(cost, C - B * L)[0],
                              reps=max(3, reps // 10))
    out["ratio_allocate_grpo_over_rloo"] = (out["allocate_grpo"]["median_s"]
                                            / out["allocate_rloo"]["median_s"])
    out["ratio_solve_grpo_over_rloo"] = (out["solve_grpo_jit"]["median_s"]
                                         / out["solve_rloo_jit"]["median_s"])
    out["load_after"] = os.getloadavg()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    ap.add_argument("--out", type=Path, default=None, help="output JSON path")
    args = ap.parse_args(argv)
    sizes = (16, 64) if args.quick else (16, 64, 256, 1024)
    seeds, reps = (3, 5) if args.quick else (20, 20)
    result = {
        "benchmark": "grpo_allocation",
        "environment": environment(),
        "settings": dict(L=L, U=U, rollouts_per_prompt=PER_PROMPT,
                         p="Beta(0.5, 0.5)", dtype="float32 (speed), "
                         f"{'float64' if jax.config.jax_enable_x64 else 'float32'} "
                         "(quality)"),
        "load_start": os.getloadavg(),
        "quality": [_quality(B, seeds) for B in sizes],
        "speed": [_speed(B, reps) for B in sizes],
    }
    if not args.quick:
        result["speed_large_U"] = _speed(256, max(3, reps // 4), U_=1024)
    result["load_end"] = os.getloadavg()
    out = args.out or Path(__file__).parent / "results" / (
        f"grpo_{jax.default_backend()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("quality", "speed")}, indent=1)[:4000])
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
