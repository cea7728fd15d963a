"""``vipcore verify`` section: the pre-flight sweep's probability claims.

Exact rows (no Monte Carlo), each a library function against an oracle of
:mod:`vipcore._src.apps.verify.oracles` or a direct enumeration:

* ``miss_probability`` (hard and soft thresholds) against the binomial CDF
  computed as a regularised incomplete beta function;
* ``zero_std_probability`` against ``1 - P(mixed group)`` summed over the
  binomial law;
* the ``frac_reward_zero_std`` estimator is unbiased: its expectation over
  ``Bin(K, p)`` (binary) or the multinomial law (graded scores on three
  values) equals the probability of an all-equal group, computed directly;
* ``prompt_metrics`` (mean, best, worst, population variance) against a
  prompt-by-prompt loop; the reward-variance analysis's ``K = 8, p = 0.05 ->
  0.66``.

Monte-Carlo rows, each a z-test with the section's Bonferroni threshold:

* miss probability: the share of prompts with true pass rate ``p`` that the
  whole pipeline (scores -> metrics -> buckets) calls ``unlearnable`` equals
  ``miss_probability(p, K, lo)``;
* ``frac_reward_zero_std``: the estimate from a K-rollout sweep predicts the
  share of zero-std training groups of size ``G`` drawn afresh (binary and
  graded rewards);
* negative controls that must be rejected: the miss formula applied to a
  heterogeneous pool's *mean* pass rate (Jensen), and the plug-in zero-std
  estimator ``p_hat^G + (1-p_hat)^G`` (biased).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from vipcore._src._plotting import new_figure, save_figure
from vipcore._src.apps.verify import oracles as O
from vipcore._src.apps.verify.exact import F64_TOL, Worst, exact_check
from vipcore._src.apps.verify.report import (
    Check,
    SectionResult,
    VerifyConfig,
    bonferroni_z,
    z_check,
)
from vipcore._src.sweep.analysis import (
    BUCKETS,
    assign_buckets,
    frac_reward_zero_std,
    miss_probability,
    prompt_metrics,
    zero_std_probability,
)
from vipcore._src.variance import zero_variance_probability

__all__ = ["section", "TITLE"]

TITLE = "Pre-flight sweep: miss probability and frac_reward_zero_std"
MISS_CASES = [(0.05, 8, 0.0), (0.05, 16, 0.0), (0.02, 32, 0.0), (0.2, 4, 0.0),
              (0.1, 16, 0.05), (0.3, 10, 0.1)]
#: (K, G) of the zero-std checks.
ZERO_STD_CASES = ((16, 8), (8, 8), (5, 2), (12, 6))


# --------------------------------------------------------------------------
# Exact rows
# --------------------------------------------------------------------------


def _binom_cdf(x: int, k: int, p: float) -> float:
    """``P(Bin(k, p) <= x)`` as ``I_{1-p}(k - x, x + 1)``."""
    if x >= k:
        return 1.0
    if p <= 0:
        return 1.0
    return O.betainc(k - x, x + 1, 1 - p) if p < 1 else 0.0


def _miss_rows() -> list[Check]:
    w = Worst(1e-300)
    for p, k, lo in itertools.product((0.0, 0.02, 0.05, 0.3, 0.9, 1.0),
                                      (1, 4, 8, 16, 32), (0.0, 0.05, 0.1, 0.25)):
        x = max(j for j in range(k + 1) if j / k <= lo) if lo else 0
        w.add(miss_probability(p, k, lo=lo), _binom_cdf(x, k, p),
              f"p={p} K={k} lo={lo}")
    q = float(miss_probability(0.05, 8))
    return [exact_check("miss_probability vs binomial CDF (incomplete beta)", w,
                        F64_TOL),
            Check("reward-variance analysis: K=8, p=0.05 -> 0.66",
                  round(q, 2) == 0.66, theory=0.66, empirical=q,
                  note="0.95**8, rounded")]


def _all_equal(p: float, g: int) -> float:
    mixed = sum(math.comb(g, k) * p**k * (1 - p) ** (g - k) for k in range(1, g))
    return 1.0 - mixed


def _zero_std_rows() -> list[Check]:
    prob, unb = Worst(1e-300), Worst(1e-300)
    for p, g in itertools.product((0.0, 0.03, 0.3, 0.5, 0.9, 1.0), (1, 2, 8)):
        prob.add(zero_std_probability(p, g), _all_equal(p, g), f"p={p} G={g}")
    for (k, g), p in itertools.product(ZERO_STD_CASES, (0.03, 0.3, 0.5, 0.9)):
        xs = range(k + 1)
        est = frac_reward_zero_std([[1.0] * x + [0.0] * (k - x) for x in xs],
                                   group_size=g).per_prompt
        pmf = [math.comb(k, x) * p**x * (1 - p) ** (k - x) for x in xs]
        unb.add(float(np.dot(pmf, est)), _all_equal(p, g), f"binary K={k} G={g}")
    vals, probs, k, g = (0.0, 0.5, 1.0), (0.2, 0.5, 0.3), 6, 3
    rows, weights = [], []
    for counts in itertools.product(range(k + 1), repeat=2):
        if sum(counts) <= k:
            c = (*counts, k - sum(counts))
            rows.append([v for v, m in zip(vals, c, strict=True) for _ in range(m)])
            weights.append(math.factorial(k) / math.prod(math.factorial(m) for m in c)
                           * math.prod(q**m for q, m in zip(probs, c, strict=True)))
    est = frac_reward_zero_std(rows, group_size=g).per_prompt
    unb.add(float(np.dot(weights, est)), sum(q**g for q in probs), "graded K=6 G=3")
    return [exact_check("zero_std_probability vs 1 - P(mixed group)", prob, F64_TOL),
            exact_check("frac_reward_zero_std is unbiased: E over Bin(K, p) and a "
                        "multinomial = P(all G equal)", unb, F64_TOL)]


def _metric_rows(rng) -> list[Check]:
    groups = [rng.choice([0.0, 0.25, 1.0], int(k)) for k in rng.integers(1, 9, 40)]
    m = prompt_metrics(groups)
    w = Worst(1.0)
    for i, g in enumerate(groups):
        ref = [g.mean(), g.max(), g.min(), ((g - g.mean()) ** 2).mean()]
        w.add([m.mean[i], m.best[i], m.worst[i], m.var[i]], ref, f"prompt {i}")
    return [exact_check("prompt_metrics mean/best/worst/variance vs prompt loop", w,
                        F64_TOL, note="40 ragged prompts of 1..8 scores")]


def exact_rows(seed: int) -> list[Check]:
    """The section's exact rows and one negative control."""
    rows = _miss_rows() + _zero_std_rows()
    rows += _metric_rows(np.random.default_rng(seed + 5005))
    k, g, p = 16, 8, 0.3
    plug = Worst()
    xs = np.arange(k + 1)
    pmf = [math.comb(k, int(x)) * p**x * (1 - p) ** (k - x) for x in xs]
    plug.add(float(np.dot(pmf, zero_variance_probability(xs / k, g))),
             _all_equal(p, g), "K=16 G=8 p=0.3")
    rows.append(exact_check("NEGATIVE: the plug-in p_hat^G + (1-p_hat)^G is not "
                            "unbiased", plug, F64_TOL, negative=True))
    return rows


# --------------------------------------------------------------------------
# Monte-Carlo rows
# --------------------------------------------------------------------------


def _unlearnable_share(rng, p, k, lo):
    scores = (rng.random((p.size, k)) < p[:, None]).astype(np.float64)
    b = assign_buckets(prompt_metrics(scores), lo=lo, hi=1.0)
    return float(np.mean(b == BUCKETS.index("unlearnable")))


def _zero_std_z(rng, draw, k, g, n, *, plugin=False):
    """(predicted, observed, stderr) for a population drawn by ``draw``."""
    sweep_scores = draw(rng, n, k)
    fresh = draw(rng, n, g)  # the training groups, drawn afresh
    if plugin:
        pred = zero_variance_probability(sweep_scores.mean(1), g)
    else:
        pred = frac_reward_zero_std(sweep_scores, group_size=g).per_prompt
    observed = (np.ptp(fresh, axis=1) == 0).astype(np.float64)
    d = pred - observed
    return float(pred.mean()), float(observed.mean()), float(
        d.std(ddof=1) / math.sqrt(n))


class _Binary:
    """Per-prompt p: 30 % at exactly 0 or 1, the rest Beta(0.7, 0.7)."""

    def __init__(self, seed_rng, n):
        self.p = np.where(seed_rng.random(n) < 0.3,
                          seed_rng.integers(0, 2, n).astype(float),
                          seed_rng.beta(0.7, 0.7, n))

    def __call__(self, rng, n, k):
        return (rng.random((n, k)) < self.p[:n, None]).astype(np.float64)


class _Graded:
    """Per-prompt categorical over {0, 0.5, 1} with Dirichlet(0.5) weights."""

    def __init__(self, seed_rng, n):
        self.w = seed_rng.dirichlet([0.5, 0.5, 0.5], n)

    def __call__(self, rng, n, k):
        u = rng.random((n, k))
        c = np.cumsum(self.w[:n], axis=1)
        idx = (u[:, :, None] > c[:, None, :2]).sum(-1)
        return np.array([0.0, 0.5, 1.0])[idx]


def _miss_checks(rng, n, zs) -> tuple[list[Check], list[tuple]]:
    checks, sims = [], []
    for p, k, lo in MISS_CASES:
        theory = float(miss_probability(p, k, lo=lo))
        emp = _unlearnable_share(rng, np.full(n, p), k, lo)
        se = math.sqrt(theory * (1 - theory) / n)
        sims.append((p, k, lo, theory, emp, se))
        checks.append(z_check(f"miss probability p={p}, K={k}, lo={lo}",
                              theory, emp, se, zs))
    emp = _unlearnable_share(rng, rng.beta(0.5, 9.5, n), 8, 0.0)
    wrong = float(miss_probability(0.05, 8))
    checks.append(z_check(
        "NEGATIVE: (1-mean p)^K for a Beta(0.5, 9.5) pool, K=8", wrong, emp,
        math.sqrt(wrong * (1 - wrong) / n), zs, negative=True,
        note="Jensen: the formula is per prompt"))
    return checks, sims


def _zero_std_checks(rng, seed, n, zs) -> list[Check]:
    seed_rng = np.random.default_rng(seed + 7007)
    binary, graded = _Binary(seed_rng, n), _Graded(seed_rng, n)
    checks = []
    for (name, pop), (k, g) in zip(
            [("binary", binary), ("binary", binary), ("graded {0,.5,1}", graded)],
            [(16, 8), (8, 4), (12, 6)], strict=True):
        pred, obs, se = _zero_std_z(rng, pop, k, g, n)
        checks.append(z_check(f"frac_reward_zero_std {name}, K={k}, G={g}",
                              pred, obs, se, zs, note="theory = sweep estimate, "
                              "empirical = fresh groups"))
    pred, obs, se = _zero_std_z(rng, binary, 16, 8, n, plugin=True)
    checks.append(z_check("NEGATIVE: plug-in p_hat^G+(1-p_hat)^G, K=16, G=8",
                          pred, obs, se, zs, negative=True, note="biased upwards"))
    return checks


def section(cfg: VerifyConfig) -> SectionResult:
    """Exact rows, then the Monte-Carlo rows (module docstring)."""
    n = cfg.trials or cfg.pick(20_000, 100_000, 400_000)
    rng = np.random.default_rng(cfg.seed + 6006)
    n_z = len(MISS_CASES) + 3 + 2  # positive z-checks + negative controls
    zs = bonferroni_z(cfg.section_fwer, n_z)
    exact = exact_rows(cfg.seed)
    cfg.progress(f"sweep: miss probability, {len(MISS_CASES)} cases x {n} prompts")
    miss, sims = _miss_checks(rng, n, zs)
    cfg.progress("sweep: frac_reward_zero_std vs simulated training groups")
    zero = _zero_std_checks(rng, cfg.seed, n, zs)
    fname = "sweep_miss_probability.png"
    _plot(cfg.out / fname, sims)
    md = (
        f"**Exact rows** ({len(exact)}, first in the table): the sweep's "
        "probability functions against direct enumeration. **Monte-Carlo "
        f"rows:** {n} simulated prompts per case; Bonferroni z threshold "
        f"{zs:.2f} over {n_z} z-checks. A prompt with true pass rate p looks "
        "unlearnable with probability (1-p)^K (hard thresholds) or the binomial "
        "CDF at floor(lo K) (soft). frac_reward_zero_std: the U-statistic from "
        "a K-rollout sweep predicts the share of zero-std groups of size G."
    )
    return SectionResult(
        title=TITLE, checks=exact + miss + zero, markdown=md,
        figures=[(fname, "Miss probability (1-p)^K (lines) and the simulated "
                  "unlearnable share (points, ±2 s.e.)")],
        data={"n": n, "threshold": zs, "exact_checks": len(exact),
              "miss_cases": [dict(zip(("p", "k", "lo", "theory", "empirical",
                                       "stderr"), s, strict=True)) for s in sims]},
    )


def _plot(path, sims) -> None:
    fig, ax = new_figure(7, 4.2)
    ks = np.arange(1, 65)
    for p in (0.02, 0.05, 0.1, 0.2):
        ax.plot(ks, (1 - p) ** ks, label=f"(1-p)^K, p = {p}")
    for i, (_p, k, _lo, _, emp, se) in enumerate(s for s in sims if s[2] == 0):
        ax.errorbar([k], [emp], yerr=[2 * se], fmt="o", color="k", ms=4,
                    label="simulation ± 2 s.e." if i == 0 else None)
    ax.axhline(0.05, color="grey", ls=":", lw=1, label="5 %")
    ax.set(xlabel="rollouts per prompt K",
           ylabel="probability a prompt looks unlearnable",
           title="Sweep miss probability: theory (lines) and simulation (points)")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(True, alpha=0.3)
    save_figure(fig, path, dpi=100)
