"""Checks, report sections and the honest z threshold used by ``vipcore verify``.

A *section* is one function ``section(cfg: VerifyConfig) -> SectionResult``
in its own module, listed in :data:`vipcore._src.apps.verify.runner.SECTIONS`. Adding a
section to the report is adding a module and one line there.

Thresholds: a run makes many comparisons, each a z-score ``(empirical -
theory) / stderr``. With ``m`` checks in a section and a family-wise false
failure rate ``alpha`` for that section, the two-sided Bonferroni threshold
``z* = Phi^{-1}(1 - alpha / (2 m))`` makes a correct implementation fail with
probability below ``alpha`` for *any* seed (up to the normal approximation of
each estimate). ``VerifyConfig.section_fwer`` splits the run's 1e-6 across
sections.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

__all__ = [
    "RUN_FWER",
    "Check",
    "SectionResult",
    "VerifyConfig",
    "bonferroni_z",
    "z_check",
    "format_table",
]

#: Probability that a correct implementation fails a whole ``vipcore verify`` run.
RUN_FWER = 1e-6


def bonferroni_z(fwer: float, m: int) -> float:
    """Two-sided z threshold for ``m`` checks at family-wise error ``fwer``."""
    if not 0 < fwer < 1:
        raise ValueError(f"fwer must lie in (0, 1); got {fwer}")
    if m < 1:
        raise ValueError(f"m must be >= 1; got {m}")
    return NormalDist().inv_cdf(1 - fwer / (2 * m))


@dataclass(frozen=True)
class Check:
    """One line of the report table.

    Attributes:
      name: what is checked, short.
      passed: for a positive check, the theory was not rejected; for a negative
        control (``negative=True``), the broken assumption *was* detected.
      theory, empirical, stderr: the compared numbers (NaN where not numeric).
      z: ``(empirical - theory) / stderr`` (NaN where not a z test).
      threshold: the z (or other) threshold the decision used.
      negative: True for negative controls, which must fail their hypothesis.
      note: free text (the rule used when not a z test, the power, ...).
    """

    name: str
    passed: bool
    theory: float = math.nan
    empirical: float = math.nan
    stderr: float = math.nan
    z: float = math.nan
    threshold: float = math.nan
    negative: bool = False
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in d.items()}


def z_check(
    name: str,
    theory: float,
    empirical: float,
    stderr: float,
    threshold: float,
    *,
    negative: bool = False,
    note: str = "",
) -> Check:
    """A z-test check: positive passes when ``|z| <= threshold``; a negative
    control passes when ``|z| > threshold`` (the wrong theory is rejected)."""
    if stderr > 0:
        z = (empirical - theory) / stderr
    elif empirical == theory:
        z = 0.0
    else:
        z = math.copysign(math.inf, empirical - theory)
    reject = abs(z) > threshold
    return Check(
        name=name,
        passed=reject if negative else not reject,
        theory=float(theory),
        empirical=float(empirical),
        stderr=float(stderr),
        z=float(z),
        threshold=float(threshold),
        negative=negative,
        note=note,
    )


@dataclass
class SectionResult:
    """What one section contributes to the report.

    Attributes:
      title: the section heading.
      checks: table rows; the run fails if any has ``passed=False``.
      markdown: body text (tables, explanations) placed under the heading.
      figures: ``(file name relative to the output dir, caption)`` pairs; the
        section writes the files itself into ``cfg.out``.
      data: anything JSON-serialisable, stored under the section's key in
        ``results.json``.
    """

    title: str
    checks: list[Check] = field(default_factory=list)
    markdown: str = ""
    figures: list[tuple[str, str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


@dataclass(frozen=True)
class VerifyConfig:
    """Settings every section receives.

    Attributes:
      seed: base seed; sections derive their keys from it deterministically.
      mode: ``"quick"`` (tests, seconds), ``"default"`` (the main job, under
        two minutes in all on 2 CPU cores) or ``"full"`` (minutes, tighter).
      trials: overrides a section's Monte-Carlo trial count when not None.
      out: output directory (exists when sections run).
      n_sections: how many sections share :data:`RUN_FWER`.
      progress: called with one-line progress messages.
    """

    seed: int = 0
    mode: str = "default"
    trials: int | None = None
    out: Path = Path("vipcore-verify")
    n_sections: int = 1
    progress: Callable[[str], None] = lambda msg: None

    @property
    def section_fwer(self) -> float:
        """The share of :data:`RUN_FWER` each section may spend."""
        return RUN_FWER / self.n_sections

    def pick(self, quick: Any, default: Any, full: Any) -> Any:
        """Choose a setting by mode."""
        return {"quick": quick, "default": default, "full": full}[self.mode]


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    ax = abs(x)
    if ax != 0 and (ax < 1e-3 or ax >= 1e4):
        return f"{x:.3e}"
    return f"{x:.4f}"


def format_table(checks: list[Check]) -> str:
    """A Markdown table: check, theory, empirical ± s.e., z, threshold, result."""
    rows = [
        "| check | theory | empirical ± s.e. | z | threshold | result |",
        "|---|---|---|---|---|---|",
    ]
    for c in checks:
        emp = _fmt(c.empirical)
        if math.isfinite(c.stderr):
            emp += f" ± {_fmt(c.stderr)}"
        verdict = "PASS" if c.passed else "FAIL"
        if c.negative:
            verdict += " (negative control: detected)" if c.passed else (
                " (negative control: NOT detected)"
            )
        name = c.name + (f" — {c.note}" if c.note else "")
        rows.append(
            f"| {name} | {_fmt(c.theory)} | {emp} | {_fmt(c.z)} | "
            f"{_fmt(c.threshold)} | {verdict} |"
        )
    return "\n".join(rows)
