"""Fuzzing the sweep readers, ``vipcore sweep`` and the run_sweep results file.

Every call either returns a result that satisfies the contract (scores in
[0, 1], counts that add up, ids and steps aligned) or raises a ``ValueError``
with a one-line message (the CLI: exit status 2, one line, no traceback);
never another exception type, and the input file is unchanged (by hash).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
from hypothesis import given, settings

from vipcore import sweep
from vipcore._src.apps.cli import main

KEYS = ["prompt_id", "score", "scores", "step", "rollout", "q", "r", "text"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.integers(10**400, 10**401),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 0.5, 1.0]),
    st.text(max_size=4), st.sampled_from(["a", " a", "7", "", "1"]))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))
OBJECT = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=5)
JSONL_LINE = st.one_of(
    OBJECT.map(json.dumps), OBJECT.map(json.dumps), OBJECT.map(json.dumps),
    st.text(max_size=12),
    st.sampled_from(["", "{", "[1]", '{"prompt_id": "a", "score": 1, "score": 0}',
                     '{"prompt_id": "a", "score": 1}{"prompt_id": "b"}',
                     '{"prompt_id": "a", "scores": [1', '0]}', "\r",
                     '{"prompt_id": "a", "sc\\u006fre": 1, "score": 0}']))
CELL = st.one_of(  # CSV cells, valid and not
    st.sampled_from(["a", "b", " a", "1", "0", "0.5", "-1", "true", "False", "nan",
                     "[1, 0]", "[1, , 0]", "1;0", "1 0", "", "0_1", "\uff11", "1e999",
                     '"q"', "x,y", "[]"]),
    st.text(alphabet='ab01.,;[] "\n', max_size=6))


GOOD = {"ids": st.sampled_from(["a", "b", "c d", 1, 2]),
        "scores": st.one_of(st.sampled_from([0, 1, 0.5, True, False, -1, 1.0, 10**400]),
                            st.lists(st.sampled_from([0, 1, 0.25, True]),
                                     min_size=1, max_size=3)),
        "steps": st.sampled_from([1, 2, 10])}


def _rare(draw, one_in: int) -> bool:
    return draw(st.sampled_from([True] + [False] * (one_in - 1)))


@st.composite
def row_dicts(draw, id_key: str, score_key: str):
    """Mostly well-formed rows under one schema, with some bad values."""
    step = draw(st.booleans())
    extra = draw(st.sampled_from([None, "rollout", "completion"]))
    rows = []
    def value(kind: str):
        return draw(VALUES) if _rare(draw, 12) else draw(GOOD[kind])

    for _ in range(draw(st.integers(1, 6))):
        row = {id_key: value("ids"), score_key: value("scores")}
        if step and not _rare(draw, 12):
            row["step"] = value("steps")
        if extra:
            row[extra] = draw(SCALARS)
        rows.append(row)
    return rows


def _cell(value) -> str:
    if isinstance(value, list):
        return json.dumps(value)
    return "" if value is None else str(value)


@st.composite
def csv_text(draw, id_key: str, score_key: str):
    rows = draw(row_dicts(id_key, score_key))
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = [",".join(cols)]
    for r in rows:
        cells = [_cell(r.get(c)) for c in cols]
        if _rare(draw, 12):
            cells = draw(st.lists(CELL, min_size=len(cols) - 1,
                                  max_size=len(cols) + 1))
        lines.append(",".join(json.dumps(c) if ("," in c or '"' in c or "\n" in c)
                              else c for c in cells))
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))


@st.composite
def jsonl_text(draw, id_key: str, score_key: str):
    lines = [json.dumps(r) for r in draw(row_dicts(id_key, score_key))]
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        lines.insert(draw(st.integers(0, len(lines))), draw(JSONL_LINE))
    return "\n".join(lines) + draw(st.sampled_from(["", "\n"]))


@st.composite
def sweep_case(draw):
    """``(file name, bytes, reader options)``: JSONL or CSV under one schema,
    options that mostly fit it, sometimes bad bytes."""
    id_key = draw(st.sampled_from(["prompt_id", "q", "text"]))
    score_key = draw(st.sampled_from(["score", "scores", "r"]))
    if draw(st.booleans()):
        name = draw(st.sampled_from(["s.jsonl", "s.json", "s.txt"]))
        body = draw(jsonl_text(id_key, score_key))
    else:
        name = draw(st.sampled_from(["s.csv", "s.tsv", "s.dat"]))
        body = draw(csv_text(id_key, score_key))
    data = body.encode("utf-8")
    if _rare(draw, 10):
        cut = draw(st.integers(0, len(data)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3(", b"\xef\xbb\xbf"]))
        data = data[:cut] + bad + data[cut:]
    if _rare(draw, 8):
        return name, data, draw(OPTIONS)
    opts = {"id_from_text": id_key} if id_key == "text" else {"id_col": id_key}
    if score_key == "r" or id_key != "prompt_id":
        opts["score_col"] = score_key
    opts.update(draw(st.sampled_from([{}, {"clip": True}, {"reward_range": (-1, 1)},
                                      {"ignore_extra_columns": True}])))
    return name, data, opts


OPTIONS = st.fixed_dictionaries({}, optional={
    "id_col": st.sampled_from(["prompt_id", "q", "text", "missing"]),
    "score_col": st.sampled_from(["score", "scores", "r"]),
    "step_col": st.sampled_from(["step", "rollout"]),
    "id_from_text": st.sampled_from(["text", "q"]),
    "text_col": st.sampled_from(["text", "q"]),
    "reward_range": st.sampled_from([(-1, 1), (0, 10), (0, 1)]),
    "clip": st.booleans(),
    "ignore_extra_columns": st.booleans(),
})


def _check_data(d) -> None:
    assert d.scores.dtype == np.float64 and np.all((d.scores >= 0) & (d.scores <= 1))
    assert d.counts.dtype == np.int64 and np.all(d.counts >= 1)
    assert int(d.counts.sum()) == d.scores.size == d.n_rows
    assert len(d.prompt_ids) == d.counts.size
    assert all(type(i) in (str, int) for i in d.prompt_ids)
    if d.steps is not None:
        assert len(d.steps) == d.counts.size and set(d.steps) <= set(d.step_labels)
    assert len(set(zip(d.prompt_ids, d.steps or [None] * len(d.prompt_ids),
                       strict=True))) == d.counts.size
    if d.texts is not None:
        assert set(d.prompt_ids) <= set(d.texts)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@settings(max_examples=200)
@given(sweep_case())
def test_readers_return_valid_data_or_one_line_value_error(case):
    name, data, options = case
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(data)
        before = _digest(path)
        try:
            result = sweep.read_scores(path, **options)
        except ValueError as err:
            assert "\n" not in str(err), str(err)
        else:
            _check_data(result)
        assert _digest(path) == before


CLI_OPTIONS = st.lists(st.sampled_from([
    ["--json"], ["--clip"], ["--ignore-extra-columns"], ["--thresholds", "soft"],
    ["--id-col", "q"], ["--score-col", "r"], ["--id-from-text", "text"],
    ["--reward-range=-1,1"], ["--fail-under", "0.5"], ["--min-std", "0.2"],
    ["--group-size", "3"], ["--step", "1"], ["--pass-threshold", "0.5"],
    ["--format", "csv"], ["--format", "jsonl"]]), max_size=4)


@settings(max_examples=100)
@given(sweep_case(), CLI_OPTIONS)
def test_cli_exits_0_1_or_2_with_one_line_and_input_unchanged(case, extra):
    name, data, options = case
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(data)
        before = _digest(path)
        out, err = io.StringIO(), io.StringIO()
        argv = ["sweep", str(path), "--out", str(Path(d) / "out"), "--no-plots"]
        for key, value in options.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                argv.append(flag)
            elif isinstance(value, tuple):
                argv.append(f"{flag}={value[0]},{value[1]}")
            elif value is not False:
                argv += [flag, value]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv + [a for opt in extra for a in opt])
        assert code in (0, 1, 2), code
        text = err.getvalue()
        assert "Traceback" not in text
        if code == 2:
            assert text.count("\n") == 1, text
            assert not (Path(d) / "out").exists()  # nothing written on bad input
        assert _digest(path) == before


RESULT_LINE = st.one_of(
    st.fixed_dictionaries({"prompt_id": st.sampled_from([0, 1, "0", 5, None]),
                           "rollout": st.one_of(st.integers(-1, 3), st.just(1.0)),
                           "score": SCALARS}).map(json.dumps),
    JSONL_LINE)


@given(st.lists(RESULT_LINE, max_size=6), st.booleans())
def test_run_sweep_resume_file_is_used_or_refused(lines, torn):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.jsonl"
        text = "\n".join(lines) + ("" if torn else "\n") if lines else ""
        path.write_text(text)
        try:
            res = sweep.run_sweep(lambda s: 0.25, ["a", "b"], k=3, path=path,
                                  progress=False)
        except ValueError as err:
            assert "\n" not in str(err)
        else:
            _check_data(res)
            recs = [json.loads(x) for x in path.read_text().splitlines()
                    if x.strip()]
            keys = [(r["prompt_id"], r["rollout"]) for r in recs]
            assert len(keys) == len(set(keys))  # no rollout recorded twice
            assert {(i, j) for i in (0, 1) for j in range(3)} <= set(keys)
