r"""The training loop on the device: rounds in ``lax.scan``, runs in ``vmap``.

One *program* runs every arm that shares a structure (:meth:`Arm.program`)
for every seed at once: the runs (arm x seed) are a leading axis, advanced
by ``vmap`` inside a ``lax.scan`` over rounds (nested: an outer scan over
evaluation blocks, an inner one over the rounds of a block). Prompt
selection, prediction, allocation (:func:`vipcore._src.allocation.solve.solve`,
the exact allocator as a pure function), sampling, the policy update and
the predictor update all happen inside; nothing returns to the host until
the last round.

One round of one run, with ``C = B n_bar`` rollouts:

1. choose ``B`` prompts from the round's candidate stream (:mod:`.selectors`);
2. ``p_hat``: none, the exact ``p`` (oracle), a registered predictor's
   prediction, or the MoPPS posterior mean; optionally permuted within the
   batch (the negative control);
3. counts ``n_q``: ``n_bar`` each, or the exact allocation of problem (5)
   with ``sum n_q = C`` and ``L <= n_q <= U``;
4. ``U`` answers per prompt are sampled with the round's key (shared by every
   arm of the seed: common random numbers) and the first ``n_q`` are used;
5. one Adam step on ``(1/B) sum_q G_q`` (DAPO: see :func:`_learn`);
6. the predictor and the selector observe ``s_q`` successes out of ``n_q``.

Per round each run records the rollouts it spent, the share of all-equal
groups, the allocation objective ``sum_q 4 p_q (1 - p_q) c(n_q) / B^2`` at the
exact ``p`` and that of the uniform split of the same batch, the number of
mid-difficulty prompts (``0.25 <= p <= 0.75``) and of those given only ``L``
rollouts, the share of rollouts on saturated prompts (``p < 0.05`` or
``p > 0.95``) and the predictor's absolute error; every ``gradvar_every``
rounds, ``tr Cov(g)`` of the gradient estimate from independent rollout
draws, with the run's own allocation and with the uniform split of the same
prompts on the same policy.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from vipcore._src.allocation.solve import solve
from vipcore._src.apps.simulate import policy as pol
from vipcore._src.apps.simulate import selectors as sel
from vipcore._src.variance import advantages, variance_factor

__all__ = ["Static", "ArmParams", "Data", "Carry", "SELECTORS", "round_key",
           "run_program", "predictor_for",
           "MID_P", "SATURATED", "ECE_BINS"]

#: Mid-difficulty prompts (the ones a starved allocation hurts most).
MID_P = (0.25, 0.75)
#: Saturated prompts: ``p`` below the first or above the second value.
SATURATED = (0.05, 0.95)
#: Equal-width bins of ``p_hat`` for the expected calibration error.
ECE_BINS = 10
#: Search width of the allocator inside the loop: 8 unrolled rounds compile
#: several times faster than 32 bisection rounds; the answer is the same.
_SECTIONS = 16


class Static(NamedTuple):
    """Hashable settings of one compiled program."""

    num_prompts: int
    batch: int
    upper: int
    lower: int
    n_bar: int
    tokens: int
    every: int
    blocks: int
    gv_every: int
    reps: int
    estimator: str
    alloc_estimator: str
    learning_rate: float
    max_grad_norm: float | None
    task_seed: int
    predictor: tuple | None  # (name, options) or None
    selection: bool  # some run selects with GRESO or MoPPS
    dapo: bool  # some run filters with DAPO
    ck_steps: tuple[int, ...]
    ck_run: int  # run whose params are saved at ck_steps (-1: none)


#: Codes of :attr:`ArmParams.selector`.
SELECTORS = {"batch": 0, "greso": 1, "mopps": 2}


class ArmParams(NamedTuple):
    """Per-run settings (traced, so arms of one program share a compilation).

    Attributes:
      n_bar: rollouts per prompt (``C = B n_bar``).
      vip: allocate with the exact solver (else ``n_bar`` each).
      expected: allocate on the posterior-expected variance.
      permute: shuffle ``p_hat`` within the batch (negative control).
      selector: a code of :data:`SELECTORS`.
      posterior: ``p_hat`` = the MoPPS posterior mean (else the exact ``p``,
        in programs without a predictor).
      dapo: DAPO dynamic filtering; ``equal_steps``: its step-every-round
        variant.
    """

    n_bar: jax.Array
    vip: jax.Array
    expected: jax.Array
    permute: jax.Array
    selector: jax.Array
    posterior: jax.Array
    dapo: jax.Array
    equal_steps: jax.Array


class Data(NamedTuple):
    """Task arrays: training ``(Q, ...)`` and held-out features."""

    feats: jax.Array
    mask: jax.Array
    answer: jax.Array
    eval_feats: jax.Array
    eval_mask: jax.Array
    eval_answer: jax.Array


class Carry(NamedTuple):
    params: Any
    opt: Any
    pred: Any
    sel: Any
    dapo: Any
    calib: Any


class Round(NamedTuple):
    ids: jax.Array
    p: jax.Array
    p_hat: jax.Array
    counts: jax.Array
    ys: jax.Array
    fil: jax.Array
    rew: jax.Array
    rmask: jax.Array


def round_key(task_seed: int, seed: jax.Array, t: jax.Array) -> jax.Array:
    """The sampling key of round ``t`` of seed ``seed`` (shared by every arm)."""
    base = jax.random.key(task_seed + 7919)
    return jax.random.fold_in(jax.random.fold_in(base, seed), t)


@functools.lru_cache(maxsize=16)
def _optimizer(lr: float, max_grad_norm: float | None):
    tx = optax.adam(lr)
    if max_grad_norm is not None:
        tx = optax.chain(optax.clip_by_global_norm(max_grad_norm), tx)
    return tx


@functools.lru_cache(maxsize=16)
def predictor_for(spec: tuple | None):
    """The :class:`~vipcore._src.predict.protocol.Predictor` of ``(name,
    options)`` from the registry (cached: one object per setting)."""
    if spec is None:
        return None
    from vipcore._src.predict.registry import get_predictor

    name, options = spec
    return get_predictor(name).factory(link="sigmoid", **dict(options))


# ------------------------------------------------------------------ a round


def _sample(key, params, feats, smask, num, tokens):
    """Answers ``(B, num)`` and fillers; the answer draw uses ``key`` itself."""
    ys = pol.sample(key, params, feats, smask, num)
    fil = pol.sample_fillers(jax.random.fold_in(key, 1), params, feats, num, tokens)
    return ys, fil


def _grad(st: Static, params, feats, smask, ys, fil, rew, rmask, counts, denom):
    """Policy-gradient estimate ``sum_q G_q / denom``, ``G_q = (1/n_q) sum_j
    A_qj H(o_qj)`` (``denom = B``: the mean over the batch)."""
    adv = advantages(rew, st.estimator, mask=rmask)
    w = adv / (counts[:, None].astype(adv.dtype) * denom)
    return jax.grad(pol.pg_loss)(params, feats, smask, ys, w, fil)


def _select(st: Static, ap: ArmParams, carry: Carry, pool, key):
    """``B`` prompt ids and how many of them GRESO had to fill in.

    Every selector runs (they are cheap) and the run's code picks one, so
    arms with different selectors share one compiled program.
    """
    zero = jnp.zeros((), jnp.int32)
    if not st.selection:
        return pool[:st.batch], zero
    greso, mopps = carry.sel
    ids_g, filled = sel.greso_select(greso, pool, jax.random.fold_in(key, 1),
                                     st.batch, floor=sel.GRESO_DEFAULTS["floor"])
    ids_m = sel.mopps_select(mopps, pool, jax.random.fold_in(key, 2), st.batch,
                             target=sel.MOPPS_DEFAULTS["target"],
                             candidates=sel.MOPPS_DEFAULTS["pool"] * st.batch)
    code = ap.selector
    ids = jnp.where(code == SELECTORS["greso"], ids_g,
                    jnp.where(code == SELECTORS["mopps"], ids_m, pool[:st.batch]))
    return ids, jnp.where(code == SELECTORS["greso"], filled, zero)


def _source(st: Static, ap: ArmParams, carry: Carry, ids, p):
    """``(p_hat, Var[p])`` handed to the allocator: the predictor's, else the
    MoPPS posterior's (``posterior``) or the exact ``p``."""
    if st.predictor is not None:
        pred = predictor_for(st.predictor)
        p_hat = pred.predict(carry.pred, ids)
        var = pred.variance(carry.pred, ids) if pred.variance else jnp.zeros_like(p)
        return p_hat.astype(p.dtype), var.astype(p.dtype)
    if not st.selection:
        return p, jnp.zeros_like(p)
    post = carry.sel[1]
    a, b = post.alpha[ids], post.beta[ids]
    mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    return (jnp.where(ap.posterior, mean, p),
            jnp.where(ap.posterior, var, jnp.zeros_like(p)))


def _allocate(st: Static, ap: ArmParams, p_hat, p_var, key):
    r"""Counts ``n_q``; with ``expected`` the allocator sees the ``p`` whose
    ``4p(1-p)`` equals ``E[4p(1-p)] = 4(E p - (E p)^2 - Var p)``."""
    p = jnp.clip(p_hat, 0.0, 1.0)
    a = jnp.clip(p - p * p - p_var, 0.0, 0.25)
    p_exp = 0.5 * (1 - jnp.sqrt(jnp.maximum(1 - 4 * a, 0.0)))
    p = jnp.where(ap.expected, p_exp, p)
    perm = jax.random.permutation(jax.random.fold_in(key, 3), p.shape[0])
    p = jnp.where(ap.permute, p[perm], p)
    res = solve(p, st.batch * ap.n_bar, st.lower, st.upper,
                estimator=st.alloc_estimator, sections=_SECTIONS)
    uniform = jnp.full(p.shape, ap.n_bar, jnp.int32)
    return jnp.where(ap.vip, res.n.astype(jnp.int32), uniform)


def _step(tx, params, opt, g, do):
    updates, new_opt = tx.update(g, opt, params)
    new_params = optax.apply_updates(params, updates)
    pick = functools.partial(jnp.where, do)
    return jax.tree.map(pick, new_params, params), jax.tree.map(pick, new_opt, opt)


def _learn(st: Static, ap: ArmParams, carry: Carry, data: Data, r: Round):
    """One policy update: the batch mean ``(1/B) sum_q G_q``, or DAPO's.

    DAPO dynamic filtering (``ap.dapo``) uses the first ``n_bar`` rollouts of
    each prompt and drops groups with all-equal rewards. Buffer accounting
    (default): surviving groups fill a buffer; when it holds ``B`` groups the
    policy takes one step on exactly those (surplus groups of the round are
    discarded, still counted). ``equal_steps``: one step every round on the
    surviving groups of the round, averaged over them (none survive: no step).
    Under RLOO an all-equal group has zero advantages, so the filter changes
    only the normalisation and the number of steps.
    """
    tx = _optimizer(st.learning_rate, st.max_grad_norm)
    b = st.batch
    if not st.dapo:
        g = _grad(st, carry.params, data.feats[r.ids], data.mask[r.ids], r.ys,
                  r.fil, r.rew, r.rmask, r.counts, b)
        params, opt = _step(tx, carry.params, carry.opt, g, jnp.asarray(True))
        return params, opt, carry.dapo, jnp.asarray(True)
    valid = jnp.any((r.rew != r.rew[:, :1]) & r.rmask, axis=-1)
    buf_ids, buf_ys, buf_fil, count = carry.dapo
    pos = count + jnp.cumsum(valid) - 1
    dest = jnp.where(valid & (pos < b), pos, b)  # index b is dropped
    buf_ids = buf_ids.at[dest].set(r.ids, mode="drop")
    buf_ys = buf_ys.at[dest].set(r.ys, mode="drop")
    buf_fil = buf_fil.at[dest].set(r.fil, mode="drop")
    new_count = jnp.minimum(count + jnp.sum(valid), b)
    full = new_count == b
    nv = jnp.sum(valid)
    use_buf = ap.dapo & ~ap.equal_steps
    ids = jnp.where(use_buf, buf_ids, r.ids)
    ys = jnp.where(use_buf, buf_ys, r.ys)
    fil = jnp.where(use_buf, buf_fil, r.fil)
    rew = jnp.where(ys == data.answer[ids][:, None], 1.0, -1.0)
    # all-equal groups have zero advantages, so they drop out of the sum
    denom = jnp.where(ap.dapo & ap.equal_steps, jnp.maximum(nv, 1), b)
    g = _grad(st, carry.params, data.feats[ids], data.mask[ids], ys, fil, rew,
              r.rmask, r.counts, denom)
    do = jnp.where(ap.dapo, jnp.where(ap.equal_steps, nv > 0, full), True)
    params, opt = _step(tx, carry.params, carry.opt, g, do)
    count = jnp.where(full, 0, new_count)
    return params, opt, (buf_ids, buf_ys, buf_fil, count), do


def _observe(st: Static, carry: Carry, r: Round, adapt):
    succ = jnp.sum((r.rew > 0) & r.rmask, axis=-1)
    pred_state, sel_state = carry.pred, carry.sel
    if st.predictor is not None:
        pred = predictor_for(st.predictor)
        w = r.counts.astype(jnp.float32)
        pred_state = pred.update(pred_state, r.ids, succ / w, w)
    if not st.selection:
        return pred_state, sel_state, succ
    g, m = sel.GRESO_DEFAULTS, sel.MOPPS_DEFAULTS
    greso = sel.greso_observe(sel_state[0], r.ids, succ, r.counts, adapt,
                              target=g["target"], step=g["step"],
                              p_min=g["p_min"], p_max=g["p_max"])
    mopps = sel.mopps_observe(sel_state[1], r.ids, succ, r.counts,
                              decay=m["decay"], prior_alpha=m["prior_alpha"],
                              prior_beta=m["prior_beta"])
    return pred_state, (greso, mopps), succ


def _calibration(calib, p_hat, succ, counts):
    """Accumulate Brier sums and the ECE bins over rollouts."""
    n = counts.astype(jnp.float32)
    s = succ.astype(jnp.float32)
    brier = jnp.sum(s * (1 - p_hat) ** 2 + (n - s) * p_hat**2)
    b = jnp.clip((p_hat * ECE_BINS).astype(jnp.int32), 0, ECE_BINS - 1)
    onehot = jax.nn.one_hot(b, ECE_BINS) * n[:, None]
    bins = jnp.stack([onehot.sum(0), (onehot * p_hat[:, None]).sum(0),
                      (jax.nn.one_hot(b, ECE_BINS) * s[:, None]).sum(0)])
    return (calib[0] + brier, calib[1] + jnp.sum(n), calib[2] + bins)


def _metrics(st: Static, ap, r: Round, zero_var, updated, filled):
    a = 4 * r.p * (1 - r.p)
    obj = jnp.sum(a * variance_factor(jnp.maximum(r.counts, 2),
                                      st.alloc_estimator)) / st.batch**2
    obj_u = jnp.sum(a * variance_factor(st.n_bar, st.alloc_estimator)) / st.batch**2
    mid = (r.p >= MID_P[0]) & (r.p <= MID_P[1])
    sat = (r.p < SATURATED[0]) | (r.p > SATURATED[1])
    spent = jnp.sum(r.rmask)
    f32 = jnp.float32
    return dict(
        rollouts=spent.astype(jnp.int32),
        zero_var=zero_var.astype(f32),
        objective=obj.astype(f32),
        objective_uniform=obj_u.astype(f32),
        mid=jnp.sum(mid).astype(f32),
        starved=jnp.sum(mid & (r.counts <= st.lower)).astype(f32),
        saturated_share=(jnp.sum(jnp.where(sat[:, None], r.rmask, False))
                         / jnp.maximum(spent, 1)).astype(f32),
        abs_err=jnp.mean(jnp.abs(r.p_hat - r.p)).astype(f32),
        updated=updated,
        filled=filled,
        distinct=jnp.sum(jnp.diff(jnp.sort(r.ids)) > 0).astype(jnp.int32) + 1,
        n_min=jnp.min(r.counts).astype(jnp.int32),
        n_max=jnp.max(r.counts).astype(jnp.int32),
    )


def _gradvar(st: Static, params, data: Data, r: Round, key):
    """``[tr Cov(g), Var(1^T g)]`` over ``reps`` independent rollout draws,
    with the run's counts and with ``n_bar`` each (same keys, same policy)."""
    feats, smask, ans = data.feats[r.ids], data.mask[r.ids], data.answer[r.ids]

    def one(k, counts):
        ys, fil = _sample(k, params, feats, smask, st.upper, st.tokens)
        rew = jnp.where(ys == ans[:, None], 1.0, -1.0)
        rmask = jnp.arange(st.upper)[None, :] < counts[:, None]
        g = _grad(st, params, feats, smask, ys, fil, rew, rmask, counts, st.batch)
        return ravel_pytree(g)[0]

    keys = jax.random.split(key, st.reps)

    def moments(counts):
        gs = jax.vmap(one, in_axes=(0, None))(keys, counts)
        return jnp.sum(jnp.var(gs, axis=0, ddof=1)), jnp.var(gs.sum(1), ddof=1)

    both = jnp.stack([r.counts, jnp.full(r.counts.shape, st.n_bar, r.counts.dtype)])
    tr, proj = jax.vmap(moments)(both)  # one traced copy for both allocations
    return jnp.stack([tr[0], proj[0], tr[1], proj[1]]).astype(jnp.float32)


def _round(st: Static, data: Data, ap: ArmParams, seed, carry: Carry, t, pool):
    """One round of one run (see the module docstring)."""
    key = round_key(st.task_seed, seed, t)
    ids, filled = _select(st, ap, carry, pool, jax.random.fold_in(key, 4))
    f, m, a = data.feats[ids], data.mask[ids], data.answer[ids]
    p = pol.success_prob(carry.params, f, m, a)
    p_hat, p_var = _source(st, ap, carry, ids, p)
    counts = _allocate(st, ap, p_hat, p_var, key)
    ys, fil = _sample(key, carry.params, f, m, st.upper, st.tokens)
    rew = jnp.where(ys == a[:, None], 1.0, -1.0)
    rmask = jnp.arange(st.upper)[None, :] < counts[:, None]
    r = Round(ids, p, p_hat, counts, ys, fil, rew, rmask)
    gv = jax.lax.cond(
        t % st.gv_every == 0,
        lambda: _gradvar(st, carry.params, data, r,
                         round_key(st.task_seed, seed, t + 10**6)),
        lambda: jnp.zeros((4,), jnp.float32))
    params, opt, dapo, updated = _learn(st, ap, carry, data, r)
    lo = jnp.min(jnp.where(rmask, rew, jnp.inf), axis=-1)
    hi = jnp.max(jnp.where(rmask, rew, -jnp.inf), axis=-1)
    zero_var = jnp.mean((lo == hi).astype(jnp.float32))
    first_pass = -(-st.num_prompts // st.batch)
    pred_state, sel_state, succ = _observe(st, carry, r, t >= first_pass)
    calib = _calibration(carry.calib, p_hat, succ, counts)
    out = _metrics(st, ap, r, zero_var, updated, filled)
    out["gradvar"] = gv
    return Carry(params, opt, pred_state, sel_state, dapo, calib), out


def _accuracy(data: Data, params):
    return jnp.mean(pol.success_prob(params, data.eval_feats, data.eval_mask,
                                     data.eval_answer))


def _save_checkpoint(st: Static, ck, params, t_end):
    """Keep run ``ck_run``'s params at the rounds in ``ck_steps``."""
    if st.ck_run < 0:
        return ck
    mine = jax.tree.map(lambda x: x[st.ck_run], params)
    return tuple(jax.tree.map(functools.partial(jnp.where, t_end == s), mine, c)
                 for s, c in zip(st.ck_steps, ck, strict=True))


def _block(st: Static, data: Data, arms, seeds, seed_idx, state, xs):
    """``every`` rounds for every run, then the held-out accuracy."""
    carry, ck = state
    t0, pools = xs
    step = jax.vmap(functools.partial(_round, st, data),
                    in_axes=(0, 0, 0, None, 0))

    def inner(c, x):
        t, pool_s = x
        return step(arms, seeds, c, t, pool_s[seed_idx])

    carry, outs = jax.lax.scan(inner, carry, (t0 + jnp.arange(st.every), pools))
    acc = jax.vmap(functools.partial(_accuracy, data))(carry.params)
    ck = _save_checkpoint(st, ck, carry.params, t0 + st.every)
    return (carry, ck), (outs, acc)


@functools.partial(jax.jit, static_argnums=0)
def run_program(st: Static, data: Data, arms: ArmParams, seeds: jax.Array,
                seed_idx: jax.Array, carry: Carry, pools: jax.Array):
    """Train every run of one program for ``blocks * every`` rounds.

    Args:
      st: the program's static settings.
      data: task arrays.
      arms: per-run :class:`ArmParams` (leading axis ``R``).
      seeds: ``(R,)`` seed numbers (keys and initial parameters).
      seed_idx: ``(R,)`` row of ``pools`` each run reads.
      carry: the initial per-run state (leading axis ``R``).
      pools: ``(T, S, P)`` candidate streams per round and seed.

    Returns:
      ``(outs, acc, acc0, calib, checkpoints)``: per-round records with
      leading axes ``(blocks, every, R)``, held-out accuracy ``(blocks, R)``
      after each block and ``(R,)`` at the start, the calibration sums and
      the saved parameters of run ``ck_run``.
    """
    acc0 = jax.vmap(functools.partial(_accuracy, data))(carry.params)
    ck = ()
    if st.ck_run >= 0:
        first = jax.tree.map(lambda x: x[st.ck_run], carry.params)
        ck = tuple(first for _ in st.ck_steps)
    t, s, p = pools.shape
    xs = (jnp.arange(st.blocks) * st.every,
          pools.reshape(st.blocks, st.every, s, p))
    body = functools.partial(_block, st, data, arms, seeds, seed_idx)
    (carry, ck), (outs, acc) = jax.lax.scan(body, (carry, ck), xs)
    return outs, acc, acc0, carry.calib, ck
