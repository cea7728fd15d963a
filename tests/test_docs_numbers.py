"""Numbers in docs/verify.md and docs/stats.md match the committed runs.

Every number quoted from the default ``vipcore verify`` run or the mutation
run sits in a marked block that ``benchmarks/verify_docs.py`` generates from
``benchmarks/results/verify_default/results.json`` and
``benchmarks/results/mutation.json``; a page out of step with its run fails
here. Regenerate with ``python benchmarks/verify_docs.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import verify_docs  # noqa: E402


@pytest.fixture(scope="module")
def runs():
    return verify_docs.load()


@pytest.mark.parametrize("page", verify_docs.PAGES, ids=lambda p: p.name)
def test_pages_match_their_runs(page, runs):
    text = page.read_text()
    assert "<!-- BEGIN" in text
    assert verify_docs.render(text, *runs) == text, (
        f"{page.name} is out of step with its run: python benchmarks/verify_docs.py")


def test_committed_run_is_a_passing_default_run(runs):
    res, mut = runs
    assert res["passed"] and res["config"] == {"seed": 0, "mode": "default",
                                               "trials": None}
    assert {"wall_s", "cpu_s", "loadavg"} <= set(res["machine"])
    assert mut["mutants"] >= 80 and mut["settings"]["verify"]


def test_a_stale_number_is_caught(runs):
    """Negative control: change one generated number and the check fails."""
    page = verify_docs.PAGES[0]
    text = page.read_text()
    res = json.loads(json.dumps(runs[0]))
    res["machine"]["wall_s"] += 100
    assert verify_docs.render(text, res, runs[1]) != text
