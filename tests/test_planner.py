"""The trainer-facing Planner: layouts, reward formats, metrics, persistence."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from vipcore._src import planner as plmod
from vipcore._src.planner import Planner, group_rewards, padded_mask, repeat_index
from vipcore._src.variance import variance_factor

Q, D = 64, 8


@pytest.fixture(scope="module")
def emb():
    return np.random.default_rng(0).normal(size=(Q, D)).astype(np.float32)


def _ids():
    return [f"uid-{i}" for i in range(Q)]


def test_layout_helpers():
    c = np.array([3, 1, 2])
    assert repeat_index(c).tolist() == [0, 0, 0, 1, 2, 2]
    m = padded_mask(c, 4)
    assert m.shape == (3, 4) and m.sum(1).tolist() == [3, 1, 2]
    groups = group_rewards(np.arange(6), c)
    assert [g.tolist() for g in groups] == [[0, 1, 2], [3], [4, 5]]
    with pytest.raises(ValueError, match="width must be >= max"):
        padded_mask(c, 2)
    with pytest.raises(ValueError, match="sum\\(counts\\) = 6"):
        group_rewards(np.arange(5), c)


@pytest.mark.parametrize("predictor", ["gp", "moving_average", "ridge"])
def test_plan_respects_budget_and_bounds(emb, predictor):
    pl = Planner(emb, predictor=predictor, lower=2, upper=10, estimator="rloo")
    rng = np.random.default_rng(1)
    for _ in range(3):
        ids = rng.choice(Q, 16, replace=False)
        counts = pl.plan(ids, 16 * 5)
        assert counts.dtype == np.int64
        assert counts.sum() == 80 and counts.min() >= 2 and counts.max() <= 10
        pl.observe(ids, successes=rng.binomial(counts, 0.3), counts=counts)
    with pytest.raises(ValueError):
        pl.plan(ids, 16 * 11)  # above B * U


def test_reward_formats_give_identical_state(emb):
    rng = np.random.default_rng(2)
    ids = [f"uid-{i}" for i in rng.choice(Q, 6, replace=False)]
    counts = np.array([3, 5, 4, 2, 5, 1])
    ragged = [rng.integers(0, 2, c).astype(float) for c in counts]
    width = 5
    padded = np.full((6, width), np.nan)
    for i, r in enumerate(ragged):
        padded[i, : len(r)] = r
    mask = padded_mask(counts, width)
    pm1 = [2 * r - 1 for r in ragged]  # {-1, +1} convention
    flat = np.concatenate(ragged)
    variants = {
        "ragged": dict(rewards=ragged),
        "pm1": dict(rewards=pm1),
        "nan_padded": dict(rewards=padded),
        "masked": dict(rewards=np.where(mask, padded, 0.0), mask=mask),
        "verl_flat": dict(rewards=group_rewards(flat, counts)),
        "counts": dict(successes=[r.sum() for r in ragged], counts=counts),
    }
    means = {}
    for name, kw in variants.items():
        pl = Planner(emb, ids=_ids(), bandwidth=2.0)
        m = pl.observe(ids, **kw)
        means[name] = np.asarray(pl.state.mean)
        zero = np.mean([np.ptp(r) == 0 for r in ragged])
        assert m["frac_reward_zero_std"] == pytest.approx(zero), name
    for name, v in means.items():
        np.testing.assert_array_equal(v, means["ragged"], err_msg=name)


def test_reward_validation(emb):
    pl = Planner(emb)
    with pytest.raises(ValueError, match="mix 0 and -1"):
        pl.observe([0, 1], [[0, 1], [-1, 1]])
    with pytest.raises(ValueError, match="reward='continuous'"):
        pl.observe([0], [[0.5, 1.0]])
    with pytest.raises(ValueError, match="unknown prompt id 99"):
        pl.observe([99], [[1.0]])
    with pytest.raises(ValueError, match="give rewards, or successes and counts"):
        pl.observe([0])
    pl2 = Planner(emb, ids=_ids())
    with pytest.raises(ValueError, match="unknown prompt id 'nope'"):
        pl2.plan(["nope"], 4)
    with pytest.raises(ValueError, match="ids must be unique"):
        Planner(emb, ids=["a"] * Q)
    with pytest.raises(ValueError, match="lower must be >= 3"):
        Planner(emb, estimator="drgrpo", lower=2)


@pytest.mark.parametrize("estimator", ["rloo", "drgrpo"])
def test_plan_metrics_definitions(emb, estimator):
    pl = Planner(emb, estimator=estimator, lower=3, upper=12, bandwidth=2.0)
    rng = np.random.default_rng(3)
    first = np.arange(32)
    pl.observe(first, successes=rng.integers(0, 9, 32), counts=np.full(32, 8))
    ids = np.arange(8, 40)
    budget = 32 * 6
    n = pl.plan(ids, budget)
    m = pl.metrics
    p = pl.predict(ids)
    a = 4 * p * (1 - p)
    assert m["vip/pred_mean_p"] == pytest.approx(p.mean())
    assert m["vip/pred_frac_zero_std"] == pytest.approx(np.mean(p**n + (1 - p) ** n))
    assert m["vip/alloc_min"] == n.min() and m["vip/alloc_max"] == n.max()
    v_plan = np.sum(a * np.asarray(variance_factor(n.astype(float), estimator)))
    v_unif = a.sum() * float(variance_factor(budget / 32, estimator))
    assert m["vip/pred_var_ratio_vs_uniform"] == pytest.approx(v_plan / v_unif)
    # the uniform group size implied by "rollouts saved" reaches V(plan)
    n_u = (budget + m["vip/rollouts_saved_vs_uniform"]) / 32
    assert a.sum() * float(variance_factor(n_u, estimator)) == pytest.approx(
        v_plan, rel=1e-6)  # variance_factor computes in float32
    assert m["vip/pred_var_ratio_vs_uniform"] <= 1 + 1e-9  # optimum <= uniform
    assert m["vip/rollouts_saved_vs_uniform"] >= -1e-9


def test_continuous_rewards(emb):
    pl = Planner(emb, reward="continuous", bandwidth=2.0, lower=2, upper=8)
    rng = np.random.default_rng(4)
    ids = np.arange(10)
    rewards = [rng.normal(0, 0.2 + i / 5, 6) for i in range(10)]
    rewards[0] = np.full(6, 0.3)  # zero variance
    m = pl.observe(ids, rewards)
    assert m["frac_reward_zero_std"] == pytest.approx(0.1)
    v = pl.predict(ids)
    s2 = np.array([r.var(ddof=1) for r in rewards])
    np.testing.assert_allclose(v[1:], s2[1:], rtol=1e-4)  # observed -> exact
    counts = pl.plan(ids, 50)
    assert counts.sum() == 50
    assert counts[0] == 2  # a zero-variance prompt gets the minimum
    with pytest.raises(ValueError, match="need reward='binary'"):
        pl.observe(ids, successes=np.ones(10), counts=np.ones(10))


@pytest.mark.parametrize("predictor", ["gp", "moving_average", "ridge"])
def test_save_load_roundtrip(emb, tmp_path, predictor):
    rng = np.random.default_rng(5)
    pl = Planner(emb, ids=_ids(), predictor=predictor, bandwidth=2.0,
                 noise="binomial" if predictor == "gp" else "none")
    ids = [f"uid-{i}" for i in range(20)]
    pl.observe(ids, successes=rng.integers(0, 5, 20), counts=np.full(20, 4))
    path = tmp_path / "planner.npz"
    pl.save(path)
    assert sorted(os.listdir(tmp_path)) == ["planner.npz"]  # no temp file left
    pl2 = Planner.load(path)
    np.testing.assert_array_equal(pl2.predict(ids), pl.predict(ids))
    assert pl2.step == pl.step == 1
    more = dict(successes=rng.integers(0, 5, 20), counts=np.full(20, 4))
    pl.observe(ids, **more)
    pl2.observe(ids, **more)
    np.testing.assert_array_equal(pl2.predict(ids), pl.predict(ids))
    # the file holds no pickles
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z["meta"]).decode())
    assert meta["format"] == "vipcore.planner" and meta["version"] == 1


def test_load_rejects_bad_files(emb, tmp_path):
    pl = Planner(emb, bandwidth=2.0)
    good = tmp_path / "good.npz"
    pl.save(good)
    data = good.read_bytes()
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="trunc.npz: not a readable"):
        Planner.load(trunc)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"hello world")
    with pytest.raises(ValueError, match="junk.npz"):
        Planner.load(junk)
    # a future version
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    meta["version"] = plmod.FORMAT_VERSION + 1
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    fut = tmp_path / "future.npz"
    np.savez(fut, **arrays)
    with pytest.raises(ValueError, match="version 2 is not supported"):
        Planner.load(fut)
    # inconsistent shapes
    meta["version"] = 1
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    arrays["state.sq_norms"] = arrays["state.sq_norms"][:-1]
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match="inconsistent array shapes"):
        Planner.load(bad)


def test_save_failure_keeps_old_file(emb, tmp_path, monkeypatch):
    pl = Planner(emb, bandwidth=2.0)
    path = tmp_path / "p.npz"
    pl.save(path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(plmod.np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        pl.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["p.npz"]
