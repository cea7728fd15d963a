"""From training results to the pre-registered analysis (a JSON-ready dict).

:func:`summarize` applies :mod:`.analysis` to the output of
:func:`~vipcore._src.apps.simulate.train.run_training`: the primary metric per
seed, the ladder fit, the validity gates, the confirmatory tests (with the
best vipcore planner and the DAPO variant chosen on the calibration run when
one is given) and every secondary metric, each computed per seed first.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vipcore._src.apps.simulate import analysis as an

__all__ = ["summarize", "arm_metrics", "choose_arms", "COMPARATORS"]

#: The confirmatory comparators: (name in the report, arms of the family).
COMPARATORS = (("uniform", ("uniform",)), ("DAPO", ("dapo", "dapo_steps")),
               ("GRESO", ("greso",)), ("MoPPS", ("mopps",)))


def _window(results) -> tuple[int, int]:
    cfg = results["config"]
    lo, hi = cfg["window"]
    return int(round(lo * cfg["steps"])), int(round(hi * cfg["steps"]))


def arm_metrics(results: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per arm, the per-seed primary metric."""
    return {m: an.primary_metric(d["accuracy"], results["eval_steps"],
                                 _window(results))
            for m, d in results["methods"].items()}


def _ladder(results, metric) -> dict[int, np.ndarray]:
    cfg = results["config"]
    out = {}
    for name, arm in results["arms"].items():
        if arm["role"] in ("baseline", "ladder"):
            out[arm["n_bar"] or cfg["rollouts_per_prompt"]] = metric[name]
    return out


def choose_arms(results: dict[str, Any], calibration: dict[str, Any] | None
                ) -> dict[str, Any]:
    """The best vipcore planner and each comparator family's variant.

    With ``calibration`` (results on separate seeds) the choice is made there,
    as the protocol fixes; without it, on the same seeds (exploratory).
    """
    source = calibration if calibration is not None else results
    metric = arm_metrics(source)
    planners = [m for m, a in results["arms"].items() if a["role"] == "planner"]
    chosen = {"exploratory": calibration is None,
              "best": an.choose_best(metric, planners),
              "candidates": {m: float(np.mean(metric[m])) for m in planners
                             if m in metric},
              "comparators": {}}
    for label, family in COMPARATORS:
        present = [m for m in family if m in results["methods"]]
        if present:
            pick = an.choose_best(metric, present) or present[0]
            chosen["comparators"][label] = pick
    return chosen


def _confirmatory(metric, chosen) -> list[dict[str, Any]]:
    best = chosen["best"]
    if best is None:
        return []
    rows = []
    for label, arm in chosen["comparators"].items():
        t = an.paired_t(metric[best] - metric[arm])
        half = an.t_quantile(0.975, t["n"] - 1) * t["se"] if t["n"] > 1 else math.nan
        rows.append({"comparison": f"{best} vs {label}", "arm": arm, **t,
                     "ci": [t["mean"] - half, t["mean"] + half]})
    for row, adj in zip(rows, an.holm([r["p"] for r in rows]), strict=True):
        row["p_holm"] = adj
        row["reject"] = bool(math.isfinite(adj) and adj < an.ALPHA)
    return rows


def _gates(results, metric, fit) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ladder = _ladder(results, metric)
    base = results["config"]["rollouts_per_prompt"]
    top = max(ladder) if ladder else None
    if top is not None and top > base and base in ladder:
        t = an.paired_t(ladder[top] - ladder[base])
        out["ladder"] = {"rungs": [base, top], **t,
                         "passed": bool(t["mean"] > 0 and t["p"] < an.GATE_P)}
    if fit is not None and "vip_oracle" in metric and "uniform" in metric:
        d_min = fit["beta"] * math.log(an.SMALLEST_MULTIPLIER)
        t = an.paired_t(metric["vip_oracle"] - metric["uniform"])
        out["headroom"] = {"delta_min": d_min, **t,
                           "below_smallest_effect": bool(t["mean"] < d_min)}
    return out


def _ratio_test(num, den) -> dict[str, float]:
    t = an.paired_t(an.per_seed_log_ratio(num, den))
    return {"ratio": math.exp(t["mean"]) if math.isfinite(t["mean"]) else math.nan,
            "log_se": t["se"], "p": t["p"]}


def _secondary(results, m, d, metric, ladder) -> dict[str, Any]:
    cfg = results["config"]
    acc = np.asarray(d["accuracy"], np.float64)
    rt = [r for r in d["rollouts_to_target"] if r is not None]
    arm = results["arms"][m]
    s: dict[str, Any] = {
        "primary_mean": float(metric[m].mean()),
        "primary_sd": float(metric[m].std(ddof=1)) if acc.shape[0] > 1 else 0.0,
        "final_mean": float(acc[:, -1].mean()),
        "final_std": float(acc[:, -1].std(ddof=1)) if acc.shape[0] > 1 else 0.0,
        "reached_target": len(rt), "seeds": int(acc.shape[0]),
        "rollouts_to_target_median": float(np.median(rt)) if rt else None,
        "zero_var_mean": float(np.mean(d["zero_var"])),
        "rollouts_per_round": sorted({int(x) for x in np.unique(d["rollouts"])}),
        "updates_mean": float(np.sum(d["updated"], axis=1).mean()),
        "objective_ratio": float(np.mean(np.sum(d["objective"], 1)
                                         / np.sum(d["objective_uniform"], 1))),
        "starvation_rate": float(np.sum(d["starved"]) / max(np.sum(d["mid"]), 1)),
        "saturated_share": float(np.mean(d["saturated_share"])),
        "filled_mean": float(np.mean(d["filled"])),
    }
    if arm["learner"] != "dapo":
        g = np.asarray(d["gradvar"])
        s["gradvar_ratio"] = _ratio_test(g[:, :, 0], g[:, :, 2])
        s["gradvar_trace_mean"] = float(g[:, :, 0].mean())
    if arm["source"] in ("predictor", "posterior"):
        s["mae"] = float(np.mean(d["abs_err"]))
        s["brier"] = float(np.mean(d["brier"]))
        s["ece"] = float(np.mean(d["ece"]))
    if "uniform" in metric and m != "uniform":
        s["vs_uniform"] = an.paired_t(metric[m] - metric["uniform"])
        if len(ladder) >= 2 and cfg["rollouts_per_prompt"] in ladder:
            s["multiplier"] = an.multiplier(metric[m] - metric["uniform"], ladder)
    s["vs_uniform_final"] = an.paired_t(acc[:, -1] - np.asarray(
        results["methods"]["uniform"]["accuracy"])[:, -1]) \
        if "uniform" in results["methods"] and m != "uniform" else None
    return s


def summarize(results: dict[str, Any], *, calibration: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    """The pre-registered analysis of ``results`` (see :mod:`.analysis`).

    Returns a dict with ``window``, ``ladder`` (the fit), ``gates``,
    ``chosen`` (best planner and comparators, and whether the choice was made
    on calibration seeds), ``confirmatory`` (tests with Holm-adjusted p),
    ``power`` (of the best-vs-uniform test at the smallest effect, from the
    measured spread) and ``methods`` (secondary metrics per arm).
    """
    metric = arm_metrics(results)
    ladder = _ladder(results, metric)
    fit = an.ladder_fit(ladder) if len(ladder) >= 2 else None
    chosen = choose_arms(results, calibration)
    out: dict[str, Any] = {
        "window": list(_window(results)), "ladder": fit,
        "gates": _gates(results, metric, fit), "chosen": chosen,
        "confirmatory": _confirmatory(metric, chosen),
        "methods": {m: _secondary(results, m, d, metric, ladder)
                    for m, d in results["methods"].items()},
    }
    best = chosen["best"]
    if fit is not None and best and "uniform" in metric and fit["beta"] > 0:
        sd = float(np.std(metric[best] - metric["uniform"], ddof=1))
        d_min = fit["beta"] * math.log(an.SMALLEST_MULTIPLIER)
        n = len(metric[best])
        out["power"] = {"sd": sd, "delta_min": d_min, "seeds": n,
                        "power": an.paired_power(n, d_min, sd, an.ALPHA / 4)
                        if sd > 0 and n > 2 else math.nan}
    return out
