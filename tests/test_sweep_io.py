"""Tests for the sweep readers and the resumable callable sweep."""

from __future__ import annotations

import hashlib
import io
import json
import random

import numpy as np
import pytest

from vipcore import sweep
from vipcore._src.sweep.io import _group


def _rows(seed=0, n=30, kmax=6, steps=None):
    """Random long-format records: (prompt_id, score, step)."""
    rng = random.Random(seed)
    out = []
    for st in steps or [None]:
        for i in range(n):
            for _ in range(rng.randint(2, kmax)):
                s = rng.choice([0, 1, 0.25, 0.5, 0.75, 1.0, 0.0])
                out.append((f"p{i}", s, st))
    rng.shuffle(out)  # a prompt's rows need not be adjacent
    return out


def _write_jsonl(path, rows, wide=False):
    with open(path, "w") as f:
        if not wide:
            for pid, s, st in rows:
                rec = {"prompt_id": pid, "score": s}
                if st is not None:
                    rec["step"] = st
                f.write(json.dumps(rec) + "\n")
        else:
            for (pid, st), sc in _by_prompt(rows).items():
                rec = {"prompt_id": pid, "scores": sc}
                if st is not None:
                    rec["step"] = st
                f.write(json.dumps(rec) + "\n")


def _write_csv(path, rows, wide=False):
    with open(path, "w") as f:
        has_step = rows[0][2] is not None
        if not wide:
            f.write("prompt_id,score" + (",step" if has_step else "") + "\n")
            for pid, s, st in rows:
                f.write(f"{pid},{s}" + (f",{st}" if has_step else "") + "\n")
        else:
            f.write("prompt_id,scores" + (",step" if has_step else "") + "\n")
            for (pid, st), sc in _by_prompt(rows).items():
                cell = '"[' + ", ".join(map(str, sc)) + ']"'
                f.write(f"{pid},{cell}" + (f",{st}" if has_step else "") + "\n")


def _by_prompt(rows):
    d = {}
    for pid, s, st in rows:
        d.setdefault((pid, st), []).append(s)
    return d


def _as_dict(data):
    out = {}
    starts = np.concatenate([[0], np.cumsum(data.counts)])
    for g, pid in enumerate(data.prompt_ids):
        st = data.steps[g] if data.steps is not None else None
        out[(pid, st)] = sorted(data.scores[starts[g]:starts[g + 1]].tolist())
    return out


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("steps", [None, [0, 50]])
def test_round_trip(tmp_path, fmt, wide, steps):
    rows = _rows(steps=steps)
    path = tmp_path / f"s.{fmt}"
    (_write_jsonl if fmt == "jsonl" else _write_csv)(path, rows, wide=wide)
    data = sweep.read_scores(path)
    want = {k: sorted(float(x) for x in v) for k, v in _by_prompt(rows).items()}
    assert _as_dict(data) == want
    assert data.n_rows == len(rows)
    assert data.step_labels == steps
    assert data.counts.min() >= 1


def test_jsonl_fast_and_line_paths_agree(tmp_path):
    rows = _rows(seed=3)
    path = tmp_path / "s.jsonl"
    _write_jsonl(path, rows)
    fast = sweep.read_scores(path)
    # a blank line in the middle makes the fast path give up
    text = path.read_text().splitlines(keepends=True)
    text.insert(5, "\n")
    path2 = tmp_path / "blank.jsonl"
    path2.write_text("".join(text))
    slow = sweep.read_scores(path2)
    assert fast.prompt_ids == slow.prompt_ids
    np.testing.assert_array_equal(fast.scores, slow.scores)
    np.testing.assert_array_equal(fast.counts, slow.counts)


def test_step_order(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("prompt_id,score,step\na,1,200\na,0,200\na,1,30\na,0,30\n")
    d = sweep.read_scores(p)
    assert d.step_labels == [30, 200]  # numeric, not lexicographic
    p.write_text("prompt_id,score,step\na,1,late\na,0,late\na,1,early\na,0,early\n")
    assert sweep.read_scores(p).step_labels == ["late", "early"]  # first seen
    ids, sc, c = sweep.select_step(sweep.read_scores(p), "early")
    assert ids == ["a"] and c.tolist() == [2]
    with pytest.raises(ValueError, match="step 'x' not in"):
        sweep.select_step(sweep.read_scores(p), "x")


def test_json_ids_keep_type(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text('{"prompt_id": 7, "score": 1}\n{"prompt_id": 8, "score": 0}\n'
                 '{"prompt_id": 7, "score": 0}\n')
    d = sweep.read_scores(p)
    assert d.prompt_ids == [7, 8] and type(d.prompt_ids[0]) is int
    assert d.counts.tolist() == [2, 1]
    # 7 and "7" would be one prompt to any text tool: refused, both lines named
    p.write_text('{"prompt_id": 7, "score": 1}\n{"prompt_id": "7", "score": 0}\n')
    with pytest.raises(ValueError, match=r"prompt_id 7 \(.*s\.jsonl:1\) and '7' "
                       r"\(.*s\.jsonl:2\) differ only in type"):
        sweep.read_scores(p)


# ---------------------------------------------------------------------------
# bad input: file, line and what is wrong


JSONL_ERRORS = [
    ('{"prompt_id": "a", "score": 1}\n{"prompt_id": "a", "score": 1\n',
     r"s\.jsonl:2: invalid JSON"),
    ('{"prompt_id": "a", "score": 1}\n[1, 2]\n', r":2: expected a JSON object"),
    ('{"prompt_id": "a", "score": 1}\n{"prompt_id": "a"}\n',
     r":2: missing 'score'"),
    ('{"prompt_id": "a", "score": 1}\n{"prompt_id": "a", "score": "x"}\n',
     r":2: score 'x' is not a number"),
    ('{"prompt_id": "a", "score": "1"}\n', r":1: score '1' is not a number"),
    ('{"prompt_id": "a", "score": 1}\n\n{"prompt_id": "a", "score": 1.5}\n',
     r":3: score 1.5 is outside \[0, 1\].*--clip"),
    ('{"prompt_id": "a", "score": NaN}\n', r":1: score nan is NaN"),
    ('{"prompt_id": null, "score": 1}\n', r":1: prompt_id must be a string"),
    ('{"prompt_id": "a", "score": 1, "text": "hi"}\n', r"unknown column\(s\) 'text'"),
    ('{"prompt_id": "a", "score": 1}\n{"prompt_id": "a", "score": 1, "x": 2}\n',
     r":2: unknown column\(s\) 'x'"),
    ('{"id": "a", "score": 1}\n', r"missing column 'prompt_id'"),
    ('{"prompt_id": "a", "value": 1}\n', r"missing column 'score' .* 'scores'"),
    ('{"prompt_id": "a", "scores": []}\n', r":1: 'scores' is empty"),
    ('{"prompt_id": "a", "scores": [1, 2]}\n', r":1: score 2 is outside"),
    ('{"prompt_id": "a", "score": 1, "step": 1}\n{"prompt_id": "a", "score": 1}\n',
     r":2: missing 'step'"),
    ("", r"empty file"),
    ("\n\n", r"empty file"),
]


@pytest.mark.parametrize("text, match", JSONL_ERRORS)
def test_jsonl_errors(tmp_path, text, match):
    p = tmp_path / "s.jsonl"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        sweep.read_scores(p)


CSV_ERRORS = [
    ("prompt_id,score\na,1\nb\n", r"s\.csv:3: expected 2 fields"),
    ("prompt_id,score\na,1\nb,high\n", r":3: score 'high' is not a number"),
    ("prompt_id,score\na,1\nb,-0.5\n", r":3: score -0.5 is outside"),
    ("prompt_id,score\na,nan\n", r":2: score nan is NaN"),
    ("prompt_id,score\n,1\n", r":2: empty prompt_id"),
    ("prompt_id,score,comment\na,1,ok\n", r"unknown column\(s\) 'comment'"),
    ("prompt,score\na,1\n", r"missing column 'prompt_id'"),
    ("prompt_id,reward\na,1\n", r"missing column 'score'.*found: prompt_id, reward"),
    ("prompt_id,score,scores\na,1,1\n", r"both 'score' and 'scores'"),
    ("prompt_id,scores\na,\n", r":2: 'scores' is empty"),
    ("prompt_id,scores\na,\"[1, x]\"\n", r":2: score 'x' is not a number"),
    ("prompt_id,score\n", r"no data rows"),
    ("", r"empty file"),
]


@pytest.mark.parametrize("text, match", CSV_ERRORS)
def test_csv_errors(tmp_path, text, match):
    p = tmp_path / "s.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        sweep.read_scores(p)


def test_missing_file_and_format(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        sweep.read_scores(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="format must be"):
        p = tmp_path / "a.csv"
        p.write_text("prompt_id,score\na,1\n")
        sweep.read_scores(p, fmt="xlsx")


def test_format_sniffing(tmp_path):
    p = tmp_path / "scores.txt"
    p.write_text('{"prompt_id": "a", "score": 1}\n{"prompt_id": "a", "score": 0}\n')
    assert sweep.read_scores(p).counts.tolist() == [2]
    p.write_text("prompt_id,score\na,1\na,0\n")
    assert sweep.read_scores(p).counts.tolist() == [2]


def test_byte_order_mark(tmp_path):
    p = tmp_path / "s.csv"
    p.write_bytes(b"\xef\xbb\xbfprompt_id,score\na,1\na,0\n")
    assert sweep.read_scores(p).counts.tolist() == [2]
    pj = tmp_path / "s.jsonl"
    pj.write_bytes(b'\xef\xbb\xbf{"prompt_id": "a", "score": 1}\n')
    assert sweep.read_scores(pj).counts.tolist() == [1]
    # a blank line in the middle: the per-line reader handles the mark too
    pj.write_bytes(b'\xef\xbb\xbf{"prompt_id": "a", "score": 1}\n\n'
                   b'{"prompt_id": "a", "score": 0}\n')
    assert sweep.read_scores(pj).counts.tolist() == [2]


def test_clip_counts_and_reports(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("prompt_id,score\na,1.2\na,0.5\nb,-3\nb,0\n")
    d = sweep.read_scores(p, clip=True)
    assert d.n_clipped == 2
    assert sorted(d.scores.tolist()) == [0.0, 0.0, 0.5, 1.0]
    pj = tmp_path / "s.jsonl"
    pj.write_text('{"prompt_id": "a", "scores": [1.2, 0.5, -1]}\n')
    assert sweep.read_scores(pj, clip=True).n_clipped == 2
    pj.write_text('{"prompt_id": "a", "score": NaN}\n')
    with pytest.raises(ValueError, match="NaN"):
        sweep.read_scores(pj, clip=True)  # NaN is never clipped


def test_ignore_extra_columns(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("prompt_id,score,completion\na,1,hello\na,0,bye\n")
    d = sweep.read_scores(p, ignore_extra_columns=True)
    assert d.counts.tolist() == [2]
    pj = tmp_path / "s.jsonl"
    pj.write_text('{"prompt_id": "a", "score": 1, "text": "x"}\n')
    assert sweep.read_scores(pj, ignore_extra_columns=True).counts.tolist() == [1]


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        p = tmp_path / "s.parquet"
        p.write_bytes(b"PAR1 not really")
        with pytest.raises(ValueError, match="needs pyarrow"):
            sweep.read_scores(p)
    else:
        pytest.skip("pyarrow installed; see test_parquet_round_trip")


def test_parquet_round_trip(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    p = tmp_path / "s.parquet"
    pq.write_table(pa.table({"prompt_id": ["a", "a", "b", "b"],
                             "score": [1.0, 0.0, 1.0, 1.0]}), p)
    d = sweep.read_scores(p)
    assert d.prompt_ids == ["a", "b"] and d.counts.tolist() == [2, 2]
    pq.write_table(pa.table({"prompt_id": ["a", "b"],
                             "scores": [[1.0, 0.0], [1.0, 2.0]]}), p)
    with pytest.raises(ValueError, match=r"row 1: score 2.0 is outside"):
        sweep.read_scores(p)


def test_input_never_modified(tmp_path):
    p = tmp_path / "s.jsonl"
    _write_jsonl(p, _rows())
    before = hashlib.sha256(p.read_bytes()).hexdigest()
    sweep.read_scores(p)
    sweep.read_scores(p, clip=True)
    assert hashlib.sha256(p.read_bytes()).hexdigest() == before


def test_group_orders_by_first_appearance():
    d = _group("x", ["b", "a", "b", "c", "a"], [1, 0, 0, 1, 1], None, False)
    assert d.prompt_ids == ["b", "a", "c"]
    assert d.counts.tolist() == [2, 2, 1]
    assert d.scores.tolist() == [1.0, 0.0, 0.0, 1.0, 1.0]


# ---------------------------------------------------------------------------
# run_sweep: resumable callable sweep


class Boom(RuntimeError):
    pass


def test_run_sweep_resumes_without_repaying(tmp_path):
    samples = [f"question {i}" for i in range(7)]
    k = 5
    calls = []

    def evaluate(sample, fail_at=None):
        calls.append(sample)
        if fail_at is not None and len(calls) == fail_at:
            raise Boom
        # deterministic score per (sample, attempt) so results are checkable
        return float((len(sample) + sum(c == sample for c in calls)) % 2)

    path = tmp_path / "results.jsonl"
    with pytest.raises(Boom):
        sweep.run_sweep(lambda s: evaluate(s, fail_at=18), samples, k=k, path=path,
                        progress=False)
    assert len(calls) == 18
    assert len(path.read_text().splitlines()) == 17  # the failing call wrote nothing
    err = io.StringIO()
    data = sweep.run_sweep(evaluate, samples, k=k, path=path, stream=err)
    assert len(calls) == len(samples) * k + 1  # only the failed one is repaid
    assert "resuming, 17/35" in err.getvalue()
    assert "35/35" in err.getvalue()  # the progress bar reached the end
    assert data.prompt_ids == list(range(7))
    assert data.counts.tolist() == [k] * 7
    # a third call has nothing left to do
    sweep.run_sweep(evaluate, samples, k=k, path=path, progress=False)
    assert len(calls) == len(samples) * k + 1
    # the results file is a valid sweep file for the reader and the CLI
    again = sweep.read_scores(path)
    np.testing.assert_array_equal(again.scores, data.scores)


def test_run_sweep_drops_torn_last_line_and_checks_ids(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"prompt_id": "a", "rollout": 0, "score": 1.0}\n'
                    '{"prompt_id": "a", "rollout": 1, "sc')
    n = []
    data = sweep.run_sweep(lambda s: n.append(s) or 0.0, ["x"], ids=["a"], k=3,
                           path=path, progress=False)
    assert len(n) == 2 and data.scores.tolist() == [1.0, 0.0, 0.0]
    assert all(json.loads(line) for line in path.read_text().splitlines())
    with pytest.raises(ValueError, match="'a' is not among the samples"):
        sweep.run_sweep(lambda s: 0.0, ["x"], ids=["b"], k=3, path=path,
                        progress=False)


def test_run_sweep_bad_scores_and_args(tmp_path):
    path = tmp_path / "r.jsonl"
    with pytest.raises(ValueError, match=r"evaluate returned 2 for sample 0"):
        sweep.run_sweep(lambda s: 2, [1], k=2, path=path, progress=False)
    with pytest.raises(ValueError, match="evaluate returned 'x'"):
        sweep.run_sweep(lambda s: "x", [1], k=2, path=path, progress=False)
    assert path.read_text() == ""
    with pytest.raises(ValueError, match="k must be"):
        sweep.run_sweep(lambda s: 0, [1], k=0, path=path)
    with pytest.raises(ValueError, match="unique"):
        sweep.run_sweep(lambda s: 0, [1, 2], ids=["a", "a"], k=1, path=path)
    d = sweep.run_sweep(lambda s: s > 1, [1, 2], k=2, path=path, progress=False,
                        ids=np.arange(2))
    assert d.scores.tolist() == [0.0, 0.0, 1.0, 1.0]  # booleans are pass/fail
    assert d.prompt_ids == [0, 1] and type(d.prompt_ids[0]) is int


def test_demo_data_is_seeded():
    a, b = sweep.demo_data(seed=1), sweep.demo_data(seed=1)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert not np.array_equal(a.scores, sweep.demo_data(seed=2).scores)
    assert a.step_labels == [0, 100, 200]
