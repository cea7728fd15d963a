"""The mutation tool's mechanics (``benchmarks/mutation/mutate.py``).

The real catalogue is run by hand or in a manual CI job; here a toy tree
shows that stale snippets are refused, that a mutant is applied to a copy
and restored, and that a test which notices it counts as a kill.
"""

from __future__ import annotations

import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "mutation"))

import catalogue  # noqa: E402
import mutate  # noqa: E402


def _toy(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir(parents=True)
    (tmp_path / "pkg" / "mod.py").write_text("def f(n):\n    return (n - 1) / n\n")
    (tmp_path / "test_mod.py").write_text(
        "from pkg.mod import f\n\ndef test_f():\n    assert f(4) == 0.75\n")
    return tmp_path


def _m(orig, repl, mid="variance.toy"):
    return catalogue.Mutant(mid, "pkg/mod.py", orig, repl, "toy",
                            tests=("test_mod.py",), verify=())


def test_stale_snippets_are_reported(tmp_path):
    root = _toy(tmp_path)
    assert mutate.stale_entries([_m("(n - 1) / n", "1 / n")], root) == []
    bad = mutate.stale_entries([_m("(n - 2) / n", "1 / n"),
                                _m("n", "m", "variance.toy2"),
                                _m("(n - 1) / n", "1 / n", "nope.toy")], root)
    assert "occurs 0 times" in bad[0] and "occurs 4 times" in bad[1]
    assert "unknown area 'nope'" in bad[2]


def test_a_mutant_is_applied_to_the_copy_and_restored(tmp_path):
    root = _toy(tmp_path / "root")
    args = Namespace(timeout=120, verify=False, verify_timeout=60,
                     verify_mode="default", tests_off=False)
    before = (root / "pkg" / "mod.py").read_text()
    killed = mutate.mutate_one(_m("(n - 1) / n", "1 / n"), root, args)
    assert killed["tests"]["killed"] and killed["tests"]["rc"] == 1
    assert "FAILED" in killed["tests"]["tail"]
    assert (root / "pkg" / "mod.py").read_text() == before


def test_catalogue_has_enough_realistic_mutants_and_test_files():
    assert len(catalogue.MUTANTS) >= 80
    for area in catalogue.AREAS.values():
        for t in area["tests"]:
            assert (ROOT / t).is_file(), t
    rc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "mutation" /
                                             "mutate.py"), "--only", "nothing"],
                        capture_output=True, text=True, cwd=ROOT)
    assert rc.returncode == 2


@pytest.mark.parametrize("m", catalogue.MUTANTS, ids=lambda m: m.id)
def test_entries_are_well_formed(m):
    assert m.area in catalogue.AREAS and m.original != m.replacement
    assert m.description and m.file.startswith("vipcore/_src/")


def test_baseline_runs_each_test_file_once():
    ms = [catalogue.Mutant("variance.a", "f.py", "x", "y", "d",
                           tests=("tests/a.py", "tests/b.py")),
          catalogue.Mutant("variance.b", "f.py", "x", "y", "d",
                           tests=("tests/a.py::test_one", "tests/c.py::test_two"))]
    assert mutate.union_of_tests(ms) == ["tests/a.py", "tests/b.py",
                                         "tests/c.py::test_two"]


def test_resume_with_only_reruns_those_and_keeps_the_rest(tmp_path, monkeypatch):
    """A full run, then ``--only ID --resume``: the report still covers every
    mutant, the named one was run again, and a changed snippet is rerun."""
    import json

    root = _toy(tmp_path / "root")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    kill = _m("(n - 1) / n", "1 / n", "variance.kill")
    live = _m("(n - 1) / n", "(n - 1) / n + 0 * n", "variance.live")
    monkeypatch.setattr(mutate, "ROOT", root)
    monkeypatch.setattr(mutate, "MUTANTS", (kill, live))
    out = tmp_path / "report.json"
    assert mutate.main(["--out", str(out), "--timeout", "120"]) == 0
    first = json.loads(out.read_text())
    assert (first["mutants"], first["killed"], first["partial"]) == (2, 1, False)
    assert [s["id"] for s in first["survivors"]] == ["variance.live"]
    assert mutate.main(["--out", str(out), "--only", "variance.live",
                        "--resume", "--timeout", "120"]) == 0
    second = json.loads(out.read_text())
    assert second["mutants"] == 2 and not second["partial"]
    assert second["results"][0] == first["results"][0]  # kept as it was
    assert second["machine"]["wall_s"] > first["machine"]["wall_s"]
    # Without --only, --resume runs nothing again unless a snippet changed.
    moved = kill._replace(replacement="2 / n")
    monkeypatch.setattr(mutate, "MUTANTS", (moved, live))
    assert mutate.main(["--out", str(out), "--resume", "--timeout", "120"]) == 0
    third = json.loads(out.read_text())
    assert third["results"][0]["snippet"][2] == "2 / n"
    assert third["results"][1] == second["results"][1]
    # --report-only rewrites the report from its results and runs nothing.
    monkeypatch.setattr(mutate, "run", None)  # any run would fail loudly
    assert mutate.main(["--out", str(out), "--report-only"]) == 0
    fourth = json.loads(out.read_text())
    assert fourth["results"] == third["results"]
    assert "--report-only" not in fourth["command"]


def test_recorded_command_reproduces_the_whole_report():
    cmd = mutate._command(["--verify", "--only", "a.b", "--resume", "--out", "r"])
    assert cmd == "python benchmarks/mutation/mutate.py --verify --out r"
    assert "--only a.b" in mutate._command(["--only", "a.b", "--out", "r"])
