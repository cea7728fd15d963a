"""``vipcore simulate`` as a function: train, measure the assumptions, report."""

from __future__ import annotations

from pathlib import Path

__all__ = ["simulate"]

#: Assumption-measurement sizes: (questions, rollouts, props prompts, replicates).
_ASSUME = {"quick": (256, 16, 32, 1000), "default": (600, 16, 64, 4000)}


def simulate(cfg, out, *, assumptions: bool = True, quick: bool = False,
             command: str = "", progress=None) -> dict:
    """Run the training comparison and the assumption measurements; write the
    report into ``out``. Returns the results dict (with ``"assumptions"``)."""
    import jax

    from vipcore._src.apps.simulate.assumptions import measure_checkpoints
    from vipcore._src.apps.simulate.report import write_report
    from vipcore._src.apps.simulate.train import make_tasks, run_training

    say = progress or (lambda s: None)
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
    write_report(results, rows, Path(out), command=command,
                 device=f"{dev.platform}: {dev.device_kind}")
    results["assumptions"] = rows
    return results
