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
