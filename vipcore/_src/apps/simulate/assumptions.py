r"""The paper's assumptions, measured on the real policy.

Two measurements at saved checkpoints of a training run:

1. **Appendix B tests** (Tables 5-8 of the paper, our numbers): ``Q`` questions
   with ``n`` rollouts each; per rollout the reward ``R in {-1, +1}`` and the
   projected gradient, both ``Z = 1^T H(o)`` and ``Z = ||H(o)||_2``. Per
   question Pearson tests of ``corr(R, Z) = 0`` combined by Fisher (Table 5)
   and Edgington (Table 6); equal ``Var(Z)`` across questions by Levene with
   median centring (Table 7) and O'Brien (Table 8). The tests come from
   :mod:`vipcore._src.stats.api`.

2. **Props 4.2/4.3 directly**: for prompts with ``0.05 < p_q < 0.95``, ``M``
   independent groups of ``n`` rollouts give ``M`` draws of
   ``G = (1/n) sum_j A_j Z_j``; the sample variance is compared with

   .. math::

       c(n)\, \sigma_{Z,q}^2\, 4 p_q (1 - p_q)

   where ``p_q`` and ``sigma_{Z,q}^2 = Var(Z | q)`` are *exact* (the answer is
   one token, so ``Z`` is a function of the sampled slot and the policy's
   distribution over slots is known). The z-score uses the standard error of
   a sample variance, ``sqrt((m_4 - s^4) / M)``. A second prediction uses the
   pooled ``sigma_Z^2`` (mean over prompts), which is what the allocator
   assumes (App. B.3). The exact within-prompt correlation ``rho_q(R, Z)``
   is reported too: Props 4.2/4.3 need it to be zero (Assumption 4.1).

Controls for (1): the correlation tests with ``Z`` taken from an independent
second draw of rollouts of the same questions (so ``R`` and ``Z`` are
independent with the right marginals), and the variance tests with all ``Z``
values shuffled across questions (so every question has the same
distribution). The Pearson t-test assumes continuous data; with a
single-token policy ``Z`` takes at most ``K`` values per question, so even the
control's p-values are only approximately uniform.
"""

from __future__ import annotations

import functools
from statistics import NormalDist
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vipcore._src.apps.simulate import policy as pol
from vipcore._src.apps.simulate.task import Task
from vipcore._src.variance import advantages, variance_factor

__all__ = [
    "collect",
    "appendix_b_tests",
    "exact_slot_moments",
    "mc_var_g",
    "props_check",
    "measure_checkpoints",
]


@functools.partial(jax.jit, static_argnames=("rollouts", "tokens"))
def _collect_core(params, f, m, a, key, rollouts, tokens):
    ys = pol.sample(key, params, f, m, rollouts)
    fil = pol.sample_fillers(jax.random.fold_in(key, 1), params, f, rollouts,
                             tokens)
    r = jnp.where(ys == a[:, None], 1.0, -1.0)
    z = pol.projected_gradients(params, f, m, ys, fil)
    zn = pol.projected_gradients(params, f, m, ys, fil, norm=True)
    return r, z, zn, pol.success_prob(params, f, m, a)


def _tokens(params: Any, tokens: int) -> int:
    return int(tokens) if "filler" in params else 0


def collect(params: Any, task: Task, *, num_questions: int, rollouts: int,
            key: jax.Array, filler_tokens: int = 0) -> dict[str, np.ndarray]:
    """Sample ``rollouts`` answers (with ``filler_tokens`` filler tokens each
    when the policy has a filler head) for the first ``num_questions`` prompts.

    Returns NumPy arrays: ``R`` ``(Q, n)`` ±1 rewards, ``Z`` ``(Q, n)`` with
    ``1^T H(o)``, ``Z_norm`` ``(Q, n)`` with ``||H(o)||_2``, and ``p`` ``(Q,)``
    exact success probabilities.
    """
    q = min(int(num_questions), task.num_prompts)
    r, z, zn, p = _collect_core(params, jnp.asarray(task.features[:q]),
                                jnp.asarray(task.mask[:q]),
                                jnp.asarray(task.answer[:q]), key, int(rollouts),
                                _tokens(params, filler_tokens))
    return {"R": np.asarray(r), "Z": np.asarray(z), "Z_norm": np.asarray(zn),
            "p": np.asarray(p)}


def appendix_b_tests(R: np.ndarray, Z: np.ndarray) -> dict[str, float]:
    """Fisher, Edgington (on per-question Pearson tests), Levene, O'Brien."""
    from vipcore._src.stats import api as stats

    pr = stats.pearson_groups(R, Z)
    fi = stats.fisher(pr)
    ed = stats.edgington(pr)
    lv = stats.levene(Z, center="median")
    ob = stats.obrien(Z)
    return {
        "fisher_p": float(fi.pvalue),
        "edgington_p": float(ed.pvalue),
        "levene_p": float(lv.pvalue),
        "obrien_p": float(ob.pvalue),
        "pearson_used": int(pr.n_used),
        "pearson_excluded": int(pr.n_excluded),
        "median_abs_r": float(np.nanmedian(np.abs(np.asarray(pr.statistic)))),
    }


@jax.jit
def _slot_table(params, f, m, slots):
    return pol.projected_gradients(params, f, m, slots), pol.log_probs(params, f, m)


@jax.jit
def _filler_table(params, f):
    lf = pol.filler_log_probs(params, f)
    ones = jax.tree.map(jnp.ones_like, params)
    zf = jax.jvp(lambda p: pol.filler_log_probs(p, f), (params,), (ones,))[1]
    return zf, lf


def exact_slot_moments(params: Any, task: Task, *, filler_tokens: int = 0
                       ) -> dict[str, np.ndarray]:
    r"""Exact per-prompt moments of ``Z = 1^T H(o)`` and ``R`` under the policy.

    ``Z(y)`` is evaluated for every slot ``y``; with ``pi(y)`` known,
    ``Var(Z|q) = sum_y pi(y) Z(y)^2 - (sum_y pi(y) Z(y))^2`` and
    ``Cov(R, Z | q)`` likewise. Returns ``p``, ``var_z``, ``rho`` (exact
    correlation of R and Z, 0 where either is constant), ``z_table`` ``(Q, K)``
    and ``probs`` ``(Q, K)``.

    With ``T = filler_tokens`` filler tokens (policy with a filler head),
    ``Z = (z_a(y) + sum_t z_f(f_t)) / (T + 1)`` with independent fillers, so
    ``Var(Z|q) = (Var z_a + T Var z_f) / (T + 1)^2`` and
    ``Cov(R, Z|q) = Cov(R, z_a) / (T + 1)``; ``z_table`` then holds ``z_a`` and
    the result adds ``filler_table`` / ``filler_probs`` ``(Q, V_f)``.
    """
    f = jnp.asarray(task.features)
    m = jnp.asarray(task.mask)
    k = task.num_slots
    slots = jnp.broadcast_to(jnp.arange(k), (task.num_prompts, k))
    zt, lp = _slot_table(params, f, m, slots)
    zt = np.asarray(zt, np.float64)
    probs = np.asarray(jnp.exp(lp), np.float64)
    probs = np.where(task.mask, probs, 0.0)
    probs /= probs.sum(axis=1, keepdims=True)
    zt = np.where(task.mask, zt, 0.0)
    rt = np.where(np.arange(k)[None, :] == task.answer[:, None], 1.0, -1.0)
    ez = np.sum(probs * zt, axis=1)
    var_z = np.maximum(np.sum(probs * zt**2, axis=1) - ez**2, 0.0)
    p = probs[np.arange(task.num_prompts), task.answer]
    er = 2 * p - 1
    cov = np.sum(probs * rt * zt, axis=1) - er * ez
    t = _tokens(params, filler_tokens)
    out_fill = {}
    if t:
        zf, lf = _filler_table(params, f)
        zf = np.asarray(zf, np.float64)
        pf = np.array(jnp.exp(lf), np.float64)
        pf /= pf.sum(axis=1, keepdims=True)
        var_f = np.maximum(np.sum(pf * zf**2, 1) - np.sum(pf * zf, 1) ** 2, 0.0)
        var_z = (var_z + t * var_f) / (t + 1) ** 2
        cov = cov / (t + 1)
        out_fill = {"filler_table": zf, "filler_probs": pf}
    var_r = 4 * p * (1 - p)
    den = np.sqrt(var_r * var_z)
    rho = np.divide(cov, den, out=np.zeros_like(cov), where=den > 0)
    return {"p": p, "var_z": var_z, "rho": rho, "z_table": zt, "probs": probs,
            "tokens": t, **out_fill}


_MC_ESTIMATORS = ("rloo", "drgrpo", "grpo")


@functools.partial(jax.jit, static_argnames=("n", "replicates", "tokens"))
def _mc_groups(key, probs, z_table, answer, noise_std, fprobs, ftable, n,
               replicates, tokens):
    """``G`` for every estimator in :data:`_MC_ESTIMATORS` (one compilation)."""
    k1, k2 = jax.random.split(key)
    q = probs.shape[0]
    ys = jax.random.categorical(k1, jnp.log(jnp.maximum(probs, 1e-30))[:, None, None],
                                shape=(q, replicates, n))
    r = jnp.where(ys == answer[:, None, None], 1.0, -1.0)
    z = jnp.take_along_axis(z_table[:, None, :], ys.reshape(q, 1, -1),
                            axis=-1).reshape(ys.shape)
    if tokens:
        k3 = jax.random.fold_in(key, 3)
        fs = jax.random.categorical(
            k3, jnp.log(jnp.maximum(fprobs, 1e-30))[:, None, None, None],
            shape=(q, replicates, n, tokens))
        zf = jnp.take_along_axis(ftable[:, None, :], fs.reshape(q, 1, -1),
                                 axis=-1).reshape(fs.shape).sum(-1)
        z = (z + zf) / (tokens + 1)
    z = z + noise_std * jax.random.normal(k2, z.shape, z.dtype)
    return jnp.stack([jnp.mean(advantages(r, e) * z, axis=-1)
                      for e in _MC_ESTIMATORS])  # (3, Q, M)


def mc_var_g(key: jax.Array, probs: np.ndarray, z_table: np.ndarray,
             answer: np.ndarray, *, estimator: str, n: int, replicates: int,
             noise_std: float = 0.0, filler_probs: np.ndarray | None = None,
             filler_table: np.ndarray | None = None, filler_tokens: int = 0
             ) -> tuple[np.ndarray, np.ndarray]:
    r"""Monte-Carlo ``Var(G)`` per prompt and its standard error.

    Each of ``replicates`` groups draws ``n`` answers ``y ~ probs[q]``, sets
    ``R = ±1`` (``y == answer[q]``) and ``Z = z_table[q, y] + noise_std * eps``
    (``eps`` standard normal, independent of everything: with a constant
    ``z_table`` this makes Assumption 4.1 hold exactly, a positive control) and
    forms ``G = (1/n) sum_j A_j Z_j``. Returns the sample variance over
    replicates and ``sqrt((m_4 - s^4) / M)``, the standard error of a sample
    variance. With ``filler_tokens = T > 0``, ``T`` i.i.d. fillers
    ``f ~ filler_probs[q]`` per rollout and
    ``Z = (z_table[q, y] + sum_t filler_table[q, f_t]) / (T + 1)`` (+ noise).
    """
    if estimator not in _MC_ESTIMATORS:
        raise ValueError(f"estimator must be one of {_MC_ESTIMATORS}; got "
                         f"{estimator!r}")
    t = int(filler_tokens) if filler_probs is not None else 0
    if t:
        fp, ft = (jnp.asarray(filler_probs, jnp.float32),
                  jnp.asarray(filler_table, jnp.float32))
    else:
        fp = ft = jnp.zeros((np.shape(probs)[0], 1), jnp.float32)
    g = _mc_groups(key, jnp.asarray(probs, jnp.float32),
                   jnp.asarray(z_table, jnp.float32), jnp.asarray(answer),
                   jnp.float32(noise_std), fp, ft, int(n), int(replicates), t)
    g = np.asarray(g[_MC_ESTIMATORS.index(estimator)], np.float64)
    emp = g.var(axis=1, ddof=1)
    m4 = np.mean((g - g.mean(axis=1, keepdims=True)) ** 4, axis=1)
    se = np.sqrt(np.maximum(m4 - emp**2, 0.0) / replicates)
    return emp, se


def props_check(params: Any, task: Task, *, estimator: str, n: int,
                num_prompts: int, replicates: int, key: jax.Array,
                fwer: float = 0.01, filler_tokens: int = 0) -> dict[str, Any]:
    """Monte-Carlo ``Var(G)`` per prompt against Prop 4.2 (drgrpo) / 4.3 (rloo).

    Uses the first ``num_prompts`` prompts of ``task`` with
    ``0.05 < p_q < 0.95``. Returns per-prompt arrays (``p``, ``empirical``,
    ``stderr``, ``theory``, ``theory_pooled``, ``z``, ``z_pooled``, ``rho``)
    and summaries: the two-sided Bonferroni threshold at family-wise error
    ``fwer`` and the number of prompts beyond it.
    """
    mom = exact_slot_moments(params, task, filler_tokens=filler_tokens)
    ok = np.flatnonzero((mom["p"] > 0.05) & (mom["p"] < 0.95))[:num_prompts]
    if ok.size == 0:
        return {"num_prompts": 0}
    fill = {}
    if mom["tokens"]:
        fill = dict(filler_probs=mom["filler_probs"][ok],
                    filler_table=mom["filler_table"][ok],
                    filler_tokens=mom["tokens"])
    emp, se = mc_var_g(key, mom["probs"][ok], mom["z_table"][ok],
                       task.answer[ok], estimator=estimator, n=n,
                       replicates=replicates, **fill)
    p = mom["p"][ok]
    c = float(np.asarray(variance_factor(n, estimator)))
    theory = c * mom["var_z"][ok] * 4 * p * (1 - p)
    pooled = c * float(np.mean(mom["var_z"][ok])) * 4 * p * (1 - p)
    z_ = (emp - theory) / se
    zp = (emp - pooled) / se
    thr = NormalDist().inv_cdf(1 - fwer / (2 * ok.size))
    return {
        "num_prompts": int(ok.size), "estimator": estimator, "n": int(n),
        "replicates": int(replicates), "threshold": thr, "fwer": fwer,
        "p": p.tolist(), "empirical": emp.tolist(), "stderr": se.tolist(),
        "theory": theory.tolist(), "theory_pooled": pooled.tolist(),
        "z": z_.tolist(), "z_pooled": zp.tolist(), "rho": mom["rho"][ok].tolist(),
        "rejected": int(np.sum(np.abs(z_) > thr)),
        "rejected_pooled": int(np.sum(np.abs(zp) > thr)),
        "median_ratio": float(np.median(emp / theory)),
        "median_abs_rho": float(np.median(np.abs(mom["rho"][ok]))),
    }


def _shuffle_all(z: np.ndarray, seed: int) -> np.ndarray:
    """Z values randomly re-assigned across all questions (equal variances)."""
    rng = np.random.default_rng(seed)
    return rng.permutation(z.ravel()).reshape(z.shape)


def measure_checkpoints(checkpoints: dict[int, Any], task: Task, *,
                        total_steps: int, num_questions: int, rollouts: int,
                        props_prompts: int, props_replicates: int,
                        props_n: int, estimators: tuple[str, ...] = ("rloo",
                                                                      "drgrpo"),
                        seed: int = 0, filler_tokens: int = 0,
                        progress=None) -> list[dict[str, Any]]:
    """Both measurements at every checkpoint; one dict per checkpoint."""
    rows = []
    for step in sorted(checkpoints):
        if progress:
            progress(f"assumptions at step {step}")
        params = jax.tree.map(jnp.asarray, checkpoints[step])
        key = jax.random.fold_in(jax.random.key(seed + 4242), step)
        k1, k2 = jax.random.split(key)
        k1, k3 = jax.random.split(k1)
        data = collect(params, task, num_questions=num_questions,
                       rollouts=rollouts, key=k1, filler_tokens=filler_tokens)
        indep = collect(params, task, num_questions=num_questions,
                        rollouts=rollouts, key=k3, filler_tokens=filler_tokens)
        row: dict[str, Any] = {
            "step": int(step), "fraction": step / max(total_steps, 1),
            "num_questions": int(data["R"].shape[0]), "rollouts": int(rollouts),
            "mean_p": float(np.mean(data["p"])),
            "tests": {"sum": appendix_b_tests(data["R"], data["Z"]),
                      "norm": appendix_b_tests(data["R"], data["Z_norm"]),
                      "independent": appendix_b_tests(data["R"], indep["Z"]),
                      "shuffled": appendix_b_tests(
                          data["R"], _shuffle_all(data["Z"], seed + step))},
            "props": {},
        }
        for i, est in enumerate(estimators):
            row["props"][est] = props_check(
                params, task, estimator=est, n=props_n, num_prompts=props_prompts,
                replicates=props_replicates, key=jax.random.fold_in(k2, i),
                filler_tokens=filler_tokens)
        rows.append(row)
    return rows
