"""Tests for vipcore.sweep: metrics, buckets, potential, advice, miss
probability and frac_reward_zero_std (SPEC §5).

Monte-Carlo checks use z-scores with Bonferroni thresholds: each test states
its family-wise false-failure rate ``ALPHA`` and splits it over its checks.
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given
from scipy import stats

from tests.helpers import assert_allclose
from vipcore import sweep
from vipcore.sweep import BUCKETS

UNL, SIG, TRIV, FLAT, SINGLE = (BUCKETS.index(b) for b in BUCKETS)
#: Family-wise false-failure rate of each Monte-Carlo test below.
ALPHA = 1e-4


def z_star(m: int, alpha: float = ALPHA) -> float:
    """Two-sided Bonferroni z threshold for ``m`` checks."""
    return NormalDist().inv_cdf(1 - alpha / (2 * m))


# ---------------------------------------------------------------------------
# strategies

binary_rows = st.lists(
    st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=12),
    min_size=1, max_size=25,
)
graded_rows = st.lists(
    st.lists(
        st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0]),
                  st.floats(0, 1, allow_nan=False)),
        min_size=1, max_size=12),
    min_size=1, max_size=25,
)
any_rows = st.one_of(binary_rows, graded_rows)
thresholds = st.tuples(st.floats(0, 0.49), st.floats(0.51, 1.0))


def naive_metrics(rows):
    """Seed 000's ``compute_variance_metrics`` loop (the oracle)."""
    return {
        "mean": [np.mean(r) for r in rows],
        "best": [np.max(r) for r in rows],
        "worst": [np.min(r) for r in rows],
        "var": [np.var(r) for r in rows],
        "std": [np.std(r) for r in rows],
    }


# ---------------------------------------------------------------------------
# metrics


@given(any_rows)
def test_metrics_match_naive_loop(rows):
    m = sweep.prompt_metrics(rows)
    ref = naive_metrics(rows)
    for name, want in ref.items():
        assert_allclose(getattr(m, name), want, rtol=1e-12, atol=1e-15)
    assert m.n.tolist() == [len(r) for r in rows]
    assert_allclose(m.pass_rate, ref["mean"], rtol=1e-12, atol=1e-15)


def test_input_forms_agree():
    rng = np.random.default_rng(0)
    mat = rng.random((7, 5))
    a = sweep.prompt_metrics(mat)
    b = sweep.prompt_metrics(mat.tolist())
    c = sweep.prompt_metrics(mat.reshape(-1), counts=np.full(7, 5))
    d = sweep.prompt_metrics(mat.astype(np.float32))
    for x in (b, c):
        for f in a._fields:
            np.testing.assert_array_equal(getattr(a, f), getattr(x, f))
    # float32 input: computed in float64, agrees with the float64 reference
    assert d.mean.dtype == np.float64
    assert_allclose(d.mean, mat.astype(np.float32).astype(np.float64).mean(1))


@given(binary_rows, st.floats(1e-6, 1.0))
def test_pass_threshold_equals_mean_for_binary(rows, t):
    a = sweep.prompt_metrics(rows)
    b = sweep.prompt_metrics(rows, pass_threshold=t)
    assert_allclose(a.pass_rate, b.pass_rate, rtol=1e-12, atol=1e-15)


def test_pass_threshold_graded():
    m = sweep.prompt_metrics([[0.2, 0.6, 0.9, 0.4]], pass_threshold=0.5)
    assert m.pass_rate.tolist() == [0.5]
    assert m.mean.tolist() == pytest.approx([0.525])


@given(any_rows, st.randoms(use_true_random=False))
def test_permutation_invariance(rows, rnd):
    m = sweep.prompt_metrics(rows)
    shuffled = [rnd.sample(r, len(r)) for r in rows]
    perm = list(range(len(rows)))
    rnd.shuffle(perm)
    m2 = sweep.prompt_metrics([shuffled[i] for i in perm])
    for f in ("mean", "var", "best", "worst", "pass_rate"):
        assert_allclose(getattr(m2, f), getattr(m, f)[perm], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "bad, match",
    [
        ([[0.5, 1.5]], r"in \[0, 1\].*prompt 0, rollout 1"),
        ([[0.5], [0.1, np.nan]], r"nan.*prompt 1, rollout 1"),
        ([[0.5, -0.1]], r"in \[0, 1\]"),
        ([["a", "b"]], "numeric"),
        ([[None, 1.0]], "numeric"),
        ([["0.5", "1"]], "numeric"),
        ([0.0, 1.0, 1.0], "1-D scores need counts"),
        ([[0.5], []], r"scores\[1\] must be a non-empty"),
        (np.zeros((2, 2, 2)), "matrix"),
    ],
)
def test_bad_scores(bad, match):
    with pytest.raises(ValueError, match=match):
        sweep.prompt_metrics(bad)


def test_empty_and_ragged_arrays():
    r = sweep.analyze([])
    assert sum(r.counts.values()) == 0 and r.potential.n_prompts == 0
    m = sweep.prompt_metrics([np.array([1.0, 0.0]), np.array([1.0])])
    assert m.n.tolist() == [2, 1]


def test_booleans_are_pass_fail():
    m = sweep.prompt_metrics([[True, False, True], np.array([False, False])])
    assert m.mean.tolist() == pytest.approx([2 / 3, 0.0])


def test_bad_counts():
    with pytest.raises(ValueError, match="sum to len"):
        sweep.prompt_metrics([0.0, 1.0, 1.0], counts=[1, 1])
    with pytest.raises(ValueError, match=">= 1"):
        sweep.prompt_metrics([0.0, 1.0], counts=[2, 0])
    with pytest.raises(ValueError, match="pass_threshold"):
        sweep.prompt_metrics([[0.0, 1.0]], pass_threshold=0.0)


# ---------------------------------------------------------------------------
# buckets


@given(any_rows, thresholds, st.booleans())
def test_bucket_counts_sum_to_prompts(rows, lohi, use_t):
    m = sweep.prompt_metrics(rows, pass_threshold=0.5 if use_t else None)
    b = sweep.assign_buckets(m, lo=lohi[0], hi=lohi[1])
    counts = sweep.bucket_counts(b)
    assert set(counts) == set(BUCKETS)
    assert sum(counts.values()) == len(rows)
    # single is exactly the prompts with one rollout
    assert counts["single"] == sum(len(r) == 1 for r in rows)


@given(st.lists(st.tuples(st.floats(0, 1), st.integers(1, 10)), min_size=1,
                max_size=20), thresholds, st.booleans())
def test_all_equal_scores_never_signal(vals, lohi, use_t):
    rows = [[v] * n for v, n in vals]
    m = sweep.prompt_metrics(rows, pass_threshold=0.5 if use_t else None)
    b = sweep.assign_buckets(m, lo=lohi[0], hi=lohi[1])
    assert not np.any(b == SIG)
    assert not np.any(sweep.high_variance(m))


@given(any_rows, st.floats(0, 0.45), st.floats(0, 0.45), st.floats(0.55, 1),
       st.floats(0.55, 1))
def test_loosening_thresholds_only_moves_out_of_signal(rows, lo_a, lo_b, hi_a, hi_b):
    lo1, lo2 = sorted((lo_a, lo_b))
    hi2, hi1 = sorted((hi_a, hi_b))
    m = sweep.prompt_metrics(rows)
    hard = sweep.assign_buckets(m, lo=lo1, hi=hi1)
    soft = sweep.assign_buckets(m, lo=lo2, hi=hi2)
    allowed = {(i, i) for i in range(len(BUCKETS))} | {
        (SIG, UNL), (SIG, TRIV), (FLAT, UNL), (FLAT, TRIV)}
    assert set(zip(hard.tolist(), soft.tolist(), strict=True)) <= allowed


def test_bucket_rules_examples():
    rows = [[0, 0], [0, 1], [1, 1], [0.5, 0.5], [1], [0.02, 0.08], [0.97, 0.99]]
    m = sweep.prompt_metrics(rows)
    hard = [BUCKETS[i] for i in sweep.assign_buckets(m, **_th("hard"))]
    soft = [BUCKETS[i] for i in sweep.assign_buckets(m, **_th("soft"))]
    assert hard == ["unlearnable", "signal", "trivial", "flat", "single", "signal",
                    "signal"]
    assert soft == ["unlearnable", "signal", "trivial", "flat", "single",
                    "unlearnable", "trivial"]
    with pytest.raises(ValueError, match="0 <= lo < hi <= 1"):
        sweep.assign_buckets(m, lo=0.6, hi=0.4)


def _th(name):
    lo, hi = sweep.THRESHOLDS[name]
    return {"lo": lo, "hi": hi}


@given(binary_rows)
def test_high_variance_is_signal_for_hard_binary(rows):
    # seed 000's filter (var > 0.01, 0 < mean < 1) picks a subset of signal.
    m = sweep.prompt_metrics(rows)
    b = sweep.assign_buckets(m)
    hv = sweep.high_variance(m)
    assert np.all(b[hv] == SIG)


def test_high_variance_threshold():
    m = sweep.prompt_metrics([[0.5, 0.6], [0, 1], [0.5, 0.5]])
    # variances 0.0025, 0.25, 0
    assert sweep.high_variance(m).tolist() == [False, True, False]
    assert sweep.high_variance(m, threshold=0.001).tolist() == [True, True, False]


# ---------------------------------------------------------------------------
# potential and advice


def test_potential_definition():
    m = sweep.prompt_metrics([[0, 1, 1], [0, 0, 0], [1, 1, 1], [0.5]])
    p = sweep.improvement_potential(m)
    # single-rollout prompt excluded: means (2/3, 0, 1), bests (1, 0, 1)
    assert p.n_prompts == 3
    assert p.current == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert p.best_of_k == pytest.approx(2 / 3)
    assert p.gain == pytest.approx(p.best_of_k - p.current)
    assert p.relative == pytest.approx(p.gain / p.current)
    zero = sweep.improvement_potential(sweep.prompt_metrics([[0, 0]]))
    assert zero.current == 0 and math.isnan(zero.relative)


def test_seed000_finqa_numbers_are_illustrative_only():
    """Seed 000: 100 samples, 3 runs, 40 always correct, 45 always wrong,
    15 high-variance, 'current 0.59'. The 15 varying samples have a mean
    below 1, so the overall mean is below (40 + 15) / 100 = 0.55 < 0.59: no
    data set reproduces all figures. We document, not fit, them."""
    best_case = [[1, 1, 1]] * 40 + [[0, 0, 0]] * 45 + [[1, 1, 0]] * 15
    r = sweep.analyze(best_case)
    assert r.counts == {"unlearnable": 45, "signal": 15, "trivial": 40,
                        "flat": 0, "single": 0}
    assert r.potential.current <= 0.55 < 0.59
    # graded scores do not help: any mean strictly below 1 for the 15
    graded = [[1, 1, 1]] * 40 + [[0, 0, 0]] * 45 + [[1, 1, 0.999]] * 15
    assert sweep.analyze(graded).potential.current < 0.55


@pytest.mark.parametrize(
    "signal, level, mult",
    [
        (0, "too_little", None),
        (9, "too_little", None),
        (10, "low", (2, 4)),
        (14, "low", (2, 4)),
        (15, "healthy", (1, 2)),
        (30, "healthy", (1, 2)),
        (31, "high", (1, 1)),
        (100, "high", (1, 1)),
    ],
)
def test_advice_levels(signal, level, mult):
    rest = 100 - signal
    counts = {"unlearnable": rest // 2, "signal": signal, "trivial": rest - rest // 2,
              "flat": 0, "single": 7}  # single prompts are not counted
    a = sweep.advise(counts)
    assert a.signal_fraction == pytest.approx(signal / 100)
    assert (a.level, a.multiplier) == (level, mult)


def test_advice_messages():
    hard = sweep.advise({"unlearnable": 90, "signal": 5, "trivial": 5, "flat": 0,
                         "single": 0})
    assert "too hard" in hard.messages[0]
    easy = sweep.advise({"unlearnable": 5, "signal": 5, "trivial": 90, "flat": 0,
                         "single": 0})
    assert "too easy" in easy.messages[0]
    flat_pot = sweep.Potential(0.5, 0.52, 0.02, 0.04, 10)
    a = sweep.advise({"unlearnable": 0, "signal": 20, "trivial": 80, "flat": 0,
                      "single": 0}, potential=flat_pot)
    assert any("low improvement potential" in m for m in a.messages)
    a = sweep.advise({"unlearnable": 0, "signal": 20, "trivial": 80, "flat": 0,
                      "single": 0}, potential=flat_pot._replace(gain=0.2))
    assert not any("low improvement potential" in m for m in a.messages)


def test_analyze_report():
    r = sweep.analyze([[0, 0, 0, 0], [0, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 0], [1]],
                      lo=0.0, hi=1.0, group_size=2)
    assert r.counts == {"unlearnable": 1, "signal": 2, "trivial": 1, "flat": 0,
                        "single": 1}
    assert r.advice.level == "high"
    assert r.high_variance.tolist() == [False, True, False, True, False]
    # zero-std per prompt at G=2 (U-statistic): [1, 1/3, 1, 1/2]; single excluded
    assert r.zero_std_all.mean == pytest.approx((1 + 1 / 3 + 1 + 1 / 2) / 4)
    assert r.zero_std_signal.mean == pytest.approx((1 / 3 + 1 / 2) / 2)


# ---------------------------------------------------------------------------
# miss probability


def test_miss_probability_seed001():
    # seed 001: "k = 8 ... true 5% pass rate ... roughly a 66% chance"
    assert round(float(sweep.miss_probability(0.05, 8)), 2) == 0.66
    assert float(sweep.miss_probability(0.05, 8)) == pytest.approx(0.95**8)


@given(st.floats(0, 1), st.integers(1, 40), st.floats(0, 0.5))
def test_miss_probability_is_binomial_cdf(p, k, lo):
    got = float(sweep.miss_probability(p, k, lo=lo))
    xmax = max(x for x in range(k + 1) if x / k <= lo) if lo >= 0 else -1
    assert got == pytest.approx(stats.binom.cdf(xmax, k, p), abs=1e-12)


@given(st.floats(1e-3, 1.0), st.floats(1e-4, 0.99))
def test_rollouts_for_miss_rate_is_minimal(p, target):
    k = sweep.rollouts_for_miss_rate(p, target)
    assert (1 - p) ** k <= target
    assert k == 1 or (1 - p) ** (k - 1) > target


def test_rollouts_for_miss_rate_examples():
    # ceil(log 0.05 / log 0.95) = ceil(58.4) = 59
    assert sweep.rollouts_for_miss_rate(0.05, 0.05) == 59
    assert sweep.rollouts_for_miss_rate(1.0, 0.05) == 1
    with pytest.raises(ValueError, match="p must lie"):
        sweep.rollouts_for_miss_rate(0.0, 0.05)
    with pytest.raises(ValueError, match="target"):
        sweep.rollouts_for_miss_rate(0.1, 1.0)


def _simulated_unlearnable(rng, p, k, n, lo):
    """Fraction of n simulated prompts the sweep pipeline calls unlearnable."""
    p = np.broadcast_to(p, (n,))
    scores = (rng.random((n, k)) < p[:, None]).astype(float)
    b = sweep.assign_buckets(sweep.prompt_metrics(scores), lo=lo, hi=1.0)
    return np.mean(b == UNL)


CASES = [(0.05, 8, 0.0), (0.05, 16, 0.0), (0.02, 16, 0.0), (0.2, 4, 0.0),
         (0.1, 16, 0.05), (0.05, 20, 0.05), (0.3, 10, 0.1)]


def test_miss_probability_matches_simulation():
    """Whole pipeline (scores -> metrics -> buckets) vs the formula; each
    check is a z-test on a binomial proportion, Bonferroni over the cases."""
    rng = np.random.default_rng(1)
    n = 20_000
    zs = z_star(len(CASES))
    for p, k, lo in CASES:
        q = float(sweep.miss_probability(p, k, lo=lo))
        emp = _simulated_unlearnable(rng, p, k, n, lo)
        se = math.sqrt(q * (1 - q) / n)
        assert abs(emp - q) / se < zs, (p, k, lo, emp, q)


def test_miss_probability_negative_control():
    """(1-p)^K is per prompt. Applied to the *mean* pass rate of a
    heterogeneous pool (p ~ Beta(0.5, 9.5), mean 0.05) it is wrong (Jensen):
    the same z-test must reject it."""
    rng = np.random.default_rng(2)
    n, k = 20_000, 8
    p = rng.beta(0.5, 9.5, n)
    q_wrong = float(sweep.miss_probability(0.05, k))
    emp = _simulated_unlearnable(rng, p, k, n, 0.0)
    se = math.sqrt(q_wrong * (1 - q_wrong) / n)
    assert abs(emp - q_wrong) / se > z_star(1)
    # while the per-prompt formula averaged over the pool is not rejected
    q_right = float(np.mean(sweep.miss_probability(p, k)))
    se = math.sqrt(q_right * (1 - q_right) / n)
    assert abs(emp - q_right) / se < z_star(1)


# ---------------------------------------------------------------------------
# frac_reward_zero_std


@pytest.mark.parametrize("k, g", [(16, 8), (8, 8), (5, 2), (12, 1)])
def test_zero_std_estimator_exactly_unbiased_binary(k, g):
    """E[estimate] over X ~ Bin(K, p) equals p^G + (1-p)^G exactly."""
    xs = np.arange(k + 1)
    rows = [[1.0] * x + [0.0] * (k - x) for x in xs]
    est = sweep.frac_reward_zero_std(rows, group_size=g).per_prompt
    for p in (0.0, 0.03, 0.3, 0.5, 0.9, 1.0):
        expect = float(np.sum(stats.binom.pmf(xs, k, p) * est))
        assert expect == pytest.approx(float(sweep.zero_std_probability(p, g)),
                                       abs=1e-12)


def test_zero_std_plugin_is_biased_negative_control():
    """The plug-in p_hat^G + (1-p_hat)^G is *not* unbiased (what the exact
    check above would catch if we used it)."""
    k, g, p = 16, 8, 0.3
    xs = np.arange(k + 1)
    plug = (xs / k) ** g + (1 - xs / k) ** g
    expect = float(np.sum(stats.binom.pmf(xs, k, p) * plug))
    assert abs(expect - float(sweep.zero_std_probability(p, g))) > 1e-3


def test_zero_std_estimator_unbiased_graded():
    """Graded scores on {0, 0.5, 1} with probabilities (a, b, c): the estimate
    of P(all G equal) = a^G + b^G + c^G is unbiased (exact enumeration)."""
    k, g = 6, 3
    probs = (0.2, 0.5, 0.3)
    vals = (0.0, 0.5, 1.0)
    total = 0.0
    for m0 in range(k + 1):
        for m1 in range(k + 1 - m0):
            m2 = k - m0 - m1
            row = [vals[0]] * m0 + [vals[1]] * m1 + [vals[2]] * m2
            w = stats.multinomial.pmf([m0, m1, m2], k, probs)
            total += w * sweep.frac_reward_zero_std([row], group_size=g).mean
    assert total == pytest.approx(sum(q**g for q in probs), abs=1e-12)


def test_zero_std_matches_training_simulation():
    """Sweep at K=16, then simulate real training groups of G=8 from the true
    p: the predicted frac_reward_zero_std matches the observed one. The
    per-prompt differences are independent, so the z-score uses their own
    standard error."""
    rng = np.random.default_rng(3)
    n, k, g = 20_000, 16, 8
    p = np.where(rng.random(n) < 0.3, rng.integers(0, 2, n).astype(float),
                 rng.beta(0.7, 0.7, n))
    sweep_scores = (rng.random((n, k)) < p[:, None]).astype(float)
    est = sweep.frac_reward_zero_std(sweep_scores, group_size=g)
    assert est.unbiased
    groups = rng.random((n, g)) < p[:, None]
    observed = (groups.all(1) | ~groups.any(1)).astype(float)
    d = est.per_prompt - observed
    z = d.mean() / (d.std(ddof=1) / math.sqrt(n))
    assert abs(z) < z_star(1)
    # negative control: the plug-in estimate is rejected by the same test
    ph = sweep_scores.mean(1)
    d = (ph**g + (1 - ph) ** g) - observed
    z = d.mean() / (d.std(ddof=1) / math.sqrt(n))
    assert abs(z) > z_star(1)


def test_zero_std_graded_ties_and_plugin_flag():
    r = sweep.frac_reward_zero_std([[0.1, 0.2, 0.3, 0.4]], group_size=2)
    assert r.per_prompt.tolist() == [0.0]  # no ties -> never zero std
    r = sweep.frac_reward_zero_std([[0, 1], [1, 1, 1, 0]], group_size=3)
    assert not r.unbiased  # first prompt has K=2 < G=3: plug-in
    assert r.per_prompt[0] == pytest.approx(2 * 0.5**3)
    assert r.per_prompt[1] == pytest.approx(1 / 4)  # C(3,3)/C(4,3)
    with pytest.raises(ValueError, match="group_size"):
        sweep.frac_reward_zero_std([[0, 1]], group_size=0)


# ---------------------------------------------------------------------------
# transitions


@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=50))
def test_transition_margins(pairs):
    a = np.array([x for x, _ in pairs], dtype=int)
    b = np.array([y for _, y in pairs], dtype=int)
    mat = sweep.bucket_transitions(a, b)
    assert mat.shape == (len(BUCKETS), len(BUCKETS))
    assert mat.sum(1).tolist() == list(sweep.bucket_counts(a).values())
    assert mat.sum(0).tolist() == list(sweep.bucket_counts(b).values())
    for (i, j) in itertools.product(range(5), range(5)):
        assert mat[i, j] == sum(1 for x, y in pairs if (x, y) == (i, j))


def test_transition_errors():
    with pytest.raises(ValueError, match="equal length"):
        sweep.bucket_transitions([0, 1], [0])
    with pytest.raises(ValueError, match="bucket indices"):
        sweep.bucket_transitions([0, 7], [0, 1])
