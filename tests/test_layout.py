"""The architecture, enforced: the core never imports the applications.

Layers (see ``docs/architecture.md``):

* core: every module of ``vipcore._src`` outside ``apps`` and
  ``integrations``; it imports only the core, JAX, NumPy and the standard
  library. matplotlib is allowed only inside functions of plotting modules.
* integrations (``vipcore._src.integrations``): trainer adapters on the core.
* apps (``vipcore._src.apps``): the CLI, verify, simulate, bench.

The test reads every module's source with ``ast`` (no import), so it also
sees imports inside functions.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "vipcore"
SRC = ROOT / "_src"
APPS = "vipcore._src.apps"
INTEGRATIONS = "vipcore._src.integrations"
#: Core modules that may import matplotlib, lazily (inside a function).
PLOTTING = {"vipcore._src._plotting"}


def _modname(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path):
    """``(module imported, line, at module level?)`` for every import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno, id(node) in top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno, id(node) in top
            for a in node.names:
                yield f"{node.module}.{a.name}", node.lineno, id(node) in top


def _layer(mod: str) -> str:
    if mod == APPS or mod.startswith(APPS + "."):
        return "apps"
    if mod == INTEGRATIONS or mod.startswith(INTEGRATIONS + "."):
        return "integrations"
    return "core"


MODULES = sorted(SRC.rglob("*.py"))
CORE = [p for p in MODULES if _layer(_modname(p)) == "core"]
ADAPTERS = [p for p in MODULES if _layer(_modname(p)) == "integrations"]


def test_layout_has_the_expected_packages():
    names = {_modname(p) for p in MODULES}
    for pkg in ("vipcore._src.allocation", "vipcore._src.predict",
                "vipcore._src.stats", "vipcore._src.sweep", APPS,
                f"{APPS}.cli", f"{APPS}.verify", f"{APPS}.simulate"):
        assert pkg in names, pkg


@pytest.mark.parametrize("path", CORE, ids=lambda p: _modname(p))
def test_core_never_imports_apps_or_matplotlib(path):
    mod = _modname(path)
    for target, line, top_level in _imports(path):
        where = f"{path.relative_to(ROOT.parent)}:{line}"
        if target.startswith("vipcore._src"):
            assert _layer(target) == "core", f"{where}: core imports {target}"
        if target == "matplotlib" or target.startswith("matplotlib."):
            assert mod in PLOTTING, f"{where}: non-plotting core imports matplotlib"
            assert not top_level, f"{where}: matplotlib must be imported lazily"


def test_integrations_never_import_apps():
    for path in ADAPTERS:
        for target, line, _ in _imports(path):
            assert not (target.startswith("vipcore") and _layer(target) == "apps"), (
                f"{path}:{line} imports {target}")


def test_nobody_uses_pyplot_or_switches_the_backend():
    """Library code builds ``Figure`` objects; pyplot and ``matplotlib.use``
    would change a user's global matplotlib state."""
    for path in sorted(ROOT.rglob("*.py")):
        for target, line, _ in _imports(path):
            assert not target.startswith("matplotlib.pyplot"), f"{path}:{line}"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert not (node.func.attr == "use"
                            and isinstance(node.func.value, ast.Name)
                            and node.func.value.id == "matplotlib"), (
                    f"{path}:{node.lineno} calls matplotlib.use")


def test_import_vipcore_loads_no_cli_and_no_matplotlib():
    code = (
        "import sys, vipcore\n"
        "bad = sorted(m for m in sys.modules if m.startswith('vipcore._src.apps')"
        " or m.startswith('vipcore._src.integrations')"
        " or m == 'matplotlib' or m.startswith('matplotlib.') or m == 'argparse')\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True, cwd=ROOT.parent)
    assert out.stdout.strip() == "", out.stdout


def test_the_guard_can_fail(tmp_path):
    """Negative control: a core module importing an app is caught."""
    fake = SRC / "_layout_probe_tmp.py"
    fake.write_text("from vipcore._src.apps.cli import main\n")
    try:
        mods = [(t, ln) for t, ln, _ in _imports(fake)]
        assert any(_layer(t) == "apps" for t, _ in mods)
        assert _layer(_modname(fake)) == "core"
    finally:
        fake.unlink()


#: Longest function body (lines after the docstring) per layer.
MAX_BODY = {"core": 60, "integrations": 60, "apps": 80}
#: Functions still over the limit, to be split; this set may only shrink.
OVER_LIMIT: set[str] = set()


def _body_lengths(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0]
            doc = (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                   and isinstance(first.value.value, str))
            start = first.end_lineno + 1 if doc and len(node.body) > 1 else first.lineno
            yield node.name, node.lineno, node.end_lineno - start + 1


def test_function_sizes():
    """No core function body over 60 lines, no application one over 80."""
    too_long = {}
    for path in MODULES:
        mod = _modname(path)
        for name, line, n in _body_lengths(path):
            if n > MAX_BODY[_layer(mod)]:
                too_long[f"{mod}.{name}"] = f"{path.name}:{line} has {n} lines"
    new = {k: v for k, v in too_long.items() if k not in OVER_LIMIT}
    assert not new, new
    stale = OVER_LIMIT - set(too_long)
    assert not stale, f"now short enough, remove from OVER_LIMIT: {stale}"
