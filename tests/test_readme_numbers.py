"""Numbers in README.md match the committed result files.

Every measured number of README.md sits in a marked block that
``benchmarks/readme_numbers.py`` generates from a JSON file under
``benchmarks/results/`` (the block names the command that wrote it); a README
out of step with its files fails here. Regenerate with
``python benchmarks/readme_numbers.py``.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import readme_numbers  # noqa: E402


@pytest.mark.parametrize("page", readme_numbers.PAGES, ids=lambda p: p.name)
def test_pages_match_their_result_files(page):
    text = page.read_text()
    assert "<!-- BEGIN" in text
    assert readme_numbers.render(text) == text, (
        f"{page.name} is stale: python benchmarks/readme_numbers.py")


def test_every_block_is_used():
    names = [n for page in readme_numbers.PAGES
             for n in re.findall(r"<!-- BEGIN ([\w-]+) -->", page.read_text())]
    assert set(names) == set(readme_numbers.BLOCKS), names


def test_every_block_names_a_command():
    for name, block in readme_numbers.BLOCKS.items():
        body = block()
        assert "python " in body or "vipcore " in body, name


def test_a_changed_result_is_caught(monkeypatch):
    """Negative control: one number changed in a result file changes the
    README that the check expects."""
    text = readme_numbers.README.read_text()
    real = readme_numbers.load

    def fake(name):
        res = copy.deepcopy(real(name))
        if name == "replay.json":
            rows = res["datasets"]["simulate/descriptor"]["rows"]
            beta = next(r for r in rows if r["predictor"] == "beta")
            beta["objective_vs_uniform"] += 0.01
        return res

    monkeypatch.setattr(readme_numbers, "load", fake)
    assert readme_numbers.render(text) != text


def test_check_option_exit_codes(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text(readme_numbers.README.read_text().replace(
        "<!-- BEGIN grpo -->\n", "<!-- BEGIN grpo -->\nstale\n", 1))
    monkeypatch.setattr(readme_numbers, "README", readme)
    assert readme_numbers.main(["--check"]) == 1
    assert readme_numbers.main([]) == 0 and readme_numbers.main(["--check"]) == 0
    with pytest.raises(KeyError, match="unknown block"):
        readme_numbers.render("<!-- BEGIN nope -->\nx\n<!-- END nope -->")


def test_json_files_exist():
    for f in ("allocate_cpu.json", "grpo_cpu.json", "replay.json", "gp_cpu.json",
              "sweep_cpu.json", "verify_default/results.json"):
        json.loads((readme_numbers.RESULTS / f).read_text())
