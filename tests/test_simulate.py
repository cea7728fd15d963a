"""Tests of ``vipcore simulate``: task, embeddings, policy gradients, the
selectors, the device loop (budget accounting, DAPO's rules, equality with
the earlier host loop), the pre-registered analysis, the assumption
measurements and the CLI.

Deterministic facts are asserted exactly. Statistical statements carry a
stated false-failure rate (Bonferroni inside) or a margin from the spread
over seeds; each such check has a control that shows it can fail.
"""

from __future__ import annotations

import dataclasses
import json
import math
from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import assert_allclose
from vipcore._src.apps.simulate import analysis as an
from vipcore._src.apps.simulate import loop
from vipcore._src.apps.simulate import policy as pol
from vipcore._src.apps.simulate import selectors as sel
from vipcore._src.apps.simulate.arms import default_arms, resolve_arms
from vipcore._src.apps.simulate.assumptions import (
    exact_slot_moments,
    mc_var_g,
    props_check,
)
from vipcore._src.apps.simulate.config import (
    CALIBRATION_SEED_OFFSET,
    QUICK,
    SimConfig,
)
from vipcore._src.apps.simulate.summary import arm_metrics, summarize
from vipcore._src.apps.simulate.task import make_task, network_embeddings
from vipcore._src.apps.simulate.train import (
    candidate_pools,
    make_tasks,
    prompt_ids,
    run_training,
)
from vipcore._src.variance import advantages, variance_factor

#: False-failure rate of each statistical test (Bonferroni inside).
FWER = 1e-3

#: The arms of the default test run: every arm without a predictor (they
#: share one program). Each predictor arm is a program of its own: a unit test
#: checks the predictor's wiring inside the round, and a slow test runs them.
TEST_ARMS = tuple(a.name for a in default_arms(SimConfig()) if not a.predictor)

#: Shared by this module, the CLI test and the notebook test (same shapes, so
#: the programs compile once per pytest process). 16 seeds x 40 rounds give
#: the ladder enough power for the positive control below.
TEST_SETTINGS = {"steps": 40, "seeds": 16, "calibration_seeds": 2,
                 "arms": TEST_ARMS}
TEST_CFG = SimConfig(**{**QUICK, **TEST_SETTINGS})


@pytest.fixture(scope="module")
def trained():
    return run_training(TEST_CFG)


# ---------------------------------------------------------------- task


def test_task_shapes_and_answers():
    t = make_task(300, num_slots=6, num_values=5, seed=3)
    assert t.features.shape == (300, 12) and t.embeddings.shape == (300, 3)
    assert t.features.dtype == np.float32
    assert ((t.k >= 2) & (t.k <= 6)).all()
    assert (t.mask.sum(1) == t.k).all()
    masked = np.where(t.mask, t.values, -1)
    top = masked.max(1)
    assert ((masked == top[:, None]).sum(1) == 1).all()  # unique maximum
    assert (masked[np.arange(300), t.answer] == top).all()
    assert (t.gap >= 1).all()
    assert ((t.embeddings >= 0) & (t.embeddings <= 1)).all()
    again = make_task(300, num_slots=6, num_values=5, seed=3)
    for a, b in zip(t, again, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kw, match", [
    (dict(num_prompts=0), "num_prompts"),
    (dict(num_prompts=5, num_slots=1), "num_slots"),
    (dict(num_prompts=5, min_slots=9, num_slots=8), "min_slots"),
])
def test_task_rejects_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        make_task(**kw)


def test_train_and_eval_disjoint_draws():
    tr, ev = make_tasks(TEST_CFG)
    assert tr.num_prompts == TEST_CFG.num_train and ev.num_prompts == TEST_CFG.num_eval
    ids = prompt_ids(TEST_CFG, 1, 5)
    assert len(set(ids.tolist())) == TEST_CFG.batch_size
    np.testing.assert_array_equal(ids, prompt_ids(TEST_CFG, 1, 5))


def test_candidate_streams_start_with_the_batch():
    pools = candidate_pools(TEST_CFG, [3, 7])
    assert pools.shape == (TEST_CFG.steps, 2, sel.pool_size(TEST_CFG.batch_size))
    for j, s in enumerate([3, 7]):
        for t in (0, 9):
            np.testing.assert_array_equal(pools[t, j, :TEST_CFG.batch_size],
                                          prompt_ids(TEST_CFG, s, t))
            assert len(set(pools[t, j].tolist())) == pools.shape[2]


def test_network_embeddings_distinct_and_normalised():
    tr, ev = make_tasks(TEST_CFG)
    full = make_task(TEST_CFG.num_train + TEST_CFG.num_eval,
                     num_slots=TEST_CFG.num_slots, seed=TEST_CFG.task_seed)
    e = network_embeddings(full, num_values=TEST_CFG.num_values)
    assert e.shape == (full.num_prompts, 64) and e.dtype == np.float32
    assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
    # one vector per distinct prompt: as many distinct rows as distinct prompts,
    # and identical prompts share their vector
    prompts = np.unique(full.features, axis=0, return_inverse=True)[1].ravel()
    vectors = np.unique(e, axis=0, return_inverse=True)[1].ravel()
    assert len(np.unique(prompts)) == len(np.unique(vectors))
    assert len(np.unique(prompts)) > len(np.unique(full.embeddings, axis=0)) * 5
    for g in range(len(np.unique(prompts))):
        assert len(np.unique(vectors[prompts == g])) == 1
    # frozen: the same seed gives the same network, another seed another one
    np.testing.assert_array_equal(e, network_embeddings(
        full, num_values=TEST_CFG.num_values))
    assert not np.allclose(e, network_embeddings(full, num_values=10, seed=1))
    with pytest.raises(ValueError, match="num_values"):
        network_embeddings(full, num_values=5)


# ---------------------------------------------------------------- policy


@pytest.fixture(scope="module")
def small_policy():
    """A perturbed policy with a filler head (one-token functions ignore it)."""
    t = make_task(6, num_slots=5, seed=2)
    params = pol.init_params(jax.random.key(0), 10, 5, hidden=8, filler_vocab=4)
    # move away from the near-uniform init so gradients are not tiny
    params = jax.tree.map(lambda x: x + 0.3 * jax.random.normal(
        jax.random.key(1), x.shape), params)
    ys = pol.sample(jax.random.key(2), params, jnp.asarray(t.features),
                    jnp.asarray(t.mask), 4)
    return t, params, ys


@pytest.fixture(scope="module")
def filler_policy(small_policy):
    t, params, ys = small_policy
    fil = pol.sample_fillers(jax.random.key(3), params, jnp.asarray(t.features), 4, 3)
    return t, params, ys, fil


def _per_rollout_grads(params, t, ys):
    def lp(p, x, m, y):
        return pol.log_probs(p, x, m)[y]

    g = jax.jit(jax.vmap(jax.vmap(jax.grad(lp), in_axes=(None, None, None, 0)),
                         in_axes=(None, 0, 0, 0)))(params, jnp.asarray(t.features),
                                                   jnp.asarray(t.mask), ys)
    leaves = jax.tree.leaves(g)
    return jnp.concatenate([x.reshape(ys.shape + (-1,)) for x in leaves], axis=-1)


def test_samples_are_valid_slots(small_policy):
    t, _, ys = small_policy
    assert ys.shape == (6, 4)
    assert bool(jnp.all(ys < jnp.asarray(t.k)[:, None]))


def test_projected_gradient_is_sum_of_gradient_entries(small_policy):
    t, params, ys = small_policy
    h = _per_rollout_grads(params, t, ys)  # (Q, n, P): the oracle
    z = pol.projected_gradients(params, jnp.asarray(t.features),
                                jnp.asarray(t.mask), ys)
    assert_allclose(z, h.sum(-1), rtol=1e-4, atol=1e-5)
    zn = pol.projected_gradients(params, jnp.asarray(t.features),
                                 jnp.asarray(t.mask), ys, norm=True)
    assert_allclose(zn, jnp.linalg.norm(h, axis=-1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("estimator", ["rloo", "drgrpo", "grpo"])
def test_surrogate_gradient_is_policy_gradient(small_policy, estimator):
    """-grad(loss) == (1/B) sum_q (1/n_q) sum_j A_qj H(o_qj), with ragged n_q."""
    t, params, ys = small_policy
    counts = jnp.array([2, 3, 4, 4, 3, 2])
    rmask = jnp.arange(4)[None, :] < counts[:, None]
    rew = jnp.where(ys == jnp.asarray(t.answer)[:, None], 1.0, -1.0)
    rew = rew.at[:, 0].set(1.0).at[:, 1].set(-1.0)  # every group has signal
    adv = advantages(rew, estimator, mask=rmask)
    w = adv / (counts[:, None] * 6.0)
    g = jax.grad(pol.pg_loss)(params, jnp.asarray(t.features), jnp.asarray(t.mask),
                              ys, w)
    flat = jnp.concatenate([x.ravel() for x in jax.tree.leaves(g)])
    h = _per_rollout_grads(params, t, ys)
    want = jnp.einsum("qj,qjp->p", jnp.where(rmask, w, 0.0), h)
    assert_allclose(-flat, want, rtol=1e-4, atol=1e-6)


def test_projected_gradient_with_fillers(filler_policy):
    """Z = 1^T grad of the token-averaged log-likelihood, against vmap(grad)."""
    t, params, ys, fil = filler_policy
    assert fil.shape == (6, 4, 3)
    f, m = jnp.asarray(t.features), jnp.asarray(t.mask)

    def ell(p, x, mk, y, fl):
        return pol.sequence_log_prob(p, x[None], mk[None], y[None, None],
                                     fl[None, None])[0, 0]

    g = jax.jit(jax.vmap(jax.vmap(jax.grad(ell), in_axes=(None, None, None, 0, 0)),
                         in_axes=(None, 0, 0, 0, 0)))(params, f, m, ys, fil)
    h = jnp.concatenate([x.reshape(ys.shape + (-1,)) for x in jax.tree.leaves(g)],
                        axis=-1)
    z = pol.projected_gradients(params, f, m, ys, fil)
    assert_allclose(z, h.sum(-1), rtol=1e-4, atol=1e-5)
    zn = pol.projected_gradients(params, f, m, ys, fil, norm=True)
    assert_allclose(zn, jnp.linalg.norm(h, axis=-1), rtol=1e-4, atol=1e-5)
    # the token average: T = 3 fillers + the answer
    lp = pol.sequence_log_prob(params, f, m, ys, fil)
    lpy = jnp.take_along_axis(pol.log_probs(params, f, m), ys, axis=-1)
    lpf = jnp.take_along_axis(pol.filler_log_probs(params, f),
                              fil.reshape(6, 12), axis=-1).reshape(6, 4, 3)
    assert_allclose(lp, (lpy + lpf.sum(-1)) / 4, rtol=1e-5, atol=1e-6)


def test_exact_moments_with_fillers(filler_policy):
    """Var(Z|q) = (Var z_a + T Var z_f) / (T+1)^2 against sampled Z, z-test
    per prompt (sample standard error) at family-wise rate FWER."""
    t, params, _, _ = filler_policy
    tokens, n = 3, 4000
    mom = exact_slot_moments(params, t, filler_tokens=tokens)
    f, m = jnp.asarray(t.features), jnp.asarray(t.mask)
    ys = pol.sample(jax.random.key(4), params, f, m, n)
    fil = pol.sample_fillers(jax.random.key(5), params, f, n, tokens)
    z = np.asarray(pol.projected_gradients(params, f, m, ys, fil), np.float64)
    emp = z.var(1, ddof=1)
    m4 = np.mean((z - z.mean(1, keepdims=True)) ** 4, axis=1)
    se = np.sqrt((m4 - emp**2) / n)
    ok = (np.all((mom["probs"] * n >= 20) | ~t.mask, axis=1)
          & np.all(mom["filler_probs"] * n >= 20, axis=1))
    assert ok.sum() >= 2
    thr = NormalDist().inv_cdf(1 - FWER / (2 * ok.sum()))
    assert np.all(np.abs(emp - mom["var_z"])[ok] / se[ok] < thr)


def test_initial_policy_is_near_uniform():
    t = make_task(50, num_slots=8, seed=0)
    p = pol.init_params(jax.random.key(3), 16, 8)
    sp = np.asarray(pol.success_prob(p, jnp.asarray(t.features),
                                     jnp.asarray(t.mask), jnp.asarray(t.answer)))
    # output layer std 0.01/sqrt(64): logits are O(1e-2), so p within 5% of 1/k
    np.testing.assert_allclose(sp, 1 / t.k, rtol=0.05)


# ---------------------------------------------------------------- selectors


def _numpy_mopps(alpha, beta, idx, succ, n, decay=0.5, a0=1.0, b0=1.0):
    """The update of thu-rllab/MoPPS ``PosteriorSampler.train`` with
    ``y = s / n`` and ``n`` rollouts, transcribed in NumPy."""
    alpha, beta = alpha.copy(), beta.copy()
    for i, s, k in zip(idx, succ, n, strict=True):
        y = s / k
        alpha[i] = alpha[i] * decay + a0 * (1 - decay) + y * k
        beta[i] = beta[i] * decay + b0 * (1 - decay) + (1 - y) * k
    return alpha, beta


def test_mopps_update_matches_reference():
    rng = np.random.default_rng(0)
    st = sel.mopps_init(20)
    a, b = np.ones(20), np.ones(20)
    for _ in range(5):
        idx = rng.choice(20, 6, replace=False)
        n = rng.integers(2, 9, 6)
        s = rng.integers(0, n + 1)
        st = sel.mopps_observe(st, jnp.asarray(idx), jnp.asarray(s), jnp.asarray(n))
        a, b = _numpy_mopps(a, b, idx, s, n)
    assert_allclose(st.alpha, a, rtol=1e-6)
    assert_allclose(st.beta, b, rtol=1e-6)
    assert_allclose(sel.mopps_mean(st, jnp.arange(20)), a / (a + b), rtol=1e-6)


def test_mopps_selects_nearest_target():
    """With sharp posteriors the Thompson draws sit at the means: the B
    candidates nearest 1/2 are kept, whatever the key."""
    q = 12
    means = np.linspace(0.02, 0.98, q)
    st = sel.MoppsState(jnp.asarray(means * 1e6, jnp.float32),
                        jnp.asarray((1 - means) * 1e6, jnp.float32))
    pool = jnp.asarray(np.random.default_rng(1).permutation(q))
    select = jax.jit(sel.mopps_select, static_argnums=3,
                     static_argnames="candidates")
    for k in range(3):
        ids = select(st, pool, jax.random.key(k), 4, candidates=8)
        cand = np.asarray(pool[:8])
        want = cand[np.argsort(np.abs(means[cand] - 0.5))[:4]]
        assert set(np.asarray(ids).tolist()) == set(want.tolist())


def test_greso_keep_probability_and_streaks():
    st = sel.GresoState(jnp.array([0, 3, 0, 1], jnp.int32),
                        jnp.array([0, 0, 2, 0], jnp.int32),
                        jnp.float32(0.5), jnp.float32(0.25))
    keep = sel.greso_keep_probability(st, jnp.arange(4), floor=0.01)
    assert_allclose(keep, [1.0, 0.125, 0.0625, 0.5])
    keep = sel.greso_keep_probability(st._replace(p_hard=jnp.float32(0.05)),
                                      jnp.arange(4), floor=0.01)
    assert_allclose(keep, [1.0, 0.125, 0.01, 0.5])  # the exploration floor
    # all correct -> easy streak +1; all wrong -> hard streak +1; mixed resets
    new = sel.greso_observe(st, jnp.arange(4), jnp.array([8, 8, 0, 3]),
                            jnp.array([8, 8, 8, 8]), jnp.asarray(True))
    np.testing.assert_array_equal(new.easy, [1, 4, 0, 0])
    np.testing.assert_array_equal(new.hard, [0, 0, 3, 0])
    # all-correct share 1/2 >= 0.25/3: p_easy down; all-wrong share 1/4 >= 1/6:
    # p_hard down; adapt=False leaves both
    assert_allclose([new.p_easy, new.p_hard], [0.49, 0.24])
    same = sel.greso_observe(st, jnp.arange(4), jnp.array([8, 8, 0, 3]),
                             jnp.array([8, 8, 8, 8]), jnp.asarray(False))
    assert_allclose([same.p_easy, same.p_hard], [0.5, 0.25])
    up = sel.greso_observe(st, jnp.arange(4), jnp.full(4, 3), jnp.full(4, 8),
                           jnp.asarray(True))
    assert_allclose([up.p_easy, up.p_hard], [0.51, 0.26])


def test_greso_select_keeps_stream_order_and_fills():
    q, b = 40, 5
    pool = jnp.asarray(np.random.default_rng(2).permutation(q)[:20])
    fresh = sel.greso_init(q)
    select = jax.jit(sel.greso_select, static_argnums=3, static_argnames="floor")
    ids, filled = select(fresh, pool, jax.random.key(0), b)
    np.testing.assert_array_equal(ids, pool[:b])  # nothing skipped yet
    assert int(filled) == 0
    # every prompt on a long easy streak: with a floor of 0 (almost) all are
    # skipped, and the batch is completed with the earliest skipped candidates
    st = fresh._replace(easy=jnp.full((q,), 60, jnp.int32))
    ids, filled = select(st, pool, jax.random.key(0), b, floor=0.0)
    np.testing.assert_array_equal(ids, pool[:b])
    assert int(filled) == b
    # one prompt kept for sure, the others skipped for sure: it comes first
    st = st._replace(easy=st.easy.at[pool[7]].set(0))
    ids, filled = select(st, pool, jax.random.key(0), b, floor=0.0)
    assert int(ids[0]) == int(pool[7]) and int(filled) == b - 1
    assert len(set(np.asarray(ids).tolist())) == b


# ---------------------------------------------------------------- analysis


def test_t_pvalue_and_quantile_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for t, df in [(0.0, 5), (0.3, 3), (2.0, 10), (-4.2, 15), (9.0, 255),
                  (1e-3, 100), (35.0, 7)]:
        assert math.isclose(an.t_pvalue(t, df), 2 * stats.t.sf(abs(t), df),
                            rel_tol=1e-9, abs_tol=1e-15)
    for q, df in [(0.975, 10), (0.999, 15), (0.01, 255), (0.6, 3)]:
        assert math.isclose(an.t_quantile(q, df), stats.t.ppf(q, df), rel_tol=1e-9)
    d = np.random.default_rng(0).normal(0.1, 1, 30)
    res = an.paired_t(d)
    ref = stats.ttest_1samp(d, 0.0)
    assert math.isclose(res["t"], ref.statistic, rel_tol=1e-9)
    assert math.isclose(res["p"], ref.pvalue, rel_tol=1e-9)


def test_holm_step_down():
    # by hand: sorted 0.01 (x3) 0.03 (x2) 0.04 (x1); monotone maxima
    assert an.holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]
    assert an.holm([0.2, 0.001, 0.5, 0.01]) == [0.4, 0.004, 0.5, 0.03]
    adj = an.holm([0.01, math.nan, 0.02])
    assert adj[0] == 0.02 and math.isnan(adj[1]) and adj[2] == 0.02


def test_power_matches_noncentral_t():
    stats = pytest.importorskip("scipy.stats")
    for n, delta, sd, alpha in [(256, 0.0019, 0.0085, 0.0125), (30, 0.5, 1, 0.05),
                                (100, 0.2, 1, 0.01)]:
        nc = delta * math.sqrt(n) / sd
        crit = stats.t.ppf(1 - alpha / 2, n - 1)
        exact = stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc)
        assert abs(an.paired_power(n, delta, sd, alpha) - exact) < 5e-3
    n = an.seeds_for_power(0.02 * math.log(1.1), 0.0085, alpha=0.0125)
    assert n == 225  # the protocol's number
    assert an.paired_power(n, 0.02 * math.log(1.1), 0.0085, 0.0125) >= 0.8
    assert an.paired_power(n - 1, 0.02 * math.log(1.1), 0.0085, 0.0125) < 0.8


def test_ladder_fit_and_multiplier():
    rng = np.random.default_rng(3)
    beta, s = 0.025, 40
    seed_effect = rng.normal(0, 0.01, s)  # shared by every rung: paired
    exact = {n: 0.5 + beta * math.log(n) + seed_effect for n in (6, 8, 11, 16)}
    assert math.isclose(an.ladder_fit(exact)["beta"], beta, rel_tol=1e-9)
    # an arm worth exactly 1.25x the rollouts: delta = beta ln 1.25
    m = an.multiplier(np.full(s, beta * math.log(1.25)), exact, resamples=200)
    for k in ("multiplier", "low", "high"):
        assert math.isclose(m[k], 1.25, rel_tol=1e-9), k
    noisy = {n: v + rng.normal(0, 2e-3, s) for n, v in exact.items()}
    fit = an.ladder_fit(noisy)
    x = np.log([6, 8, 11, 16])
    want = np.polyfit(x, [noisy[n].mean() for n in (6, 8, 11, 16)], 1)[0]
    assert math.isclose(fit["beta"], want, rel_tol=1e-12)
    delta = beta * math.log(1.25) + rng.normal(0, 2e-3, s)
    m = an.multiplier(delta, noisy, resamples=500)
    assert math.isclose(m["multiplier"], math.exp(delta.mean() / fit["beta"]))
    assert m["low"] < m["multiplier"] < m["high"]
    # no seed-to-seed spread at all in the slope's noise: a wider interval
    # when the noise is larger
    wider = an.multiplier(delta + rng.normal(0, 1e-2, s), noisy, resamples=500)
    assert wider["high"] - wider["low"] > m["high"] - m["low"]
    with pytest.raises(ValueError, match="two rungs"):
        an.ladder_fit({8: exact[8]})


def test_per_seed_log_ratio_averages_time_first():
    num = np.array([[2.0, 8.0, 0.0], [1.0, 1.0, 1.0]])
    den = np.array([[1.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
    # seed 0: mean(log 2, log 4) (the zero is skipped); seed 1: 0
    assert_allclose(an.per_seed_log_ratio(num, den),
                    [0.5 * (math.log(2) + math.log(4)), 0.0], rtol=1e-12)


# ---------------------------------------------------------------- loop pieces


def test_calibration_sums_match_core_metrics():
    from vipcore._src.predict import calibration as cal

    rng = np.random.default_rng(4)
    p = rng.uniform(0, 1, 64).astype(np.float32)
    n = rng.integers(3, 20, 64)
    s = rng.binomial(n, rng.uniform(0, 1, 64))
    acc = (jnp.float32(0), jnp.float32(0), jnp.zeros((3, loop.ECE_BINS)))
    for part in np.array_split(np.arange(64), 4):  # accumulated over rounds
        acc = loop._calibration(acc, jnp.asarray(p[part]), jnp.asarray(s[part]),
                                jnp.asarray(n[part]))
    from vipcore._src.apps.simulate.train import _ece

    brier = float(acc[0] / acc[1])
    assert_allclose(brier, cal.brier_score(p, s, n), rtol=1e-5)
    assert_allclose(_ece(np.asarray(acc[2])),
                    cal.expected_calibration_error(p, s, n, n_bins=loop.ECE_BINS),
                    rtol=1e-4, atol=1e-6)


def test_predictor_wiring_inside_the_round():
    """The round hands the registered predictor success rates ``s/n`` with
    weights ``n`` and allocates on its prediction: with Algorithm 1 an
    observed prompt's latent mean becomes ``logit(clip(s/n))``, so its next
    prediction is the clipped observed rate."""
    from vipcore._src.apps.simulate.train import _initial_carry, _static

    cfg = TEST_CFG
    arm = next(a for a in default_arms(cfg) if a.name == "vip_gp")
    st = _static(cfg, [arm], -1)
    tr, _ = make_tasks(cfg)
    params = jax.tree.map(lambda x: x[:1], initial_params_for_test(cfg))
    carry = jax.tree.map(lambda x: x[0], _initial_carry(cfg, st, arm, params, tr))
    ids = jnp.arange(5, 5 + cfg.batch_size)
    counts = jnp.asarray(np.random.default_rng(6).integers(3, 20, cfg.batch_size))
    succ = jnp.asarray(np.random.default_rng(7).integers(0, 3, cfg.batch_size))
    succ = jnp.minimum(succ * counts // 2, counts)  # includes 0/n and n/n
    cols = jnp.arange(cfg.upper)[None, :]
    rew = jnp.where(cols < succ[:, None], 1.0, -1.0)
    r = loop.Round(ids, jnp.zeros(cfg.batch_size), jnp.zeros(cfg.batch_size),
                   counts, jnp.zeros((cfg.batch_size, cfg.upper), jnp.int32),
                   jnp.zeros((cfg.batch_size, cfg.upper, 0), jnp.int32), rew,
                   cols < counts[:, None])
    pred_state, _, got = loop._observe(st, carry, r, jnp.asarray(False))
    np.testing.assert_array_equal(got, succ)
    ap = loop.ArmParams(*(jnp.asarray(x) for x in (8, True, False, False, 0, False,
                                                   False, False)))
    p_hat, _ = loop._source(st, ap, carry._replace(pred=pred_state), ids,
                            jnp.zeros(cfg.batch_size))
    assert_allclose(p_hat, np.clip(succ / counts, 0.01, 0.99), rtol=1e-4)


def initial_params_for_test(cfg):
    from vipcore._src.apps.simulate.train import initial_params

    return initial_params(cfg, [0])


def test_expected_variance_and_permutation_allocation():
    from vipcore._src.apps.simulate.train import _static

    cfg = TEST_CFG
    st = _static(cfg, default_arms(cfg)[:1], -1)
    rng = np.random.default_rng(5)
    m = jnp.asarray(rng.uniform(0.05, 0.95, cfg.batch_size), jnp.float32)
    v = m * (1 - m) * jnp.asarray(rng.uniform(0, 0.5, cfg.batch_size), jnp.float32)

    def ap(**kw):
        base = dict(n_bar=8, vip=True, expected=False, permute=False, selector=0,
                    posterior=False, dapo=False, equal_steps=False)
        return loop.ArmParams(**{k: jnp.asarray(x) for k, x in {**base, **kw}.items()})

    key = jax.random.key(0)
    alloc = jax.jit(loop._allocate, static_argnums=0)
    n_exp = alloc(st, ap(expected=True), m, v, key)
    a = m - m * m - v  # E[p(1-p)]
    p_eff = 0.5 * (1 - jnp.sqrt(1 - 4 * a))
    assert_allclose(4 * p_eff * (1 - p_eff), 4 * a, rtol=1e-4, atol=1e-6)
    # the same as allocating on p_eff directly
    np.testing.assert_array_equal(n_exp, alloc(st, ap(), p_eff, 0 * v, key))
    assert int(n_exp.sum()) == cfg.budget
    n_plain = alloc(st, ap(), m, v, key)
    assert not np.array_equal(n_plain, n_exp)  # the variance term matters
    n_perm = alloc(st, ap(permute=True), m, v, key)
    np.testing.assert_array_equal(np.sort(n_perm), np.sort(n_plain))
    assert not np.array_equal(n_perm, n_plain)
    np.testing.assert_array_equal(alloc(st, ap(vip=False, n_bar=11), m, v, key), 11)


# ---------------------------------------------------------------- training


def test_config_validation():
    with pytest.raises(ValueError, match="lower"):
        SimConfig(lower=1).validate()
    with pytest.raises(ValueError, match="lower"):
        SimConfig(estimator="drgrpo", lower=2).validate()
    with pytest.raises(ValueError, match="rollouts_per_prompt"):
        SimConfig(rollouts_per_prompt=40, upper=32).validate()
    with pytest.raises(ValueError, match="estimator"):
        SimConfig(estimator="ppo").validate()
    with pytest.raises(ValueError, match="eval_every"):
        SimConfig(steps=42).validate()
    with pytest.raises(ValueError, match="window"):
        SimConfig(window=(0.5, 0.5)).validate()
    with pytest.raises(ValueError, match="ladder"):
        SimConfig(ladder=(8, 64)).validate()
    with pytest.raises(ValueError, match="must not overlap"):
        SimConfig(seed_offset=CALIBRATION_SEED_OFFSET - 10).validate()
    with pytest.raises(ValueError, match="arms must be names"):
        resolve_arms(SimConfig(arms=("uniform", "magic")))


def test_arms_without_registered_predictor_are_skipped_with_a_note():
    from vipcore._src.predict.registry import PREDICTORS

    arms, skipped = resolve_arms(SimConfig())
    names = [a.name for a in arms]
    for arm in default_arms(SimConfig()):
        if arm.predictor and arm.predictor not in PREDICTORS:
            assert arm.name not in names and "not registered" in skipped[arm.name]
        elif arm.allocation != "vip_expected":
            assert arm.name in names


def _fake_beta():
    """A stand-in registered as ``"beta"``: the moving average with a
    posterior variance, enough to show that the arms are data."""
    from vipcore._src.predict import baselines
    from vipcore._src.predict.protocol import Predictor, PredictorSpec

    def factory(*, link="sigmoid", **options):
        base = baselines.moving_average_predictor(link=link, **options)
        return Predictor(base.init, base.update, base.predict,
                         variance=lambda s, idx: 0.01 * jnp.ones(idx.shape))

    return PredictorSpec(factory, baselines.MovingAverageState, False, {},
                         baselines.moving_average_state_is_consistent)


@pytest.fixture
def beta_registered():
    from vipcore._src.predict import registry

    if "beta" in registry.PREDICTORS:
        yield
        return
    registry.register_predictor("beta", _fake_beta())
    try:
        yield
    finally:
        registry._REGISTRY.pop("beta")


def test_beta_arms_run_once_registered(beta_registered):
    arms, skipped = resolve_arms(SimConfig())
    names = [a.name for a in arms]
    assert "vip_beta" in names and "vip_beta" not in skipped
    # the expected-variance arm needs a posterior variance
    from vipcore._src.predict.registry import get_predictor

    has_var = get_predictor("beta").factory(link="sigmoid").variance is not None
    assert ("vip_beta_expected" in names) == has_var


def test_result_shapes(trained):
    cfg = TEST_CFG
    assert set(trained["methods"]) == set(TEST_ARMS)
    n_eval = cfg.steps // cfg.eval_every + 1
    assert trained["eval_steps"] == list(range(0, cfg.steps + 1, cfg.eval_every))
    assert trained["seeds"] == list(range(cfg.seed_offset,
                                          cfg.seed_offset + cfg.seeds))
    cal = trained["calibration"]
    assert cal["seeds"] == [cfg.calibration_offset + i
                            for i in range(cfg.calibration_seeds)]
    # smoke tests never touch the protocol's seeds
    protocol = SimConfig()
    for x in trained["seeds"] + cal["seeds"]:
        assert not protocol.seed_offset <= x < protocol.seeds
        assert not (CALIBRATION_SEED_OFFSET <= x
                    < CALIBRATION_SEED_OFFSET + protocol.calibration_seeds)
    for res, s in ((trained, cfg.seeds), (cal, cfg.calibration_seeds)):
        for d in res["methods"].values():
            assert d["accuracy"].shape == (s, n_eval)
            for k in ("rollouts", "zero_var", "objective", "mid", "updated"):
                assert d[k].shape == (s, cfg.steps), k
            assert d["gradvar"].shape == (s, len(trained["gradvar_steps"]), 4)
            assert len(d["rollouts_to_target"]) == s
    assert sorted(trained["_checkpoints"]) == [0, cfg.steps // 2, cfg.steps]


def test_budget_accounting_every_arm(trained):
    """Every arm consumes exactly B n_bar rollouts in every round, on B
    distinct prompts, with L <= n_q <= U (from what the loop recorded)."""
    cfg = TEST_CFG
    for res in (trained, trained["calibration"]):
        _check_budget(res, cfg)


def _check_budget(res, cfg):
    for m, d in res["methods"].items():
        arm = res["arms"][m]
        n_bar = arm["n_bar"] or cfg.rollouts_per_prompt
        assert res["budget_per_round"][m] == cfg.batch_size * n_bar
        np.testing.assert_array_equal(d["rollouts"], cfg.batch_size * n_bar, m)
        np.testing.assert_array_equal(d["distinct"], cfg.batch_size, m)
        assert d["n_min"].min() >= cfg.lower and d["n_max"].max() <= cfg.upper
        if arm["allocation"] == "uniform":
            np.testing.assert_array_equal(d["n_min"], n_bar)
            np.testing.assert_array_equal(d["n_max"], n_bar)
        np.testing.assert_array_equal(res["rollouts"][m],
                                      np.asarray(res["eval_steps"]) * cfg.batch_size
                                      * n_bar)


def test_vip_arms_reallocate(trained):
    d = trained["methods"]["vip_oracle"]
    assert (d["n_max"] > d["n_min"]).mean() > 0.9  # not the uniform split
    assert (trained["methods"]["mopps_vip"]["n_max"]
            > trained["methods"]["mopps_vip"]["n_min"]).mean() > 0.5


def test_paired_design_same_start(trained):
    for res in (trained, trained["calibration"]):
        acc0 = {m: d["accuracy"][:, 0] for m, d in res["methods"].items()}
        for m in acc0:  # other programs batch the evaluation differently
            assert_allclose(acc0[m], acc0["uniform"], rtol=1e-6, atol=0)
    # the calibration seeds are other seeds
    assert not np.array_equal(trained["calibration"]["methods"]["uniform"][
        "accuracy"][:, 0], trained["methods"]["uniform"]["accuracy"][:2, 0])


def test_round_zero_objective(trained):
    """At round 0 every batch arm has the same policy and prompts: the exact
    allocator's objective (oracle p) is at most uniform's, and the permuted
    control's is at least the oracle's (optimality of problem (5))."""
    ms = trained["methods"]
    o = ms["vip_oracle"]["objective"][:, 0]
    u = ms["uniform"]["objective"][:, 0]
    assert_allclose(ms["uniform"]["objective_uniform"][:, 0], u, rtol=1e-6)
    assert (o <= u * (1 + 1e-6)).all()
    assert (ms["vip_permuted"]["objective"][:, 0] >= o * (1 - 1e-6)).all()


def test_dapo_accounting_rules(trained):
    """Replaying from the logged all-equal shares: the buffer arm steps iff B
    surviving groups have accumulated; the equal-steps arm steps every round
    with a surviving group."""
    b = TEST_CFG.batch_size
    d = trained["methods"]["dapo"]
    for s in range(TEST_CFG.seeds):
        count, want = 0, []
        for t in range(TEST_CFG.steps):
            count += int(round((1 - d["zero_var"][s, t]) * b))
            want.append(count >= b)
            count = 0 if count >= b else count
        np.testing.assert_array_equal(d["updated"][s], want)
    e = trained["methods"]["dapo_steps"]
    np.testing.assert_array_equal(e["updated"], e["zero_var"] < 1)
    for m in ("uniform", "greso", "mopps", "vip_oracle"):
        assert trained["methods"][m]["updated"].all()


def test_device_loop_equals_host_loop(trained):
    """The device loop reproduces the earlier host loop (kept in
    :mod:`vipcore._src.apps.simulate.reference`: per-round jit calls, the
    allocation on the host with ``vipcore.allocate``) on the same seeds for
    uniform and oracle VIP: the same all-equal shares in every round and the
    same held-out accuracy curve up to float32 rounding."""
    from vipcore._src.apps.simulate.reference import host_loop

    rounds = 20  # of the fixture's 40, to keep the host loop short
    cfg = dataclasses.replace(TEST_CFG, calibration_seeds=0, steps=rounds)
    for arm, ref in host_loop(cfg).items():
        acc, zv = ref["accuracy"], ref["zero_var"]
        d = trained["methods"][arm]
        np.testing.assert_array_equal(d["zero_var"][:, :rounds], zv, arm)
        assert_allclose(d["accuracy"][:, :acc.shape[1]], acc, rtol=1e-5, atol=1e-6)


def test_positive_and_negative_controls(trained):
    """Margins from the seed spread (one-sided paired t, level FWER each).

    Positive control: the ladder's n = 16 beats n = 8 on the primary metric.
    Negative control: VIP with p permuted within the batch shows no gain:
    neither on the primary metric nor on the allocation objective at the
    exact p, where it is significantly worse than uniform while oracle VIP is
    significantly better (so the same check can fail)."""
    metric = arm_metrics(trained)
    s = TEST_CFG.seeds
    crit = an.t_quantile(1 - FWER, s - 1)

    def t_of(diff):
        r = an.paired_t(diff)
        return r["mean"] / r["se"]

    assert t_of(metric["uniform_n16"] - metric["uniform"]) > crit
    assert t_of(metric["vip_permuted"] - metric["uniform"]) < crit

    def log_obj(m):
        d = trained["methods"][m]
        return np.log(d["objective"].sum(1) / d["objective_uniform"].sum(1))

    assert t_of(log_obj("vip_permuted")) > crit  # worse than uniform
    assert t_of(log_obj("vip_oracle")) < -crit  # better: the check can fail


def test_selection_arms_choose_differently(trained):
    """GRESO and MoPPS train on other prompts than the batch arms (their
    curves leave uniform's), and GRESO fills in only when it must."""
    ms = trained["methods"]
    for m in ("greso", "mopps"):
        assert not np.array_equal(ms[m]["zero_var"], ms["uniform"]["zero_var"])
    assert ((ms["greso"]["filled"] >= 0)
            & (ms["greso"]["filled"] <= TEST_CFG.batch_size)).all()
    first_pass = -(-TEST_CFG.num_train // TEST_CFG.batch_size)
    assert ms["greso"]["filled"][:, :first_pass].sum() == 0


# ---------------------------------------------------------------- analysis of a run


def test_summary_follows_the_protocol(trained):
    summ = summarize(trained, calibration=trained["calibration"])
    ch = summ["chosen"]
    assert not ch["exploratory"]
    planners = [m for m, a in trained["arms"].items() if a["role"] == "planner"]
    cal = arm_metrics(trained["calibration"])
    assert ch["best"] == max(planners, key=lambda m: cal[m].mean())
    assert ch["comparators"]["DAPO"] == max(("dapo", "dapo_steps"),
                                            key=lambda m: cal[m].mean())
    rows = summ["confirmatory"]
    assert [r["arm"] for r in rows] == ["uniform", ch["comparators"]["DAPO"],
                                        "greso", "mopps"]
    metric = arm_metrics(trained)
    for r, adj in zip(rows, an.holm([r["p"] for r in rows]), strict=True):
        ref = an.paired_t(metric[ch["best"]] - metric[r["arm"]])
        assert r["p"] == ref["p"] and r["p_holm"] == adj
        assert r["ci"][0] < r["mean"] < r["ci"][1]
    assert summ["window"] == [TEST_CFG.steps // 2, TEST_CFG.steps]
    assert summ["gates"]["ladder"]["rungs"] == [8, 16]
    exploratory = summarize(trained)
    assert exploratory["chosen"]["exploratory"]


def test_gradient_variance_ratio_is_per_seed(trained):
    summ = summarize(trained)
    g = trained["methods"]["vip_oracle"]["gradvar"]
    per_seed = an.per_seed_log_ratio(g[:, :, 0], g[:, :, 2])
    assert per_seed.shape == (TEST_CFG.seeds,)
    r = summ["methods"]["vip_oracle"]["gradvar_ratio"]
    assert math.isclose(r["ratio"], math.exp(per_seed.mean()))
    assert math.isclose(r["p"], an.paired_t(per_seed)["p"])
    # uniform against itself: the same draws, so exactly 1
    assert summ["methods"]["uniform"]["gradvar_ratio"]["ratio"] == 1.0


# ---------------------------------------------------------------- assumptions


def test_mc_var_g_positive_control():
    """With Z = const + independent noise, Assumption 4.1 holds exactly and
    Var(G) = c(n) s^2 4 p (1 - p) (Props 4.2/4.3): every prompt's z-score must
    stay within the two-sided Bonferroni threshold at family-wise rate FWER."""
    rng = np.random.default_rng(0)
    # shapes as in the quick assumption run, so the compilation is shared
    q, k, n, reps, s = 32, 8, 8, 1000, 0.7
    logits = rng.normal(size=(q, k))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    answer = rng.integers(0, k, size=q)
    p = probs[np.arange(q), answer]
    ztab = np.full((q, k), 2.5)  # a non-zero mean must not matter (sum A = 0)
    thr = NormalDist().inv_cdf(1 - FWER / (2 * 2 * q))
    for est in ("rloo", "drgrpo"):
        emp, se = mc_var_g(jax.random.key(5), probs, ztab, answer, estimator=est,
                           n=n, replicates=reps, noise_std=s)
        theory = float(variance_factor(n, est)) * s**2 * 4 * p * (1 - p)
        z = (emp - theory) / se
        assert np.all(np.abs(z) < thr), (est, z)


def test_mc_var_g_negative_control():
    """Z = R (maximal correlation) breaks Assumption 4.1: for RLOO
    Var(G) is then far from Prop 4.3 and the z-scores must exceed the
    threshold for most prompts."""
    q, k, n, reps = 32, 8, 8, 1000
    probs = np.zeros((q, k))
    probs[:, :4] = 0.25  # four valid answers, p = 1/4
    answer = np.zeros(q, dtype=int)
    ztab = np.where(np.arange(k)[None, :] == 0, 1.0, -1.0) * np.ones((q, 1))
    var_z = 4 * 0.25 * 0.75
    emp, se = mc_var_g(jax.random.key(6), probs, ztab, answer, estimator="rloo",
                       n=n, replicates=reps)
    theory = float(variance_factor(n, "rloo")) * var_z * 4 * 0.25 * 0.75
    thr = NormalDist().inv_cdf(1 - FWER / (2 * q))
    assert np.mean(np.abs((emp - theory) / se) > thr) >= 0.75


def test_exact_slot_moments_match_sampling(small_policy):
    """Exact Var(Z|q) from the slot table vs the sample variance of sampled Z:
    z-test per prompt with the exact standard error sqrt((mu_4 - sigma^4)/n),
    at family-wise rate FWER (prompts where a slot has n pi < 20 are skipped:
    the normal approximation of a sample variance needs every value seen)."""
    t, params, _ = small_policy
    mom = exact_slot_moments(params, t)
    n = 4000
    ys = pol.sample(jax.random.key(9), params, jnp.asarray(t.features),
                    jnp.asarray(t.mask), n)
    z = np.asarray(pol.projected_gradients(params, jnp.asarray(t.features),
                                           jnp.asarray(t.mask), ys), np.float64)
    emp = z.var(1, ddof=1)
    pr, zt = mom["probs"], mom["z_table"]
    mu = np.sum(pr * zt, 1, keepdims=True)
    mu4 = np.sum(pr * (zt - mu) ** 4, 1)
    se = np.sqrt((mu4 - mom["var_z"] ** 2) / n)
    ok = np.all((pr * n >= 20) | ~t.mask, axis=1) & (mom["var_z"] > 0)
    assert ok.sum() >= 2
    thr = NormalDist().inv_cdf(1 - FWER / (2 * ok.sum()))
    assert np.all(np.abs(emp - mom["var_z"])[ok] / se[ok] < thr)
    # the exact correlation: sample corr(R, Z) agrees in sign where |rho| > 0.3
    r = np.where(np.asarray(ys) == t.answer[:, None], 1.0, -1.0)
    for q in np.flatnonzero(ok & (np.abs(mom["rho"]) > 0.3)):
        assert np.sign(np.corrcoef(r[q], z[q])[0, 1]) == np.sign(mom["rho"][q])


def test_props_check_output(trained):
    _, ev = make_tasks(TEST_CFG)
    params = jax.tree.map(jnp.asarray, trained["_checkpoints"][TEST_CFG.steps])
    # the sizes of the quick assumption run (shared compilation)
    pc = props_check(params, ev, estimator="rloo", n=TEST_CFG.rollouts_per_prompt,
                     num_prompts=32, replicates=1000, key=jax.random.key(0))
    assert pc["num_prompts"] >= 1
    assert len(pc["z"]) == pc["num_prompts"] == len(pc["rho"])
    assert all(0.05 < p < 0.95 for p in pc["p"])


# ---------------------------------------------------------------- CLI


def _cli_args(out):
    return ["simulate", "--quick", "--steps", str(TEST_CFG.steps), "--seeds",
            str(TEST_CFG.seeds), "--calibration-seeds",
            str(TEST_CFG.calibration_seeds), "--arms", ",".join(TEST_ARMS),
            "--no-assumptions", "--out", str(out)]


def test_cli_quick_run_writes_report(tmp_path, trained):
    from vipcore._src.apps.cli import main

    out = tmp_path / "sim"
    assert main(_cli_args(out)) == 0
    for name in ("report.md", "results.json", "rounds.npz", "learning_curves.png",
                 "equivalent_rollouts.png", "zero_variance.png"):
        assert (out / name).exists(), name
    # a second training run of the same settings gives the same numbers
    rounds = np.load(out / "rounds.npz")
    res = json.loads((out / "results.json").read_text())
    for m in TEST_ARMS:
        for k in ("zero_var", "objective", "rollouts", "updated"):
            np.testing.assert_array_equal(rounds[f"{m}.{k}"],
                                          trained["methods"][m][k], f"{m}.{k}")
        np.testing.assert_array_equal(res["methods"][m]["accuracy"],
                                      trained["methods"][m]["accuracy"])
    assert_allclose(res["methods"]["greso"]["per_seed_mean"]["zero_var"],
                    trained["methods"]["greso"]["zero_var"].mean(1), rtol=1e-6)
    assert res["config"] == json.loads(json.dumps(dataclasses.asdict(TEST_CFG)))
    assert res["summary"]["chosen"]["exploratory"] is False
    assert len(res["calibration_summary"]["seeds"]) == TEST_CFG.calibration_seeds
    md = (out / "report.md").read_text()
    for text in ("Smoke test", "Validity gates", "Confirmatory tests", "Holm",
                 "Equivalent rollout multiplier", "calibration seeds"):
        assert text in md, text


@pytest.mark.parametrize("argv, match", [
    (["--lower", "1"], "--lower"),
    (["--seeds", "1"], "--seeds"),
    (["--arms", "uniform,nope"], "arms must be names"),
    (["--steps", "42"], "eval_every"),
    (["--task", "max99"], "--task"),
])
def test_cli_bad_input_exits_2(tmp_path, capsys, argv, match):
    from vipcore._src.apps.cli import main

    try:
        rc = main(["simulate", "--quick", "--out", str(tmp_path)] + argv)
    except SystemExit as exc:  # argparse rejects at parse time
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written


# ---------------------------------------------------------------- slow


@pytest.mark.slow
def test_budget_accounting_remaining_predictor_arms(beta_registered):
    """The predictor arms (each its own program), with a stand-in ``beta``."""
    names = ("uniform", "vip_gp", "vip_gp_binomial", "vip_gp_descriptor",
             "vip_beta", "vip_beta_expected")
    cfg = dataclasses.replace(TEST_CFG, steps=10, seeds=2, calibration_seeds=0,
                              arms=names)
    res = run_training(cfg)
    _check_budget(res, cfg)
    for m in names[1:]:
        if m in res["methods"]:
            assert res["methods"][m]["abs_err"].mean() > 0
