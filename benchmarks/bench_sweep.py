"""Benchmark: ``vipcore sweep`` end to end on 1,600,000 rollout rows.

Goal: 100,000 prompts x 16 rollouts = 1.6 x 10^6 rows in <= 10 s on a
2-core CPU, *including reading the file*. The files are generated in a
temporary directory. Timed, each ``--repeats`` times:

* ``read+analyze``: :func:`vipcore.sweep.read_scores` + :func:`analyze`;
* ``cli --json``: ``vipcore sweep FILE --json`` (summary only);
* ``cli --out``: ``vipcore sweep FILE --out DIR`` (summary, prompts.jsonl,
  signal.jsonl and the two PNG plots);
* ``process``: the whole command in a fresh interpreter
  (``python -m vipcore sweep FILE --out DIR``), imports included;
* ``mapped``: a file with other column names and rewards in {-1, +1}
  (``--id-col question_id --score-col reward --reward-range=-1,1``);
* ``baseline``: the variance-plot method's approach in the same process: rows into a
  ``defaultdict(list)``, then ``np.mean``/``np.var``/``np.max`` per prompt
  (``VarianceAnalyzer.compute_variance_metrics``), bucketed in Python.

Wall time and CPU time (this process plus finished child processes) are
both recorded, with the load average at the start and the end: on a shared
machine the CPU time is the better measure of the code, the wall time of the
experience.

Run: ``python benchmarks/bench_sweep.py`` (writes
``benchmarks/results/sweep_cpu.json``; ``--prompts 2000 --repeats 1`` for a
quick check).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vipcore import sweep  # noqa: E402
from vipcore._src.apps.cli import main  # noqa: E402


def make_files(d: Path, prompts: int, k: int, seed: int = 0) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    p = np.where(rng.random(prompts) < 0.3, rng.integers(0, 2, prompts) * 1.0,
                 rng.beta(0.6, 0.6, prompts))
    s = (rng.random((prompts, k)) < p[:, None]).astype(int)
    ids = np.repeat([f"q{i:06d}" for i in range(prompts)], k)
    flat = s.reshape(-1).astype(str)
    files = {
        "jsonl_long": d / "long.jsonl",
        "csv_long": d / "long.csv",
        "jsonl_wide": d / "wide.jsonl",
        "jsonl_mapped": d / "mapped.jsonl",
    }
    files["jsonl_long"].write_text("".join(
        f'{{"prompt_id": "{i}", "score": {v}}}\n' for i, v in zip(ids, flat,
                                                                   strict=True)))
    files["csv_long"].write_text("prompt_id,score\n" + "".join(
        f"{i},{v}\n" for i, v in zip(ids, flat, strict=True)))
    files["jsonl_mapped"].write_text("".join(
        f'{{"question_id": "{i}", "sample_idx": 0, "reward": {2 * int(v) - 1}}}\n'
        for i, v in zip(ids, flat, strict=True)))
    files["jsonl_wide"].write_text("".join(
        json.dumps({"prompt_id": f"q{i:06d}", "scores": row}) + "\n"
        for i, row in enumerate(s.tolist())))
    return files


def baseline(path: Path) -> dict:
    """Seed 000's per-prompt loop (the naive approach), same file."""
    results = defaultdict(list)
    if path.suffix == ".csv":
        with open(path, newline="") as f:
            r = csv.DictReader(f)
            for row in r:
                results[row["prompt_id"]].append(float(row["score"]))
    else:
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if "scores" in rec:
                    results[rec["prompt_id"]].extend(rec["scores"])
                elif "reward" in rec:
                    results[rec["question_id"]].append((rec["reward"] + 1) / 2)
                else:
                    results[rec["prompt_id"]].append(rec["score"])
    metrics = []
    for pid, scores in results.items():
        metrics.append({
            "sample_idx": pid, "mean_score": np.mean(scores),
            "best_score": np.max(scores), "worst_score": np.min(scores),
            "variance": np.var(scores), "std_dev": np.std(scores),
        })
    buckets = {"unlearnable": 0, "trivial": 0, "signal": 0}
    for m in metrics:
        pr = m["mean_score"]
        buckets["unlearnable" if pr == 0 else "trivial" if pr == 1 else "signal"] += 1
    return buckets


def _cpu() -> float:
    """CPU time of this process and of its finished children (user + system)."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def timed(fn, repeats: int) -> dict:
    wall, cpu = [], []
    out = None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), _cpu()
        out = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(_cpu() - c0)
    return {
        "wall_s": {"median": statistics.median(wall), "min": min(wall),
                   "max": max(wall)},
        "cpu_s": {"median": statistics.median(cpu), "min": min(cpu), "max": max(cpu)},
        "repeats": repeats,
        "_result": out,
    }


def quiet_main(argv):
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    if rc != 0:
        raise RuntimeError(f"vipcore {' '.join(argv)} exited {rc}")
    return rc


MAPPED = ["--id-col", "question_id", "--score-col", "reward", "--reward-range=-1,1"]


def in_process(path: Path, d: Path) -> list[str]:
    """The ``vipcore sweep`` arguments for a file (column mapping if needed)."""
    return ["sweep", str(path)] + (MAPPED if "mapped" in path.name else [])


def fresh_process(path: Path, out: Path) -> None:
    cmd = [sys.executable, "-m", "vipcore", *in_process(path, out),
           "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run(cmd, check=True, capture_output=True, env=env)


def run(prompts: int, k: int, repeats: int, out: Path) -> dict:
    res: dict = {
        "benchmark": "sweep",
        "goal": f"{prompts * k} rows end to end (read + analyze) <= 10 s on 2 CPU "
                "cores",
        "command": "python benchmarks/bench_sweep.py " + " ".join(sys.argv[1:]),
        "sizes": {"prompts": prompts, "k": k, "rows": prompts * k},
        "device": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "versions": {"python": platform.python_version(), "numpy": np.__version__},
        "cases": {},
    }
    import vipcore

    res["versions"]["vipcore"] = vipcore.__version__
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        t0 = time.perf_counter()
        files = make_files(d, prompts, k)
        res["generate_files_s"] = time.perf_counter() - t0
        res["file_mb"] = {k_: p.stat().st_size / 2**20 for k_, p in files.items()}
        for name, path in files.items():
            print(f"[{name}]", file=sys.stderr, flush=True)
            res["cases"][name] = run_case(name, path, d, repeats)
            print(json.dumps({name: res["cases"][name]}, indent=1, default=float),
                  file=sys.stderr)
    res["load_average_at_end"] = os.getloadavg()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=float))
    return res


def run_case(name: str, path: Path, d: Path, repeats: int) -> dict:
    kw = dict(id_col="question_id", score_col="reward", reward_range=(-1, 1)) \
        if "mapped" in name else {}
    case = {}
    lib = timed(lambda: sweep.analyze(
        (data := sweep.read_scores(path, **kw)).scores, counts=data.counts), repeats)
    counts = lib.pop("_result").counts
    case["read+analyze"] = lib
    c = timed(lambda: quiet_main(in_process(path, d) + ["--json"]), repeats)
    c.pop("_result")
    case["cli --json"] = c
    if name in ("jsonl_long", "jsonl_mapped"):
        c = timed(lambda: quiet_main(in_process(path, d) + ["--out", str(d / "out")]),
                  repeats)
        c.pop("_result")
        case["cli --out (plots)"] = c
        c = timed(lambda: fresh_process(path, d / "out2"), repeats)
        c.pop("_result")
        case["process (python -m vipcore sweep --out)"] = c
    b = timed(lambda: baseline(path), 1)
    base_counts = b.pop("_result")
    case["baseline (per-row loop)"] = b
    assert all(base_counts[x] == counts[x] for x in base_counts), (base_counts,
                                                                   counts)
    case["speedup_vs_baseline_wall"] = b["wall_s"]["median"] / lib["wall_s"]["median"]
    case["speedup_vs_baseline_cpu"] = b["cpu_s"]["median"] / lib["cpu_s"]["median"]
    case["meets_goal_wall"] = max(
        v["wall_s"]["median"] for key, v in case.items()
        if isinstance(v, dict) and key.startswith(("read", "cli", "process"))) <= 10.0
    return case


def cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=100_000)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results"
                    / "sweep_cpu.json")
    args = ap.parse_args()
    run(args.prompts, args.k, args.repeats, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    cli()
