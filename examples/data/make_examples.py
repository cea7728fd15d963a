"""Write the example files of ``docs/data.md`` (deterministic; seed 0).

Each file has the shape a real tool writes, with made-up prompts and scores:

* ``trl_completions.jsonl``: a TRL ``GRPOTrainer`` completion log (one row
  per completion: ``step, prompt, completion, accuracy_reward,
  format_reward, reward, advantage``), 2 steps x 6 prompts x 8 completions;
* ``verl_val_generations.jsonl``: a verl validation dump (``input, output,
  gts, score, step, acc``) with rewards in {-1, +1} and ``acc`` a boolean,
  6 prompts x 8 samples;
* ``rollouts.csv``: a plain CSV ``question_id,sample_idx,reward``, 8
  questions x 8 samples, rewards 0/1;
* ``graded.jsonl``: 50 prompts with graded scores in [0, 1] (8 each), a
  third of them barely varying (``prompt_id, scores``).

Run from the repository root: ``python examples/data/make_examples.py``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
QUESTIONS = [
    ("What is 17 * 23?", "391"),
    ("Solve for x: 3x + 5 = 20.", "5"),
    ("How many primes are there below 30?", "10"),
    ("What is the sum of the interior angles of a hexagon, in degrees?", "720"),
    ("Compute 2^10 - 1.", "1023"),
    ("A train travels 180 km in 2.5 hours. What is its speed in km/h?", "72"),
    ("What is the greatest common divisor of 84 and 126?", "42"),
    ("How many ways can 4 books be arranged on a shelf?", "24"),
]


def _completion(rng, answer: str, ok: bool) -> str:
    shown = answer if ok else str(int(answer) + int(rng.integers(1, 9)))
    return f"<think>Working step by step.</think>\nThe answer is \\boxed{{{shown}}}."


def trl(rng) -> list[dict]:
    p = [0.0, 0.35, 0.6, 1.0, 0.15, 0.8]
    rows = []
    for step, lift in ((10, 0.0), (20, 0.15)):
        for (q, a), pq in zip(QUESTIONS[:6], p, strict=True):
            pq = min(1.0, pq + lift) if 0 < pq < 1 else pq
            acc = (rng.random(8) < pq).astype(float)
            fmt = np.where(rng.random(8) < 0.9, 0.5, 0.0)
            reward = acc + fmt
            adv = (reward - reward.mean()) / (reward.std(ddof=1) + 1e-4)
            for j in range(8):
                rows.append({"step": step, "prompt": q,
                             "completion": _completion(rng, a, bool(acc[j])),
                             "accuracy_reward": float(acc[j]),
                             "format_reward": float(fmt[j]),
                             "reward": float(reward[j]),
                             "advantage": round(float(adv[j]), 4)})
    return rows


def verl(rng) -> list[dict]:
    p = [0.0, 0.25, 0.5, 0.9, 1.0, 0.6]
    rows = []
    for (q, a), pq in zip(QUESTIONS[2:], p, strict=True):
        for _ in range(8):
            ok = bool(rng.random() < pq)
            rows.append({"input": f"<|user|>\n{q}\n<|assistant|>\n",
                         "output": _completion(rng, a, ok), "gts": a,
                         "score": 1.0 if ok else -1.0, "step": 150, "acc": ok})
    return rows


def plain_csv(rng) -> list[list]:
    p = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0, 0.5]
    out = [["question_id", "sample_idx", "reward"]]
    for i, pq in enumerate(p):
        for j in range(8):
            out.append([f"q{i:03d}", j, int(rng.random() < pq)])
    return out


def graded(rng) -> list[dict]:
    rows = []
    for i in range(50):
        centre = rng.uniform(0.1, 0.9)
        spread = 0.02 if i % 3 == 0 else 0.3
        s = np.clip(centre + rng.normal(0, spread, 8), 0, 1).round(3)
        rows.append({"prompt_id": f"g{i:02d}", "scores": s.tolist()})
    return rows


def main() -> None:
    rng = np.random.default_rng(0)
    for name, rows in (("trl_completions.jsonl", trl(rng)),
                       ("verl_val_generations.jsonl", verl(rng))):
        (HERE / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    with open(HERE / "rollouts.csv", "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(plain_csv(rng))
    (HERE / "graded.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in graded(rng)))


if __name__ == "__main__":
    main()
