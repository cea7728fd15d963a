"""Tests for ``vipcore sweep`` (the CLI) and the sweep plots."""

from __future__ import annotations

import hashlib
import json
import os
import struct

import numpy as np
import pytest

from vipcore import sweep
from vipcore._src.apps.cli import main


def png_size(path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; asserts the PNG signature."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def check_png(path, *, min_px=300, max_px=2000, max_bytes=300_000):
    assert path.exists(), path
    w, h = png_size(path)
    assert min_px <= w <= max_px and min_px <= h <= max_px, (path, w, h)
    assert path.stat().st_size < max_bytes


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["sweep", "--demo", "--out", str(out), "--json"]) == 0
    return out


def test_demo_writes_everything(demo_out):
    for name in ("variance.png", "pass_rate_hist.png", "transitions.png"):
        check_png(demo_out / name)
    summary = json.loads((demo_out / "summary.json").read_text())
    r = summary["report"]
    assert sum(r["counts"].values()) == r["n_prompts"] == 400
    assert summary["steps"] == [0, 100, 200] and summary["step"] == 200
    signal = [json.loads(x) for x in
              (demo_out / "signal.jsonl").read_text().splitlines()]
    assert len(signal) == r["counts"]["signal"]
    assert all(0 < s["pass_rate"] < 1 and s["step"] == 200 for s in signal)
    # transitions: consecutive pairs plus first -> last; margins are the counts
    tr = summary["transitions"]
    assert [(t["from"], t["to"]) for t in tr] == [(0, 100), (100, 200), (0, 200)]
    per = {row["step"]: row["counts"] for row in summary["per_step"]}
    for t in tr:
        mat = np.array(t["matrix"])
        assert mat.sum(1).tolist() == list(per[t["from"]].values())
        assert mat.sum(0).tolist() == list(per[t["to"]].values())


def test_demo_text(capsys):
    assert main(["sweep", "--demo"]) == 0
    out = capsys.readouterr().out
    for needle in ("unlearnable", "signal", "trivial", "improvement potential",
                   "frac_reward_zero_std at G = 8", "miss probability",
                   "advice (", "transitions step 0 -> 100"):
        assert needle in out


def test_json_is_valid_and_matches_library(tmp_path, capsys):
    p = tmp_path / "s.jsonl"
    rows = [[0, 0, 0, 0], [1, 0, 1, 1], [1, 1, 1, 1], [0, 0, 1, 0], [1]]
    p.write_text("".join(json.dumps({"prompt_id": f"q{i}", "scores": r}) + "\n"
                         for i, r in enumerate(rows)))
    assert main(["sweep", str(p), "--json", "--group-size", "2"]) == 0
    s = json.loads(capsys.readouterr().out)
    rep = sweep.analyze(rows, group_size=2)
    assert s["report"]["counts"] == rep.counts
    assert s["report"]["potential"]["gain"] == pytest.approx(rep.potential.gain)
    assert s["report"]["frac_reward_zero_std"]["all_prompts"] == pytest.approx(
        rep.zero_std_all.mean)
    assert s["steps"] is None and s["transitions"] == []
    # the single-rollout prompt and the small K are reported, not hidden
    joined = " ".join(s["warnings"])
    assert "1 prompt(s) have a single rollout" in joined and "q4" in joined
    assert "K = 4 rollouts per prompt" in joined
    assert s["miss"]["k"] == 4
    assert s["miss"]["probability_unlearnable"] == pytest.approx(0.95**4)


def test_soft_thresholds_and_overrides(tmp_path, capsys):
    p = tmp_path / "s.csv"
    p.write_text("prompt_id,scores\na,\"[0.02, 0.04]\"\nb,\"[0.5, 0.7]\"\n")
    assert main(["sweep", str(p), "--json", "--thresholds", "soft"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["settings"]["lo"] == 0.05 and s["report"]["counts"]["unlearnable"] == 1
    assert main(["sweep", str(p), "--json", "--lo", "0.01", "--hi", "0.6",
                 "--min-std", "0"]) == 0
    s = json.loads(capsys.readouterr().out)
    counts = s["report"]["counts"]
    assert counts["signal"] == 1 and counts["trivial"] == 1
    # graded scores: a's 0.02/0.04 barely vary (std 0.01 < 0.1): flat, not signal
    assert main(["sweep", str(p), "--json", "--lo", "0.01", "--hi", "0.6"]) == 0
    s = json.loads(capsys.readouterr().out)
    counts = s["report"]["counts"]
    assert counts["flat"] == 1 and counts["signal"] == 0 and counts["trivial"] == 1
    assert s["settings"]["graded"] and s["settings"]["min_std"] == 0.1
    assert main(["sweep", str(p), "--json", "--pass-threshold", "0.6"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["settings"]["pass_rate"] == ">= 0.6"


def test_step_option(tmp_path, capsys):
    p = tmp_path / "s.csv"
    p.write_text("prompt_id,score,step\na,0,1\na,0,1\na,1,2\na,0,2\n")
    assert main(["sweep", str(p), "--json", "--step", "1"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["step"] == 1 and s["report"]["counts"]["unlearnable"] == 1
    assert s["transitions"][0]["moved"] == {"unlearnable->signal": 1}
    assert main(["sweep", str(p), "--step", "9"]) == 2
    assert "step '9' not in" in capsys.readouterr().err


def test_errors_exit_2_with_file_and_line(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("prompt_id,score\na,1\na,2\n")
    before = hashlib.sha256(p.read_bytes()).hexdigest()
    assert main(["sweep", str(p)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv:3: score 2.0 is outside [0, 1]" in err and "Traceback" not in err
    assert main(["sweep", str(p), "--clip", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["n_clipped"] == 1 and "1 score(s) outside [0, 1] were clipped" in (
        " ".join(s["warnings"]))
    assert hashlib.sha256(p.read_bytes()).hexdigest() == before  # untouched
    assert main(["sweep"]) == 2
    assert "give a FILE or --demo" in capsys.readouterr().err
    assert main(["sweep", str(p), "--demo"]) == 2
    assert main(["sweep", "--demo", "--lo", "0.9", "--hi", "0.1"]) == 2
    assert "lo < hi" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["sweep", str(empty)]) == 2
    assert "empty file" in capsys.readouterr().err


def test_out_without_steps_and_no_plots(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text("".join(json.dumps({"prompt_id": i, "scores": [i % 2, 1, 0]}) + "\n"
                         for i in range(10)))
    out = tmp_path / "o"
    assert main(["sweep", str(p), "--out", str(out), "--no-plots", "--json"]) == 0
    assert sorted(x.name for x in out.iterdir()) == ["prompts.jsonl", "signal.jsonl",
                                                     "summary.json"]


def test_variance_plot_bins_and_leaves_matplotlib_alone(tmp_path):
    import matplotlib

    before = dict(matplotlib.rcParams)
    backend = matplotlib.get_backend()
    rng = np.random.default_rng(0)
    m = sweep.prompt_metrics((rng.random((3000, 4)) < 0.5).astype(float))
    b = sweep.assign_buckets(m)
    assert sweep.plot_variance(m, b, tmp_path / "v.png", max_points=500) == 0
    check_png(tmp_path / "v.png")
    assert sweep.plot_variance(m, b, tmp_path / "w.png") == 0  # 3000 > 1500
    small = sweep.prompt_metrics([[0, 1], [1, 1]] * 5)
    assert sweep.plot_variance(small, sweep.assign_buckets(small),
                               tmp_path / "s.png") == 10
    check_png(tmp_path / "s.png")
    assert dict(matplotlib.rcParams) == before
    assert matplotlib.get_backend() == backend


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("n", [10, 100, 3000])
def test_plots_have_titles_labels_and_legends_off_the_data(n):
    """Every axes has a title and axis labels; no legend covers an axes."""
    from vipcore._src.sweep import plots

    rng = np.random.default_rng(n)
    s = (rng.random((n, 8)) < rng.random(n)[:, None]).astype(float)
    rep = sweep.analyze(s)
    rep2 = sweep.analyze(np.roll(s, 1, axis=0))
    figs = [plots.variance_figure(rep.metrics, rep.buckets)[0],
            plots.hist_figure(rep.metrics, lo=0, hi=1),
            plots.transitions_figure(
                [0, 1], [rep.counts, rep2.counts],
                sweep.bucket_transitions(rep.buckets, rep2.buckets), first=0, last=1)]
    for fig in figs:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        assert fig.legends, "a figure legend"
        for ax in fig.axes:
            assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
            assert ax.get_legend() is None  # no legend inside an axes
            for leg in fig.legends:
                assert not _overlap(leg.get_window_extent(renderer),
                                    ax.get_window_extent(renderer))


# ---------------------------------------------------------------------------
# scripting: --fail-under, settings and version; inputs never overwritten;
# options checked at parse time


def _rollouts(path, n_signal=3, n_dead=7):
    rows = [{"prompt_id": f"s{i}", "scores": [1, 0, 1, 0]} for i in range(n_signal)]
    rows += [{"prompt_id": f"d{i}", "scores": [0, 0, 0, 0]} for i in range(n_dead)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("threshold, code", [("0.29", 0), ("0.3", 0), ("0.31", 1),
                                              ("1", 1), ("0", 0)])
def test_fail_under_gates_on_the_signal_fraction(tmp_path, capsys, threshold, code):
    p = _rollouts(tmp_path / "r.jsonl")  # signal fraction exactly 3/10
    out = tmp_path / "o"
    assert main(["sweep", str(p), "--fail-under", threshold, "--out", str(out),
                 "--no-plots"]) == code
    err = capsys.readouterr().err
    assert ("below --fail-under" in err) == (code == 1)
    assert (out / "summary.json").exists()  # the report is written either way
    summary = json.loads((out / "summary.json").read_text())
    assert summary["command"]["fail_under"] == float(threshold)


def test_summary_records_version_and_every_setting(tmp_path):
    import argparse

    import vipcore
    from vipcore._src.apps.cli import sweep as sweep_cli

    p = _rollouts(tmp_path / "r.jsonl")
    out = tmp_path / "o"
    assert main(["sweep", str(p), "--out", str(out), "--no-plots", "--lo", "0.01",
                 "--group-size", "4", "--credibility", "0.9"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["vipcore_version"] == vipcore.__version__
    parser = argparse.ArgumentParser()
    sweep_cli.add_arguments(parser)
    dests = {a.dest for a in parser._actions if a.dest != "help"}
    assert set(summary["command"]) == dests
    assert summary["command"]["lo"] == 0.01 and summary["command"]["group_size"] == 4
    assert summary["settings"]["lo"] == 0.01 and summary["settings"]["group_size"] == 4
    prompts = [json.loads(x) for x in (out / "prompts.jsonl").read_text().splitlines()]
    assert len(prompts) == 10 and {r["prompt_id"] for r in prompts} == (
        {f"s{i}" for i in range(3)} | {f"d{i}" for i in range(7)})


@pytest.mark.parametrize("name", ["signal.jsonl", "summary.json", "prompts.jsonl"])
def test_never_writes_over_its_input(tmp_path, capsys, name):
    d = tmp_path / "d"
    d.mkdir()
    p = _rollouts(d / name)
    before = hashlib.sha256(p.read_bytes()).hexdigest()
    assert main(["sweep", str(p), "--out", str(d)]) == 2
    err = capsys.readouterr().err
    assert f"refusing to write {d / name}: it is the input file {p}" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert hashlib.sha256(p.read_bytes()).hexdigest() == before
    assert sorted(x.name for x in d.iterdir()) == [name]  # nothing else written
    q = _rollouts(d / "r.jsonl")
    assert main(["sweep", str(q), "--prompts", str(q)]) == 2  # --prompts too
    assert "it is the input file" in capsys.readouterr().err


def test_never_writes_over_its_input_through_a_link(tmp_path, capsys):
    p = _rollouts(tmp_path / "r.jsonl")
    out = tmp_path / "o"
    out.mkdir()
    os.symlink(p, out / "prompts.jsonl")
    assert main(["sweep", str(p), "--out", str(out)]) == 2
    assert "it is the input file" in capsys.readouterr().err


PARSE_ERRORS = [
    (["--seed", "-1"], "--seed"), (["--seed", "1e3"], "--seed"),
    (["--lo", "nan"], "--lo"), (["--lo", "1"], "--lo"), (["--hi", "0"], "--hi"),
    (["--variance-threshold", "nan"], "--variance-threshold"),
    (["--group-size", "0"], "--group-size"), (["--group-size", "x"], "--group-size"),
    (["--miss-p", "0"], "--miss-p"), (["--miss-p", "inf"], "--miss-p"),
    (["--target-miss", "1"], "--target-miss"),
    (["--pass-threshold", "0"], "--pass-threshold"),
    (["--min-std", "0.6"], "--min-std"), (["--credibility", "1"], "--credibility"),
    (["--fail-under", "1.5"], "--fail-under"),
    (["--reward-range=1,1"], "--reward-range"), (["--reward-range=a,b"],
                                                 "--reward-range"),
    (["--reward-range=0,inf"], "--reward-range"),
    (["--id-col", ""], "--id-col"), (["--score-col", " "], "--score-col"),
    (["--prompts", "x.parquet"], "--prompts"), (["--format", "xlsx"], "--format"),
]


@pytest.mark.parametrize("extra, option", PARSE_ERRORS)
def test_options_checked_at_parse_time(tmp_path, capsys, extra, option):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", str(tmp_path / "no-such-file.jsonl"), "--out", str(out)]
             + extra)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err
    assert not out.exists()


def test_cross_option_errors_before_any_work(tmp_path, capsys):
    out = tmp_path / "never"
    p = _rollouts(tmp_path / "r.jsonl")
    for argv, needle in (
            (["--demo", "--id-col", "q"], "--id-col applies to FILE, not --demo"),
            (["--demo", "--lo", "0.6", "--hi", "0.5"], "need lo < hi"),
            ([str(p), "--thresholds", "soft", "--lo", "0.96"], "need lo < hi")):
        assert main(["sweep", "--out", str(out)] + argv) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1
        assert not out.exists()


def test_tiny_miss_p_returns_at_once(capsys):
    import math
    import time

    t0 = time.perf_counter()
    assert main(["sweep", "--demo", "--json", "--miss-p", "1e-17"]) == 0
    assert time.perf_counter() - t0 < 30
    k = json.loads(capsys.readouterr().out)["miss"]["k_needed"]
    t = math.log(0.05)
    # K = ceil(log t / log(1 - p)) to float64 precision (1 more rollout changes
    # K log(1 - p) by less than its rounding here)
    for p, kk in ((1e-17, k), (1e-300, sweep.rollouts_for_miss_rate(1e-300, 0.05))):
        exact = t / math.log1p(-p)
        assert abs(kk - exact) <= 1 + 1e-15 * exact
    with pytest.raises(ValueError, match="too small"):
        sweep.rollouts_for_miss_rate(5e-324, 0.05)
    assert main(["sweep", "--demo", "--miss-p", "5e-324"]) == 2
    assert "too small" in capsys.readouterr().err


def test_invalid_utf8_and_bad_files_are_one_line(tmp_path, capsys):
    p = tmp_path / "r.jsonl"
    p.write_bytes(b'{"prompt_id": "a", "score": 1}\n'
                  b'{"prompt_id": "\xc3(", "score": 1}\n')
    assert main(["sweep", str(p)]) == 2
    err = capsys.readouterr().err
    assert "r.jsonl: line 2, column 16: not valid UTF-8" in err
    assert err.count("\n") == 1
    assert main(["sweep", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
