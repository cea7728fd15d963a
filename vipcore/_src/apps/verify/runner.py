"""The ``vipcore verify`` runner: run the report sections, write the report.

Each entry of :data:`SECTIONS` is a module with a function
``section(cfg: VerifyConfig) -> SectionResult``. :func:`run_verify` runs them
in order and writes ``report.md``, ``results.json`` and the sections' PNG
plots into ``out``; the run passes if every positive check passes and every
negative control detects what it must.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import time
from pathlib import Path

from vipcore._src._checks import check_int
from vipcore._src._serialize import jsonable
from vipcore._src.apps.verify.report import (
    RUN_FWER,
    SectionResult,
    VerifyConfig,
    format_table,
)

__all__ = ["SECTIONS", "MAX_SEED", "run_verify", "section_names", "versions"]

#: Report sections, in order. Each module defines ``section(cfg)``.
SECTIONS: tuple[str, ...] = (
    "vipcore._src.apps.verify.variance",
    "vipcore._src.apps.verify.stats",
    "vipcore._src.apps.verify.prediction",
    "vipcore._src.apps.verify.sweep",
    "vipcore._src.apps.verify.grpo",
)


#: Largest seed: keys are 32-bit (a larger seed would silently wrap around
#: and repeat another seed's draws).
MAX_SEED = 2**32 - 1


def section_names() -> dict[str, str]:
    """Short name (the module's last component) -> module, for ``--only``."""
    return {name.rsplit(".", 1)[-1]: name for name in SECTIONS}


def _load_sections(names: tuple[str, ...]) -> list:
    mods = []
    for name in names:
        try:
            mods.append(importlib.import_module(name))
        except ModuleNotFoundError as err:  # a section not written yet
            if err.name != name:
                raise
    return mods


def versions() -> dict[str, str]:
    """Versions of the pieces that determine the numbers."""
    import jax
    import numpy as np

    from vipcore import __version__

    return {
        "vipcore": __version__,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "device": str(jax.devices()[0].device_kind),
        "platform": jax.default_backend(),
    }


def _check_args(seed, mode, trials) -> int:
    if mode not in ("quick", "default", "full"):
        raise ValueError(f"mode must be 'quick', 'default' or 'full'; got {mode!r}")
    seed = check_int("seed", seed, minimum=0)
    if seed > MAX_SEED:
        raise ValueError(f"seed must lie in [0, {MAX_SEED}]; got {seed}")
    if trials is not None:
        check_int("trials", trials, minimum=2)
    return seed


def run_verify(
    *,
    out: Path,
    seed: int = 0,
    mode: str = "default",
    trials: int | None = None,
    sections: tuple[str, ...] = SECTIONS,
    progress=None,
) -> tuple[bool, list[SectionResult]]:
    """Run the report sections and write ``report.md`` and ``results.json``.

    Arguments are checked before anything is written. ``sections`` are module
    names (default: all of :data:`SECTIONS`); a subset keeps the thresholds of
    the full report (each section's share of :data:`RUN_FWER` is always
    ``1 / len(SECTIONS)``), so a section passes or fails the same way alone.
    Returns ``(all_passed, section_results)``.
    """
    seed = _check_args(seed, mode, trials)
    mods = _load_sections(sections)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a directory; {out} is a file")
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda msg: None)
    cfg = VerifyConfig(
        seed=seed, mode=mode, trials=trials, out=out,
        n_sections=max(len(_load_sections(SECTIONS)), len(mods), 1), progress=say,
    )
    results: list[SectionResult] = []
    timings = {}
    t0, c0 = time.perf_counter(), time.process_time()
    for i, mod in enumerate(mods, 1):
        say(f"[{i}/{len(mods)}] {mod.__name__.rsplit('.', 1)[-1]} ...")
        t1 = time.perf_counter()
        res = mod.section(cfg)
        timings[res.title] = time.perf_counter() - t1
        say(
            f"[{i}/{len(mods)}] {res.title}: "
            f"{sum(c.passed for c in res.checks)}/{len(res.checks)} checks passed "
            f"({timings[res.title]:.1f} s)"
        )
        results.append(res)
    ok = all(r.passed for r in results)
    machine = {"wall_s": time.perf_counter() - t0,
               "cpu_s": time.process_time() - c0,
               "loadavg": list(os.getloadavg()), "cpu_count": os.cpu_count()}
    _write(out, cfg, results, ok, timings, machine)
    return ok, results


def _write(out: Path, cfg: VerifyConfig, results, ok: bool, timings, machine
           ) -> None:
    vers = versions()
    n_checks = sum(len(r.checks) for r in results)
    n_pass = sum(c.passed for r in results for c in r.checks)
    lines = [
        "# vipcore verify",
        "",
        f"**Result: {'PASS' if ok else 'FAIL'}** — {n_pass}/{n_checks} checks passed.",
        "",
        f"Settings: mode `{cfg.mode}`, seed {cfg.seed}, trials "
        f"{cfg.trials if cfg.trials is not None else 'per section default'}. "
        "Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()) + ". "
        f"Time: {machine['wall_s']:.0f} s wall, {machine['cpu_s']:.0f} s CPU on "
        f"{machine['cpu_count']} cores, load average "
        f"{machine['loadavg'][0]:.1f} at the end.",
        "",
        "Thresholds: every z threshold is Bonferroni-corrected so that a correct "
        f"implementation fails this whole run with probability below {RUN_FWER:g} "
        f"(split equally over the {cfg.n_sections} sections of the full report), "
        "for any seed. Exact rows (no Monte Carlo) compare a library function with "
        "an independent oracle at a tolerance set by the working precision. A "
        "negative control *passes* when it detects the broken assumption.",
        "",
    ]
    for r in results:
        lines += [f"## {r.title}", "", f"_Time: {timings[r.title]:.1f} s._", ""]
        if r.markdown:
            lines += [r.markdown.strip(), ""]
        if r.checks:
            lines += [format_table(r.checks), ""]
        for fname, caption in r.figures:
            lines += [f"![{caption}]({fname})", "", f"*{caption}*", ""]
    (out / "report.md").write_text("\n".join(lines))
    payload = {
        "passed": ok,
        "config": {"seed": cfg.seed, "mode": cfg.mode, "trials": cfg.trials},
        "run_fwer": RUN_FWER,
        "versions": vers,
        "timings_s": timings,
        "machine": machine,
        "sections": {
            r.title: {
                "passed": r.passed,
                "checks": [c.to_json() for c in r.checks],
                "figures": [f for f, _ in r.figures],
                "data": r.data,
            }
            for r in results
        },
    }
    (out / "results.json").write_text(json.dumps(jsonable(payload), indent=2))
