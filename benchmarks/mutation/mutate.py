"""Mutation testing of the numerical core: do the tests (and ``vipcore verify``)
notice realistic one-line bugs?

Usage (from the repository root)::

    python benchmarks/mutation/mutate.py --check            # catalogue only, seconds
    python benchmarks/mutation/mutate.py                    # tests, every mutant
    python benchmarks/mutation/mutate.py --verify           # + vipcore verify
                                                            #   (default mode)
    python benchmarks/mutation/mutate.py --only variance.rloo_factor_1_over_n

Each entry of :data:`catalogue.MUTANTS` names a file, an exact original snippet,
its replacement and what the bug is. The tool

1. checks that every snippet occurs exactly once in its file and stops with
   the list of stale entries otherwise (the code changed: repair the
   catalogue, do not skip entries);
2. copies the tracked and untracked (not ignored) files of the repository to
   a scratch directory, and runs the relevant tests and ``vipcore verify``
   sections there once unmutated: both must pass, or nothing is measured;
3. for each mutant: edits the copy, runs ``pytest -x`` on the mutant's test
   files (the fast default subset, ``-m "not slow"``) with a per-mutant
   timeout, and with ``--verify`` runs ``vipcore verify --only SECTIONS`` in
   default mode on mutants that have sections; then restores the file;
4. writes a JSON report (``benchmarks/results/mutation.json`` by default):
   ``mutants``, ``killed``, the kill rates, and every survivor with its
   reason (the catalogue's ``survives`` note for known equivalent or
   out-of-reach mutants).

A mutant is killed when pytest (or verify) exits non-zero or times out. No
bytecode is written or read (``PYTHONDONTWRITEBYTECODE``, no
``__pycache__``), so an edit can never be masked by a stale ``.pyc``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from catalogue import AREAS, MUTANTS, Mutant  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "mutation.json"


# --------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------


def stale_entries(mutants, root: Path) -> list[str]:
    """Entries whose snippet does not occur exactly once (empty: all good)."""
    bad, seen = [], set()
    for m in mutants:
        if m.id in seen:
            bad.append(f"{m.id}: duplicate id")
        seen.add(m.id)
        if m.area not in AREAS:
            bad.append(f"{m.id}: unknown area {m.area!r}")
        path = root / m.file
        if not path.is_file():
            bad.append(f"{m.id}: {m.file} does not exist")
            continue
        n = path.read_text().count(m.original)
        if n != 1:
            bad.append(f"{m.id}: {m.file}: the original snippet occurs {n} times "
                       f"(expected exactly once): {m.original!r}")
        if m.original == m.replacement:
            bad.append(f"{m.id}: replacement equals the original")
    return bad


def tests_of(m: Mutant) -> list[str]:
    return list(m.tests or AREAS[m.area]["tests"])


def sections_of(m: Mutant) -> tuple[str, ...]:
    return tuple(m.verify if m.verify is not None else AREAS[m.area]["verify"])


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------


def copy_tree(root: Path, dest: Path) -> None:
    """Tracked and untracked-but-not-ignored files of ``root`` into ``dest``."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root,
        capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = root / rel
        if src.is_file() and "__pycache__" not in rel:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _env(copy: Path) -> dict:
    # A persistent compilation cache shared by the runs (and the parallel
    # copies) of this tool only: unchanged programs are not recompiled for
    # every mutant; a mutated one has a different HLO, hence a different key.
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1",
               PYTHONHASHSEED="0",
               JAX_COMPILATION_CACHE_DIR=str(copy.parent / "jax-cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    env.pop("JAX_ENABLE_X64", None)
    return env


def run(cmd: list[str], copy: Path, timeout: float) -> dict:
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=copy, env=_env(copy), capture_output=True,
                           text=True, timeout=timeout)
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as err:
        rc = "timeout"
        out = (err.stdout or b"").decode(errors="replace") if isinstance(
            err.stdout, bytes) else (err.stdout or "")
    return {"rc": rc, "seconds": round(time.perf_counter() - t0, 1),
            "tail": _summary(out)}


def _summary(out: str) -> str:
    """The lines that say why: pytest's FAILED/ERROR lines or verify's FAIL."""
    keep = [ln for ln in out.splitlines()
            if ln.startswith(("FAILED", "ERROR", "E   ")) or "| FAIL" in ln
            or ln.startswith(("PASS:", "FAIL:", "Traceback"))]
    return "\n".join(keep[:6])[:1500]


def pytest_cmd(tests: list[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", "-x", "-q", "-m", "not slow",
            "-p", "no:cacheprovider", *tests]


def verify_cmd(sections: tuple[str, ...], out: Path, mode: str = "default"
               ) -> list[str]:
    extra = [] if mode == "default" else [f"--{mode}"]
    return [sys.executable, "-m", "vipcore", "verify", "--only", ",".join(sections),
            "--out", str(out), *extra]


def union_of_tests(mutants) -> list[str]:
    """Every test file or test id some mutant uses, each once, sorted; a test
    id inside a listed file is left to the file."""
    ids = {t for m in mutants for t in tests_of(m)}
    files = {t for t in ids if "::" not in t}
    return sorted(t for t in ids if t in files or t.split("::", 1)[0] not in files)


def baseline(mutants, copy: Path, args) -> dict:
    """The unmutated copy must pass every test and verify section used.

    The tests run once, as one pytest session over the union of the
    mutants' test files (each file once, however many mutants share it).
    """
    res = dict(args.base)  # what an earlier run of this report covered
    covered = {t for k in res if not k.startswith("verify") for t in k.split()}
    tests = [t for t in union_of_tests(mutants)
             if t not in covered and t.split("::", 1)[0] not in covered]
    if not args.tests_off and tests:
        r = run(pytest_cmd(tests), copy, args.timeout * 6)
        res[" ".join(tests)] = r
        if r["rc"] != 0:
            raise SystemExit(f"baseline tests fail unmutated: {tests}\n{r['tail']}")
    secs = sorted({s for m in mutants for s in sections_of(m)})
    done = {s for k in res if k.startswith("verify ") for s in k[7:].split(",")}
    if not args.verify or not secs or "verify" in res or set(secs) <= done:
        pass  # none needed, or the earlier run of this report passed them
    elif getattr(args, "verify_baseline", None):
        res["verify"] = _verify_from(args.verify_baseline, args)
    else:
        r = run(verify_cmd(tuple(secs), copy / "_verify_baseline", args.verify_mode),
                copy, args.verify_timeout * 3)
        res["verify " + ",".join(secs)] = r
        if r["rc"] != 0:
            raise SystemExit(f"baseline verify fails unmutated\n{r['tail']}")
    return res


def _verify_from(path: Path, args) -> dict:
    """A passing ``vipcore verify`` run of the unmutated tree in the same
    mode, used as the verify baseline instead of running it again."""
    res = json.loads((path / "results.json").read_text())
    mode = res.get("config", {}).get("mode")
    if not res.get("passed") or mode != args.verify_mode:
        raise SystemExit(f"{path}: not a passing {args.verify_mode}-mode verify run")
    return {"rc": 0, "from": str(path), "seconds": res["machine"]["wall_s"],
            "tail": "PASS (" + ", ".join(res["timings_s"]) + ")"}


def mutate_one(m: Mutant, copy: Path, args) -> dict:
    path = copy / m.file
    original = path.read_text()
    path.write_text(original.replace(m.original, m.replacement, 1))
    for d in copy.rglob("__pycache__"):
        shutil.rmtree(d, ignore_errors=True)
    try:
        out = {"id": m.id, "file": m.file, "area": m.area,
               "description": m.description}
        if args.tests_off:
            out["tests"] = {"rc": None, "seconds": 0.0, "tail": "", "killed": None}
        else:
            out["tests"] = run(pytest_cmd(tests_of(m)), copy, args.timeout)
            out["tests"]["killed"] = out["tests"]["rc"] != 0
        secs = sections_of(m)
        if args.verify and secs:
            vo = copy / "_verify_mutant"
            shutil.rmtree(vo, ignore_errors=True)
            out["verify"] = run(verify_cmd(secs, vo, args.verify_mode), copy,
                                args.verify_timeout)
            out["verify"]["killed"] = out["verify"]["rc"] != 0
            out["verify"]["sections"] = list(secs)
        return out
    finally:
        path.write_text(original)


def _command(argv: list[str]) -> str:
    """The command that reproduces the whole report: without ``--resume``, and
    without ``--only`` when the run resumed (the report covers the rest)."""
    out, skip = [], False
    resumed = "--resume" in argv or "--report-only" in argv
    for a in argv:
        if skip:
            skip = False
        elif a in ("--resume", "--report-only") or (
                resumed and a.startswith("--only=")):
            pass
        elif resumed and a == "--only":
            skip = True
        else:
            out.append(a)
    return " ".join(["python benchmarks/mutation/mutate.py", *out])


def summarise(results: list[dict], mutants, args, base, t0, partial=False,
              wall_before: float = 0.0) -> dict:
    by_id = {m.id: m for m in mutants}
    killed = [r for r in results if r["tests"]["killed"]]
    varea = [r for r in results if sections_of(by_id[r["id"]])]
    vkilled = [r for r in varea if r.get("verify", {}).get("killed")]
    survivors = [{"id": r["id"], "file": r["file"], "description": r["description"],
                  "reason": by_id[r["id"]].survives or "no test detects it"}
                 for r in results if not r["tests"]["killed"]]
    vsurv = [{"id": r["id"], "description": r["description"],
              "reason": by_id[r["id"]].verify_survives or "verify does not detect it"}
             for r in varea if args.verify and not r.get("verify", {}).get("killed")]
    on = not args.tests_off
    return {
        "command": _command(sys.argv[1:]),
        "partial": partial or len(results) < len(MUTANTS),
        "mutants": len(results),
        "killed": len(killed) if on else None,
        "kill_rate": round(len(killed) / max(len(results), 1), 4) if on else None,
        "verify_area": len(varea),
        "verify_killed": len(vkilled) if args.verify else None,
        "verify_kill_rate": (round(len(vkilled) / max(len(varea), 1), 4)
                             if args.verify else None),
        "survivors": survivors if on else None,
        "verify_survivors": vsurv if args.verify else None,
        "by_area": {a: {"mutants": sum(r["area"] == a for r in results),
                        "killed": sum(r["area"] == a for r in killed)}
                    for a in AREAS},
        "settings": {"timeout_s": args.timeout, "verify": args.verify,
                     "verify_mode": args.verify_mode, "tests": not args.tests_off,
                     "verify_timeout_s": args.verify_timeout},
        "machine": {"platform": platform.platform(), "python":
                    platform.python_version(), "cpu_count": os.cpu_count(),
                    "loadavg_end": list(os.getloadavg()),
                    "jobs": getattr(args, "jobs", 1),
                    "wall_s": round(wall_before + time.perf_counter() - t0, 1)},
        "baseline": base,
        "results": results,
    }


def _save(report: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(out)


def _previous(args) -> tuple[dict, dict]:
    """``(results by mutant id, report)`` of an earlier run with the same
    settings; empty when there is none. Results of mutants no longer in the
    catalogue, or whose snippet or replacement changed since, are dropped."""
    if not args.out.is_file():
        return {}, {}
    old = json.loads(args.out.read_text())
    same = (old["settings"].get("verify") == args.verify
            and old["settings"].get("verify_mode") == args.verify_mode
            and old["settings"].get("tests") == (not args.tests_off))
    if not same:
        return {}, {}
    cat = {m.id: m for m in MUTANTS}
    keep = {r["id"]: r for r in old["results"]
            if r["id"] in cat and r.get("snippet") == _snippet(cat[r["id"]])}
    return keep, old


def _snippet(m: Mutant) -> list[str]:
    return [m.file, m.original, m.replacement]


def _run_all(todo, mutants, args, on_done) -> None:
    """Run ``todo`` over ``args.jobs`` copies of the repository, calling
    ``on_done(result)`` as each mutant finishes (in completion order)."""
    with tempfile.TemporaryDirectory(prefix="vipcore-mutants-") as tmp:
        copies = []
        for j in range(max(1, args.jobs)):
            copies.append(Path(tmp) / f"repo{j}")
            copy_tree(ROOT, copies[-1])
        if args.needs_baseline:
            args.base = baseline(mutants, copies[0], args)
        free = list(copies)

        def work(m):
            copy = free.pop()
            try:
                return mutate_one(m, copy, args)
            finally:
                free.append(copy)

        with concurrent.futures.ThreadPoolExecutor(len(copies)) as pool:
            for fut in concurrent.futures.as_completed(
                    [pool.submit(work, m) for m in todo]):
                on_done(fut.result())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="only check that every snippet matches exactly once")
    ap.add_argument("--verify", action="store_true",
                    help="also run vipcore verify (default mode) on verify-area "
                         "mutants")
    ap.add_argument("--verify-mode", choices=("default", "quick"), default="default",
                    help="verify mode for --verify (default: default)")
    ap.add_argument("--tests-off", action="store_true",
                    help="skip the tests (with --verify: verify only)")
    ap.add_argument("--only", default=None,
                    help="comma-separated mutant ids or areas")
    ap.add_argument("--timeout", type=float, default=600,
                    help="seconds per mutant for the tests (default 600)")
    ap.add_argument("--verify-timeout", type=float, default=600,
                    help="seconds per mutant for verify (default 600)")
    ap.add_argument("--resume", action="store_true",
                    help="keep the results already in --out (same settings, "
                         "same snippets) and run only the missing mutants; with "
                         "--only, run just the named mutants (again) and keep "
                         "every other result")
    ap.add_argument("--verify-baseline", type=Path, default=None,
                    help="directory of a passing `vipcore verify` run of this "
                         "tree in the same mode, used instead of running the "
                         "unmutated verify baseline again")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite --out from the results already in it (same "
                         "settings and snippets), with the catalogue's current "
                         "reasons; runs nothing")
    ap.add_argument("--jobs", type=int, default=1,
                    help="mutants run at once, each in its own copy (default 1)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="JSON report (default benchmarks/results/mutation.json)")
    args = ap.parse_args(argv)
    bad = stale_entries(MUTANTS, ROOT)
    if bad:
        print("mutation catalogue is stale:\n  " + "\n  ".join(bad), file=sys.stderr)
        return 2
    mutants = list(MUTANTS)
    if args.tests_off and not args.verify:
        print("--tests-off needs --verify", file=sys.stderr)
        return 2
    if args.tests_off:
        mutants = [m for m in mutants if sections_of(m)]
    selected = mutants
    if args.only:
        want = set(args.only.split(","))
        selected = [m for m in mutants if m.id in want or m.area in want]
        if not selected:
            print(f"no mutant matches {args.only!r}", file=sys.stderr)
            return 2
    if args.check:
        print(f"catalogue ok: {len(MUTANTS)} mutants, every snippet matches once")
        return 0
    if args.jobs < 1:
        print(f"--jobs must be >= 1; got {args.jobs}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    done, old = _previous(args) if args.resume or args.report_only else ({}, {})
    if args.only and args.resume:  # rerun the named ones, keep the others
        again = {m.id for m in selected}
        done = {k: v for k, v in done.items() if k not in again}
    else:
        mutants = selected
    results = [done[m.id] for m in mutants if m.id in done]
    todo = [] if args.report_only else [m for m in selected if m.id not in done]
    args.base = old.get("baseline", {}) if done else {}
    args.needs_baseline = bool(todo)
    wall_before = old.get("machine", {}).get("wall_s", 0.0) if done else 0.0
    order = {m.id: i for i, m in enumerate(mutants)}
    by_id = {m.id: m for m in todo}

    def on_done(r):
        r["snippet"] = _snippet(by_id[r["id"]])
        results.append(r)
        results.sort(key=lambda x: order[x["id"]])
        _save(summarise(results, mutants, args, args.base, t0, partial=True,
                        wall_before=wall_before), args.out)
        t, v = r["tests"]["killed"], r.get("verify", {})
        print(f"[{len(results)}/{len(mutants)}] {r['id']}: tests "
              f"{'off' if t is None else 'killed' if t else 'SURVIVED'} "
              f"({r['tests']['seconds']} s)"
              + (f", verify {'killed' if v['killed'] else 'SURVIVED'} "
                 f"({v['seconds']} s)" if v else ""), flush=True)

    if todo:
        _run_all(todo, mutants, args, on_done)
    report = summarise(results, mutants, args, args.base, t0,
                       wall_before=wall_before)
    _save(report, args.out)
    head = (f"{report['killed']}/{report['mutants']} killed by the tests"
            if report["killed"] is not None else f"{report['mutants']} mutants")
    tail = (f"; {report['verify_killed']}/{report['verify_area']} verify-area "
            "mutants killed by vipcore verify" if args.verify else "")
    print(f"{head}{tail}; report in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
