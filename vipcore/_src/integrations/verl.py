r"""verl adapter: VIP allocation in verl's v1 PPO trainers.

verl groups rollouts by ``uid`` (ragged groups already work in its advantage
estimators) and its v1 agent loop reads a per-prompt ``__rollout_n__`` from
the prompt batch (``AgentLoopWorkerTQ._run_prompt``). Two trainer methods are
the natural hooks:

* ``_submit_batch_to_rollout(batch)`` dispatches every batch of prompts, the
  training batch and DAPO/failure refills alike. :class:`VIPTrainerMixin`
  plans ``n_q`` there with the budget ``k n̄`` for ``k`` prompts
  (``n̄ = actor_rollout_ref.rollout.n``), so the total number of
  trajectories is what verl expected, and writes ``__rollout_n__``.
* ``_compute_advantage(batch, metrics)`` sees the sampled trajectories with
  their scores. The mixin reads ``rm_scores`` by TransferQueue key
  (``{uid}_{session}_{output}``), takes each session's final output (as verl's
  ``compute_advantage_for_multi_trajectories`` does), skips verl's padding
  rows (``tags["is_padding"]``) and calls :meth:`Planner.observe` by the
  stable dataset id (``uid`` is a fresh uuid every step), then lets verl
  compute the advantages.

The bookkeeping lives in :class:`VerlRolloutPlanner`, which needs no verl.

Registration (verl's ``TRAINER_REGISTRY`` maps ``trainer.v1.trainer_mode`` to
a class; keep verl's mode name, since the trainer reads its own settings under
``trainer.v1.<mode>``)::

    from verl.trainer.ppo.v1 import trainer_base
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
    from vipcore.integrations.verl import VIPTrainerMixin

    class VIPPPOTrainerSync(VIPTrainerMixin, PPOTrainerSync):
        pass

    trainer_base.TRAINER_REGISTRY["sync"] = VIPPPOTrainerSync

(:func:`register` does exactly this.) The planner is built in the trainer's
process by ``vip_planner_factory(config)``; see ``docs/integrations.md``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vipcore._src._checks import check_int
from vipcore._src._files import atomic_write_text, read_text
from vipcore._src.planner import PlanMismatchWarning, Planner

__all__ = [
    "VerlRolloutPlanner",
    "VIPTrainerMixin",
    "final_session_scores",
    "register",
    "ROLLOUT_N_KEY",
]

#: The per-prompt rollout count verl's v1 agent loop reads.
ROLLOUT_N_KEY = "__rollout_n__"
#: Files the mixin adds to each ``global_step_<n>`` checkpoint folder.
PLANNER_FILE = "vip_planner.npz"
PENDING_FILE = "vip_pending.json"


def final_session_scores(
    keys: Sequence[str], scores: Sequence[float], padding: Sequence[bool] | None = None
) -> dict[str, list[float]]:
    """Per ``uid``: the score of each session's final output, by session.

    ``keys`` are TransferQueue keys ``{uid}_{session}_{output}``; of the
    outputs of one session (multi-output agent loops) the highest ``output``
    index carries the reward. Rows flagged in ``padding`` are skipped.

    >>> final_session_scores(["u_0_0", "u_1_0", "u_1_1", "v_0_0"], [1, 0, 1, 0])
    {'u': [1.0, 1.0], 'v': [0.0]}
    """
    if len(keys) != len(scores):
        raise ValueError(f"keys and scores must have the same length; got "
                         f"{len(keys)} and {len(scores)}")
    final: dict[tuple[str, int], tuple[int, float]] = {}
    for i, (key, score) in enumerate(zip(keys, scores, strict=True)):
        if padding is not None and padding[i]:
            continue
        parts = str(key).rsplit("_", 2)
        if len(parts) != 3 or not (parts[1].isdigit() and parts[2].isdigit()):
            raise ValueError(f"TransferQueue key {key!r} is not '{{uid}}_{{session}}_"
                             "{output}'")
        uid, session, output = parts[0], int(parts[1]), int(parts[2])
        best = final.get((uid, session))
        if best is None or output > best[0]:
            final[(uid, session)] = (output, float(score))
    out: dict[str, list[float]] = {}
    for (uid, _session), (_, score) in sorted(final.items()):
        out.setdefault(uid, []).append(score)
    return out


class VerlRolloutPlanner:
    """Plans ``__rollout_n__`` per submission and observes rewards by dataset id.

    Args:
      planner: the :class:`~vipcore.Planner`, built with the dataset ids.
      rollout_n: verl's ``actor_rollout_ref.rollout.n``, the mean group size
        ``n̄``; a submission of ``k`` prompts gets the budget ``k n̄``.

    Prompts are remembered from :meth:`plan` (their ``uid``, dataset id and
    planned count) until :meth:`observe` sees them.

    >>> import numpy as np
    >>> pl = Planner(np.eye(3, dtype=np.float32), ids=["a", "b", "c"], upper=8)
    >>> vp = VerlRolloutPlanner(pl, rollout_n=4)
    >>> vp.plan(["u1", "u2"], ["a", "c"]).tolist()
    [4, 4]
    >>> keys = [f"{u}_{s}_0" for u in ("u1", "u2") for s in range(4)]
    >>> m = vp.observe(keys, [1, 1, 1, 1, 0, 1, 0, 0])
    >>> m["frac_reward_zero_std"]
    0.5
    """

    def __init__(self, planner: Planner, *, rollout_n: int):
        if not isinstance(planner, Planner):
            raise ValueError(f"planner must be a vipcore.Planner; got {type(planner)}")
        self.planner = planner
        self.rollout_n = check_int("rollout_n", rollout_n, minimum=1)
        self.pending: dict[str, tuple[Any, int]] = {}

    def plan(self, uids: Sequence[str], dataset_ids: Sequence[Any]) -> np.ndarray:
        """Counts for one submission of ``k`` prompts, summing to ``k n̄``."""
        uids = [str(u) for u in uids]
        ids = list(dataset_ids)
        if len(uids) != len(ids):
            raise ValueError(f"uids and dataset_ids must have the same length; got "
                             f"{len(uids)} and {len(ids)}")
        for name, seq in (("uid", uids), ("dataset id", ids)):
            dup = _first_duplicate(seq)
            if dup is not None:
                raise ValueError(
                    f"{name} {dup!r} appears twice in one submission; dataset ids "
                    "must be unique per row (verl's RLHFDataset uses "
                    "extra_info.index, and 0 when it is missing)")
        counts = self.planner.plan(ids, len(ids) * self.rollout_n)
        for uid, pid, n in zip(uids, ids, counts, strict=True):
            self.pending[uid] = (pid, int(n))
        return counts

    def save(self, folder: str | os.PathLike) -> None:
        """Write ``vip_planner.npz`` and ``vip_pending.json`` into ``folder``."""
        os.makedirs(folder, exist_ok=True)
        self.planner.save(os.path.join(folder, PLANNER_FILE))
        pending = {u: [_json_id(pid), n] for u, (pid, n) in self.pending.items()}
        atomic_write_text(os.path.join(folder, PENDING_FILE), json.dumps(pending))

    def restore(self, folder: str | os.PathLike) -> bool:
        """Load what :meth:`save` wrote; warn and keep the state if it is absent."""
        path = os.path.join(folder, PLANNER_FILE)
        if not os.path.exists(path):
            warnings.warn(f"{folder} has no {PLANNER_FILE}; the planner starts from "
                          "its current state, not the checkpoint's", stacklevel=2)
            return False
        self.planner = Planner.load(path)
        pend = os.path.join(folder, PENDING_FILE)
        if os.path.exists(pend):
            data = json.loads(read_text(pend))
            self.pending = {u: (pid, int(n)) for u, (pid, n) in data.items()}
        return True

    def observe(self, keys: Sequence[str], scores: Sequence[float],
                padding: Sequence[bool] | None = None) -> dict[str, float]:
        """Observe the sampled trajectories; returns the planner's metrics.

        Groups whose number of sessions differs from the plan are observed
        as they are and reported in ``vip/groups_count_mismatch`` (with a
        warning). A ``uid`` that was never planned raises ``ValueError``.
        """
        groups = final_session_scores(keys, scores, padding)
        if not groups:
            return {}
        unknown = [u for u in groups if u not in self.pending]
        if unknown:
            raise ValueError(f"uid {unknown[0]!r} was not planned by this adapter "
                             "(was the batch submitted through "
                             "_submit_batch_to_rollout?)")
        ids = [self.pending[u][0] for u in groups]
        mismatch = sum(len(v) != self.pending[u][1] for u, v in groups.items())
        if mismatch:
            warnings.warn(f"{mismatch} of {len(groups)} groups have a different "
                          "number of trajectories than planned", stacklevel=2)
        with warnings.catch_warnings():
            # Reported above in verl's terms; the Planner's own warning talks
            # about padded reward arrays, which verl does not use.
            warnings.simplefilter("ignore", PlanMismatchWarning)
            metrics = self.planner.observe(ids,
                                           [np.asarray(v) for v in groups.values()])
        for u in groups:
            del self.pending[u]
        metrics["vip/groups_count_mismatch"] = float(mismatch)
        return metrics


def _json_id(pid):
    return pid.item() if isinstance(pid, np.generic) else pid


def _first_duplicate(seq):
    seen = set()
    for x in seq:
        if x in seen:
            return x
        seen.add(x)
    return None


class VIPTrainerMixin:
    """Mixin for verl's v1 ``PPOTrainer`` classes (put it first in the bases).

    The trainer builds its planner with ``vip_planner_factory(config)``
    (a class attribute; default: :func:`default_planner_factory`) and reads
    each prompt's dataset id from the batch column ``vip_id_key``
    (default ``"index"``, filled from ``extra_info.index`` by verl's
    ``RLHFDataset``). Validation does not go through
    ``_submit_batch_to_rollout`` and is not planned. Checkpoints get
    ``vip_planner.npz`` and ``vip_pending.json`` (prompts in flight) in the
    ``global_step_<n>`` folder, restored by ``_load_checkpoint``.
    """

    vip_id_key: str = "index"
    vip_planner_factory: Callable[[Any], Planner] | None = None

    def _vip(self) -> VerlRolloutPlanner:
        vp = getattr(self, "_vip_state", None)
        if vp is None:
            factory = type(self).vip_planner_factory or default_planner_factory
            vp = VerlRolloutPlanner(factory(self.config),
                                    rollout_n=self.config.actor_rollout_ref.rollout.n)
            self._vip_state = vp
        return vp

    def _submit_batch_to_rollout(self, batch):
        if batch is not None and len(batch):
            from verl.utils import tensordict_utils as tu

            uids = tu.get(batch, "uid")
            ids = tu.get(batch, self.vip_id_key)
            if ids is None:
                raise ValueError(f"the prompt batch has no {self.vip_id_key!r} column "
                                 "(vip_id_key)")
            ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
            counts = self._vip().plan(list(uids), ids)
            tu.assign_non_tensor_stack(batch, ROLLOUT_N_KEY, [int(c) for c in counts])
        return super()._submit_batch_to_rollout(batch)

    def _compute_advantage(self, batch, metrics):
        import transfer_queue as tq

        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                               select_fields=["rm_scores"])
        scores = data["rm_scores"].sum(dim=1).tolist()
        padding = [bool(t.get("is_padding", False)) for t in batch.tags]
        metrics.update(self._vip().observe(batch.keys, scores, padding))
        return super()._compute_advantage(batch, metrics)

    def _save_checkpoint(self):
        super()._save_checkpoint()
        folder = os.path.join(self.config.trainer.default_local_dir,
                              f"global_step_{self.global_steps}")
        self._vip().save(folder)

    def _load_checkpoint(self):
        super()._load_checkpoint()
        trainer = self.config.trainer
        if self.global_steps <= 0:
            return
        if trainer.resume_mode == "resume_path":
            folder = trainer.resume_from_path
        else:
            folder = os.path.join(trainer.default_local_dir,
                                  f"global_step_{self.global_steps}")
        self._vip().restore(os.path.abspath(folder))


def default_planner_factory(config) -> Planner:
    """``Planner.load(config.vip.planner_path)``: a planner saved beforehand."""
    path = config.get("vip", {}).get("planner_path") if hasattr(config, "get") else None
    if not path:
        raise ValueError("set vip.planner_path in the verl config (a planner saved "
                         "with Planner.save) or give the trainer class a "
                         "vip_planner_factory")
    return Planner.load(path)


def register(mode: str = "sync", base: type | None = None) -> type:
    """Replace verl's trainer for ``trainer.v1.trainer_mode=mode`` by a VIP one.

    Call it in the process that runs verl's ``TaskRunner`` before the trainer
    is built. Returns the new class (``VIP<Base>``).
    """
    from verl.trainer.ppo.v1 import trainer_base

    base = base or trainer_base.get_trainer_cls(mode)
    if issubclass(base, VIPTrainerMixin):
        return base
    cls = type(f"VIP{base.__name__}", (VIPTrainerMixin, base), {})
    trainer_base.TRAINER_REGISTRY[mode] = cls
    return cls
