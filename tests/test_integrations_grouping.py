"""The trainer adapters' framework-free logic (no torch, TRL or verl needed).

``trl_advantages`` is checked against a NumPy transcription of TRL's
``_generate_and_score_completions`` (nanmean, Bessel-corrected nanstd,
``+1e-4``, NaN for unscorable rows, ``nan_to_num``), applied group by group.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import assert_allclose
from vipcore._src.integrations import _grouping as g


def trl_std(x):
    """TRL's ``nanstd``: Bessel-corrected over non-NaN entries, NaN below two."""
    v = x[~np.isnan(x)]
    return np.std(v, ddof=1) if v.size > 1 else np.nan


def oracle(rpf, w, counts, scale, aggregation):
    """TRL's formulas, one group at a time, in float64."""
    rpf = np.asarray(rpf, np.float64)
    bounds = np.cumsum(np.r_[0, counts])
    groups = [slice(bounds[i], bounds[i + 1]) for i in range(len(counts))]
    unscorable = np.isnan(rpf).all(axis=1)
    if aggregation == "normalize_then_sum":
        norm = np.full_like(rpf, np.nan)
        for s in groups:
            x = rpf[s]
            has = (~np.isnan(x)).any(axis=0)
            mean = np.array([np.nanmean(x[:, k]) if has[k] else 0.0
                             for k in range(x.shape[1])])
            for k in range(rpf.shape[1]):
                norm[s, k] = (x[:, k] - mean[k]) / (trl_std(x[:, k]) + 1e-4)
        r = np.nansum(norm * w, axis=1)
        r[unscorable] = np.nan
        adv = (r - np.nanmean(r)) / (trl_std(r) + 1e-4)
        return np.nan_to_num(adv)
    r = np.nansum(rpf * w, axis=1)
    r[unscorable] = np.nan
    adv = np.empty_like(r)
    for s in groups:
        x = r[s]
        c = x - (np.nanmean(x) if (~np.isnan(x)).any() else 0.0)
        std = trl_std(x) if scale == "group" else trl_std(r)
        adv[s] = c if scale == "none" else c / (std + 1e-4)
    return np.nan_to_num(adv)


@st.composite
def batches(draw):
    counts = np.asarray(draw(st.lists(st.integers(2, 7), min_size=1, max_size=5)))
    nf = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    c = counts.sum()
    rpf = rng.integers(0, 2, (c, nf)).astype(np.float32)
    if draw(st.booleans()):
        rpf[rng.random((c, nf)) < 0.2] = np.nan  # reward functions returning None
    w = rng.uniform(0.5, 2.0, nf).astype(np.float32)
    return rpf, w, counts


@given(batches(), st.sampled_from(g.SCALE_REWARDS), st.sampled_from(g.AGGREGATIONS))
def test_trl_advantages_match_trls_formulas(batch, scale, aggregation):
    rpf, w, counts = batch
    got = g.trl_advantages(rpf, w, counts, scale_rewards=scale, aggregation=aggregation)
    want = oracle(rpf, w, counts, scale, aggregation)
    assert got.advantages.dtype == np.float32
    assert_allclose(got.advantages, want, rtol=1e-4, atol=1e-4)
    raw = np.nansum(rpf.astype(np.float64) * w, axis=1)
    raw[np.isnan(rpf).all(axis=1)] = np.nan
    assert_allclose(got.rewards, raw, rtol=1e-6, atol=1e-6, equal_nan=True)


def test_equal_groups_reproduce_trls_fixed_width_view():
    """With n_q = n̄ the ragged computation is TRL's ``view(-1, n̄)`` one."""
    rng = np.random.default_rng(0)
    r = rng.integers(0, 2, 12).astype(np.float32)
    v = r.reshape(-1, 4).astype(np.float64)
    std = np.std(v, axis=1, ddof=1, keepdims=True)
    want = ((v - v.mean(axis=1, keepdims=True)) / (std + 1e-4)).ravel()
    got = g.trl_advantages(r[:, None], np.ones(1), np.full(3, 4))
    assert_allclose(got.advantages, want, rtol=1e-5, atol=1e-6)


def test_oracle_can_fail():
    """Negative control: a population std (ddof = 0) is told apart."""
    r = np.array([[1.0], [0.0], [0.0]], np.float32)
    got = g.trl_advantages(r, np.ones(1), [3]).advantages
    pop = (r[:, 0] - r.mean()) / (r.std() + 1e-4)
    assert np.abs(got - pop).max() > 0.1


def test_zero_std_groups():
    r = np.array([1, 1, 0, 1, np.nan, 2, 2, np.nan, 5, np.nan, np.nan], np.float32)
    got = g.zero_std_groups(r, [2, 2, 3, 2, 2])
    assert got.tolist() == [True, False, True, False, False]


def test_unique_prompts_and_layout():
    rows = [{"id": k, "prompt": f"p{k}"} for k in ("a", "a", "b", "b", "c", "c")]
    uniq, ids = g.unique_prompts(rows, "id", 2)
    assert ids == ["a", "b", "c"] and [u["prompt"] for u in uniq] == ["pa", "pb", "pc"]
    counts = np.array([1, 3, 2])
    ex = g.expand_rows(uniq, counts)
    assert [r["id"] for r in ex] == ["a", "b", "b", "b", "c", "c"]
    ex[1]["prompt"] = "changed"
    assert ex[2]["prompt"] == "pb"  # copies, not aliases
    assert g.group_index(counts).tolist() == [0, 1, 1, 1, 2, 2]
    assert g.process_slice(6, 2, 1) == slice(3, 6)


def test_unique_prompts_refuses_bad_layouts():
    rows = [{"id": "a"}] * 3 + [{"id": "b"}]
    with pytest.raises(ValueError, match="prompt id 'a' appears 3 times.*expected "
                                         "num_generations = 2"):
        g.unique_prompts(rows, "id", 2)
    with pytest.raises(ValueError, match="no column 'uid'"):
        g.unique_prompts(rows, "uid", 2)
    with pytest.raises(ValueError, match="must be hashable"):
        g.unique_prompts([{"id": [1]}, {"id": [1]}], "id", 2)
    with pytest.raises(ValueError, match="cannot be split evenly over 4 processes"):
        g.process_slice(6, 4, 0)


def test_trl_advantages_refuses_bad_settings():
    r = np.zeros((4, 1), np.float32)
    with pytest.raises(ValueError, match="scale_rewards must be one of"):
        g.trl_advantages(r, np.ones(1), [2, 2], scale_rewards="median")
    with pytest.raises(ValueError, match="multi_objective_aggregation must be one of"):
        g.trl_advantages(r, np.ones(1), [2, 2], aggregation="max")
    with pytest.raises(ValueError, match=r"rewards_per_func must be \(sum\(counts\)"):
        g.trl_advantages(r, np.ones(1), [2, 3])


@pytest.mark.parametrize("aggregation", g.AGGREGATIONS)
@pytest.mark.parametrize("scale", g.SCALE_REWARDS)
def test_a_batch_nobody_could_score_has_zero_advantages(scale, aggregation):
    rpf = np.full((6, 2), np.nan, np.float32)
    out = g.trl_advantages(rpf, np.ones(2), [3, 3], scale_rewards=scale,
                           aggregation=aggregation)
    assert np.all(out.advantages == 0) and np.all(np.isnan(out.rewards))
    assert not out.zero_std.any()
