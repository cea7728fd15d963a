"""The verl adapter.

Without verl: the bookkeeping (:class:`VerlRolloutPlanner`,
:func:`final_session_scores`) and the mixin's two hooks against stand-ins
written after verl 0.9.1's v1 trainer (``trainer_base.PPOTrainer``:
``_submit_batch_to_rollout``, ``_compute_advantage``; TransferQueue keys
``{uid}_{session}_{output}``; padding rows tagged ``is_padding``;
``tensordict_utils.get`` / ``assign_non_tensor_stack``). With verl importable
(``pip install 'verl[verl-core]'``), the same hooks run on verl's own
TensorDict helpers, verl's GRPO/RLOO advantage functions are compared with
:func:`vipcore.advantages` on ragged groups, and :func:`register` swaps the
class in verl's registry.
"""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np
import pytest

import vipcore
from vipcore._src.integrations import verl as adapter

IDS = list(range(10))


def planner(**kw):
    emb = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
    return vipcore.Planner(emb, ids=IDS, lower=2, upper=8, **kw)


# --------------------------------------------------------------------------
# Bookkeeping


def test_final_session_scores_takes_the_last_output_and_skips_padding():
    keys = ["a_0_0", "a_1_1", "a_1_0", "b_0_0", "b_1_0", "pad9_0_0"]
    scores = [1.0, 0.0, 1.0, 1.0, 1.0, 5.0]
    got = adapter.final_session_scores(keys, scores, [False] * 5 + [True])
    assert got == {"a": [1.0, 0.0], "b": [1.0, 1.0]}
    # uids may contain underscores: the split is from the right
    assert adapter.final_session_scores(["x_y_0_0"], [2.0]) == {"x_y": [2.0]}
    with pytest.raises(ValueError, match="is not '{uid}_{session}_{output}'"):
        adapter.final_session_scores(["a_0"], [1.0])
    with pytest.raises(ValueError, match="same length"):
        adapter.final_session_scores(["a_0_0"], [1.0, 2.0])


def test_plan_budget_is_k_times_rollout_n_for_every_submission():
    vp = adapter.VerlRolloutPlanner(planner(), rollout_n=4)
    first = vp.plan(["u0", "u1", "u2"], [0, 1, 2])
    assert first.sum() == 12
    # teach the planner something so that plans become uneven
    keys = [f"u{q}_{s}_0" for q in range(3) for s in range(4)]
    vp.observe(keys, [1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0])
    refill = vp.plan(["r0", "r1"], [3, 4])  # a DAPO refill of k = 2 prompts
    assert refill.sum() == 8 and set(vp.pending) == {"r0", "r1"}
    big = vp.plan([f"v{q}" for q in range(5)], [5, 6, 7, 8, 9])
    assert big.sum() == 20 and np.all((big >= 2) & (big <= 8))


def test_observe_is_by_dataset_id_and_matches_a_direct_observe():
    """The adapter's update equals Planner.observe on the same groups."""
    vp = adapter.VerlRolloutPlanner(planner(), rollout_n=3)
    direct = planner()
    counts = vp.plan(["x", "y"], [7, 2])
    direct.plan([7, 2], 6)
    rng = np.random.default_rng(1)
    rewards = {u: rng.integers(0, 2, n).astype(float)
               for u, n in zip("xy", counts, strict=True)}
    keys = [f"{u}_{s}_0" for u in "yx" for s in range(len(rewards[u]))]
    scores = [r for u in "yx" for r in rewards[u]]
    m = vp.observe(keys, scores)
    direct.observe([7, 2], [rewards["x"], rewards["y"]])
    np.testing.assert_array_equal(vp.planner.predict(IDS), direct.predict(IDS))
    assert m["vip/groups_count_mismatch"] == 0 and not vp.pending


def test_observe_control_a_wrong_mapping_is_visible():
    """Negative control: observing under the wrong ids changes the state."""
    a = adapter.VerlRolloutPlanner(planner(), rollout_n=2)
    b = planner()
    a.plan(["x", "y"], [0, 9])
    a.observe(["x_0_0", "x_1_0", "y_0_0", "y_1_0"], [1, 1, 0, 0])
    b.plan([0, 9], 4)
    b.observe([0, 9], [[0, 0], [1, 1]])  # swapped
    assert np.abs(a.planner.predict(IDS) - b.predict(IDS)).max() > 0.1


def test_observe_refuses_unplanned_and_warns_on_count_mismatch():
    vp = adapter.VerlRolloutPlanner(planner(), rollout_n=2)
    vp.plan(["x"], [0])
    with pytest.raises(ValueError, match="uid 'zz' was not planned"):
        vp.observe(["zz_0_0"], [1.0])
    with pytest.warns(UserWarning, match="1 of 1 groups have a different number"):
        m = vp.observe(["x_0_0", "x_1_0", "x_2_0"], [1.0, 0.0, 1.0])
    assert m["vip/groups_count_mismatch"] == 1


def test_plan_refuses_duplicates_and_bad_arguments():
    vp = adapter.VerlRolloutPlanner(planner(), rollout_n=2)
    with pytest.raises(ValueError, match=r"dataset id 0 appears twice.*extra_info"):
        vp.plan(["a", "b"], [0, 0])
    with pytest.raises(ValueError, match="uid 'a' appears twice"):
        vp.plan(["a", "a"], [0, 1])
    with pytest.raises(ValueError, match="same length"):
        vp.plan(["a"], [0, 1])
    with pytest.raises(ValueError, match="rollout_n must be >= 1"):
        adapter.VerlRolloutPlanner(planner(), rollout_n=0)
    with pytest.raises(ValueError, match="planner must be a vipcore.Planner"):
        adapter.VerlRolloutPlanner(object(), rollout_n=2)
    with pytest.raises(ValueError, match="unknown prompt id 99"):
        vp.plan(["a"], [99])


def test_checkpoint_round_trip(tmp_path):
    vp = adapter.VerlRolloutPlanner(planner(), rollout_n=2)
    vp.plan(["x", "y"], [np.int64(1), 2])
    vp.observe(["x_0_0", "x_1_0"], [1.0, 1.0])  # y still in flight
    vp.save(tmp_path / "global_step_3")
    fresh = adapter.VerlRolloutPlanner(planner(), rollout_n=2)
    assert fresh.restore(tmp_path / "global_step_3")
    np.testing.assert_array_equal(fresh.planner.predict(IDS), vp.planner.predict(IDS))
    assert fresh.pending == {"y": (2, 2)}
    with pytest.warns(UserWarning, match="has no vip_planner.npz"):
        assert not fresh.restore(tmp_path / "nothing")


# --------------------------------------------------------------------------
# The mixin's hooks against stand-ins for verl's modules


class FakeBatch(dict):
    """Column dict standing in for verl's prompt TensorDict."""

    def __len__(self):
        return len(self["uid"])


class FakeKVBatch:
    def __init__(self, keys, tags):
        self.keys, self.tags, self.partition_id = keys, tags, "train"


class FakeScores:
    def __init__(self, rows):
        self.rows = rows

    def sum(self, dim):
        assert dim == 1
        return np.array([float(np.sum(r)) for r in self.rows])


class StandInBase:
    """What the mixin relies on in verl's PPOTrainer."""

    def __init__(self, config):
        self.config = config
        self.submitted, self.advantage_calls = [], 0

    def _submit_batch_to_rollout(self, batch):
        self.submitted.append(batch)
        return len(batch)

    def _compute_advantage(self, batch, metrics):
        self.advantage_calls += 1
        return batch


@pytest.fixture
def fake_verl(monkeypatch):
    store = {}
    tu = types.ModuleType("verl.utils.tensordict_utils")
    tu.get = lambda td, key, default=None: td.get(key, default)
    tu.assign_non_tensor_stack = lambda td, key, val: td.__setitem__(key, list(val))
    tq = types.ModuleType("transfer_queue")

    def kv_batch_get(keys, partition_id, select_fields):
        assert select_fields == ["rm_scores"] and partition_id == "train"
        return {"rm_scores": FakeScores([store[k] for k in keys])}

    tq.kv_batch_get = kv_batch_get
    verl = types.ModuleType("verl")
    utils = types.ModuleType("verl.utils")
    utils.tensordict_utils = tu
    for name, mod in [("verl", verl), ("verl.utils", utils),
                      ("verl.utils.tensordict_utils", tu), ("transfer_queue", tq)]:
        monkeypatch.setitem(sys.modules, name, mod)
    return store


def _config():
    rollout = types.SimpleNamespace(n=4)
    return types.SimpleNamespace(actor_rollout_ref=types.SimpleNamespace(
        rollout=rollout))


class VIPStandIn(adapter.VIPTrainerMixin, StandInBase):
    vip_planner_factory = staticmethod(lambda config: planner())


def test_mixin_plans_at_submission_and_observes_at_advantage(fake_verl):
    tr = VIPStandIn(_config())
    batch = FakeBatch(uid=["u0", "u1", "u2"], index=np.array([4, 5, 6]))
    assert tr._submit_batch_to_rollout(batch) == 3
    n = tr.submitted[0]["__rollout_n__"]
    assert sum(n) == 12 and all(type(c) is int for c in n)  # verl wants ints
    keys, tags = [], []
    rng = np.random.default_rng(0)
    for uid, c in zip(["u0", "u1", "u2"], n, strict=True):
        for s in range(c):
            keys.append(f"{uid}_{s}_0")
            tags.append({})
            fake_verl[keys[-1]] = rng.integers(0, 2, 3) * np.array([0, 0, 1.0])
    keys.append("padabc_0_0")
    tags.append({"is_padding": True})
    fake_verl["padabc_0_0"] = np.zeros(3)
    metrics = {}
    tr._compute_advantage(FakeKVBatch(keys, tags), metrics)
    assert tr.advantage_calls == 1 and not tr._vip().pending
    assert metrics["vip/observed_rollouts"] == 12  # padding row skipped
    assert metrics["vip/groups_count_mismatch"] == 0


def test_mixin_requires_the_id_column(fake_verl):
    tr = VIPStandIn(_config())
    with pytest.raises(ValueError, match="no 'index' column"):
        tr._submit_batch_to_rollout(FakeBatch(uid=["u0"]))


def test_default_factory_needs_a_path():
    cfg = {"vip": {}}
    with pytest.raises(ValueError, match="set vip.planner_path"):
        adapter.default_planner_factory(cfg)


def test_default_factory_loads_a_saved_planner(tmp_path):
    pl = planner()
    pl.save(tmp_path / "p.npz")
    got = adapter.default_planner_factory({"vip": {"planner_path": str(tmp_path /
                                                                       "p.npz")}})
    np.testing.assert_array_equal(got.predict(IDS), pl.predict(IDS))


# --------------------------------------------------------------------------
# Against verl itself (skipped where verl does not import)


def _import_verl(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip(name)


def test_verl_grpo_and_rloo_advantages_equal_vipcores_on_ragged_groups():
    core_algos = _import_verl("verl.trainer.ppo.core_algos")
    import torch

    rng = np.random.default_rng(3)
    sizes = np.array([2, 5, 3, 8, 4])
    uids = np.repeat(np.array([f"u{k}" for k in range(5)], dtype=object), sizes)
    perm = rng.permutation(uids.size)
    uids = uids[perm]
    r = rng.integers(0, 2, uids.size).astype(np.float32)
    r[:3] = rng.normal(size=3)
    tok = torch.zeros((uids.size, 3))
    tok[:, -1] = torch.tensor(r)
    mask = torch.ones_like(tok)
    grpo, _ = core_algos.compute_grpo_outcome_advantage(tok, mask, uids)
    rloo, _ = core_algos.compute_rloo_outcome_advantage(tok, mask, uids)
    np.testing.assert_allclose(grpo[:, 0].numpy(), vipcore.advantages(
        r, "grpo", groups=uids, eps=1e-6), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rloo[:, 0].numpy(), vipcore.advantages(
        r, "rloo", groups=uids), rtol=1e-5, atol=1e-5)


def test_verl_group_of_one_gets_its_raw_score():
    """Documented difference: verl gives a group of one its raw score;
    vipcore refuses it or (``singleton="zero"``) gives 0."""
    core_algos = _import_verl("verl.trainer.ppo.core_algos")
    import torch

    tok = torch.tensor([[0.0, 0.7], [0.0, 1.0], [0.0, 0.0]])
    uids = np.array(["a", "b", "b"], dtype=object)
    grpo, _ = core_algos.compute_grpo_outcome_advantage(tok, torch.ones_like(tok), uids)
    assert grpo[0, 0].item() == pytest.approx(0.7, rel=1e-5)
    ours = vipcore.advantages(tok[:, 1].numpy(), "grpo", groups=uids, singleton="zero")
    assert float(ours[0]) == 0.0


def test_mixin_on_verls_tensordict_helpers():
    tu = _import_verl("verl.utils.tensordict_utils")
    tr = VIPStandIn(_config())
    batch = tu.get_tensordict({"uid": np.array(["a", "b"], dtype=object),
                               "index": np.array([1, 2], dtype=object),
                               "input_ids": np.zeros((2, 3), np.int64)})
    tr._submit_batch_to_rollout(batch)
    sent = tr.submitted[0]
    # what AgentLoopWorkerTQ.generate_sequences hands to _run_prompt, per row
    stack = sent.get("__rollout_n__")
    n = [stack[i].data for i in range(len(sent))]
    assert sum(n) == 8 and all(type(c) is int for c in n)


def test_register_swaps_the_class_in_verls_registry():
    trainer_base = _import_verl("verl.trainer.ppo.v1.trainer_base")
    _import_verl("verl.trainer.ppo.v1")
    before = dict(trainer_base.TRAINER_REGISTRY)
    try:
        cls = adapter.register("sync")
        assert trainer_base.get_trainer_cls("sync") is cls
        assert issubclass(cls, adapter.VIPTrainerMixin)
        assert issubclass(cls, before["sync"])
        assert adapter.register("sync") is cls  # idempotent
    finally:
        trainer_base.TRAINER_REGISTRY.clear()
        trainer_base.TRAINER_REGISTRY.update(before)


def test_docstring_examples():
    import doctest

    from vipcore._src.integrations import _grouping

    for mod in (adapter, _grouping):
        assert doctest.testmod(mod).failed == 0, mod.__name__
