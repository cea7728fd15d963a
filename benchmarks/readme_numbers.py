"""Write the measured numbers of README.md (and of docs/simulate.md's results
and docs/allocation.md's performance table) from the committed result files.

Usage (from the repository root)::

    python benchmarks/readme_numbers.py           # rewrite the marked blocks
    python benchmarks/readme_numbers.py --check   # exit 1 if a block is stale

Every number of README.md that comes from a run sits between
``<!-- BEGIN name -->`` and ``<!-- END name -->`` and is generated here from a
JSON file under ``benchmarks/results/``; each block names the command that
wrote its file. ``tests/test_readme_numbers.py`` fails when README.md and the
files disagree, so a re-run followed by this script is the only way to change
a number.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verify_docs import render_blocks  # noqa: E402  (the shared block syntax)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
#: Pages with generated blocks (README.md first).
PAGES = (README, ROOT / "docs" / "simulate.md", ROOT / "docs" / "allocation.md")

#: Rows of the replay table: (predictor, rule, label shown).
REPLAY_ROWS = (
    ("oracle", "plugin", "true p (oracle, the ceiling)"),
    ("previous_p", "plugin", "true p at the prompt's previous visit"),
    ("beta", "plugin", "`beta`: discounted Beta posterior (the default without "
     "embeddings)"),
    ("gp_binomial", "plugin", "`gp_binomial`: GP, binomial noise (the default with "
     "embeddings)"),
    ("moving_average", "plugin", "moving average, window 3"),
    ("ridge", "plugin", "ridge regression on embeddings"),
    ("gp", "plugin", "GP, Algorithm 1 as published (bounded latent mean)"),
    ("gp_authors", "plugin", "GP with the authors' code settings"),
)


def load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def _load_range(x) -> str:
    lo, hi = min(x), max(x)
    return f"{lo:.1f}" if f"{lo:.1f}" == f"{hi:.1f}" else f"{lo:.1f}–{hi:.1f}"


# --------------------------------------------------------------------------
# Blocks


def verify_run() -> str:
    res = load("verify_default/results.json")
    m = res["machine"]
    n = sum(len(s["checks"]) for s in res["sections"].values())
    ok = sum(c["passed"] for s in res["sections"].values() for c in s["checks"])
    return (
        f"The committed default run passed {ok} of {n} checks in "
        f"{len(res['sections'])} sections, {m['wall_s']:.0f} s wall on a "
        f"{m['cpu_count']}-core CPU at load average {_load_range(m['loadavg'])} "
        "(`python -m vipcore verify --out benchmarks/results/verify_default`; "
        "`benchmarks/results/verify_default/`).\n")


def replay_table() -> str:
    rep = load("replay.json")
    ds = rep["datasets"]["simulate/descriptor"]
    rows = {(r["predictor"], r["rule"]): r for r in ds["rows"]
            if not r["label"].startswith("beta, ")}  # the default, not variants
    out = ["| p given to the allocator | objective vs uniform | MAE of p | "
           "mid-p prompts starved at n = L |", "|---|---|---|---|"]
    for pred, rule, text in REPLAY_ROWS:
        r = rows[(pred, rule)]
        if pred == "gp":  # the bounded variant, the library's default for gp
            r = next(x for x in ds["rows"]
                     if x["label"].startswith("gp (Algorithm 1, bounded"))
        out.append(f"| {text} | {r['objective_vs_uniform']:.3f} | {r['mae']:.3f} | "
                   f"{100 * r['starved']:.1f} % |")
    s = rep["settings"]
    out += ["", f"Replay of {ds['runs']} uniform `vipcore simulate` trajectories × "
            f"{ds['rounds']} rounds ({ds['batch']} prompts a round, `n̄ = "
            f"{s['rollouts']}`, `L = {s['lower']}`, `U = {s['upper']}`), the "
            f"objective `Σ 4p(1−p)/(n−1)` at the true p; lower is better "
            f"(`python benchmarks/bench_replay.py`, `benchmarks/results/replay.json`, "
            f"{rep['cpu_count']}-core CPU).\n"]
    return "\n".join(out)


def grpo_line() -> str:
    q = load("grpo_cpu.json")["quality"]
    big = max(q, key=lambda r: r["B"])
    u = [r["objective_ratio_uniform"]["median"] for r in q]
    raw = [r["objective_ratio_raw_variance_minimiser"]["median"] for r in q
           if "objective_ratio_raw_variance_minimiser" in r]  # not run at B = 1024
    rl = big["objective_ratio_rloo"]["median"]
    return (
        f"On random batches (`B` = {', '.join(str(r['B']) for r in q)}, "
        f"`p ~ Beta(0.5, 0.5)`, 8 rollouts a prompt), uniform allocation has a "
        f"{min(u):.2f}–{max(u):.2f}× higher GRPO objective (medians), the RLOO "
        f"allocation is within {100 * (rl - 1):.3f} % of it at `B = {big['B']}`, and "
        f"minimising GRPO's raw variance instead is {min(raw):.1f}–{max(raw):.1f}× "
        "worse (`python benchmarks/bench_grpo.py`, "
        "`benchmarks/results/grpo_cpu.json`).\n")


def _us(s: float) -> str:
    return f"{s * 1e6:.0f} µs" if s < 1e-3 else f"{s * 1e3:.1f} ms"


def bench_table() -> str:
    a = load("allocate_cpu.json")
    env = a["environment"]
    lat = {r["B"]: r for r in a["latency"]}
    r512 = lat[512]
    sync512 = next(r for r in a["latency_sync_dispatch"]["latency"] if r["B"] == 512)
    g = next(r for r in load("gp_cpu.json")["results"] if r["Q"] == 17000)
    sw = load("sweep_cpu.json")
    rows = sw["sizes"]["rows"]
    cs = sw["cases"]
    cold = a["cold_start"]
    out = [
        "| measurement | median | baseline in the same process | command, file |",
        "|---|---|---|---|",
        "| `solve_allocation(...).n`, B = 512, jitted | "
        f"{_us(r512['vip_integers']['median_s'])}"
        f" | loop-based exact solver {_us(r512['previous_solver']['median_s'])}; NumPy "
        f"heap greedy {_us(r512['numpy_greedy']['median_s'])} | `vipcore bench`, "
        "`allocate_cpu.json` |",
        "| same, with JAX's synchronous CPU dispatch (a setting of the caller's "
        "program; [docs/allocation.md](docs/allocation.md#performance)) | "
        f"{_us(sync512['vip_integers']['median_s'])} | loop-based "
        f"{_us(sync512['previous_solver']['median_s'])} | same |",
        f"| same, B = {max(lat)} | {_us(lat[max(lat)]['vip_integers']['median_s'])} | "
        f"loop-based {_us(lat[max(lat)]['previous_solver']['median_s'])} | same |",
        f"| `vipcore.allocate()` eager call, B = 512 | "
        f"{_us(a['eager_allocate']['median_s'])} | | same |",
        f"| `import vipcore` + first `vipcore.allocate()` in a fresh process "
        "(JAX's import and compilation included) | "
        f"{cold['library']['import_and_first_call_s']:.2f} s | loop-based solver, "
        "first call "
        f"{cold['previous_solver_first_call_s']:.1f} s | same |",
        f"| scipy SLSQP on the relaxation, B = {a['slsqp']['B']} (the paper's solver)"
        f" | same objective, {a['slsqp']['median_speedup']:.1e}× slower than vipcore"
        " | | same |",
        f"| GP step (update + predict), Q = 17 000, B = 512, d = 384 | "
        f"{g['cached']['median_ms']:.0f} ms | authors' NumPy step "
        f"{g['numpy_cached']['median_ms']:.0f} ms | `python benchmarks/bench_gp.py "
        "--repeats 15`, `gp_cpu.json` |",
        f"| sweep of {rows:,} rollout rows, read + analyse, CSV / JSONL | "
        f"{cs['csv_long']['read+analyze']['wall_s']['median']:.1f} s / "
        f"{cs['jsonl_long']['read+analyze']['wall_s']['median']:.1f} s wall | "
        "per-row loop "
        f"{cs['csv_long']['baseline (per-row loop)']['wall_s']['median']:.1f}"
        f" s / {cs['jsonl_long']['baseline (per-row loop)']['wall_s']['median']:.1f} s"
        " | `python benchmarks/bench_sweep.py`, `sweep_cpu.json` |",
        "",
        f"All on this project's {env['cpu_count']}-core CPU (jax {env['jax']}); the "
        f"allocator run at load average {_load_range(env['loadavg_start'])} at its "
        f"start, the sweep at {_load_range(sw['load_average_at_start'])}, the GP at "
        f"{_load_range(load('gp_cpu.json')['load_average_1_5_15'])}; a shared machine, "
        "so absolute times move by 3× between runs, the same-process ratios much "
        "less.\n",
    ]
    return "\n".join(out)


def _med_min(row: dict) -> str:
    return f"{_us(row['median_s'])} ({_us(row['min_s'])})"


def _met(flag) -> str:
    return "met" if flag else "not met"


def allocation_perf() -> str:
    """docs/allocation.md's performance table, from ``allocate_cpu.json``."""
    a = load("allocate_cpu.json")
    env, goals, th = a["environment"], a["goals"], a["throughput"]
    sync = {r["B"]: r for r in a["latency_sync_dispatch"]["latency"]}
    goal_s = {512: f"≤ {_us(goals['B512_latency_goal_s'])}",
              65536: f"≤ {_us(goals['B65536_latency_goal_s'])}"}
    out = [
        "| measurement | this solver | same, synchronous dispatch | while-loop "
        "baseline | NumPy greedy | CPU goal |",
        "|---|---|---|---|---|---|",
    ]
    for r in a["latency"]:
        B = r["B"]
        greedy = _us(r["numpy_greedy"]["median_s"]) if "numpy_greedy" in r else ""
        out.append(
            f"| `solve_allocation(...).n`, B = {B:,} | {_med_min(r['vip_integers'])}"
            f" | {_med_min(sync[B]['vip_integers']) if B in sync else ''}"
            f" | {_med_min(r['previous_solver'])} | {greedy} | {goal_s.get(B, '')} |")
    r512 = next(r for r in a["latency"] if r["B"] == 512)
    out.append(
        "| one fused elementwise program on the same arrays (what a call costs "
        f"before any work), B = 512 | {_med_min(r512['one_fusion'])} | "
        f"{_med_min(sync[512]['one_fusion'])} | | | |")
    rbig = a["latency"][-1]
    cold = a["cold_start"]
    cli = cold["cli_allocate_wall_s"]
    thr = f"{th['n_batches']} batches of {th['B']}"
    out += [
        f"| all fields (with the relaxation), B = 512 / {rbig['B']:,} | "
        f"{_us(r512['vip_all_fields']['median_s'])} / "
        f"{_us(rbig['vip_all_fields']['median_s'])} | | | | |",
        f"| `allocate()` eager call, B = {a['eager_allocate']['B']} (checks, padding,"
        f" transfer) | {_us(a['eager_allocate']['median_s'])} | | | | |",
        f"| `vmap` over {thr}, rounds as a `scan` (default) | "
        f"{th['vip_integers']['prompts_per_s']:.2e} prompts/s | | "
        f"{th['previous_solver']['prompts_per_s']:.2e} prompts/s | | "
        f"≥ {goals['throughput_goal']:.0e} |",
        f"| same, `unroll=True` | {th['vip_integers_unrolled']['prompts_per_s']:.2e} "
        "prompts/s | | | | |",
        f"| SLSQP on the relaxation, B = {a['slsqp']['B']} | same objective, "
        f"{a['slsqp']['median_speedup']:.1e}× slower | | | | |",
        f"| `import vipcore` + first `allocate()`, fresh process, B = {cold['B']} | "
        f"{cold['library']['import_and_first_call_s']:.2f} s | | first call "
        f"{cold['previous_solver_first_call_s']:.2f} s | | ≤ 1 s |",
        f"| first `allocate()` alone: elemental emitters (the library's choice) / "
        f"XLA's default options | {cold['library']['first_call_s']:.2f} s / "
        f"{cold['default_xla_options_first_call_s']:.2f} s | | | | |",
        f"| `vipcore allocate FILE` (wall, Python start-up included), empty / warm "
        f"compilation cache | {cli['empty_cache_s']:.2f} s / {cli['warm_cache_s']:.2f}"
        " s | | | | ≤ 1 s |",
        "",
        f"`vipcore bench --out benchmarks/results --overwrite` "
        f"(`benchmarks/results/allocate_cpu.json`): {env['cpu_count']}-core CPU, jax "
        f"{env['jax']}, load average {_load_range(env['loadavg_start'][:1])} at the "
        f"start and {_load_range(env['loadavg_end'][:1])} at the end; medians, "
        "minima in brackets. Goals: B = 512 "
        f"{_met(goals['B512_latency_met'])} with JAX's default dispatch and "
        f"{_met(goals.get('B512_latency_sync_dispatch_met'))} with synchronous "
        f"dispatch; B = {rbig['B']:,} {_met(goals['B65536_latency_met'])}; "
        f"throughput {_met(goals['throughput_met'])} with the default `scan` and "
        f"{_met(goals['throughput_unrolled_met'])} with `unroll=True`.\n",
    ]
    return "\n".join(out)


#: The committed confirmatory runs of ``vipcore simulate``, by task.
SIMULATE = {"max8": "simulate_cpu_max8", "max16": "simulate_cpu_max16"}


def _signed(x: float) -> str:
    return f"{x:+.4f}"


def _outcome(c: dict) -> str:
    if not c["reject"]:
        return "no significant difference"
    return "**VIP better**" if c["mean"] > 0 else "**VIP worse**"


def simulate_outcome(task: str = "max8") -> str:
    folder = SIMULATE[task]
    res = load(f"{folder}/summary.json")
    s, m = res["summary"], res["summary"]["methods"]
    g = s["gates"]
    best = s["chosen"]["best"]
    lad = g["ladder"]
    head = g["headroom"]
    out = [
        f"Confirmatory run: {res['config']['seeds']} paired seeds (+ "
        f"{res['config']['calibration_seeds']} calibration seeds), "
        f"{res['config']['steps']} rounds, task `{res['config']['task']}`, "
        f"primary metric the mean held-out accuracy over rounds "
        f"{s['window'][0]}–{s['window'][1]} (`{res['command']}`, device "
        f"`{res['device']}`, {res['wall_s'] / 60:.0f} min of training; "
        f"`benchmarks/results/{folder}/report.md`).",
        "",
        f"* Validity gate, uniform `n̄ = 16` vs `n̄ = 8`: {_signed(lad['mean'])} "
        f"(p = {lad['p']:.1e}): {'passed' if lad['passed'] else 'FAILED'}.",
        f"* Headroom, VIP with the true p vs uniform: {_signed(head['mean'])} ± "
        f"{head['se']:.4f}; the smallest effect of interest (10 % more rollouts) is "
        f"{head['delta_min']:.4f}"
        + (": the allocation headroom on this system is below it."
           if head["below_smallest_effect"] else ": the oracle clears it."),
        "* VIP with the true p: allocation objective "
        f"{m['vip_oracle']['objective_ratio']:.2f}× "
        f"uniform's and measured gradient variance (tr Cov g) "
        f"{m['vip_oracle']['gradvar_ratio']['ratio']:.2f}× uniform's.",
        f"* Best planner on the calibration seeds: `{best}`.",
        "",
        "| confirmatory comparison | difference in the primary metric | 95 % CI | "
        "Holm p | outcome |",
        "|---|---|---|---|---|",
    ]
    for c in s["confirmatory"]:
        out.append(f"| {c['comparison']} | {_signed(c['mean'])} | "
                   f"[{_signed(c['ci'][0])}, {_signed(c['ci'][1])}] | "
                   f"{c['p_holm']:.3g} | {_outcome(c)} |")
    pw = s["power"]
    mult = m[best].get("multiplier") or {}
    out += ["", f"Paired s.d. of the primary metric {pw['sd']:.4f}: power "
            f"{pw['power']:.2f} at the smallest effect with {pw['seeds']} seeds."
            + (f" `{best}` is worth {mult['multiplier']:.2f}× uniform's rollouts "
               f"(95 % interval {mult['low']:.2f}–{mult['high']:.2f}) on the "
               "ladder's scale." if mult else "") + "\n"]
    return "\n".join(out)


BLOCKS: dict[str, Callable[[], str]] = {
    "verify-run": verify_run,
    "replay": replay_table,
    "grpo": grpo_line,
    "bench": bench_table,
    "allocation-perf": allocation_perf,
    "simulate": simulate_outcome,
    "simulate-max16": lambda: simulate_outcome("max16"),
}


def render(text: str) -> str:
    """``text`` with every marked block regenerated from the result files."""
    return render_blocks(text, BLOCKS)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if a page is out of step with its files")
    args = ap.parse_args(argv)
    stale = []
    for page in (README, *PAGES[1:]):
        text = page.read_text()
        new = render(text)
        if new != text:
            stale.append(page.name)
            if not args.check:
                page.write_text(new)
    if args.check and stale:
        print(f"{', '.join(stale)} stale: python benchmarks/readme_numbers.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
