r"""TRL adapter: :class:`VIPGRPOTrainer`, a ``GRPOTrainer`` with VIP allocation.

TRL groups completions with a fixed width (``rewards.view(-1,
num_generations)``) and its ``RepeatSampler`` repeats every prompt
``num_generations`` times; a custom sampler alone would make groups straddle
prompts. This subclass keeps the stock sampler with ``n̄ = num_generations``
and, for each generation batch of ``B`` prompts and ``C = B n̄`` completions:

1. gathers the batch from every process, keeps the ``B`` distinct prompts
   (by the dataset's id column) and plans ``n_q`` with the
   :class:`~vipcore.Planner` on the main process, ``sum_q n_q = C``;
   the counts are broadcast to the other processes;
2. repeats prompt ``q`` ``n_q`` times; each process takes an equal
   contiguous slice of the ``C`` rows (the same number of rows it would have
   had, so gradient accumulation and ``steps_per_generation`` are unchanged);
3. runs TRL's own generation and scoring with ``num_generations = 1``, so
   every fixed-width code path (transformers generation, vLLM with ``n=1``,
   tools, the loss types) works per row;
4. recomputes the advantages over the ragged groups from the rewards TRL
   gathered (captured in ``_calculate_rewards``) with
   :func:`vipcore.advantages`, exactly as TRL would for equal groups
   (``scale_rewards`` ``"group"``/``"batch"``/``"none"``, both
   ``multi_objective_aggregation`` modes, sample std, ``+1e-4``), optionally
   multiplies prompt ``q``'s advantages by ``n̄ / n_q`` so every prompt
   weighs the same in the loss, repairs ``frac_reward_zero_std`` (share of
   prompts whose rewards all coincide) and the logged advantages, and calls
   :meth:`Planner.observe`; vipcore's metrics are logged under ``vip/``.

The planner is saved in every checkpoint (``vip_planner.npz``) and restored
with ``trainer.train(resume_from_checkpoint=...)``
(:class:`VIPPlannerCallback`).

Evaluation (``num_generations_eval``) is left to TRL unchanged.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import torch
from accelerate.utils import broadcast_object_list, gather_object
from transformers import TrainerCallback
from trl import GRPOTrainer

from vipcore._src.integrations import _grouping as grouping
from vipcore._src.planner import Planner

__all__ = ["VIPGRPOTrainer", "VIPPlannerCallback", "PLANNER_FILE", "LOSS_TYPES"]

#: File name of the planner inside each checkpoint folder.
PLANNER_FILE = "vip_planner.npz"
#: TRL loss types checked to work row by row (none of them reads the groups).
LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo")


class VIPPlannerCallback(TrainerCallback):
    """Saves the trainer's planner into every checkpoint and restores it.

    ``on_save`` writes ``<checkpoint>/vip_planner.npz`` on the main process
    (:meth:`Planner.save`, atomic). :meth:`restore` is called by
    :class:`VIPGRPOTrainer` when training resumes from a checkpoint; a
    checkpoint without the file keeps the current planner and warns.
    """

    def __init__(self, trainer: VIPGRPOTrainer):
        self._trainer = trainer

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            os.makedirs(folder, exist_ok=True)
            self._trainer.planner.save(os.path.join(folder, PLANNER_FILE))
        return control

    def restore(self, checkpoint: str) -> bool:
        """Load ``<checkpoint>/vip_planner.npz`` into the trainer; False if absent."""
        path = os.path.join(checkpoint, PLANNER_FILE)
        if not os.path.exists(path):
            warnings.warn(f"{checkpoint} has no {PLANNER_FILE}; the planner starts "
                          "from its current state, not the checkpoint's", stacklevel=2)
            return False
        self._trainer.planner = Planner.load(path)
        return True


class VIPGRPOTrainer(GRPOTrainer):
    """TRL's ``GRPOTrainer`` with per-prompt rollout counts from a Planner.

    Args:
      *args, **kwargs: as for ``trl.GRPOTrainer`` (``model``,
        ``reward_funcs``, ``args``, ``train_dataset``, ...).
        ``args.num_generations`` is the mean group size ``n̄``; the budget of
        every generation batch is TRL's ``generation_batch_size``.
      planner: the :class:`~vipcore.Planner`, built with the dataset's ids
        (``ids=dataset[id_column]``); its ``lower <= n̄ <= upper``.
      id_column: the dataset column holding each prompt's id.
      weight_prompts_equally: multiply prompt ``q``'s advantages by
        ``n̄ / n_q``. VIP's variance model averages each prompt over its own
        rollouts; TRL's losses average over completions or tokens, so without
        this a prompt's weight in the update grows with ``n_q``.

    Attributes:
      planner: the planner in use (replaced by the checkpoint's on resume).
      vip_last_batch: ``dict`` of the latest generation batch, in row order
        over all processes: ``ids`` (per prompt), ``counts``, ``rewards``,
        ``advantages``, ``zero_std``.

    Raises:
      ValueError: an unsupported ``loss_type``, ``scale_rewards`` or
        ``multi_objective_aggregation``, a dataset without ``id_column`` or
        with ids the planner does not know; at the first batch,
        ``num_generations`` outside the planner's ``[lower, upper]``.
    """

    def __init__(self, *args, planner: Planner, id_column: str = "id",
                 weight_prompts_equally: bool = False, **kwargs):
        if not isinstance(planner, Planner):
            raise ValueError(f"planner must be a vipcore.Planner; got {type(planner)}")
        self.planner = planner
        self.id_column = id_column
        self.weight_prompts_equally = bool(weight_prompts_equally)
        self.vip_last_batch: dict[str, Any] | None = None
        self._vip_rewards: torch.Tensor | None = None
        super().__init__(*args, **kwargs)
        _check_config(self.args)
        _check_dataset(self.train_dataset, id_column, planner)
        self._vip_callback = VIPPlannerCallback(self)
        self.add_callback(self._vip_callback)

    # ---------------------------------------------------------------- hooks
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        out = super()._calculate_rewards(inputs, prompts, completions,
                                         completion_ids_list)
        self._vip_rewards = out  # gathered over processes, (C, F)
        return out

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is not None:
            self._vip_callback.restore(checkpoint)

    def _generate_and_score_completions(self, inputs):
        if not self.model.training:  # evaluation: TRL's fixed groups
            return super()._generate_and_score_completions(inputs)
        n_bar = self.num_generations
        rows, ids, counts = self._vip_plan(inputs, n_bar)
        expanded = grouping.expand_rows(rows, counts)
        acc = self.accelerator
        local = grouping.process_slice(len(expanded), acc.num_processes,
                                       acc.process_index)
        self.num_generations = 1
        try:
            out = super()._generate_and_score_completions(expanded[local])
        finally:
            self.num_generations = n_bar
        g = self._vip_regroup(counts, n_bar)
        adv = torch.as_tensor(g.advantages[local], dtype=out["advantages"].dtype,
                              device=out["advantages"].device)
        out["advantages"] = adv
        self._vip_log(ids, counts, g)
        return out

    # ---------------------------------------------------------------- steps
    def _vip_plan(self, inputs, n_bar):
        """Distinct prompts of the global batch and their planned counts."""
        all_rows = gather_object(list(inputs))
        rows, ids = grouping.unique_prompts(all_rows, self.id_column, n_bar)
        counts = None
        if self.accelerator.is_main_process:
            try:
                counts = self.planner.plan(ids, len(all_rows)).tolist()
            except ValueError as err:
                raise ValueError(f"planning {len(ids)} prompts with num_generations = "
                                 f"{n_bar} (budget {len(all_rows)}): {err}") from None
        counts = broadcast_object_list([counts], from_process=0)[0]
        return rows, ids, np.asarray(counts, np.int64)

    def _vip_regroup(self, counts, n_bar):
        rpf = self._vip_rewards
        self._vip_rewards = None
        if rpf is None:
            raise RuntimeError("GRPOTrainer._calculate_rewards was not called; this "
                               "TRL version is not supported by VIPGRPOTrainer")
        g = grouping.trl_advantages(
            rpf.detach().float().cpu().numpy(), self.reward_weights.cpu().numpy(),
            counts, scale_rewards=self.scale_rewards,
            aggregation=self.multi_objective_aggregation,
        )
        if self.weight_prompts_equally:
            scale = (n_bar / counts.astype(np.float32))[grouping.group_index(counts)]
            g = g._replace(advantages=(g.advantages * scale).astype(np.float32))
        return g

    def _vip_log(self, ids, counts, g):
        metrics = self._metrics["train"]
        frac = float(np.mean(g.zero_std))
        metrics["frac_reward_zero_std"][-1] = frac  # TRL saw groups of one row
        logged = self._logs["advantages"]
        for _ in range(min(len(g.advantages), len(logged))):
            logged.pop()
        logged.extend(g.advantages.tolist())
        self.vip_last_batch = dict(ids=list(ids), counts=counts, rewards=g.rewards,
                                   advantages=g.advantages, zero_std=g.zero_std)
        if self.accelerator.is_main_process:
            groups = np.split(g.rewards.astype(np.float64), np.cumsum(counts)[:-1])
            observed = self.planner.observe(ids, groups)
            for key, value in observed.items():
                if key.startswith("vip/"):
                    metrics[key].append(float(value))


def _check_config(args) -> None:
    """Refuse settings the adapter does not reproduce (names the option)."""
    loss = getattr(args, "loss_type", None)
    if loss not in LOSS_TYPES:
        raise ValueError(f"loss_type={loss!r} is not supported by VIPGRPOTrainer "
                         f"(supported: {', '.join(LOSS_TYPES)})")
    scale = {True: "group", False: "none"}.get(args.scale_rewards, args.scale_rewards)
    if scale not in grouping.SCALE_REWARDS:
        raise ValueError(f"scale_rewards={args.scale_rewards!r} is not supported "
                         f"(supported: {', '.join(grouping.SCALE_REWARDS)})")
    agg = getattr(args, "multi_objective_aggregation", "sum_then_normalize")
    if agg not in grouping.AGGREGATIONS:
        raise ValueError(f"multi_objective_aggregation={agg!r} is not supported "
                         f"(supported: {', '.join(grouping.AGGREGATIONS)})")


def _check_dataset(dataset, id_column: str, planner: Planner) -> None:
    """For map-style datasets: the id column exists and the planner knows it."""
    names = getattr(dataset, "column_names", None)
    if names is None:  # iterable or custom datasets: checked at the first batch
        return
    if id_column not in names:
        raise ValueError(f"train_dataset has no column {id_column!r} (id_column); "
                         f"columns: {', '.join(names)}")
    planner.index(list(dataset[id_column]))  # raises naming the first unknown id
