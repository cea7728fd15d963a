"""Tests for ``vipcore sweep`` (the CLI) and the sweep plots."""

from __future__ import annotations

import hashlib
import json
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


def test_variance_plot_subsamples_and_leaves_matplotlib_alone(tmp_path):
    import matplotlib

    before = dict(matplotlib.rcParams)
    backend = matplotlib.get_backend()
    rng = np.random.default_rng(0)
    m = sweep.prompt_metrics((rng.random((3000, 4)) < 0.5).astype(float))
    b = sweep.assign_buckets(m)
    drawn = sweep.plot_variance(m, b, tmp_path / "v.png", max_points=500)
    assert drawn == 500
    check_png(tmp_path / "v.png")
    assert dict(matplotlib.rcParams) == before
    assert matplotlib.get_backend() == backend
