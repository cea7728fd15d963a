"""What a trainer's loop looks like with vipcore's Planner (runs in seconds).

Rewards are synthetic (Bernoulli draws from drifting success probabilities,
a drifting synthetic problem); in a real trainer they come from the verifier.
Both layouts are shown: verl-style (each prompt repeated ``n_q`` times, flat
rewards) and TRL-style (fixed group width ``U``, padded rewards + mask). Half
way through, new prompts join the dataset (``Planner.add``); the run ends
with a save/load round trip.

    python examples/trainer_loop.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vipcore._src.apps.verify.synthetic import drifting_problem, success_probs  # noqa: E402
from vipcore.planner import (  # noqa: E402
    Planner,
    group_rewards,
    padded_mask,
    repeat_index,
)


def main(steps: int = 12, batch: int = 64, per_prompt: int = 8) -> None:
    prob = drifting_problem(0, num_prompts=2048)
    uids = [f"prompt-{i:05d}" for i in range(2048)]       # dataset uids
    first = 1920                                            # 128 arrive later
    planner = Planner(prob.embeddings[:first], ids=uids[:first],
                      estimator="rloo", upper=16)           # predictor "beta"
    rng = np.random.default_rng(0)
    order = rng.permutation(first)
    budget = batch * per_prompt
    for step in range(steps):
        if step == steps // 2:                              # new prompts join
            planner.add(uids[first:], prob.embeddings[first:])
            order = rng.permutation(2048)
        rows = order[(step * batch) % len(order):][:batch]
        batch_uids = [uids[i] for i in rows]
        counts = planner.plan(batch_uids, budget)            # n_q per prompt

        # --- generation + scoring (synthetic here) ---------------------------
        p = success_probs(prob, step, rows)
        if step % 2 == 0:   # verl-style: repeat prompt q n_q times
            owner = repeat_index(counts)                      # prompt of rollout
            flat = (rng.uniform(size=owner.size) < p[owner]).astype(float)
            metrics = planner.observe(batch_uids, group_rewards(flat, counts))
        else:               # TRL-style: (B, U) padded with NaN + mask
            mask = padded_mask(counts, 16)
            rewards = np.where(mask, rng.uniform(size=mask.shape) < p[:, None],
                               np.nan).astype(float)
            metrics = planner.observe(batch_uids, rewards, mask=mask)
        print(f"step {step:2d}  "
              f"zero-std {metrics['frac_reward_zero_std']:.2f} "
              f"(pred {metrics['vip/pred_frac_zero_std']:.2f})  "
              f"mean p {metrics['vip/pred_mean_p']:.2f}  "
              f"n in [{metrics['vip/alloc_min']:.0f}, {metrics['vip/alloc_max']:.0f}]  "
              f"var ratio {metrics['vip/pred_var_ratio_vs_uniform']:.3f}  "
              f"saved {metrics['vip/rollouts_saved_vs_uniform']:+.0f} rollouts")

    with tempfile.TemporaryDirectory() as tmp:           # checkpoint + resume
        path = Path(tmp) / "planner.npz"
        planner.save(path)
        resumed = Planner.load(path)
        assert np.array_equal(resumed.predict(uids[-5:]), planner.predict(uids[-5:]))
        print(f"saved and reloaded {path.name} ({path.stat().st_size / 1e6:.1f} MB, "
              f"{resumed.num_prompts} prompts)")


if __name__ == "__main__":
    main()
