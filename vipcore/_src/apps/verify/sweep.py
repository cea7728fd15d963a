"""``vipcore verify`` section: the pre-flight sweep's probability claims.

Checks, each a z-test with the section's Bonferroni threshold:

* miss probability: the share of prompts with true pass rate ``p`` that the
  whole pipeline (scores -> metrics -> buckets) calls ``unlearnable`` equals
  ``miss_probability(p, K, lo)`` (hard and soft thresholds);
* ``frac_reward_zero_std``: the estimate from a K-rollout sweep predicts the
  share of zero-std training groups of size ``G`` drawn afresh (binary and
  graded rewards);
* exact identities (no Monte Carlo): the estimator is unbiased, by summing
  over the binomial distribution; the reward-variance analysis's
  ``K = 8, p = 0.05 -> 0.66``;
* negative controls that must be rejected: the miss formula applied to a
  heterogeneous pool's *mean* pass rate (Jensen), and the plug-in zero-std
  estimator ``p_hat^G + (1-p_hat)^G`` (biased).
"""

from __future__ import annotations

import math

import numpy as np

from vipcore._src._plotting import new_figure, save_figure
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

__all__ = ["section"]

MISS_CASES = [(0.05, 8, 0.0), (0.05, 16, 0.0), (0.02, 32, 0.0), (0.2, 4, 0.0),
              (0.1, 16, 0.05), (0.3, 10, 0.1)]


def _unlearnable_share(rng, p, k, lo):
    scores = (rng.random((p.size, k)) < p[:, None]).astype(np.float64)
    b = assign_buckets(prompt_metrics(scores), lo=lo, hi=1.0)
    return float(np.mean(b == BUCKETS.index("unlearnable")))


def _zero_std_z(rng, draw, k, g, n, *, plugin=False):
    """(predicted, observed, stderr) for a population drawn by ``draw``."""
    sweep_scores = draw(rng, n, k)
    fresh = draw(rng, n, g)  # the training groups, drawn afresh
    if plugin:
        ph = sweep_scores.mean(1)
        pred = zero_variance_probability(ph, g)
    else:
        pred = frac_reward_zero_std(sweep_scores, group_size=g).per_prompt
    observed = (np.ptp(fresh, axis=1) == 0).astype(np.float64)
    d = pred - observed
    return float(pred.mean()), float(observed.mean()), float(d.std(ddof=1) /
                                                             math.sqrt(n))


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


def section(cfg: VerifyConfig) -> SectionResult:
    n = cfg.trials or cfg.pick(20_000, 100_000, 400_000)
    rng = np.random.default_rng(cfg.seed + 6006)
    checks: list[Check] = []
    n_z = len(MISS_CASES) + 3 + 2  # positive z-checks + negative controls
    zs = bonferroni_z(cfg.section_fwer, n_z)

    # exact identities
    q = float(miss_probability(0.05, 8))
    checks.append(Check("reward-variance analysis: K=8, p=0.05 -> 0.66",
                        round(q, 2) == 0.66, theory=0.66, empirical=q,
                        note="0.95**8, rounded"))
    worst = 0.0
    for k, g in ((16, 8), (8, 8), (5, 2)):
        xs = np.arange(k + 1)
        est = frac_reward_zero_std(
            [[1.0] * x + [0.0] * (k - x) for x in xs], group_size=g).per_prompt
        logpmf = np.array([math.lgamma(k + 1) - math.lgamma(x + 1)
                           - math.lgamma(k - x + 1) for x in xs])
        for p in (0.03, 0.3, 0.5, 0.9):
            with np.errstate(divide="ignore"):
                pmf = np.exp(logpmf + xs * math.log(p) + (k - xs) * math.log1p(-p))
            worst = max(worst, abs(float(pmf @ est) - float(
                zero_std_probability(p, g))))
    checks.append(Check("zero-std U-statistic is unbiased (exact sum over "
                        "Bin(K,p), 12 cases)", worst < 1e-12, theory=0.0,
                        empirical=worst, note="max |E[est] - (p^G+(1-p)^G)|"))

    # miss probability through the pipeline
    cprog = cfg.progress
    cprog(f"sweep: miss probability, {len(MISS_CASES)} cases x {n} prompts")
    sims = []
    for p, k, lo in MISS_CASES:
        theory = float(miss_probability(p, k, lo=lo))
        emp = _unlearnable_share(rng, np.full(n, p), k, lo)
        se = math.sqrt(theory * (1 - theory) / n)
        sims.append((p, k, lo, theory, emp, se))
        checks.append(z_check(f"miss probability p={p}, K={k}, lo={lo}",
                              theory, emp, se, zs))
    pool = rng.beta(0.5, 9.5, n)
    emp = _unlearnable_share(rng, pool, 8, 0.0)
    wrong = float(miss_probability(0.05, 8))
    checks.append(z_check(
        "NEGATIVE: (1-mean p)^K for a Beta(0.5, 9.5) pool, K=8", wrong, emp,
        math.sqrt(wrong * (1 - wrong) / n), zs, negative=True,
        note="Jensen: the formula is per prompt"))

    # frac_reward_zero_std vs fresh training groups
    cprog("sweep: frac_reward_zero_std vs simulated training groups")
    seed_rng = np.random.default_rng(cfg.seed + 7007)
    pops = {"binary": _Binary(seed_rng, n), "graded {0,.5,1}": _Graded(seed_rng, n)}
    for (name, pop), (k, g) in zip(
        [("binary", pops["binary"]), ("binary", pops["binary"]),
         ("graded {0,.5,1}", pops["graded {0,.5,1}"])],
        [(16, 8), (8, 4), (12, 6)], strict=True,
    ):
        pred, obs, se = _zero_std_z(rng, pop, k, g, n)
        checks.append(z_check(f"frac_reward_zero_std {name}, K={k}, G={g}",
                              pred, obs, se, zs,
                              note="theory = sweep estimate, empirical = "
                              "fresh groups"))
    pred, obs, se = _zero_std_z(rng, pops["binary"], 16, 8, n, plugin=True)
    checks.append(z_check("NEGATIVE: plug-in p_hat^G+(1-p_hat)^G, K=16, G=8",
                          pred, obs, se, zs, negative=True,
                          note="biased upwards"))

    figures = []
    try:
        fname = "sweep_miss_probability.png"
        _plot(cfg.out / fname, sims)
        figures.append((fname, "Miss probability (1-p)^K (lines) and the "
                        "simulated unlearnable share (points, ±2 s.e.)"))
    except Exception as err:  # a plot must never hide the checks
        cprog(f"sweep: plot failed: {err}")
    md = (
        f"{n} simulated prompts per case; Bonferroni z threshold {zs:.2f} over "
        f"{n_z} z-checks. A prompt with true pass rate p looks unlearnable "
        "with probability (1-p)^K (hard thresholds) or the binomial CDF at "
        "floor(lo K) (soft). frac_reward_zero_std: the U-statistic from a "
        "K-rollout sweep predicts the share of zero-std groups of size G."
    )
    return SectionResult(
        title="Pre-flight sweep: miss probability and frac_reward_zero_std",
        checks=checks, markdown=md, figures=figures,
        data={"n": n, "miss_cases": [dict(zip(("p", "k", "lo", "theory",
                                               "empirical", "stderr"), s,
                                              strict=True)) for s in sims]},
    )


def _plot(path, sims) -> None:
    fig, ax = new_figure(7, 4.2)
    ks = np.arange(1, 65)
    for p in (0.02, 0.05, 0.1, 0.2):
        ax.plot(ks, (1 - p) ** ks, label=f"p = {p}")
    for _p, k, lo, _, emp, se in sims:
        if lo == 0:
            ax.errorbar([k], [emp], yerr=[2 * se], fmt="o", color="k", ms=4)
    ax.axhline(0.05, color="grey", ls=":", lw=1)
    ax.set_xlabel("rollouts per prompt K")
    ax.set_ylabel("P(looks unlearnable)")
    ax.set_title("Sweep miss probability (1-p)^K; points: simulation")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    save_figure(fig, path, dpi=100)
