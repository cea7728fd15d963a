"""The replay benchmark's engine, and the orderings ``docs/prediction.md``
quotes from it (``python benchmarks/bench_replay.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from vipcore import allocate
from vipcore._src.apps.verify import replay as rp
from vipcore._src.predict import calibration as cal


def _toy(seed=0, rounds=12, batch=6, q=10):
    rng = np.random.default_rng(seed)
    ids = np.stack([rng.choice(q, batch, replace=False) for _ in range(rounds)])
    base = rng.uniform(0.05, 0.95, q)
    p = np.clip(base[ids] + 0.01 * np.arange(rounds)[:, None], 0, 1)
    emb = rng.normal(size=(q, 3)).astype(np.float32)
    return rp.Trajectory(ids[None].astype(np.int32), p[None].astype(np.float32),
                         emb, "toy")


def test_oracle_rounds_follow_their_definition():
    """Per round: the objective of the oracle allocation at the true p, the
    uniform objective and the starved mid-range count, recomputed with
    vipcore.allocate and the objective written out (float64)."""
    traj = _toy()
    s = rp.ReplaySettings(rollouts=4, lower=2, upper=8)
    res = rp.run_replay(traj, "oracle", settings=s, seeds=1)
    m = res["metrics"][0, 0]
    k = {name: i for i, name in enumerate(rp.METRICS)}
    for t in range(traj.ids.shape[1]):
        p = traj.p[0, t].astype(np.float64)
        n = allocate(traj.p[0, t], 24, 2, 8)
        a = 4 * p * (1 - p)
        assert m[t, k["objective"]] == pytest.approx(np.sum(a / (n - 1)), rel=1e-5)
        assert m[t, k["objective_oracle"]] == pytest.approx(m[t, k["objective"]],
                                                            rel=1e-5)
        assert m[t, k["objective_uniform"]] == pytest.approx(np.sum(a / 3), rel=1e-5)
        mid = (p >= 0.2) & (p <= 0.8)
        assert m[t, k["starved"]] == np.sum(mid & (n == 2))
        assert m[t, k["mid"]] == np.sum(mid)
    summ = rp.summarize(res)
    assert summ["objective_vs_oracle"] == pytest.approx(1.0)
    assert summ["mae"] == 0.0


def test_prediction_rounds_agree_with_allocation_metrics():
    """A learning predictor: the replay's per-round objective and starvation
    equal calibration.allocation_metrics of the prediction it made (the
    prediction recovered from the MAE column is not needed: the moving
    average with window 1 fed the exact p predicts the previous visit)."""
    traj = _toy(1)
    s = rp.ReplaySettings(rollouts=4, lower=2, upper=8)
    res = rp.run_replay(traj, "previous_p", settings=s, seeds=1)
    m = res["metrics"][0, 0]
    k = {name: i for i, name in enumerate(rp.METRICS)}
    last: dict[int, float] = {}
    fallback = 0.5
    for t in range(traj.ids.shape[1]):
        ids, p = traj.ids[0, t], traj.p[0, t].astype(np.float64)
        ph = np.array([last.get(int(i), fallback) for i in ids], np.float32)
        am = cal.allocation_metrics(ph, p, 24, 2, 8)
        assert m[t, k["objective"]] == pytest.approx(am.objective, rel=1e-5)
        assert m[t, k["starved"]] == am.starved
        assert m[t, k["abs_err"]] == pytest.approx(np.sum(np.abs(ph - p)), abs=1e-5)
        last.update(zip(ids.tolist(), p.tolist(), strict=True))
        fallback = float(np.mean(p))


def _ratio(traj, name, seeds=3, **kw):
    return rp.summarize(rp.run_replay(traj, name, seeds=seeds, **kw))


@pytest.mark.slow
def test_documented_orderings_on_the_simulate_replay():
    """The orderings quoted in docs/prediction.md, on the recorded simulate
    trajectory (3 runs x 3 seeds): oracle < beta < gp_binomial < uniform < gp
    (Algorithm 1), and beta starves almost no mid-range prompt while
    Algorithm 1 starves many. Margin: every gap exceeds 3 replicate standard
    deviations of the two ratios (pooled), and holds in every replicate."""
    traj = rp.simulate_trajectory()
    res = {name: _ratio(traj, name, **kw) for name, kw in (
        ("oracle", {}), ("beta", {}), ("gp_binomial", {}),
        ("gp", {"options": {"latent_bound": None}}))}
    order = ["oracle", "beta", "gp_binomial"]
    for a, b in zip(order, order[1:], strict=False):
        ra, rb = res[a], res[b]
        gap = rb["objective_vs_uniform"] - ra["objective_vs_uniform"]
        sd = np.hypot(ra["replicate_sd"], rb["replicate_sd"])
        assert gap > 3 * sd, (a, b, gap, sd)
        assert np.all(np.less(ra["per_replicate"], rb["per_replicate"])), (a, b)
    assert max(res["gp_binomial"]["per_replicate"]) < 1
    assert min(res["gp"]["per_replicate"]) > 1
    assert res["beta"]["starved"] < 0.005 < 0.05 < res["gp"]["starved"]
