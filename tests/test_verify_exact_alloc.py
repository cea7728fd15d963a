"""The corner rows of ``vipcore verify`` (near ties, tiny ``a``, ``lam`` to the
working precision, advantages at ``eps = 0``, GRPO's allocation) pass on the
library and fail when the function they prove returns a plausible wrong
answer (each test substitutes one and the row must fail)."""

from __future__ import annotations

import numpy as np
import pytest

import vipcore
from vipcore._src import variance as vc
from vipcore._src.allocation import grpo as grpo_mod
from vipcore._src.apps.verify import exact_alloc as X


def _row(rows, start):
    (row,) = [r for r in rows if r.name.startswith(start)]
    return row


@pytest.fixture(scope="module")
def corner_rows():
    return X.corner_checks(float64=False)


def test_corner_rows_pass_and_exercise_the_tie_band(corner_rows):
    failed = [(r.name, r.note) for r in corner_rows if not r.passed]
    assert not failed, failed
    # the negative control: the plain greedy disagrees somewhere
    assert _row(corner_rows, "NEGATIVE: the plain greedy").empirical != \
        _row(corner_rows, "NEGATIVE: the plain greedy").theory


def test_tiny_a_instance_needs_a_threshold_above_2_to_the_24():
    """The instance of the ``a = 2^-44`` prompt is a real corner: its
    threshold ``u = g^{-1/2}`` (a normalised) exceeds ``2**24`` at C = B*U - 1."""
    (_, p, L, U, est), = [i for i in X.corner_instances()
                          if i[0] == "rloo a = 2^-44 max(a)"]
    a = 4 * p * (1 - p)
    a = a / a.max()
    n = U - 2  # the last unit it must receive at C = B*U - 1 is n -> n + 1
    assert (n * (n - 1) / a[-1]) ** 0.5 > 2**24


def test_corner_integer_row_fails_on_a_wrong_tie_break(monkeypatch):
    real = vipcore.solve_allocation

    def last_index_first(p, C, L, U, **kw):  # ties to the higher index
        res = real(p, C, L, U, **kw)
        n = np.asarray(res.n).copy()
        n[[0, 1]] = n[[1, 0]]
        return res._replace(n=n)

    monkeypatch.setattr(vipcore, "solve_allocation", last_index_first)
    assert not _row(X._integer_rows(np.float32), "solve_allocation n at").passed


def test_lam_row_fails_on_a_multiplier_off_by_64_ulps(monkeypatch):
    real = vipcore.solve_allocation
    eps = float(np.finfo(np.float32).eps)

    def coarse(*a, **kw):
        res = real(*a, **kw)
        return res._replace(lam=res.lam * np.float32(1 + 64 * eps))

    monkeypatch.setattr(vipcore, "solve_allocation", coarse)
    assert not X._lam_row(np.float32).passed


def test_padding_row_passes_and_fails_on_nan_padding(monkeypatch):
    assert all(r.passed for r in X.padding_checks())
    # constant groups at eps = 0 are 0, not 0/0
    out = np.asarray(vipcore.advantages([[0.3, 0.3, 0.3]], "grpo", eps=0.0))
    assert np.array_equal(out, np.zeros((1, 3)))
    real = vc.advantages

    def unguarded(r, est, *, mask, eps, **kw):  # the groups' 0/0 left in place
        out = np.asarray(real(r, est, mask=mask, eps=eps, **kw))
        return np.where(mask & ~np.isnan(r), out, np.nan) if eps == 0 else out

    monkeypatch.setattr(vipcore, "advantages", unguarded)
    assert not X.padding_checks()[0].passed


@pytest.fixture(scope="module")
def grpo_rows():
    return X.grpo_checks()


def test_grpo_rows_pass(grpo_rows):
    failed = [(r.name, r.note) for r in grpo_rows if not r.passed]
    assert not failed, failed


def test_grpo_terms_row_fails_when_ddof_is_ignored(monkeypatch):
    real = grpo_mod.grpo_terms

    def sample_std_always(p, n, *, ddof=1, **kw):
        t = real(p, n, ddof=ddof, **kw)
        v1 = real(p, n, ddof=1, **kw).variance
        return t._replace(variance=v1)

    monkeypatch.setattr(grpo_mod, "grpo_terms", sample_std_always)
    assert not X._terms_row().passed


def test_grpo_allocation_row_fails_on_a_worse_or_infeasible_allocation(monkeypatch):
    real = grpo_mod.allocate_grpo

    def move_one_unit(p, C, L, U, **kw):  # feasible, one unit misplaced
        n = real(p, C, L, U, **kw).copy()
        i, j = int(np.argmax(n)), int(np.argmin(n))
        if n[i] > L and n[j] < U and i != j:
            n[i] -= 1
            n[j] += 1
        return n

    monkeypatch.setattr(grpo_mod, "allocate_grpo", move_one_unit)
    assert not _row(X._grpo_alloc_rows(), "allocate_grpo n").passed

    def one_too_many(p, C, L, U, **kw):  # a tie taken twice
        n = real(p, C, L, U, **kw).copy()
        n[int(np.argmin(n))] += 1
        return n

    monkeypatch.setattr(grpo_mod, "allocate_grpo", one_too_many)
    assert not _row(X._grpo_alloc_rows(), "allocate_grpo n").passed


def test_grpo_instances_have_ties_and_near_ties():
    """The batches put the K-th largest GRPO gain inside a tie (exact and
    within 1e-5 relative), where an approximate K-th largest overshoots C."""
    from vipcore._src.apps.verify import oracles as O

    for name, p, C in X.grpo_instances():
        if name not in ("tied", "near-tied"):
            continue
        t = X._grpo_table(p)
        gains = np.sort((t[:, :-1] - t[:, 1:]).ravel())[::-1]
        K = C - p.size * X.GRPO_L
        kth, nxt = gains[K - 1], gains[K]
        assert abs(kth - nxt) <= 1e-5 * kth, (name, C)
        m, _ = O.separable_optimum(t, K)
        assert m.sum() == K
