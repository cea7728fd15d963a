"""The trainer-facing Planner: layouts, reward formats, metrics, definitions
checked against independent NumPy code, robustness to bad input."""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest

from vipcore._src.planner import (
    DEFAULT_PREDICTOR,
    PlanMismatchWarning,
    Planner,
    group_rewards,
    padded_mask,
    repeat_index,
)
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


@pytest.mark.parametrize("predictor", ["beta", "gp", "moving_average", "ridge"])
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


def test_default_predictor():
    """Binary rewards: the Beta posterior, with or without embeddings (its
    prior uses them when given); continuous rewards: the GP, or the moving
    average without embeddings."""
    emb = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    assert Planner(emb).config["predictor"] == "beta" == DEFAULT_PREDICTOR
    assert type(Planner(emb).state.prior).__name__ != "PooledState"
    assert Planner(num_prompts=6).config["predictor"] == "beta"
    assert Planner(emb, reward="continuous").config["predictor"] == "gp"
    assert Planner(num_prompts=6, reward="continuous").config["predictor"] == (
        "moving_average")
    assert Planner(emb, predictor="ridge").config["predictor"] == "ridge"


def test_defaults_need_no_embeddings_and_no_lower():
    """The default predictor (beta) needs no embeddings; Dr. GRPO works
    without passing lower (its smallest valid value, 3, is the default)."""
    pl = Planner(num_prompts=10)
    assert pl.config["predictor"] == "beta" and pl.config["lower"] == 2
    pl = Planner(ids=list("abcdefgh"), estimator="drgrpo")
    assert pl.config["lower"] == 3 and pl.num_prompts == 8
    n = pl.plan(list("abcd"), 16)
    assert n.tolist() == [4, 4, 4, 4]
    assert type(pl.state.prior).__name__ == "PooledState"
    with pytest.raises(ValueError, match="needs \\(Q, d\\) embeddings"):
        Planner(num_prompts=10, predictor="gp")
    with pytest.raises(ValueError, match="give embeddings, num_prompts or ids"):
        Planner()
    with pytest.raises(ValueError, match="disagree"):
        Planner(num_prompts=3, ids=["a", "b"])


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
    flat = np.concatenate(ragged)
    variants = {
        "ragged": dict(rewards=ragged),
        "pm1": dict(rewards=[2 * r - 1 for r in ragged]),
        "bool": dict(rewards=[r.astype(bool) for r in ragged]),
        "nan_padded": dict(rewards=padded),
        "masked": dict(rewards=np.where(mask, padded, 0.0), mask=mask),
        "verl_flat": dict(rewards=group_rewards(flat, counts)),
        "counts": dict(successes=[r.sum() for r in ragged], counts=counts),
    }
    means = {}
    for name, kw in variants.items():
        pl = Planner(emb, ids=_ids(), predictor="gp", bandwidth=2.0)
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


@pytest.mark.parametrize("kwargs, match", [
    (dict(successes=[1e300], counts=[1e300]), r"counts must lie in \[0, 16777216\]"),
    (dict(successes=[2.5], counts=[4]), "successes must be whole numbers"),
    (dict(successes=[5], counts=[4]), "need 0 <= successes <= counts"),
    (dict(successes=[-1], counts=[4]), "need 0 <= successes <= counts"),
    (dict(successes=[np.nan], counts=[4]), "successes must be whole numbers"),
    (dict(successes=["1"], counts=[4]), "successes must be numbers"),
    (dict(rewards=[["1", "0"]]), r"rewards\[0\] must be numbers"),
    (dict(rewards=np.array([["1", "0"]])), "rewards must be numbers"),
    (dict(rewards=[[1.0, np.inf]]), r"rewards\[0\] must be finite"),
])
def test_observe_refuses_poisoned_input(kwargs, match):
    """Huge counts, successes > counts, fractional or string input: refused
    before they reach the predictor (they used to turn every later
    prediction into NaN or be silently accepted)."""
    pl = Planner(num_prompts=4, predictor="beta")
    with pytest.raises(ValueError, match=match):
        pl.observe([0], **kwargs)
    assert np.all(np.isfinite(pl.predict([0, 1])))


def test_continuous_rewards_overflow_is_refused():
    pl = Planner(num_prompts=4, reward="continuous")
    with pytest.raises(ValueError, match="too large"):
        pl.observe([0], [[1e300, -1e300, 3.0]])


def test_padded_zeros_without_mask_warn_or_raise():
    """A TRL user who pads groups with 0 and forgets mask= has every slot
    counted as a rollout: the planner compares with its plan and says how to
    pass the mask; strict=True makes it an error. NaN padding or a mask is
    fine."""
    counts = np.array([2, 6, 4, 4])
    width = 8
    mask = padded_mask(counts, width)
    rng = np.random.default_rng(3)
    rewards = np.where(mask, rng.integers(0, 2, (4, width)), 0).astype(float)
    pl = Planner(num_prompts=8, lower=2, upper=8)
    pl.plan([0, 1, 2, 3], 16)  # uniform (prior): 4 each, not the observed counts
    pl._last_plan = (np.arange(4, dtype=np.int32), counts)  # the plan we padded
    with pytest.warns(PlanMismatchWarning, match="mask=padded_mask"):
        m = pl.observe([0, 1, 2, 3], rewards)
    assert m["vip/observed_rollouts"] == 32  # the mistake is visible, not hidden
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pl.observe([0, 1, 2, 3], rewards, mask=mask)
        pl.observe([0, 1, 2, 3], np.where(mask, rewards, np.nan))
    strict = Planner(num_prompts=8, lower=2, upper=8, strict=True)
    strict._last_plan = (np.arange(4, dtype=np.int32), counts)
    with pytest.raises(ValueError, match="planned 16, observed 32"):
        strict.observe([0, 1, 2, 3], rewards)


def test_predictor_options_are_checked():
    with pytest.raises(ValueError, match="predictor 'beta' does not take noise="):
        Planner(num_prompts=4, noise="binomial")
    with pytest.raises(ValueError, match="eps must lie in"):
        Planner(num_prompts=4, eps=0.7)
    with pytest.raises(ValueError, match="ridge_capacity must be >= 1"):
        Planner(np.eye(4), predictor="ridge", ridge_capacity=0)
    with pytest.raises(ValueError, match="prior_mean must be finite"):
        Planner(np.eye(4), predictor="gp", prior_mean=float("nan"))
    with pytest.raises(ValueError, match="needs a predictor with a posterior"):
        Planner(np.eye(4), predictor="gp", uncertainty="expected")
    with pytest.raises(ValueError, match="does not model reward='continuous'"):
        Planner(num_prompts=4, predictor="beta", reward="continuous")


# ------------------------- definitions vs independent NumPy ----------------


def _greedy(a, budget, lower, upper, estimator):
    """Exact integer optimum of sum a_q c(n_q) by marginal gains (convex)."""
    def c(n):
        return 1 / (n - 1) if estimator == "rloo" else (n - 1) / n**2
    n = np.full(len(a), lower)
    for _ in range(budget - n.sum()):
        gain = np.where(n < upper, a * (c(n) - c(n + 1.0)), -np.inf)
        n[int(np.argmax(gain))] += 1
    return n


@pytest.mark.parametrize("rule", ["plugin", "expected", "optimistic"])
def test_uncertainty_rules_match_their_definitions(rule):
    """The plan allocates on a = 4 m (1 - m) (plugin), 4 (m - m^2 - v)
    (expected) or 4 p (1 - p) at p = clip(1/2, m - z sd, m + z sd)
    (optimistic), with m and v the beta posterior written out here."""
    pl = Planner(num_prompts=20, uncertainty=rule, optimism=0.7, discount=1.0,
                 prior_strength=2.0, upper=12)
    rng = np.random.default_rng(4)
    ids = np.arange(20)
    n0 = rng.integers(1, 9, 20)
    s0 = rng.binomial(n0, rng.uniform(0.05, 0.95, 20))
    pl.observe(ids, successes=s0, counts=n0)
    mu = (0.5 + s0.sum()) / (1 + n0.sum())   # pooled prior, weight 1
    al, be = 2 * mu + s0, 2 * (1 - mu) + n0 - s0
    m, v = al / (al + be), al * be / ((al + be) ** 2 * (al + be + 1))
    np.testing.assert_allclose(pl.predict(ids), m, rtol=1e-5)
    np.testing.assert_allclose(pl.variance(ids), v, rtol=1e-4)
    if rule == "plugin":
        a = 4 * m * (1 - m)
    elif rule == "expected":
        a = 4 * (m - m**2 - v)
    else:
        p = np.clip(0.5, m - 0.7 * np.sqrt(v), m + 0.7 * np.sqrt(v))
        a = 4 * p * (1 - p)
    got = pl.plan(ids, 20 * 6)
    np.testing.assert_array_equal(got, _greedy(a, 120, 2, 12, "rloo"))
    assert pl.metrics["vip/pred_var_ratio_vs_uniform"] == pytest.approx(
        np.sum(a / (got - 1)) / (np.sum(a) / 5), rel=1e-5)


def test_binomial_noise_planner_matches_dense_posterior(emb):
    """Planner(predictor='gp', noise='binomial'): every prompt gets
    m + K_.B (K_BB + delta I + N)^-1 (g - m_B) with the empirical-logit noise
    N = 1/(s + 1/2) + 1/(n - s + 1/2), written out with a dense kernel."""
    rng = np.random.default_rng(5)
    with jax.enable_x64(True):
        x = emb.astype(np.float64)
        pl = Planner(x, predictor="gp", noise="binomial", bandwidth=2.5,
                     jitter=1e-8)
        ids = rng.choice(Q, 12, replace=False)
        n = rng.integers(2, 9, 12)
        s = rng.binomial(n, 0.4)
        pl.observe(ids, successes=s, counts=n)
        got = pl.predict(np.arange(Q))
    diff = x[:, None, :] - x[None, :, :]
    k = np.exp(-np.sum(diff**2, -1) / (2 * 2.5**2))
    pc = np.clip(s / n, 0.01, 0.99)
    g = np.log(pc / (1 - pc))
    noise = 1 / (s + 0.5) + 1 / (n - s + 0.5)
    kbb = k[np.ix_(ids, ids)] + np.diag(1e-8 + noise)
    latent = k[:, ids] @ np.linalg.solve(kbb, g)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-latent)), rtol=1e-8)
    plain = Planner(x, predictor="gp", bandwidth=2.5, jitter=1e-8,
                    latent_bound="none")
    plain.observe(ids, successes=s, counts=n)
    assert np.max(np.abs(plain.predict(np.arange(Q)) - got)) > 1e-2  # differs


@pytest.mark.parametrize("estimator", ["rloo", "drgrpo"])
def test_continuous_plan_minimises_predicted_variance(emb, estimator):
    """Continuous rewards: the plan minimises sum_q v_q c(n_q) over the
    predicted reward variances v_q (the exact integer optimum, by an
    independent greedy), not some other function of v."""
    pl = Planner(emb, reward="continuous", predictor="gp", bandwidth=2.0,
                 estimator=estimator, upper=14)
    rng = np.random.default_rng(6)
    ids = np.arange(16)
    pl.observe(ids, [rng.normal(0, 0.1 + 0.3 * i, 6) for i in range(16)])
    v = pl.predict(ids)
    lower = pl.config["lower"]
    got = pl.plan(ids, 16 * 7)
    np.testing.assert_array_equal(got, _greedy(v, 112, lower, 14, estimator))


@pytest.mark.parametrize("estimator", ["rloo", "drgrpo"])
def test_plan_metrics_definitions(emb, estimator):
    pl = Planner(emb, estimator=estimator, lower=3, upper=12, predictor="gp",
                 bandwidth=2.0)
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
    assert pl.config["predictor"] == "gp"
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


# ------------------------------- growing ------------------------------------


def test_add_prompts_with_ids_and_embeddings(emb, tmp_path):
    pl = Planner(emb[:40], ids=_ids()[:40])
    rng = np.random.default_rng(7)
    pl.observe(_ids()[:10], successes=rng.integers(0, 5, 10), counts=np.full(10, 4))
    before = pl.predict(_ids()[:40])
    pl.add(_ids()[40:], emb[40:])
    assert pl.num_prompts == Q and pl.ids == _ids()
    np.testing.assert_allclose(pl.predict(_ids()[:40]), before, rtol=1e-6)
    assert pl.plan(_ids()[38:46], 32).sum() == 32
    pl.observe(_ids()[40:44], successes=[0, 1, 2, 3], counts=[4, 4, 4, 4])
    path = tmp_path / "grown.npz"
    pl.save(path)
    back = Planner.load(path)
    assert back.ids == _ids()
    np.testing.assert_array_equal(back.predict(_ids()), pl.predict(_ids()))
    with pytest.raises(ValueError, match="already known"):
        pl.add(["uid-3"], emb[:1])
    with pytest.raises(ValueError, match="needs \\(1, d\\) embeddings"):
        Planner(emb[:40], predictor="gp").add(1)


def test_add_without_embeddings_or_ids():
    pl = Planner(num_prompts=3)
    pl.observe([0, 1], successes=[4, 0], counts=[4, 4])
    pl.add(2)
    pl.add([5, 6])
    assert pl.num_prompts == 7
    new = pl.predict([3, 4, 5, 6])
    np.testing.assert_allclose(new, new[0])  # never seen: the (pooled) prior
    with pytest.raises(ValueError, match="next rows 7, 8"):
        pl.add([9])
