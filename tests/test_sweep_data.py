"""Practitioners' data: column mapping, recipes on the example files, ids from
text, booleans, reward ranges, in-memory tables, the per-prompt table with
its posterior p_hat, and graded rewards."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from vipcore import sweep
from vipcore._src.apps.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"


def _by_id(data) -> dict:
    starts = np.concatenate([[0], np.cumsum(data.counts)])
    return {(pid, None if data.steps is None else data.steps[g]):
            sorted(data.scores[starts[g]:starts[g + 1]].tolist())
            for g, pid in enumerate(data.prompt_ids)}


def _json_rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


# ---------------------------------------------------------------------------
# recipes: each runs on its committed example file, checked against the file


def test_recipe_trl_completion_log():
    path = EXAMPLES / "trl_completions.jsonl"
    rows = _json_rows(path)
    assert set(rows[0]) == {"step", "prompt", "completion", "accuracy_reward",
                            "format_reward", "reward", "advantage"}
    data = sweep.read_scores(path, id_from_text="prompt", score_col="accuracy_reward")
    want: dict = {}
    for r in rows:
        want.setdefault((sweep.text_id(r["prompt"]), r["step"]), []).append(
            r["accuracy_reward"])
    assert _by_id(data) == {k: sorted(v) for k, v in want.items()}
    assert data.step_labels == [10, 20]
    assert {data.texts[pid] for pid in data.prompt_ids} == {r["prompt"] for r in rows}


def test_recipe_trl_cli_writes_text_and_ids(tmp_path, capsys):
    path = EXAMPLES / "trl_completions.jsonl"
    out = tmp_path / "o"
    assert main(["sweep", str(path), "--id-from-text", "prompt", "--score-col",
                 "accuracy_reward", "--out", str(out), "--no-plots", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    prompts = _json_rows(out / "prompts.jsonl")
    assert len(prompts) == summary["report"]["n_prompts"] == 6
    assert all(p["prompt_id"] == sweep.text_id(p["text"]) for p in prompts)
    assert summary["input"]["columns"] == {"id": None, "score": "accuracy_reward",
                                           "step": "step", "text": "prompt"}


def test_recipe_verl_dump_both_columns_agree():
    """``acc`` (booleans) and ``score`` (-1/+1, rescaled) give the same data."""
    path = EXAMPLES / "verl_val_generations.jsonl"
    rows = _json_rows(path)
    assert set(rows[0]) == {"input", "output", "gts", "score", "step", "acc"}
    a = sweep.read_scores(path, id_from_text="input", score_col="acc")
    b = sweep.read_scores(path, id_from_text="input", score_col="score",
                          reward_range=(-1, 1))
    assert _by_id(a) == _by_id(b)
    want: dict = {}
    for r in rows:
        want.setdefault((sweep.text_id(r["input"]), 150), []).append(float(r["acc"]))
    assert _by_id(a) == {k: sorted(v) for k, v in want.items()}
    assert b.reward_range == (-1.0, 1.0) and a.reward_range is None


def test_recipe_verl_cli_reports_the_rescaling(capsys):
    path = EXAMPLES / "verl_val_generations.jsonl"
    assert main(["sweep", str(path), "--id-from-text", "input", "--score-col",
                 "score", "--reward-range=-1,1", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["input"]["reward_range"] == [-1.0, 1.0]
    assert s["input"]["rescaling"] == "score = (reward + 1) / 2"
    assert main(["sweep", str(path), "--id-from-text", "input", "--score-col",
                 "score", "--reward-range=-1,1"]) == 0
    assert "rewards rescaled from [-1, 1] to [0, 1]" in capsys.readouterr().out


def test_recipe_plain_csv():
    path = EXAMPLES / "rollouts.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["question_id", "sample_idx", "reward"]
    data = sweep.read_scores(path, id_col="question_id", score_col="reward")
    want: dict = {}
    for r in rows:
        want.setdefault((r["question_id"], None), []).append(float(r["reward"]))
    assert _by_id(data) == {k: sorted(v) for k, v in want.items()}


def test_example_files_are_what_the_script_writes(tmp_path, monkeypatch):
    """The committed files are reproducible from ``make_examples.py``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mk", EXAMPLES / "make_examples.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    monkeypatch.setattr(mk, "HERE", tmp_path)
    mk.main()
    for name in ("trl_completions.jsonl", "verl_val_generations.jsonl",
                 "rollouts.csv", "graded.jsonl"):
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), name


# ---------------------------------------------------------------------------
# column mapping and ids


def test_mapping_errors_name_the_option_and_columns(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("question_id,sample_idx,reward\nq1,0,1\n")
    with pytest.raises(ValueError, match=r"missing column 'prompt_id'.*found: "
                       r"question_id, sample_idx, reward.*--id-col"):
        sweep.read_scores(p)
    with pytest.raises(ValueError, match=r"missing column 'score'.*--score-col"):
        sweep.read_scores(p, id_col="question_id")
    with pytest.raises(ValueError, match=r"missing column 'rewrd'"):
        sweep.read_scores(p, id_col="question_id", score_col="rewrd")
    with pytest.raises(ValueError, match="not both"):
        sweep.read_scores(p, id_col="question_id", id_from_text="question_id",
                          score_col="reward")
    with pytest.raises(ValueError, match="score_col must be a non-empty"):
        sweep.read_scores(p, id_col="question_id", score_col=" ")
    # a named mapping ignores the other columns (here sample_idx)
    d = sweep.read_scores(p, id_col="question_id", score_col="reward")
    assert d.prompt_ids == ["q1"] and d.scores.tolist() == [1.0]


def test_step_col_and_text_col(tmp_path):
    p = tmp_path / "r.jsonl"
    rows = [{"qid": "a", "r": 1, "ckpt": 200, "q": "A?"},
            {"qid": "a", "r": 0, "ckpt": 30, "q": "A?"},
            {"qid": "b", "r": 1, "ckpt": 30, "q": "B?"}]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    d = sweep.read_scores(p, id_col="qid", score_col="r", step_col="ckpt",
                          text_col="q")
    assert d.step_labels == [30, 200]
    assert d.texts == {"a": "A?", "b": "B?"}
    rows[2]["q"] = "A?"
    rows[1]["q"] = "other"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match=r"r\.jsonl:2: prompt id 'a' has a "
                       r"different text than at .*r\.jsonl:1"):
        sweep.read_scores(p, id_col="qid", score_col="r", text_col="q")


def test_text_id_is_a_stable_sha256_prefix():
    for text in ("What is 2 + 2?", "é\n  x", "漢字"):
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        assert sweep.text_id(text) == "t" + digest[:16]
    assert sweep.text_id("a") != sweep.text_id("a ")  # exact text, no stripping


def test_ids_from_text_group_exactly(tmp_path):
    p = tmp_path / "r.jsonl"
    texts = ["Q one", "Q one", "Q one ", "Q two"]
    p.write_text("".join(json.dumps({"prompt": t, "acc": i % 2 == 0}) + "\n"
                         for i, t in enumerate(texts)))
    d = sweep.read_scores(p, id_from_text="prompt", score_col="acc")
    assert d.counts.tolist() == [2, 1, 1]
    assert [d.texts[i] for i in d.prompt_ids] == ["Q one", "Q one ", "Q two"]
    p.write_text('{"prompt": "", "acc": true}\n')
    with pytest.raises(ValueError, match=r":1: prompt text \('prompt'\) must be a "
                       "non-empty string"):
        sweep.read_scores(p, id_from_text="prompt", score_col="acc")


# ---------------------------------------------------------------------------
# booleans and reward ranges


def test_booleans_are_pass_fail(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"prompt_id": "a", "score": true}\n'
                 '{"prompt_id": "a", "score": false}\n'
                 '{"prompt_id": "a", "score": [true, 1, 0.5]}\n')
    assert sorted(sweep.read_scores(p).scores.tolist()) == [0.0, 0.5, 1.0, 1.0, 1.0]
    c = tmp_path / "r.csv"
    c.write_text("prompt_id,score\na,True\na,false\na,TRUE\nb,\"[true, 0]\"\n")
    assert _by_id(sweep.read_scores(c)) == {("a", None): [0.0, 1.0, 1.0],
                                            ("b", None): [0.0, 1.0]}


@pytest.mark.parametrize("lo, hi", [(-1, 1), (0, 10), (-5, -1), (0.25, 0.75)])
def test_reward_range_rescales_exactly(tmp_path, lo, hi):
    rng = np.random.default_rng(3)
    raw = np.concatenate([[lo, hi], rng.uniform(lo, hi, 50)])
    p = tmp_path / "r.jsonl"
    p.write_text("".join(json.dumps({"prompt_id": f"q{i % 7}", "score": float(v)})
                         + "\n" for i, v in enumerate(raw)))
    d = sweep.read_scores(p, reward_range=(lo, hi))
    got = np.sort(d.scores)
    np.testing.assert_allclose(got, np.sort((raw - lo) / (hi - lo)), rtol=0,
                               atol=1e-15)
    assert got[0] == 0.0 and got[-1] == 1.0  # the ends map exactly


def test_reward_range_errors_and_clip(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"prompt_id": "a", "score": 1}\n{"prompt_id": "a", "score": 3}\n')
    with pytest.raises(ValueError, match=r":2: score 3 is outside the reward range "
                       r"\[-1, 1\]"):
        sweep.read_scores(p, reward_range=(-1, 1))
    d = sweep.read_scores(p, reward_range=(-1, 1), clip=True)
    assert d.n_clipped == 1 and d.scores.tolist() == [1.0, 1.0]
    for bad in [(1, 1), (2, 1), (0, float("inf")), (float("nan"), 1), ("a", 1), (1,)]:
        with pytest.raises(ValueError, match="reward_range"):
            sweep.read_scores(p, reward_range=bad)
    p.write_text('{"prompt_id": "a", "score": true}\n')
    with pytest.raises(ValueError, match=r":1: score True is a boolean"):
        sweep.read_scores(p, reward_range=(-1, 1))


def test_pm1_without_range_points_to_the_option(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"prompt_id": "a", "score": -1}\n')
    with pytest.raises(ValueError, match=r"outside \[0, 1\] .*--reward-range=LO,HI"):
        sweep.read_scores(p)


# ---------------------------------------------------------------------------
# nothing silently altered (issue: readers that changed input)


SILENT = [
    ('{"prompt_id": "a", "score": 1, "step": 1}\n'
     '{"prompt_id": "a", "score": 0, "step": "1"}\n', "jsonl",
     r"step 1 \(.*:1\) and '1' \(.*:2\) differ only in type"),
    ('{"prompt_id": "a", "scores": [1\n, 0]}\n{"prompt_id": "b", "score": 1}, '
     '{"prompt_id": "c", "score": 1}\n', "jsonl", r":1: invalid JSON"),
    ('{"prompt_id": "a", "score": 1}{"prompt_id": "b", "score": 0}\n', "jsonl",
     r":1: invalid JSON"),
    ('{"prompt_id": "a", "score": 1, "score": 0}\n', "jsonl",
     r":1: duplicate key 'score'"),
    ('{"prompt_id": "a", "score": 0}\n{"prompt_id": "b", "sc\\u006fre": 1, '
     '"score": 0}\n', "jsonl", r":2: duplicate key 'score'"),
    ('{"prompt_id": "x\\"", "score": 0, "prompt_id": "y"}\n', "jsonl",
     r":1: duplicate key 'prompt_id'"),
    ('prompt_id,scores\na,"[1, , 0]"\n', "csv", r":2: score list .*empty element"),
    ('prompt_id,scores\na,"1;;0"\n', "csv", r":2: score list .*empty element"),
    ("prompt_id,score\n q1,1\nq1 ,0\n", "csv", r":2: prompt_id ' q1' has spaces"),
    ('{"prompt_id": "q1 ", "score": 1}\n', "jsonl", r":1: prompt_id 'q1 ' has spaces"),
    ("prompt_id,score,step\na,1, 1\n", "csv", r":2: step ' 1' has spaces"),
    ("prompt_id,score\na,\uff11\n", "csv", r":2: score '\uff11' is not a number"),
    ("prompt_id,score\na,0_1\n", "csv", r":2: score '0_1' is not a number"),
    ('{"prompt_id": "a", "score": ' + "1" * 400 + "}\n", "jsonl",
     r":1: score 1111.*\.\.\. is outside"),
    ('{"prompt_id": "a", "score": null}\n', "jsonl", r":1: score None is not a number"),
]


@pytest.mark.parametrize("text, fmt, match", SILENT)
def test_readers_never_alter_input_silently(tmp_path, text, fmt, match):
    p = tmp_path / f"s.{fmt}"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        sweep.read_scores(p)


def test_duplicate_check_agrees_with_a_hooked_parse(tmp_path):
    """Randomised: the counting check finds exactly the lines a full
    ``object_pairs_hook`` parse finds (values may contain the key names)."""
    rng = np.random.default_rng(0)
    pieces = ['"prompt_id": "a"', '"score": 1', '"text": "score"',
              '"text": "say \\"score\\""', '"sc\\u006fre": 0', '"score": 0']
    for trial in range(200):
        lines, dup_lines = [], []
        for i in range(int(rng.integers(1, 6))):
            keys = ['"prompt_id": "a"', '"score": 1'] + [
                pieces[j] for j in rng.integers(2, 6, int(rng.integers(0, 3)))]
            line = "{" + ", ".join(keys) + "}"
            pairs = json.loads(line, object_pairs_hook=lambda p: p)
            names = [k for k, _ in pairs]
            if len(set(names)) != len(names):
                dup_lines.append(i + 1)
            lines.append(line)
        p = tmp_path / f"t{trial}.jsonl"
        p.write_text("\n".join(lines) + "\n")
        if dup_lines:
            with pytest.raises(ValueError, match=rf":{dup_lines[0]}: duplicate key"):
                sweep.read_scores(p, ignore_extra_columns=True)
        else:
            sweep.read_scores(p, ignore_extra_columns=True)


def test_invalid_utf8_names_file_and_line(tmp_path):
    for name, good in (("s.jsonl", b'{"prompt_id": "a", "score": 1}\n'),
                       ("s.csv", b"prompt_id,score\na,1\n")):
        p = tmp_path / name
        p.write_bytes(good + b"\xff\xfe,1\n")
        with pytest.raises(ValueError, match=rf"{name}: line [23], column 1: not "
                           "valid UTF-8"):
            sweep.read_scores(p)


def test_csv_field_over_the_limit_is_a_value_error(tmp_path):
    limit = csv.field_size_limit()
    p = tmp_path / "s.csv"
    p.write_text("prompt_id,score,text\na,1,x\nb,0," + "y" * (limit + 10) + "\n")
    with pytest.raises(ValueError, match=r"s\.csv:3: cannot parse CSV .*field_size"):
        sweep.read_scores(p, ignore_extra_columns=True)
    assert csv.field_size_limit() == limit


def test_cli_reads_long_csv_fields_and_restores_the_limit(tmp_path, capsys):
    limit = csv.field_size_limit()
    p = tmp_path / "s.csv"
    p.write_text("question,acc\n" + "y" * (limit + 10) + ",1\n" + "z,0\n")
    assert main(["sweep", str(p), "--id-from-text", "question", "--score-col", "acc",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["report"]["n_prompts"] == 2
    assert csv.field_size_limit() == limit


# ---------------------------------------------------------------------------
# in-memory tables, Parquet and Arrow


def test_from_table_records_and_columns():
    recs = [{"q": "A", "acc": True, "step": 1}, {"q": "A", "acc": False, "step": 1},
            {"q": "B", "acc": np.True_, "step": 1}]
    d = sweep.from_table(recs, id_from_text="q", score_col="acc")
    assert d.counts.tolist() == [2, 1] and d.source == "list"
    cols = {"qid": np.array([3, 3, 4]), "r": np.array([0.0, 1.0, 1.0])}
    d = sweep.from_table(cols, id_col="qid", score_col="r", source="mine")
    assert d.prompt_ids == [3, 4] and type(d.prompt_ids[0]) is int
    with pytest.raises(ValueError, match=r"mine: row 1: score 2.0 is outside"):
        sweep.from_table({"qid": [1, 2], "r": [0.5, 2.0]}, id_col="qid",
                         score_col="r", source="mine")
    with pytest.raises(ValueError, match="columns differ in length"):
        sweep.from_table({"a": [1], "b": [1, 2]})
    with pytest.raises(ValueError, match="cannot read"):
        sweep.from_table(42)


def test_hugging_face_dataset():
    datasets = pytest.importorskip("datasets")
    rows = _json_rows(EXAMPLES / "verl_val_generations.jsonl")
    ds = datasets.Dataset.from_list(rows)
    d = sweep.from_table(ds, id_from_text="input", score_col="acc")
    ref = sweep.read_scores(EXAMPLES / "verl_val_generations.jsonl",
                            id_from_text="input", score_col="acc")
    assert _by_id(d) == _by_id(ref)
    sub = ds.select([0, 1, 2])  # an index mapping over the same Arrow table
    assert sweep.from_table(sub, id_from_text="input", score_col="acc").n_rows == 3
    with pytest.raises(ValueError, match="several splits"):
        sweep.from_table(datasets.DatasetDict({"train": ds}))


def test_parquet_and_arrow_files(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow.feather as feather

    table = pa.table({"question_id": ["a", "a", "b"], "reward": [-1.0, 1.0, 1.0]})
    paths = [tmp_path / "s.parquet", tmp_path / "s.feather", tmp_path / "s.arrow"]
    pq.write_table(table, paths[0])
    feather.write_feather(table, paths[1])
    with pa.OSFile(str(paths[2]), "wb") as sink, pa.ipc.new_stream(
            sink, table.schema) as writer:  # the stream format datasets writes
        writer.write_table(table)
    for p in paths:
        d = sweep.read_scores(p, id_col="question_id", score_col="reward",
                              reward_range=(-1, 1))
        assert _by_id(d) == {("a", None): [0.0, 1.0], ("b", None): [1.0]}, p
    with pytest.raises(ValueError, match=r"s\.parquet: row 0: score -1.0 is outside"):
        sweep.read_scores(paths[0], id_col="question_id", score_col="reward")


def test_arrow_without_pyarrow_is_a_clear_error(tmp_path):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        p = tmp_path / "s.arrow"
        p.write_bytes(b"ARROW1 not really")
        with pytest.raises(ValueError, match="needs pyarrow"):
            sweep.read_scores(p)
    else:
        pytest.skip("pyarrow installed; see test_parquet_and_arrow_files")


# ---------------------------------------------------------------------------
# the per-prompt table and its posterior


def test_posterior_matches_scipy():
    rng = np.random.default_rng(1)
    n = rng.integers(1, 200, 300).astype(float)
    s = np.round(rng.random(300) * n, 3)
    s[:5], s[5:10] = 0, n[5:10]
    for level, prior in ((0.95, (0.5, 0.5)), (0.8, (1.0, 1.0)), (0.99, (2.0, 0.5))):
        post = sweep.posterior_p(s, n, level=level, prior=prior)
        a, b = s + prior[0], n - s + prior[1]
        np.testing.assert_allclose(post.p_hat, a / (a + b), rtol=1e-14)
        tail = (1 - level) / 2
        lo = np.where(s == 0, 0.0, stats.beta.ppf(tail, a, b))
        hi = np.where(s == n, 1.0, stats.beta.ppf(1 - tail, a, b))
        np.testing.assert_allclose(post.p_lo, lo, rtol=1e-9, atol=1e-300)
        np.testing.assert_allclose(post.p_hi, hi, rtol=1e-9)


def test_beta_cdf_and_ppf_against_scipy():
    from vipcore._src.sweep.posterior import beta_cdf, beta_ppf

    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.2, 500, 500), rng.uniform(0.2, 500, 500)
    x, q = rng.random(500), rng.random(500)
    np.testing.assert_allclose(beta_cdf(x, a, b), stats.beta.cdf(x, a, b),
                               rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(beta_ppf(q, a, b), stats.beta.ppf(q, a, b), rtol=1e-9)
    for qq in (1e-12, 0.025, 0.975, 1 - 1e-9):
        for aa, bb in ((0.5, 16.5), (16.5, 0.5), (0.5, 0.5), (300.5, 3.5)):
            assert beta_ppf(qq, aa, bb) == pytest.approx(
                stats.beta.ppf(qq, aa, bb), rel=1e-9)
    assert beta_ppf(0.3, 2.0, 3.0).shape == ()


def test_posterior_argument_errors():
    with pytest.raises(ValueError, match="level"):
        sweep.posterior_p([1], [2], level=1.0)
    with pytest.raises(ValueError, match="prior"):
        sweep.posterior_p([1], [2], prior=(0, 1))
    with pytest.raises(ValueError, match="successes <= n"):
        sweep.posterior_p([3], [2])
    with pytest.raises(ValueError, match="1-D of equal length"):
        sweep.posterior_p([1, 2], [2])


def test_prompt_table_rows():
    scores = [[0, 0, 0, 0], [1, 0, 1, 1], [1, 1, 1, 1], [0.5, 0.5, 0.5, 0.5], [1]]
    rep = sweep.analyze(scores)
    rows = sweep.prompt_table(["a", "b", "c", "d", "e"], rep, step=7,
                              texts={"a": "A?"})
    assert [r["bucket"] for r in rows] == ["unlearnable", "signal", "trivial",
                                           "flat", "single"]
    assert [r["k"] for r in rows] == [4, 4, 4, 4, 1] and rows[0]["step"] == 7
    assert rows[0]["text"] == "A?" and rows[1]["text"] is None
    succ = np.array([0, 3, 4, 2, 1.0])
    n = np.array([4, 4, 4, 4, 1.0])
    np.testing.assert_allclose([r["p_hat"] for r in rows], (succ + 0.5) / (n + 1))
    assert rows[0]["p_lo"] == 0.0 and rows[2]["p_hi"] == 1.0
    for r in rows:
        assert 0 <= r["p_lo"] <= r["p_hat"] <= r["p_hi"] <= 1
        assert set(r) >= {"prompt_id", "k", "mean", "std", "best", "bucket",
                          "p_hat", "p_lo", "p_hi"}


def test_prompt_table_rounds_binary_successes():
    """1/49 * 49 is not 1 in floating point; the table still sees 1 success
    (else the Jeffreys convention p_lo = 0 at s = 0 would be applied wrong)."""
    rep = sweep.analyze([[1] + [0] * 48])
    row = sweep.prompt_table(["a"], rep)[0]
    assert row["p_hat"] == pytest.approx(1.5 / 50, rel=1e-15)
    assert row["p_lo"] == pytest.approx(stats.beta.ppf(0.025, 1.5, 48.5), rel=1e-9)


def test_prompts_csv_and_jsonl_agree(tmp_path, capsys):
    src = EXAMPLES / "rollouts.csv"
    args = ["sweep", str(src), "--id-col", "question_id", "--score-col", "reward",
            "--json"]
    assert main(args + ["--prompts", str(tmp_path / "p.csv")]) == 0
    assert main(args + ["--prompts", str(tmp_path / "p.jsonl")]) == 0
    capsys.readouterr()
    with open(tmp_path / "p.csv", newline="") as f:
        from_csv = list(csv.DictReader(f))
    from_jsonl = _json_rows(tmp_path / "p.jsonl")
    assert [r["prompt_id"] for r in from_csv] == [r["prompt_id"] for r in from_jsonl]
    for a, b in zip(from_csv, from_jsonl, strict=True):
        assert float(a["p_hat"]) == b["p_hat"] and a["bucket"] == b["bucket"]
    with pytest.raises(SystemExit) as exit_:
        main(args + ["--prompts", str(tmp_path / "p.txt")])
    assert exit_.value.code == 2
    assert "argument --prompts: expected a file name ending in .jsonl or .csv" in (
        capsys.readouterr().err)


# ---------------------------------------------------------------------------
# graded rewards


def test_graded_example_flat_prompts_are_not_signal():
    d = sweep.read_scores(EXAMPLES / "graded.jsonl")
    rep = sweep.analyze(d.scores, counts=d.counts)
    assert rep.settings["graded"] and rep.settings["min_std"] == 0.1
    m = rep.metrics
    flat = rep.buckets == sweep.BUCKETS.index("flat")
    np.testing.assert_array_equal(flat, (m.std < 0.1) & (m.mean > 0) & (m.mean < 1))
    assert 0 < flat.sum() < flat.size
    assert any("barely vary" in msg for msg in rep.advice.messages)
    loose = sweep.analyze(d.scores, counts=d.counts, min_std=0.0)
    assert loose.counts["signal"] == flat.size  # the old rule: all 50 "signal"


def test_min_std_never_changes_binary_buckets():
    rng = np.random.default_rng(4)
    for k in (2, 16, 200):
        s = (rng.random((300, k)) < rng.random(300)[:, None]).astype(float)
        auto = sweep.analyze(s)
        assert not auto.settings["graded"] and auto.settings["min_std"] == 0
        m = sweep.prompt_metrics(s)
        np.testing.assert_array_equal(auto.buckets, sweep.assign_buckets(m))


def test_min_std_only_moves_signal_to_flat():
    rng = np.random.default_rng(5)
    g = np.clip(rng.random(400)[:, None] + rng.normal(0, 0.1, (400, 8)), 0, 1)
    m = sweep.prompt_metrics(g)
    base = sweep.assign_buckets(m)
    for t in (0.05, 0.1, 0.2, 0.5):
        b = sweep.assign_buckets(m, min_std=t)
        moved = b != base
        assert np.all(base[moved] == sweep.BUCKETS.index("signal"))
        assert np.all(b[moved] == sweep.BUCKETS.index("flat"))
        np.testing.assert_array_equal(moved, (base == 1) & (m.std < t))
    assert sweep.assign_buckets(sweep.prompt_metrics([[0.5, 0.7]]), min_std=0.1)[0] \
        == sweep.BUCKETS.index("signal")  # a spread of exactly min_std is signal
    for bad in (-0.1, 0.6, float("nan"), "0.1"):
        with pytest.raises(ValueError, match="min_std"):
            sweep.assign_buckets(m, min_std=bad)


def test_docstring_examples():
    import doctest

    from vipcore._src.apps.cli import _columns
    from vipcore._src.sweep import analysis, io, posterior, runner, summary, tables

    for mod in (analysis, io, posterior, runner, summary, tables, _columns):
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert res.failed == 0, mod.__name__
    assert doctest.testmod(io).attempted >= 3
