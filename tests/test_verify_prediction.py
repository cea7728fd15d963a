"""The prediction section of ``vipcore verify`` (quick settings) and the
synthetic generator it uses."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from helpers import dense_gp_update
from scipy import linalg as sla
from scipy.spatial.distance import pdist

from vipcore._src.apps.verify import prediction_exact as pe
from vipcore._src.apps.verify import synthetic
from vipcore._src.apps.verify.prediction import section
from vipcore._src.apps.verify.report import VerifyConfig


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify_prediction")
    return section(VerifyConfig(mode="quick", out=out, n_sections=3)), out


def test_quick_section_passes_and_writes_outputs(result):
    res, out = result
    failed = [c.name for c in res.checks if not c.passed]
    assert not failed, failed
    assert any(c.negative for c in res.checks)
    for fname, _ in res.figures:
        assert (out / fname).stat().st_size > 1000
    json.dumps(res.data, default=float)  # serialisable
    curves = json.loads((out / "prediction_curves.json").read_text())
    assert len(curves["mae"]["gp"][0]) == res.data["steps"]


def test_pinned_ordering(result):
    """The orderings measured on the pinned generator (seed 0, quick settings):
    MAE gp_binomial < ridge < gp, and the allocation objective at the true p
    beta < uniform and beta < gp. Margin: each gap exceeds 5 standard errors
    of the per-step paired differences (the section's own spread estimate)
    and has the same sign in every replicate."""
    res, _ = result
    mae = res.data["mean_mae"]
    assert mae["gp_binomial"] < mae["ridge"] < mae["gp"]
    summ = res.data["summary"]
    assert (summ["oracle_vs_uniform"] < summ["beta"]["objective_vs_uniform"] < 1
            < summ["gp"]["objective_vs_uniform"])
    assert summ["gp"]["starved"] > 0.02 > summ["beta"]["starved"]
    for key in ("ridge-gp_binomial", "gp-ridge", "objective uniform-beta",
                "objective gp-beta"):
        pair = res.data["paired"][key]
        assert pair["mean"] > 5 * pair["se"], (key, pair)
        assert all(d > 0 for d in pair["per_replicate"]), (key, pair)


def test_allocation_columns_follow_their_definition(result):
    """The section's objective ratios are ratios of sums of
    allocation_metrics over the steps after the warm-up (recomputed here from
    the per-step curves it wrote)."""
    res, out = result
    curves = json.loads((out / "prediction_curves.json").read_text())
    warm = res.data["warmup"]
    rel = np.asarray(curves["rel_objective"]["beta"])[:, warm:]
    assert np.all(rel > 0)
    starved = np.asarray(curves["starved"]["gp"])[:, warm:].sum()
    mid = np.asarray(curves["mid"]["gp"])[:, warm:].sum()
    assert res.data["summary"]["gp"]["starved"] == pytest.approx(starved / mid)


def test_generator_is_seeded_and_validates():
    a = synthetic.drifting_problem(3, num_prompts=200)
    b = synthetic.drifting_problem(3, num_prompts=200)
    np.testing.assert_array_equal(a.embeddings, b.embeddings)
    np.testing.assert_allclose(np.linalg.norm(a.embeddings, axis=1), 1, rtol=1e-5)
    p0 = synthetic.success_probs(a, 0)
    p9 = synthetic.success_probs(a, 9)
    assert np.all((p0 > 0) & (p0 < 1))
    # drift direction follows the sign of the drift rate
    np.testing.assert_array_equal(np.sign(p9 - p0), np.sign(a.drift_rate))
    sched = synthetic.batch_schedule(0, 100, 10, 25)
    assert sched.shape == (25, 10)
    assert len(np.unique(sched[:10])) == 100  # one epoch covers every prompt
    with pytest.raises(ValueError, match="unknown parameters"):
        synthetic.drifting_problem(0, wobble=1)


# ------------------------------------------------------------- exact rows


def test_section_counts_its_exact_rows(result):
    """The exact rows come first and their number is recorded (the docs'
    section table splits the rows there)."""
    res, _ = result
    n = res.data["exact_checks"]
    # the GP and Beta rows, then prediction_exact's 12: median_bandwidth x 2,
    # default GP x 2 dtypes x (row, control), binomial GP, moving average,
    # ridge (row, control), metrics, pooled
    assert n == 2 + 12
    assert all("exact, no Monte Carlo" in c.note for c in res.checks[2:n])
    assert not any("exact, no Monte Carlo" in c.note for c in res.checks[n:])
    exact = res.checks[:n]
    assert all(c.passed for c in exact)
    assert sum(c.negative for c in exact) == 3
    # each positive row's error is far inside its tolerance, each negative
    # control far outside (the row resolves the bug it is for)
    for r in exact[2:]:
        err = float(r.note.split("max relative error ")[1].split(" ")[0])
        if r.negative:
            assert err > 30 * r.threshold, r.name
        else:
            assert err < r.threshold / 30, r.name


def test_oracles_agree_with_independent_references():
    """The verify oracles against scipy and the tests' own dense GP."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 3))
    assert pe.oracle_median_bandwidth(x) == pytest.approx(np.median(pdist(x)),
                                                          rel=1e-14)
    x, idx, obs, w = pe.gp_instance()
    h = pe.oracle_median_bandwidth(x)
    got = pe.oracle_gp_update(x, 0.3, idx, obs, w, bandwidth=h, jitter=1e-6)
    want, _ = dense_gp_update(x, np.full(len(x), 0.3), idx, obs, w, h=h,
                              jitter=1e-6, eps=1e-2)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    # ridge: least squares on [X, 1] with sqrt(lam) I rows (intercept free)
    x, batches = pe.ridge_instance()
    clipped, raw = pe.oracle_ridge(x, batches, 16, 4.0)
    # capacity 16 = the last two batches of 8 distinct prompts; a repeated
    # prompt has one rate, so pooling leaves it unchanged
    stream = []
    for b_idx, ys, _ in batches[-2:]:
        stream += sorted({int(i): y for i, y in zip(b_idx, ys, strict=True)}.items())
    xs = np.hstack([x[[i for i, _ in stream]], np.ones((len(stream), 1))])
    a = np.vstack([xs, np.hstack([2.0 * np.eye(4), np.zeros((4, 1))])])
    y = np.concatenate([[v for _, v in stream], np.zeros(4)])
    sol = sla.lstsq(a, y)[0]
    np.testing.assert_allclose(raw, x @ sol[:4] + sol[4], rtol=1e-10)
    np.testing.assert_allclose(clipped, np.clip(raw, 0, 1))
    assert np.any(raw > 1) or np.any(raw < 0)


def _square(f):
    return lambda *a, **k: f(*a, **k) ** 2


def _without(f, **fixed):
    return lambda *a, **k: f(*a, **{**k, **fixed})


# (row function, name fragment of the row that must fail, patch target, wrong version)
_WRONG = {
    "median of squared distances": (
        pe._median_rows, "median_bandwidth", (pe.gp, "median_bandwidth"),
        _square),
    "no jitter": (functools.partial(pe._gp_rows, np.float32, False),
                  "default bandwidth and jitter", (pe.gp, "default_jitter"),
                  lambda f: lambda dtype: 0.0),
    "binomial noise ignored": (pe._binomial_row, "binomial noise",
                               (pe.gp, "update"), lambda f: _without(f, noise="none")),
    "moving-average window 4": (pe._moving_average_row, "moving average",
                                (pe, "moving_average_init"),
                                lambda f: _without(f, window=4)),
    "ridge without penalty": (pe._ridge_rows, "closed-form ridge",
                              (pe, "ridge_init"), lambda f: _without(f, lam=1e-6)),
    "ridge unclipped": (pe._ridge_rows, "closed-form ridge", (pe, "ridge_predict"),
                        lambda f: _without(f, link="softplus")),
    "MAE on counts": (pe._metrics_row, "calibration metrics",
                      (pe.cal, "mean_absolute_error"),
                      lambda f: lambda p, s, n: np.mean(np.abs(p - s))),
    "pooled prior weight 1": (pe._pooled_row, "pooled predictor",
                              (pe, "pooled_predictor"),
                              lambda f: _without(f, prior_weight=1.0)),
}


@pytest.mark.parametrize("bug", sorted(_WRONG))
def test_each_exact_row_fails_on_a_wrong_library(bug, monkeypatch):
    """Negative controls: the library function a row calls, replaced by a
    plausible wrong version, makes that row fail."""
    rows_fn, fragment, (owner, attr), wrong = _WRONG[bug]
    monkeypatch.setattr(owner, attr, wrong(getattr(owner, attr)))
    rows = rows_fn()
    rows = rows if isinstance(rows, list) else [rows]
    hit = [r for r in rows if fragment in r.name and not r.negative]
    assert hit and not any(r.passed for r in hit), [(r.name, r.note) for r in hit]
