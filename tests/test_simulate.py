"""Tests of ``vipcore simulate``: task, policy gradients, budget accounting,
determinism, DAPO's accounting rule, the assumption measurements and the CLI.

Deterministic facts are asserted exactly. Statistical statements carry a
stated false-failure rate (Bonferroni over the prompts checked).
"""

from __future__ import annotations

import dataclasses
import json
from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import assert_allclose
from vipcore._src.apps.simulate import policy as pol
from vipcore._src.apps.simulate.assumptions import (
    exact_slot_moments,
    mc_var_g,
    props_check,
)
from vipcore._src.apps.simulate.task import make_task
from vipcore._src.apps.simulate.train import (
    METHODS,
    QUICK,
    SimConfig,
    make_tasks,
    prompt_ids,
    run_training,
)
from vipcore._src.variance import advantages, variance_factor

#: False-failure rate of each statistical test (Bonferroni inside).
FWER = 1e-3

#: Shared by this module, the CLI test and the notebook test (same shapes, so
#: the jitted round functions compile once per pytest process).
TEST_CFG = SimConfig(**{**QUICK, "steps": 10, "seeds": 2})


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


# ---------------------------------------------------------------- training


def test_config_validation():
    with pytest.raises(ValueError, match="methods"):
        SimConfig(methods=("uniform", "magic")).validate()
    with pytest.raises(ValueError, match="lower"):
        SimConfig(lower=1).validate()
    with pytest.raises(ValueError, match="lower"):
        SimConfig(estimator="drgrpo", lower=2).validate()
    with pytest.raises(ValueError, match="rollouts_per_prompt"):
        SimConfig(rollouts_per_prompt=40, upper=32).validate()
    with pytest.raises(ValueError, match="estimator"):
        SimConfig(estimator="ppo").validate()


def test_result_shapes(trained):
    cfg = TEST_CFG
    assert set(trained["methods"]) == set(METHODS)
    n_eval = len(trained["eval_steps"])
    assert trained["eval_steps"][0] == 0 and trained["eval_steps"][-1] == cfg.steps
    for m, d in trained["methods"].items():
        assert np.asarray(d["accuracy"]).shape == (cfg.seeds, n_eval)
        assert np.asarray(d["zero_variance_fraction"]).shape == (cfg.seeds, cfg.steps)
        assert len(d["rollouts_to_target"]) == cfg.seeds
        if m != "dapo":
            assert np.asarray(d["gradvar"]["trace"]).shape == (
                cfg.seeds, len(trained["gradvar_steps"]))
    assert sorted(trained["_checkpoints"]) == [0, cfg.steps // 2, cfg.steps]


def test_budget_accounting_is_identical_for_every_method(trained):
    """Every method consumes exactly C = B n_bar rollouts in every round."""
    cfg = TEST_CFG
    for m, d in trained["methods"].items():
        assert d["rollouts_per_round"] == [cfg.budget] * cfg.steps, m
        if m != "dapo":  # run_training raises if a round's counts miss C
            assert cfg.lower <= d["counts_min"] <= d["counts_max"] <= cfg.upper
    assert trained["rollouts"] == [t * cfg.budget for t in trained["eval_steps"]]


def test_uniform_counts_are_constant(trained):
    d = trained["methods"]["uniform"]
    assert d["counts_min"] == d["counts_max"] == TEST_CFG.rollouts_per_prompt


def test_vip_oracle_minimises_predicted_variance(trained):
    """Per round, the exact allocator's Prop 4.3 objective (oracle p) is never
    above uniform's on the same prompts -- at round 0 the two runs share the
    policy, so the comparison is exact there."""
    u = np.asarray(trained["methods"]["uniform"]["predicted_sum_var_g"])
    v = np.asarray(trained["methods"]["vip_oracle"]["predicted_sum_var_g"])
    assert (v[:, 0] <= u[:, 0] * (1 + 1e-9)).all()


def test_paired_design_same_start(trained):
    acc0 = {m: np.asarray(d["accuracy"])[:, 0] for m, d in trained["methods"].items()}
    for m in METHODS:
        np.testing.assert_array_equal(acc0[m], acc0["uniform"])


def test_dapo_accounting_rule(trained):
    """Replaying the buffer from the logged zero-variance fractions reproduces
    the number of DAPO updates: update iff B valid groups have accumulated."""
    cfg = TEST_CFG
    d = trained["methods"]["dapo"]
    zv = np.asarray(d["zero_variance_fraction"])
    for s in range(cfg.seeds):
        count = updates = 0
        for t in range(cfg.steps):
            count += int(round((1 - zv[s, t]) * cfg.batch_size))
            if count >= cfg.batch_size:
                updates += 1
                count = 0
        assert updates == d["updates"][s]


def test_training_is_deterministic(trained):
    again = run_training(TEST_CFG)
    for m in METHODS:
        np.testing.assert_array_equal(trained["methods"][m]["accuracy"],
                                      again["methods"][m]["accuracy"])
        np.testing.assert_array_equal(trained["methods"][m]["zero_variance_fraction"],
                                      again["methods"][m]["zero_variance_fraction"])


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


def test_cli_quick_run_writes_report(tmp_path, trained):
    from vipcore._src.apps.cli import main

    out = tmp_path / "sim"
    rc = main(["simulate", "--quick", "--steps", str(TEST_CFG.steps), "--seeds",
               str(TEST_CFG.seeds), "--out", str(out)])
    assert rc == 0
    for name in ("report.md", "results.json", "learning_curves.png",
                 "zero_variance.png", "gradient_variance.png"):
        assert (out / name).exists(), name
    res = json.loads((out / "results.json").read_text())
    assert res["config"] == json.loads(json.dumps(dataclasses.asdict(TEST_CFG)))
    np.testing.assert_array_equal(res["methods"]["vip"]["accuracy"],
                                  trained["methods"]["vip"]["accuracy"])
    assert len(res["assumptions"]) == 3
    md = (out / "report.md").read_text()
    assert "DAPO accounting rule" in md and "Table 8" in md


@pytest.mark.parametrize("argv, match", [
    (["--lower", "1"], "lower"),
    (["--methods", "uniform,nope"], "methods"),
])
def test_cli_bad_input_exits_2(tmp_path, capsys, argv, match):
    from vipcore._src.apps.cli import main

    rc = main(["simulate", "--quick", "--out", str(tmp_path)] + argv)
    assert rc == 2
    assert match in capsys.readouterr().err
