r"""Settings of ``vipcore simulate``: one frozen dataclass, fixed in advance.

The hyper-parameters of the task and the policy (``K = 8``, ``D = 10``, an
MLP of 2 x 64 units, Adam at ``3e-3``, ``B = 32`` prompts, ``n_bar = 8``,
``L = 3``, ``U = 32``) were chosen on the uniform baseline alone, before any
comparison of allocation methods, and are not tuned on the comparison.

Two task shapes share every other setting (:data:`TASKS`): ``"max8"`` (up to
8 numbers; an untrained policy succeeds with probability 1/2 down to 1/8)
and ``"max16"`` (up to 16 numbers: a harder task with a wider spread of
difficulty, 1/2 down to 1/16).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = [
    "SimConfig",
    "QUICK",
    "FULL",
    "TASKS",
    "CALIBRATION_SEED_OFFSET",
    "with_task",
]

#: Task shapes: ``num_slots`` ``K``, ``num_values`` ``D`` and the held-out
#: accuracy used for "rollouts to reach the target".
TASKS: dict[str, dict] = {
    "max8": dict(num_slots=8, num_values=10, target_accuracy=0.6),
    "max16": dict(num_slots=16, num_values=10, target_accuracy=0.5),
}

#: Calibration seeds are numbered from here, disjoint from the comparison's
#: seeds ``seed_offset, ..., seed_offset + seeds - 1``.
CALIBRATION_SEED_OFFSET = 1_000_000


@dataclass(frozen=True)
class SimConfig:
    """Everything that defines a simulation.

    Attributes:
      task: a name in :data:`TASKS` (recorded; :func:`with_task` applies it).
      num_train, num_eval: training pool and held-out set sizes.
      num_slots, num_values: task ``K`` and ``D`` (see :mod:`.task`).
      task_seed: seed of the generated task (train and eval are disjoint draws).
      embedding_dim: width of the frozen random-network prompt embedding.
      hidden, depth: MLP width and number of hidden layers.
      learning_rate: Adam step size; ``max_grad_norm`` optional global-norm clip.
      batch_size: ``B`` prompts per round.
      rollouts_per_prompt: ``n_bar``; the per-round budget is ``C = B n_bar``.
      lower, upper: per-prompt bounds ``L <= n_q <= U`` for the allocators.
      steps: rounds per run.
      seeds: paired runs per arm; ``seed_offset``: the first seed's number.
      estimator: ``"rloo"``, ``"drgrpo"`` or ``"grpo"`` (GRPO allocates with
        the RLOO objective).
      arms: names of the arms to run (see :mod:`.arms`); empty = all.
      ladder: the uniform ``n_bar`` values of the positive control.
      eval_every: rounds between held-out evaluations (divides ``steps``).
      gradvar_every, gradvar_replicates: rounds between gradient-variance
        measurements and the independent rollout draws per measurement.
      target_accuracy: held-out accuracy for "rollouts to reach target".
      window: the primary metric's span as fractions of ``steps``: the mean
        held-out accuracy over the evaluations at rounds in
        ``[window[0] * steps, window[1] * steps]`` (rounds 150-300 of 300).
      checkpoints: fractions of training at which the uniform seed's policy is
        saved for the assumption tests.
      filler_tokens, filler_vocab: reward-irrelevant tokens per rollout from
        a second head (0 = the one-token policy).
      calibration_seeds: seeds of the calibration run that picks the best
        vipcore planner before the comparison (0 = none);
        ``calibration_offset``: the first calibration seed's number.
    """

    task: str = "max8"
    num_train: int = 1024
    num_eval: int = 512
    num_slots: int = 8
    num_values: int = 10
    task_seed: int = 0
    embedding_dim: int = 64
    hidden: int = 64
    depth: int = 2
    learning_rate: float = 3e-3
    max_grad_norm: float | None = None
    batch_size: int = 32
    rollouts_per_prompt: int = 8
    lower: int = 3
    upper: int = 32
    steps: int = 300
    seeds: int = 256
    seed_offset: int = 0
    estimator: str = "rloo"
    arms: tuple[str, ...] = ()
    ladder: tuple[int, ...] = (6, 8, 11, 16)
    eval_every: int = 5
    gradvar_every: int = 20
    gradvar_replicates: int = 16
    target_accuracy: float = 0.6
    window: tuple[float, float] = (0.5, 1.0)
    checkpoints: tuple[float, ...] = (0.0, 0.5, 1.0)
    filler_tokens: int = 0
    filler_vocab: int = 16
    calibration_seeds: int = 32
    calibration_offset: int = CALIBRATION_SEED_OFFSET

    @property
    def budget(self) -> int:
        """Rollouts per round, ``C = B * n_bar``."""
        return self.batch_size * self.rollouts_per_prompt

    @property
    def alloc_estimator(self) -> str:
        """Objective used by the allocators (``rloo`` for GRPO)."""
        return "drgrpo" if self.estimator == "drgrpo" else "rloo"

    @property
    def window_rounds(self) -> tuple[int, int]:
        """The primary metric's rounds ``[start, end]``."""
        return (int(round(self.window[0] * self.steps)),
                int(round(self.window[1] * self.steps)))

    @property
    def eval_steps(self) -> list[int]:
        """Rounds after which held-out accuracy is measured (0 = the start)."""
        return list(range(0, self.steps + 1, self.eval_every))

    def validate(self) -> SimConfig:
        """Raise ``ValueError`` naming the setting; return ``self``."""
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {tuple(TASKS)}; got {self.task!r}")
        if self.estimator not in ("rloo", "drgrpo", "grpo"):
            raise ValueError("estimator must be one of 'rloo', 'drgrpo', 'grpo'; "
                             f"got {self.estimator!r}")
        for name in ("num_train", "num_eval", "batch_size", "steps", "seeds",
                     "eval_every", "gradvar_every", "hidden", "depth",
                     "embedding_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        for name in ("seed_offset", "calibration_seeds", "calibration_offset",
                     "filler_tokens"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")
        a, b = self.seed_offset, self.calibration_offset
        if max(a + self.seeds, b + self.calibration_seeds) > 2**31 - 1:
            raise ValueError("seed numbers must stay below 2**31 - 1")
        if a < b + self.calibration_seeds and b < a + self.seeds:
            raise ValueError(
                f"the comparison seeds [{a}, {a + self.seeds}) and the calibration "
                f"seeds [{b}, {b + self.calibration_seeds}) must not overlap")
        lmin = 3 if self.alloc_estimator == "drgrpo" else 2
        if not lmin <= self.lower <= self.rollouts_per_prompt <= self.upper:
            raise ValueError(
                f"need {lmin} <= lower <= rollouts_per_prompt <= upper; got lower="
                f"{self.lower}, rollouts_per_prompt={self.rollouts_per_prompt}, "
                f"upper={self.upper}")
        if not self.ladder or any(not 2 <= n <= self.upper for n in self.ladder):
            raise ValueError(f"ladder values must lie in [2, upper={self.upper}]; "
                             f"got {self.ladder}")
        if self.steps % self.eval_every:
            raise ValueError(f"eval_every must divide steps={self.steps}; got "
                             f"{self.eval_every}")
        if 4 * self.batch_size > self.num_train:
            raise ValueError("batch_size must be <= num_train / 4 (the selection "
                             f"arms draw 4B candidates); got {self.batch_size}")
        if self.filler_vocab < 2:
            raise ValueError(f"filler_vocab must be >= 2; got {self.filler_vocab}")
        if self.gradvar_replicates < 2:
            raise ValueError("gradvar_replicates must be >= 2; got "
                             f"{self.gradvar_replicates}")
        if not 0 < self.target_accuracy < 1:
            raise ValueError("target_accuracy must lie in (0, 1); got "
                             f"{self.target_accuracy}")
        lo, hi = self.window
        if not 0 <= lo < hi <= 1:
            raise ValueError("window must satisfy 0 <= start < end <= 1 "
                             f"(fractions of steps); got {self.window}")
        return self


def with_task(cfg: SimConfig, task: str) -> SimConfig:
    """``cfg`` with the task shape ``task`` (its ``K``, ``D`` and target)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {tuple(TASKS)}; got {task!r}")
    return dataclasses.replace(cfg, task=task, **TASKS[task])


#: The confirmatory setting (one H100/H200): 256 paired seeds, 300 rounds.
FULL: dict = dict(seeds=256, calibration_seeds=32)

#: The ``--quick`` smoke test (this 2-core CPU): every arm, 8 seeds, 300
#: rounds, 4 calibration seeds. It has no power to detect the effects the
#: protocol is about and is reported as a smoke test. Its seeds are disjoint
#: from the protocol's comparison and calibration seeds, so a smoke test never
#: looks at them.
QUICK: dict = dict(seeds=8, calibration_seeds=4, gradvar_replicates=8,
                   seed_offset=2_000_000, calibration_offset=3_000_000)
