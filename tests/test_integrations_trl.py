"""``VIPGRPOTrainer`` with the real TRL, on CPU (marker ``trl``; own CI job).

Each scenario trains a tiny randomly initialised Llama for a few steps in a
subprocess (``tests/_trl_run.py``; two processes over gloo for the
multi-process case) and records the trainer's view of every generation
batch and what the reward function scored. The checks recompute everything
from the reward function's own record, not from the trainer:

* the counts planned equal the completions the reward function scored;
* the advantages equal :func:`vipcore.advantages` over the ragged groups,
  exactly, and TRL's own ``nanstd`` statistics to float32 rounding;
* ``frac_reward_zero_std`` and the logged advantages are repaired;
* one and two processes give identical plans, rewards and advantages;
* the planner is saved in every checkpoint and restored on resume (and a
  checkpoint without it is noticed: negative control).

Run: ``HF_HUB_OFFLINE=1 python -m pytest -m trl tests/test_integrations_trl.py``
in an environment with ``pip install -e '.[test,trl]'``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import vipcore

pytestmark = pytest.mark.trl
pytest.importorskip("trl")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "_trl_run.py"
C = 16  # completions per generation batch (the scripts' default --batch)
N_BAR = 4
IDS = [f"q{i:02d}" for i in range(16)]


def fresh_planner(reward="binary"):
    """The planner ``tests/_trl_run.py`` builds (kept in step with it)."""
    emb = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    return vipcore.Planner(emb, ids=IDS, lower=2, upper=8, reward=reward,
                           predictor="gp_authors" if reward == "binary" else "gp")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(out: Path, *args: str, nproc: int = 1) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", JAX_PLATFORMS="cpu", OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(SCRIPT), "--out", str(out), *args]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
               str(nproc), "--master_addr", "127.0.0.1", "--master_port",
               str(_free_port()), *cmd[1:]]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


def _load(folder: Path, rank: int = 0) -> dict:
    return json.loads((folder / f"rank{rank}.json").read_text())


@pytest.fixture(scope="module")
def resume_runs(tmp_path_factory):
    """Uninterrupted 3-step run, resumed run, resumed run without planner file."""
    out = tmp_path_factory.mktemp("trl_resume")
    _run(out, "--scenario", "resume")
    return out


@pytest.fixture(scope="module")
def single(resume_runs):
    return [_load(resume_runs / "full")]


@pytest.fixture(scope="module")
def dual(tmp_path_factory):
    out = tmp_path_factory.mktemp("trl_dual")
    _run(out, "--scenario", "train", nproc=2)
    return out


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    out = tmp_path_factory.mktemp("trl_variants")
    _run(out, "--scenario", "variants")
    return out


def scored_batches(ranks: list[dict], key: str = "scored"):
    """Per step: (ids, rewards) in global row order, from the reward function."""
    by_step: dict[int, list] = {}
    for rec in ranks:
        for step, pos, pid, r in rec[key]:
            by_step.setdefault(step, []).append((pos, pid, r))
    out = {}
    for step, rows in by_step.items():
        rows.sort()
        assert [p for p, _, _ in rows] == list(range(len(rows)))
        out[step] = ([pid for _, pid, _ in rows], np.array([r for *_, r in rows],
                                                            np.float32))
    return out


# --------------------------------------------------------------------------
# One process


def test_planned_counts_are_the_completions_scored(single):
    scored = scored_batches(single)
    probes = single[0]["probe"]
    assert len(probes) == 3 and len(scored) == 3
    uneven = 0
    for p in probes:
        ids, _ = scored[p["step"]]
        assert sum(p["counts"]) == C == len(ids)
        assert ids == list(np.repeat(p["ids"], p["counts"]))  # prompt-major rows
        assert Counter(ids) == dict(zip(p["ids"], p["counts"], strict=True))
        uneven += len(set(p["counts"])) > 1
    assert probes[0]["counts"] == [N_BAR] * (C // N_BAR)  # prior: uniform plan
    assert uneven >= 1, "no step with unequal counts: the check would be vacuous"


def test_advantages_are_vipcores_ragged_advantages_exactly(single):
    scored = scored_batches(single)
    nonzero = 0
    for p in single[0]["probe"]:
        _, r = scored[p["step"]]
        want = np.asarray(vipcore.advantages(r, "grpo", sizes=p["counts"], eps=1e-4,
                                             singleton="zero"))
        got = np.asarray(p["advantages"], np.float32)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.asarray(p["local_advantages"], np.float32),
                                      want)  # what the loss used
        np.testing.assert_array_equal(np.asarray(p["logged_advantages"][-C:],
                                                 np.float32), want)
        nonzero += int(np.any(want != 0))
    assert nonzero >= 1


def test_advantages_agree_with_trls_own_statistics(single):
    """Per group with TRL's ``nanstd`` and ``torch.nanmean`` (float32)."""
    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from trl.trainer.utils import nanstd
    scored = scored_batches(single)
    for p in single[0]["probe"]:
        _, r = scored[p["step"]]
        want = []
        for g in np.split(r, np.cumsum(p["counts"])[:-1]):
            t = torch.tensor(g)
            want.append(((t - torch.nanmean(t)) / (nanstd(t) + 1e-4)).numpy())
        np.testing.assert_allclose(p["advantages"], np.concatenate(want), atol=2e-6)


def test_frac_reward_zero_std_is_the_share_of_constant_groups(single):
    scored = scored_batches(single)
    logged = [h["frac_reward_zero_std"] for h in single[0]["log_history"]
              if "frac_reward_zero_std" in h]
    fracs = []
    for p, log in zip(single[0]["probe"], logged, strict=True):
        _, r = scored[p["step"]]
        groups = np.split(r, np.cumsum(p["counts"])[:-1])
        want = np.mean([np.all(g == g[0]) for g in groups])
        assert p["frac_reward_zero_std"] == pytest.approx(want)
        assert log == pytest.approx(want)
        fracs.append(want)
    # TRL, run with groups of one row, would have logged 1.0 every step.
    assert min(fracs) < 1.0


def test_planner_state_is_the_replay_of_the_scored_rewards(single, resume_runs):
    pl = fresh_planner()
    scored = scored_batches(single)
    for p in single[0]["probe"]:
        assert pl.plan(p["ids"], C).tolist() == p["counts"]
        _, r = scored[p["step"]]
        pl.observe(p["ids"], np.split(r.astype(np.float64),
                                      np.cumsum(p["counts"])[:-1]))
    final = vipcore.Planner.load(resume_runs / "full" / "planner_final.npz")
    np.testing.assert_array_equal(final.predict(IDS), pl.predict(IDS))
    assert "vip/alloc_max" in single[0]["probe"][-1]["vip_metrics"]


# --------------------------------------------------------------------------
# Two processes over gloo


def test_two_processes_agree_with_one(single, dual, resume_runs):
    r0, r1 = _load(dual, 0), _load(dual, 1)
    assert (r0["world"], r1["world"]) == (2, 2)
    assert r0["backend"] == r1["backend"] == "gloo"
    one = single[0]["probe"]
    assert len(r0["probe"]) == len(one)
    for a, b, c in zip(one, r0["probe"], r1["probe"], strict=True):
        assert a["ids"] == b["ids"] == c["ids"]
        assert a["counts"] == b["counts"] == c["counts"]
        assert a["advantages"] == b["advantages"] == c["advantages"]
        # each process trained on its own half of the rows
        assert b["local_advantages"] == a["advantages"][: C // 2]
        assert c["local_advantages"] == a["advantages"][C // 2:]
    s1, s2 = scored_batches(single), scored_batches([r0, r1])
    for step in s1:
        assert s1[step][0] == s2[step][0]
        np.testing.assert_array_equal(s1[step][1], s2[step][1])
    p1 = vipcore.Planner.load(resume_runs / "full" / "planner_final.npz")
    p2 = vipcore.Planner.load(dual / "planner_final.npz")
    np.testing.assert_array_equal(p1.predict(IDS), p2.predict(IDS))


# --------------------------------------------------------------------------
# Checkpoints


def test_checkpoints_carry_the_planner(resume_runs, single):
    ckpt = resume_runs / "full" / "ckpt"
    pl = fresh_planner()
    scored = scored_batches(single)
    for k, p in enumerate(single[0]["probe"], start=1):
        pl.plan(p["ids"], C)
        _, r = scored[p["step"]]
        pl.observe(p["ids"], np.split(r.astype(np.float64),
                                      np.cumsum(p["counts"])[:-1]))
        saved = vipcore.Planner.load(ckpt / f"checkpoint-{k}" / "vip_planner.npz")
        np.testing.assert_array_equal(saved.predict(IDS), pl.predict(IDS))


def test_resume_restores_the_planner(resume_runs):
    full, resumed = _load(resume_runs / "full"), _load(resume_runs / "resumed")
    assert resumed["planner_replaced"]
    assert [p["counts"] for p in resumed["probe"]] == [
        p["counts"] for p in full["probe"][1:]]
    assert [p["advantages"] for p in resumed["probe"]] == [
        p["advantages"] for p in full["probe"][1:]]
    a = vipcore.Planner.load(resume_runs / "full" / "planner_final.npz")
    b = vipcore.Planner.load(resume_runs / "resumed" / "planner_final.npz")
    np.testing.assert_array_equal(a.predict(IDS), b.predict(IDS))


def test_resume_without_planner_file_is_noticed(resume_runs):
    """Negative control: the same resume without the planner plans differently."""
    full, bare = _load(resume_runs / "full"), _load(resume_runs / "bare")
    msgs = json.loads((resume_runs / "bare" / "warnings.json").read_text())
    assert any("has no vip_planner.npz" in m for m in msgs)
    assert not bare["planner_replaced"]
    assert bare["probe"][0]["ids"] == full["probe"][1]["ids"]
    assert bare["probe"][0]["counts"] != full["probe"][1]["counts"]


# --------------------------------------------------------------------------
# Loss types, scale_rewards, aggregation, prompt weighting


def _variant_expectations(rec):
    a = rec["args"]
    scored = scored_batches([rec])
    scored2 = scored_batches([rec], "scored2") if rec["scored2"] else {}
    for p in rec["probe"]:
        counts = np.asarray(p["counts"])
        _, r = scored[p["step"]]
        got = np.asarray(p["advantages"], np.float32)
        if a["aggregation"] == "normalize_then_sum":
            _, r2 = scored2[p["step"]]
            z = sum(np.asarray(vipcore.advantages(x, "grpo", sizes=counts, eps=1e-4,
                                                  singleton="zero"), np.float64)
                    for x in (r, r2))
            want = (z - z.mean()) / (np.std(z, ddof=1) + 1e-4)
        elif a["scale"] == "none":
            want = vipcore.advantages(r, "drgrpo", sizes=counts, singleton="zero")
        elif a["scale"] == "batch":
            want = (np.asarray(vipcore.advantages(r, "drgrpo", sizes=counts,
                                                  singleton="zero"))
                    / (np.std(r.astype(np.float64), ddof=1) + 1e-4))
        else:
            want = np.asarray(vipcore.advantages(r, "grpo", sizes=counts, eps=1e-4,
                                                 singleton="zero"))
            if a["weight_equally"]:
                want = want * (N_BAR / counts)[np.repeat(np.arange(counts.size),
                                                         counts)]
        yield a, counts, got, np.asarray(want, np.float64)


def test_every_loss_type_and_reward_scaling(variants):
    seen = set()
    for folder in sorted(variants.iterdir()):
        rec = _load(folder)
        losses = [h["loss"] for h in rec["log_history"] if "loss" in h]
        assert len(losses) == 2 and np.all(np.isfinite(losses))
        for a, _counts, got, want in _variant_expectations(rec):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5,
                                       err_msg=str(a))
            seen.add((a["loss"], a["scale"], a["aggregation"], a["weight_equally"]))
    assert {s[0] for s in seen} >= {"grpo", "bnpo", "dr_grpo", "dapo", "cispo",
                                    "sapo", "luspo", "vespo"}
    assert {s[1] for s in seen} == {"group", "batch", "none"}
    assert any(s[3] for s in seen) and any(s[2] == "normalize_then_sum" for s in seen)


def test_prompt_weighting_changes_unequal_groups(variants):
    """Negative control for the weighting: it really rescales when n_q != n̄."""
    recs = [_load(f) for f in sorted(variants.iterdir())]
    (rec,) = [r for r in recs if r["args"]["weight_equally"]]
    scored = scored_batches([rec])
    differs = False
    for p in rec["probe"]:
        counts = np.asarray(p["counts"])
        unweighted = np.asarray(vipcore.advantages(scored[p["step"]][1], "grpo",
                                                   sizes=counts, eps=1e-4,
                                                   singleton="zero"))
        got = np.asarray(p["advantages"], np.float32)
        differs |= bool(np.abs(got - unweighted).max() > 1e-3)
    assert differs, "weighting never changed an advantage: the check is vacuous"


# --------------------------------------------------------------------------
# Refusals (in process)


def _adapter():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from vipcore._src.integrations import trl as adapter
    return adapter


@pytest.mark.parametrize("field, value, match", [
    ("loss_type", "ppo", r"loss_type='ppo' is not supported"),
    ("scale_rewards", "median", r"scale_rewards='median' is not supported"),
    ("multi_objective_aggregation", "max",
     r"multi_objective_aggregation='max' is not supported"),
])
def test_unsupported_settings_are_refused(field, value, match):
    adapter = _adapter()
    args = dict(loss_type="dapo", scale_rewards=True,
                multi_objective_aggregation="sum_then_normalize")
    adapter._check_config(SimpleNamespace(**args))  # the defaults pass
    args[field] = value
    with pytest.raises(ValueError, match=match):
        adapter._check_config(SimpleNamespace(**args))


def test_dataset_checks():
    adapter = _adapter()
    from datasets import Dataset
    ds = Dataset.from_dict({"prompt": ["a", "b"], "id": ["q00", "zz"]})
    with pytest.raises(ValueError, match="no column 'uid'"):
        adapter._check_dataset(ds, "uid", fresh_planner())
    with pytest.raises(ValueError, match="unknown prompt id 'zz'"):
        adapter._check_dataset(ds, "id", fresh_planner())
