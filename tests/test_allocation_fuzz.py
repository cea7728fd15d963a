"""Nothing silently wrong in the allocator: fuzzing and one regression test per
reported failure.

Fuzz (hypothesis): ``allocate``, ``solve_allocation``, the three heuristics,
``allocation_objective`` and ``vipcore allocate`` get arbitrary arguments
(huge and negative integers, NaN, infinities, bools, text, NumPy scalars,
odd dtypes and shapes, random file bytes). Each call either returns a result
that meets the contract (``sum == C``, ``L <= n <= U``, the dtype and shape)
or raises ``ValueError`` naming the argument; never another exception, and
the command line never prints a traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from alloc_oracles import objective64
from hypothesis import given, settings
from hypothesis import strategies as st

import vipcore
from vipcore._src.apps import cli

CODES = {int(c) for c in vipcore.AllocationStatus}
NAMES = ("p_hat", "C", "L", "U", "estimator", "eps", "mask", "n", "sigma_z2")

scalars = st.one_of(
    st.integers(-5, 80),
    st.integers(-2**70, 2**70),
    st.sampled_from([2**31 - 1, 2**31, 2**32 + 32, 10**400, -10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0, 80).map(lambda x: round(x, 1)),
    st.integers(-5, 2**40).map(np.int64),
    st.integers(0, 80).map(np.float32),
    st.booleans(),
    st.sampled_from(["8", "", None, [8], np.array([8, 9])]),
)
probs = st.one_of(
    st.lists(st.floats(0, 1), min_size=1, max_size=6),
    st.lists(st.one_of(st.floats(0, 1), st.floats(allow_nan=True),
                       st.sampled_from([1 + 1e-9, -1e-50, 2.0, np.inf])),
             max_size=6),
    st.lists(st.floats(0, 1), min_size=1, max_size=6).map(
        lambda v: np.asarray(v, np.float16)),
    st.lists(st.integers(0, 1), min_size=1, max_size=6).map(np.asarray),
    st.sampled_from([0.5, [[0.5, 0.2]], ["a", "b"], [0.5, "x"], [],
                     np.array([0.5 + 1j]), [True, False], None]),
)


@st.composite
def bounds(draw, p):
    """``(C, L, U)``: half the time feasible for ``p`` (success paths), half
    the time anything at all."""
    try:
        B = len(p)
    except TypeError:
        B = 1
    if draw(st.booleans()) and B:
        L = draw(st.integers(1, 5))
        U = draw(st.one_of(st.integers(L, 40), st.sampled_from([2**31, 10**30])))
        C = draw(st.integers(B * L, min(B * U, 2**31 - 1)))
        return C, L, U
    return draw(scalars), draw(scalars), draw(scalars)


def _names_argument(err: ValueError) -> bool:
    msg = str(err)
    return any(re.search(rf"(^|\W){re.escape(n)}(\W|$)", msg) for n in NAMES)


def _check_result(n, p, C, L, U):
    n = np.asarray(n)
    assert n.dtype == np.int64 and n.shape == (len(np.asarray(p)),)
    assert int(n.sum()) == int(C)
    assert n.min() >= int(L) and n.max() <= int(U)


def _call(fn, *args, **kw):
    try:
        return fn(*args, **kw), None
    except ValueError as err:
        assert _names_argument(err), f"message names no argument: {err}"
        return None, err


@settings(max_examples=150)
@given(st.data(), probs, st.sampled_from(["rloo", "drgrpo", "grpo", None]))
def test_fuzz_allocate(data, p, est):
    C, L, U = data.draw(bounds(p))
    n, err = _call(vipcore.allocate, p, C, L, U, est)
    if err is None:
        _check_result(n, p, C, L, U)


@settings(max_examples=100)
@given(st.data(), probs,
       st.sampled_from(["uniform", "inverse_accuracy", "inverse_variance"]),
       st.one_of(st.floats(1e-6, 10),
                 st.floats(allow_nan=True, allow_infinity=True),
                 st.sampled_from([1e-40, 1e-300, 5e-324, 1e300, "a", True, None])))
def test_fuzz_heuristics(data, p, name, eps):
    C, L, U = data.draw(bounds(p))
    fn = getattr(vipcore, f"allocate_{name}")
    kw = {} if name == "uniform" else {"eps": eps}
    n, err = _call(fn, p, C, L, U, **kw)
    if err is None:
        _check_result(n, p, C, L, U)


@settings(max_examples=80)
@given(st.sampled_from([1, 4]), st.data(), st.sampled_from(["rloo", "drgrpo"]),
       st.booleans())
def test_fuzz_solve_allocation(B, data, est, use_mask):
    C, L, U = data.draw(bounds([0.5] * B))
    p = data.draw(st.one_of(
        st.lists(st.floats(0, 1), min_size=B, max_size=B),
        st.lists(st.floats(allow_nan=True), min_size=B, max_size=B),
        st.sampled_from([0.5, [], [[0.5]]])))
    mask = data.draw(st.one_of(
        st.lists(st.booleans(), min_size=B, max_size=B),
        st.lists(st.booleans(), max_size=3))) if use_mask else None
    res, err = _call(vipcore.solve_allocation, p, C, L, U, estimator=est, mask=mask)
    if err is not None:
        return
    status = int(res.status)
    assert status in CODES
    n = np.asarray(res.n)
    if status != 0:
        assert not n.any()
        return
    valid = np.ones(B, bool) if mask is None else np.asarray(mask, bool)
    assert n.dtype == np.int32 and n.shape == (B,)
    assert int(n.sum()) == int(C) and not n[~valid].any()
    assert n[valid].min() >= int(L) and n[valid].max() <= int(U)


@settings(max_examples=80)
@given(st.one_of(st.lists(st.integers(-3, 40), min_size=2, max_size=2),
                 st.lists(st.floats(allow_nan=True, allow_infinity=True),
                          min_size=2, max_size=2),
                 st.sampled_from([[4], "ab", [[4, 4]], None])),
       probs, st.sampled_from(["rloo", "drgrpo", "x"]),
       st.one_of(st.floats(allow_nan=True), st.sampled_from([1, -1, "2", True])))
def test_fuzz_allocation_objective(n, p, est, sigma_z2):
    out, err = _call(vipcore.allocation_objective, n, p, est, sigma_z2)
    if err is None:
        assert np.isfinite(float(out)) and float(out) >= 0


# ------------------------------------------------------------------ the CLI
def _run_cli(argv, stdin_text=None):
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = cli.main(argv)
        except SystemExit as e:  # argparse: usage, then the error line
            rc = e.code
            assert "error: argument " in err.getvalue().splitlines()[-1]
            return rc, out.getvalue(), err.getvalue()
    # run-time user errors: exactly one line
    assert rc == 0 or len(err.getvalue().strip().splitlines()) == 1, err.getvalue()
    return rc, out.getvalue(), err.getvalue()


file_bytes = st.one_of(
    st.binary(max_size=60),
    st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.integers(-10**30, 10**30), st.text(max_size=4)),
             max_size=6).map(lambda v: "\n".join(map(str, v)).encode()),
    st.lists(st.fixed_dictionaries({"prompt_id": st.one_of(st.text(max_size=3),
                                                           st.integers()),
                                    "p_hat": st.one_of(st.floats(0, 1),
                                                       st.booleans(), st.none(),
                                                       st.text(max_size=3))}),
             max_size=5).map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"prompt_id,p_hat\nq,0.5\nq,0.5\n", b"\xff\xfe0.5\n",
                     b"[0.5, 1" + b"0" * 500 + b"]", b"{\"p_hat\": 5}", b""]),
)


@settings(max_examples=60)
@given(file_bytes, st.sampled_from([".csv", ".json", ".jsonl", ".txt", ""]),
       st.lists(st.sampled_from(["-C", "-L", "-U", "--id-col", "--p-col"]),
                max_size=3),
       st.lists(st.sampled_from(["8", "-1", "2147483648", "x", "", "3"]),
                max_size=3))
def test_fuzz_cli_allocate(data, suffix, opts, values):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"in{suffix}"
        path.write_bytes(data)
        argv = ["allocate", str(path), "-C", "8", "-U", "8"]
        for o, v in zip(opts, values, strict=False):
            argv += [o, v]
        rc, out, err = _run_cli(argv)
        assert path.read_bytes() == data  # the input is never touched
    assert rc in (0, 2)
    assert "Traceback" not in err
    if rc == 2:
        assert err.strip().splitlines()[-1].startswith("vipcore allocate: error:")
    else:
        assert out.strip()


def test_fully_masked_batch_is_infeasible_unless_C_is_0():
    """Found by the fuzz test: with every prompt masked, C = 2 reported OK."""
    p, m = jnp.asarray([0.5, 0.5]), jnp.asarray([False, False])
    res = vipcore.solve_allocation(p, 2, 2, 2, mask=m)
    assert int(res.status) == vipcore.AllocationStatus.INFEASIBLE
    res = vipcore.solve_allocation(p, 0, 2, 2, mask=m)
    assert int(res.status) == 0 and not np.asarray(res.n).any()


# ------------------------------------------------- reported failures (issue 11)
def test_item2_masked_objective_counts_real_prompts_only():
    p = jnp.asarray([0.5, 0.9, 0.99, 0.0])
    m = jnp.asarray([True, False, True, False])
    for est, L in (("rloo", 2), ("drgrpo", 3)):
        res = vipcore.solve_allocation(p, 16, L, 16, estimator=est, mask=m)
        n = np.asarray(res.n)
        assert int(res.status) == 0 and n[1] == n[3] == 0
        want = objective64(n[[0, 2]], np.asarray(p)[[0, 2]], est)
        np.testing.assert_allclose(float(res.objective), want, rtol=1e-6)
        assert 0 < float(res.objective) < 1  # not -1.897 (RLOO) or -inf


@pytest.mark.parametrize("C", [float("nan"), 32.7, 8.5, np.int64(2**32 + 32),
                               2**32 + 32, -1, 10**400])
def test_item3_bad_budget_refused_or_coded(C):
    p = [0.1, 0.2, 0.3, 0.4]
    with pytest.raises(ValueError, match=r"C must be an integer in \[0, 2\*\*31\)"):
        vipcore.allocate(p, C, 2, 16)
    res = vipcore.solve_allocation(jnp.asarray(p), C, 2, 16)
    assert int(res.status) == vipcore.AllocationStatus.BAD_BUDGET
    assert not np.asarray(res.n).any()


def test_item3_traced_budget_and_bounds_coded():
    p = jnp.asarray([0.1, 0.2, 0.3, 0.4])
    f = jax.jit(lambda C, L: vipcore.solve_allocation(p, C, L, 16).status)
    assert int(f(8.5, 2)) == vipcore.AllocationStatus.BAD_BUDGET
    assert int(f(32.7, 2)) == vipcore.AllocationStatus.BAD_BUDGET
    assert int(f(16, 2.5)) == vipcore.AllocationStatus.BAD_BOUNDS
    with pytest.raises(ValueError, match=r"L must be an integer in \[2, 2\*\*31\)"):
        vipcore.allocate(p, 16, 2.5, 16)


@pytest.mark.parametrize("fn, kw, p, C", [
    (vipcore.allocate_inverse_variance, {"eps": 1e-40}, [0, 1, 0.5], 20),
    (vipcore.allocate_inverse_variance, {"eps": 5e-324}, [0, 1, 0.5, 0.3], 30),
    (vipcore.allocate_inverse_accuracy, {"eps": 1e-300}, [0.5, 0.9, 0.99, 1], 32),
    (vipcore.allocate_inverse_accuracy, {"eps": 1e300}, [0.5, 0.9, 0.99, 1], 33),
    (vipcore.allocate_uniform, {}, [0.5] * 7, 2**31 - 1),
])
def test_item4_heuristics_always_meet_the_budget(fn, kw, p, C):
    U = 2**31 - 1
    n = fn(p, C, 2, U, **kw)
    _check_result(n, p, C, 2, U)
    n = fn(p, C, 2, 16, **kw) if C <= 16 * len(p) else n
    assert n.sum() == C


def test_item4_bad_eps_refused():
    for eps in (float("inf"), float("nan"), 0, -1, "a", True, None):
        with pytest.raises(ValueError, match="eps must be a number > 0"):
            vipcore.allocate_inverse_accuracy([0.5, 0.9, 0.99, 0], 32, 2, 16,
                                              eps=eps)


@pytest.mark.parametrize("bad", [1 + 1e-9, -1e-50, 1 + 2**-52, -5e-324])
def test_item5_out_of_range_p_refused_before_any_cast(bad):
    with pytest.raises(ValueError, match=r"p_hat must lie in \[0, 1\]"):
        vipcore.allocate([0.5, bad], 8, 2, 8)
    with pytest.raises(ValueError, match=r"p_hat must lie in \[0, 1\]"):
        vipcore.allocate_uniform([0.5, bad], 8, 2, 8)


def test_item5_cli_keeps_float64_and_refuses_just_above_one(tmp_path, capsys):
    path = tmp_path / "p.txt"
    path.write_text("0.5\n1.0000000001\n")
    assert cli.main(["allocate", str(path), "-C", "8", "-U", "8"]) == 2
    assert "line 2: p_hat must lie in [0, 1]" in capsys.readouterr().err
    path.write_text("0.5\n1.00000000000000000001\n")  # beyond float64 too
    assert cli.main(["allocate", str(path), "-C", "8", "-U", "8"]) == 2
    assert "line 2" in capsys.readouterr().err
    from vipcore._src.apps.cli._table import read_table

    path.write_text("0.1\n0.30000000000000004\n")
    table = read_table(str(path))
    assert table.p.dtype == np.float64 and table.p[1] == 0.30000000000000004


def test_item7_objective_validates():
    with pytest.raises(ValueError, match="p_hat must not contain NaN"):
        vipcore.allocation_objective([4, 4], [np.nan, 0.5])
    with pytest.raises(ValueError, match=r"p_hat must lie in \[0, 1\]"):
        vipcore.allocation_objective([4, 4], [2.0, 0.5])
    with pytest.raises(ValueError, match="n must be finite and >= 2"):
        vipcore.allocation_objective([-4, 4], [0.3, 0.5])
    with pytest.raises(ValueError, match="n must be finite and >= 1"):
        vipcore.allocation_objective([0, 4], [0.3, 0.5], "drgrpo")
    with pytest.raises(ValueError, match="n must have the shape"):
        vipcore.allocation_objective([4], [0.3, 0.5])
    with pytest.raises(ValueError, match="sigma_z2 must be a finite number >= 0"):
        vipcore.allocation_objective([4, 4], [0.3, 0.5], sigma_z2=-1)


@pytest.mark.parametrize("U", [2**31 - 1, 2**31, 2**40, 10**400, np.uint64(2**63)])
def test_item11_huge_upper_bound_is_fine(U):
    p = [0.5, 0.9, 0.2]
    want = vipcore.allocate(p, 20, 2, 20)  # U above C changes nothing
    np.testing.assert_array_equal(vipcore.allocate(p, 20, 2, U), want)
    assert vipcore.allocate_uniform(p, 20, 2, U).sum() == 20
    res = vipcore.solve_allocation(jnp.asarray(p), 20, 2, U)
    np.testing.assert_array_equal(res.n, want)


def test_item11_cli_huge_numbers(tmp_path, capsys):
    path = tmp_path / "p.txt"
    path.write_text("0.5\n0.9\n0.2\n")
    assert cli.main(["allocate", str(path), "-C", "20", "-U", "2147483648"]) == 0
    assert sum(int(x) for x in capsys.readouterr().out.split()) == 20
    big = tmp_path / "big.json"
    big.write_text("[0.5, 1" + "0" * 399 + "]")
    assert cli.main(["allocate", str(big), "-C", "8", "-U", "8"]) == 2
    err = capsys.readouterr().err
    assert "(400 characters)" in err and "line 1" in err and "inf" not in err


@pytest.mark.parametrize("p, mask, match", [
    (0.5, None, "one-dimensional"),
    ([], None, "p_hat is empty"),
    ([0.5, 0.2], [True], r"mask must have the shape of p_hat \(2,\)"),
    ([[0.5, 0.2]], None, "one-dimensional"),
    (["a"], None, "p_hat must be"),
    ([0.5 + 1j], None, "p_hat must be numeric"),
])
def test_item14_solve_allocation_shapes(p, mask, match):
    with pytest.raises(ValueError, match=match):
        vipcore.solve_allocation(p, 8, 2, 8, mask=mask)


def test_item15_cli_messages_name_file_and_line(tmp_path, capsys):
    def err_of(content: bytes, name="p.txt", extra=()):
        path = tmp_path / name
        path.write_bytes(content)
        assert cli.main(["allocate", str(path), "-C", "8", "-U", "8", *extra]) == 2
        msg = capsys.readouterr().err.strip()
        assert len(msg.splitlines()) == 1 and str(path) in msg, msg
        return msg

    assert "line 3, column 1: not valid UTF-8" in err_of(b"0.5\n0.5\n\xff\n")
    assert "line 4: p_hat must lie in [0, 1]" in err_of(b"# c\n0.5\n\n1.5\n")
    msg = err_of(b"0.5\n" + b"9" * 5000 + b"\n")
    assert "line 2" in msg and "(5000 characters)" in msg and "inf" not in msg
    assert "no p_hat values (the file is empty)" in err_of(b"")
    assert "no p_hat values" in err_of(b"prompt_id,p_hat\n", "p.csv")
    assert "line 3: duplicate prompt_id 'q1' (first on line 2)" in err_of(
        b"prompt_id,p_hat\nq1,0.5\nq1,0.2\n", "p.csv")
    assert "line 2: expected a number for p_hat" in err_of(
        b'{"prompt_id": "a", "p_hat": 0.5}\n{"prompt_id": "b", "p_hat": "0.5"}\n',
        "p.jsonl")
    assert "line 3:" in err_of(b'[\n  0.5,\n  true\n]', "p.json")
    assert "malformed CSV" in err_of(b'prompt_id,p_hat\n"q1,0.5\n', "p.csv")


@pytest.mark.parametrize("argv, option", [
    (["-C", "-1", "-U", "8"], "--budget"),
    (["-C", "2147483648", "-U", "8"], "--budget"),
    (["-C", "8", "-U", "0"], "--upper"),
    (["-C", "8", "-U", "x"], "--upper"),
    (["-C", "8", "-U", "8", "-L", "0"], "--lower"),
    (["-C", "8", "-U", "8", "--out", "o.txt"], "--out"),
    (["-C", "8", "-U", "8", "--p-col", ""], "--p-col"),
])
def test_item16_allocate_options_checked_at_parse_time(tmp_path, argv, option):
    path = tmp_path / "p.txt"
    path.write_text("0.5\n0.5\n")
    rc, _, err = _run_cli(["allocate", str(path), *argv])
    assert rc == 2 and f"argument {option}" in err


def test_item16_two_option_facts_named(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("0.5\n0.5\n")
    rc, _, err = _run_cli(["allocate", str(path), "-C", "8", "-L", "2", "-U", "8",
                           "--estimator", "drgrpo"])
    assert rc == 2 and "--lower must be >= 3 for --estimator drgrpo" in err
    rc, _, err = _run_cli(["allocate", str(path), "-C", "8", "-L", "5", "-U", "4"])
    assert rc == 2 and "--upper must be >= --lower" in err
    rc, _, err = _run_cli(["allocate", str(path), "-C", "80", "-U", "8"])
    assert rc == 2 and "--budget 80 is infeasible for 2 prompts" in err


@pytest.mark.parametrize("argv, option", [
    (["--reps", "0"], "--reps"), (["--sizes", "64,,8"], "--sizes"),
    (["--sizes", "-4"], "--sizes"), (["--batches", "0"], "--batches"),
    (["--slsqp", "-1"], "--slsqp"), (["--batch-size", "x"], "--batch-size"),
])
def test_item16_bench_options_checked_at_parse_time(argv, option):
    rc, _, err = _run_cli(["bench", *argv])
    assert rc == 2 and f"argument {option}" in err
