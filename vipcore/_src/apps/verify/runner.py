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
import platform
import time
from pathlib import Path

from vipcore._src._serialize import jsonable
from vipcore._src.apps.verify.report import (
    RUN_FWER,
    SectionResult,
    VerifyConfig,
    format_table,
)

__all__ = ["SECTIONS", "run_verify", "versions"]

#: Report sections, in order. Each module defines ``section(cfg)``.
SECTIONS: tuple[str, ...] = (
    "vipcore._src.apps.verify.variance",
    "vipcore._src.apps.verify.stats",
    "vipcore._src.apps.verify.prediction",
    "vipcore._src.apps.verify.sweep",
    "vipcore._src.apps.verify.grpo",
)


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

    Returns ``(all_passed, section_results)``.
    """
    if mode not in ("quick", "default", "full"):
        raise ValueError(f"mode must be 'quick', 'default' or 'full'; got {mode!r}")
    if trials is not None and trials < 2:
        raise ValueError(f"trials must be >= 2; got {trials}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mods = _load_sections(sections)
    say = progress or (lambda msg: None)
    cfg = VerifyConfig(
        seed=seed, mode=mode, trials=trials, out=out,
        n_sections=max(len(mods), 1), progress=say,
    )
    results: list[SectionResult] = []
    timings = {}
    for i, mod in enumerate(mods, 1):
        say(f"[{i}/{len(mods)}] {mod.__name__.rsplit('.', 1)[-1]} ...")
        t0 = time.perf_counter()
        res = mod.section(cfg)
        timings[res.title] = time.perf_counter() - t0
        say(
            f"[{i}/{len(mods)}] {res.title}: "
            f"{sum(c.passed for c in res.checks)}/{len(res.checks)} checks passed "
            f"({timings[res.title]:.1f} s)"
        )
        results.append(res)
    ok = all(r.passed for r in results)
    _write(out, cfg, results, ok, timings)
    return ok, results


def _write(out: Path, cfg: VerifyConfig, results, ok: bool, timings) -> None:
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
        "Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()) + ".",
        "",
        "Thresholds: every z threshold is Bonferroni-corrected so that a correct "
        f"implementation fails this whole run with probability below {RUN_FWER:g} "
        f"(split equally over {cfg.n_sections} sections), for any seed. A negative "
        "control *passes* when it detects the broken assumption.",
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
