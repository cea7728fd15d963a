"""End-to-end test of ``vipcore verify --quick`` through the CLI entry point."""

from __future__ import annotations

import json

from vipcore._src.apps.cli import main
from vipcore._src.apps.verify import variance as vv


def test_verify_quick_end_to_end(tmp_path, capsys):
    out = tmp_path / "report"
    rc = main(["verify", "--quick", "--seed", "3", "--out", str(out)])
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
    # the table is printed, progress goes to stderr
    assert "| check | theory |" in captured.out
    assert "variance" in captured.err


def test_verify_exit_code_on_failure(tmp_path, monkeypatch, capsys):
    """A wrong theory makes positive checks fail -> exit code 1, FAIL report."""
    import jax.numpy as jnp

    monkeypatch.setattr(vv, "variance_factor",
                        lambda n, est="rloo": 1 / jnp.asarray(n, jnp.float32))
    rc = main(["verify", "--quick", "--out", str(tmp_path)])
    capsys.readouterr()
    assert rc == 1
    assert "**Result: FAIL**" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["passed"] is False


def test_verify_rejects_bad_trials(tmp_path, capsys):
    rc = main(["verify", "--quick", "--trials", "1", "--out", str(tmp_path)])
    assert rc == 2
    assert "trials must be >= 2" in capsys.readouterr().err
