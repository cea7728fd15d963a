"""The ``vipcore verify`` section for the sweep (quick mode)."""

from __future__ import annotations

from vipcore._src.apps.verify import sweep as sweep_verify
from vipcore._src.apps.verify.report import VerifyConfig


def test_section_quick(tmp_path):
    res = sweep_verify.section(VerifyConfig(mode="quick", out=tmp_path,
                                            n_sections=4))
    assert res.passed, [c for c in res.checks if not c.passed]
    negatives = [c for c in res.checks if c.negative]
    assert len(negatives) == 3 and all(c.passed for c in negatives)
    assert len(res.checks) == res.data["exact_checks"] + 11  # 9 z-checks, 2 controls
    (fname, _), = res.figures
    assert (tmp_path / fname).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_section_negative_controls_need_power(tmp_path):
    """With far too few trials the negative controls lose their power and the
    section fails: the controls are real tests, not decorations."""
    res = sweep_verify.section(VerifyConfig(mode="quick", out=tmp_path, trials=50,
                                            n_sections=4))
    assert not all(c.passed for c in res.checks if c.negative)
