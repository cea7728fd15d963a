"""End-to-end test of ``vipcore verify --quick`` through the CLI entry point."""

from __future__ import annotations

import json

import pytest

from vipcore._src.apps.cli import main
from vipcore._src.apps.verify import variance as vv
from vipcore._src.apps.verify.runner import SECTIONS


def test_verify_quick_end_to_end(tmp_path, capsys):
    """Two sections through the command line (every section runs in its own
    test and in the CI job ``vipcore verify``)."""
    out = tmp_path / "report"
    rc = main(["verify", "--quick", "--seed", "3", "--only", "variance,sweep",
               "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.out[-2000:]
    report = (out / "report.md").read_text()
    assert "**Result: PASS**" in report
    assert vv.TITLE in report and "probability" in report
    results = json.loads((out / "results.json").read_text())
    assert results["passed"] is True
    assert results["config"] == {"seed": 3, "mode": "quick", "trials": None}
    sec = results["sections"][vv.TITLE]
    assert sec["passed"] and len(sec["checks"]) > 20
    assert any(c["negative"] for c in sec["checks"])
    for fname in sec["figures"]:
        assert (out / fname).read_bytes()[:4] == b"\x89PNG"
        assert f"]({fname})" in report
    assert "variance_vs_n.png" in sec["figures"]
    assert len(results["sections"]) == 2 and "machine" in results
    # thresholds of the full run: split over all five sections
    assert "5 sections of the full report" in report and len(SECTIONS) == 5
    # the table is printed, progress goes to stderr
    assert "| check | theory |" in captured.out
    assert "variance" in captured.err


def test_verify_exit_code_on_failure(tmp_path, monkeypatch, capsys):
    """A wrong theory makes positive checks fail -> exit code 1, FAIL report."""
    import numpy as np

    monkeypatch.setattr(vv, "gradient_variance", lambda p, n, est="rloo", s=1.0:
                        s * 4 * np.asarray(p) * (1 - np.asarray(p)) / np.asarray(n))
    monkeypatch.setattr(vv.exact, "variance_checks", lambda *a, **k: [])
    monkeypatch.setattr(vv.exact, "allocation_checks", lambda *a, **k: [])
    rc = main(["verify", "--quick", "--only", "variance", "--out", str(tmp_path)])
    capsys.readouterr()
    assert rc == 1
    assert "**Result: FAIL**" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["passed"] is False


@pytest.mark.parametrize("argv, option", [
    (["--trials", "1"], "--trials"),
    (["--seed", "-1"], "--seed"),
    (["--seed", "99999999999999999999"], "--seed"),
    (["--seed", "4294967296"], "--seed"),
    (["--seed", "1.5"], "--seed"),
    (["--only", "variance,nope"], "--only"),
])
def test_verify_rejects_bad_options_at_parse_time(tmp_path, capsys, argv, option):
    """Every option is checked before any work: exit 2, one line naming the
    option, no traceback and no output directory."""
    out = tmp_path / "report"
    with pytest.raises(SystemExit) as exc:
        main(["verify", "--quick", "--out", str(out), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}:" in err and "Traceback" not in err
    assert not out.exists()


def test_verify_refuses_a_file_as_out(tmp_path, capsys):
    f = tmp_path / "file.txt"
    f.write_text("keep me")
    with pytest.raises(SystemExit) as exc:
        main(["verify", "--quick", "--out", str(f)])
    assert exc.value.code == 2 and "argument --out" in capsys.readouterr().err
    assert f.read_text() == "keep me"


def test_run_verify_checks_its_arguments_first(tmp_path):
    from vipcore._src.apps.verify.runner import run_verify

    for kw, match in ((dict(seed=-1), "seed must be >= 0"),
                      (dict(seed=2**32), r"seed must lie in \[0, 4294967295\]"),
                      (dict(trials=1), "trials must be >= 2"),
                      (dict(mode="fast"), "mode must be")):
        with pytest.raises(ValueError, match=match):
            run_verify(out=tmp_path / "x", **kw)
        assert not (tmp_path / "x").exists()
