"""``vipcore simulate`` as a function: calibrate, compare, measure, report."""

from __future__ import annotations

from pathlib import Path

from vipcore._src.apps.simulate.config import SimConfig

__all__ = ["simulate"]

#: Assumption-measurement sizes: (questions, rollouts, props prompts, replicates).
_ASSUME = {"quick": (256, 16, 32, 1000), "default": (600, 16, 64, 4000)}


def simulate(cfg: SimConfig, out, *, assumptions: bool = True, quick: bool = False,
             command: str = "", progress=None) -> dict:
    """Train every arm on the comparison and calibration seeds, measure the
    assumptions, and write the report into ``out`` (the best planner and the
    DAPO variant are chosen on the calibration seeds). Returns the results
    dict (with ``"assumptions"``)."""
    import jax

    from vipcore._src.apps.simulate.assumptions import measure_checkpoints
    from vipcore._src.apps.simulate.report import write_report
    from vipcore._src.apps.simulate.train import make_tasks, run_training

    say = progress or (lambda s: None)
    cfg.validate()
    say(f"{cfg.seeds} comparison seeds from {cfg.seed_offset}, "
        f"{cfg.calibration_seeds} calibration seeds")
    results = run_training(cfg, progress=say)
    rows = []
    if assumptions and results["_checkpoints"]:
        nq, nr, pp, reps = _ASSUME["quick" if quick else "default"]
        _, evalt = make_tasks(cfg)
        rows = measure_checkpoints(
            results["_checkpoints"], evalt, total_steps=cfg.steps,
            num_questions=nq, rollouts=nr, props_prompts=pp,
            props_replicates=reps, props_n=cfg.rollouts_per_prompt,
            seed=cfg.task_seed, filler_tokens=cfg.filler_tokens, progress=say)
    dev = jax.devices()[0]
    write_report(results, rows, Path(out), calibration=results["calibration"],
                 command=command, device=f"{dev.platform}: {dev.device_kind}",
                 quick=quick)
    results["assumptions"] = rows
    return results
