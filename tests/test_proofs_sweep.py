"""The pre-flight sweep's numbers against their definitions.

Replaces two tests that could not fail: a comparison of two constants
(``0.55 < 0.59``) and a negative control that never called the library.
Each test here is the one a catalogue mutant of
``vipcore/_src/sweep/analysis.py`` fails (``benchmarks/mutation/catalogue.py``).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats as ss

from vipcore import sweep


def test_finqa_best_case_potential_is_computed_from_the_scores():
    """Seed 000's FinQA shape: 40 always correct, 45 always wrong, 15 right
    twice in 3. The library's potential equals the hand count:
    current (40 + 15 * 2/3) / 100 = 0.50 and best-of-3 (40 + 15) / 100 = 0.55,
    so the illustrative 'current 0.59' cannot come from such data."""
    scores = [[1, 1, 1]] * 40 + [[0, 0, 0]] * 45 + [[1, 1, 0]] * 15
    pot = sweep.analyze(scores).potential
    assert pot.current == pytest.approx(0.50, abs=1e-12)
    assert pot.best_of_k == pytest.approx(0.55, abs=1e-12)
    assert pot.gain == pytest.approx(0.05, abs=1e-12)
    assert pot.relative == pytest.approx(0.10, abs=1e-12)


def _max_bias(estimate, k: int, g: int) -> float:
    """Largest |E[estimate] - (p^G + (1-p)^G)| over Bin(K, p), exact sums."""
    xs = np.arange(k + 1)
    est = np.asarray(estimate([[1.0] * x + [0.0] * (k - x) for x in xs], g))
    worst = 0.0
    for p in (0.03, 0.3, 0.5, 0.9):
        expect = float(np.dot(ss.binom.pmf(xs, k, p), est))
        worst = max(worst, abs(expect - (p**g + (1 - p) ** g)))
    return worst


def _library(rows, g):
    return sweep.frac_reward_zero_std(rows, group_size=g).per_prompt


def _plugin(rows, g):
    ph = np.array([np.mean(r) for r in rows])
    return ph**g + (1 - ph) ** g


@pytest.mark.parametrize("k, g", [(16, 8), (8, 8), (5, 2), (12, 1)])
def test_zero_std_estimator_is_unbiased_and_the_check_has_teeth(k, g):
    """The same checker accepts the library and rejects the plug-in."""
    assert _max_bias(_library, k, g) < 1e-12
    if g > 1:
        assert _max_bias(_plugin, k, g) > 1e-3


def test_zero_std_graded_against_multinomial_enumeration():
    vals, probs, k, g = (0.0, 0.5, 1.0), (0.2, 0.5, 0.3), 6, 3
    rows, weights = [], []
    for c in itertools.product(range(k + 1), repeat=3):
        if sum(c) == k:
            rows.append([v for v, m in zip(vals, c, strict=True) for _ in range(m)])
            weights.append(ss.multinomial.pmf(c, k, probs))
    est = sweep.frac_reward_zero_std(rows, group_size=g).per_prompt
    assert float(np.dot(weights, est)) == pytest.approx(sum(q**g for q in probs),
                                                        abs=1e-12)


def test_probabilities_against_the_binomial_law():
    for p, k in itertools.product((0.0, 0.02, 0.3, 1.0), (1, 4, 16)):
        assert float(sweep.miss_probability(p, k)) == pytest.approx(
            ss.binom.pmf(0, k, p), abs=1e-15)
        for lo in (0.05, 0.25, 0.5):
            x = max(j for j in range(k + 1) if j / k <= lo) if lo * k >= 0 else 0
            assert float(sweep.miss_probability(p, k, lo=lo)) == pytest.approx(
                ss.binom.cdf(x, k, p), abs=1e-13)
        assert float(sweep.zero_std_probability(p, k)) == pytest.approx(
            ss.binom.pmf(0, k, p) + ss.binom.pmf(k, k, p), abs=1e-15)


def test_metrics_and_buckets_follow_their_definitions():
    rng = np.random.default_rng(0)
    groups = [rng.choice([0.0, 0.25, 1.0], n) for n in rng.integers(2, 9, 30)]
    m = sweep.prompt_metrics(groups)
    for i, g in enumerate(groups):
        assert (m.mean[i], m.best[i], m.worst[i]) == (g.mean(), g.max(), g.min())
        assert m.var[i] == pytest.approx(g.var(ddof=0), abs=1e-15)  # population
    # a pass rate exactly at lo is unlearnable (<=), exactly at hi trivial (>=)
    mm = sweep.prompt_metrics([[0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0],
                               [0.0, 1.0, 0.0, 1.0]])
    names = [sweep.BUCKETS[b] for b in sweep.assign_buckets(mm, lo=0.25, hi=0.75)]
    assert names == ["unlearnable", "trivial", "signal"]
    assert math.isclose(float(mm.pass_rate[0]), 0.25)
