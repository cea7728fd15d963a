"""The architecture, enforced: the core never imports the applications.

Layers (see ``docs/architecture.md``):

* core: every module of ``vipcore._src`` outside ``apps`` and
  ``integrations``; it imports only the core, JAX, NumPy and the standard
  library. matplotlib is allowed only inside functions of plotting modules.
* integrations (``vipcore._src.integrations``): trainer adapters on the core.
* apps (``vipcore._src.apps``): the CLI, verify, simulate, bench.

The test reads every module's source with ``ast`` (no import), so it also
sees imports inside functions. ``docs/architecture.md`` is checked against
the tree: its tree names every module and nothing that does not exist, the
paths and ``vipcore.*`` names in its text exist, and its worked examples run.
"""

from __future__ import annotations

import ast
import json
import re
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
    """Every public name loaded (the namespace is lazy), still no app."""
    code = (
        "import sys, vipcore\n"
        "[getattr(vipcore, n) for n in vipcore.__all__]\n"
        "bad = sorted(m for m in sys.modules if m.startswith('vipcore._src.apps')"
        " or m.startswith('vipcore._src.integrations')"
        " or m == 'matplotlib' or m.startswith('matplotlib.') or m == 'argparse')\n"
        "print(','.join(bad))\n"
    )
    out = _python(code)
    assert out == "", out


def _python(code: str) -> str:
    """stdout of ``code`` run by a fresh interpreter at the repository root."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, check=True, cwd=ROOT.parent).stdout.strip()


def test_public_names_load_lazily():
    """``import vipcore`` imports no implementation module (not even JAX);
    the allocator loads the allocator only, not the predictors, the sweep
    or the statistics (a fast ``vipcore allocate``); and the lazy table
    names exactly ``__all__`` with the targets the type-checking imports
    give."""
    code = (
        "import sys, vipcore\n"
        "a = sorted(m for m in sys.modules if m.startswith(('vipcore.', 'jax')))\n"
        "vipcore.allocate\n"
        "b = sorted(m for m in sys.modules if m.startswith(('vipcore._src.predict',"
        " 'vipcore._src.sweep', 'vipcore._src.stats', 'vipcore._src.planner')))\n"
        "print(a, b)\n"
    )
    out = _python(code)
    assert out == "[] []", out
    import vipcore

    tree = ast.parse((ROOT / "__init__.py").read_text())
    typed = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module.startswith("vipcore"):
            for alias in node.names:
                target = (f"vipcore.{alias.name}", None) if node.module == "vipcore" \
                    else (node.module, alias.name)
                typed[alias.asname or alias.name] = target
    assert typed == vipcore._EXPORTS
    assert sorted(vipcore._EXPORTS) == sorted(vipcore.__all__)
    for name in vipcore.__all__:
        assert name in dir(vipcore)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        vipcore.nope  # noqa: B018


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


# ------------------------------------------------ docs/architecture.md

DOC = ROOT.parent / "docs" / "architecture.md"
_TREE_NAME = re.compile(r"^[A-Za-z_]\w*(\.py|/)$")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
#: Folders of the repository that prose paths may start with.
_TOP = ("vipcore", "tests", "docs", "benchmarks", "notebooks", "examples")


def _tree_paths(text: str) -> tuple[list[str], list[str]]:
    """``(paths, problems)`` from the doc's tree block (the fenced block that
    starts with ``vipcore/``): each line is names (``x.py`` or ``dir/``) at
    a two-space indent per level, then two or more spaces and a comment."""
    blocks = [b for _, b in _FENCE.findall(text) if b.startswith("vipcore/\n")]
    if len(blocks) != 1:
        return [], [f"expected one tree block starting with vipcore/; "
                    f"found {len(blocks)}"]
    paths, problems, stack = [], [], []  # stack of (indent, folder path)
    for line in blocks[0].splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        names = re.split(r"\s{2,}", line.strip())[0].split(" ")
        if not all(_TREE_NAME.match(n) for n in names):
            problems.append(f"tree line not read as names: {line.strip()!r}")
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else ""
        paths += [parent + n for n in names]
        if names[-1].endswith("/"):
            if len(names) > 1:
                problems.append(f"a folder must stand alone on its line: {line!r}")
            stack.append((indent, parent + names[-1]))
    return paths, problems


def _top_level_names(path: Path) -> set[str]:
    names = set()
    body = ast.parse(path.read_text()).body
    # Names bound under a top-level ``if`` (such as ``if TYPE_CHECKING:``,
    # where the lazy public namespace lists its imports) count too.
    body += [n for node in body if isinstance(node, ast.If) for n in node.body]
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _dotted_problem(name: str, repo: Path) -> str | None:
    """Why ``vipcore.a.b[.attr]`` does not name a module (or a name defined
    in the longest module prefix), or None."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        base = repo.joinpath(*parts[:k])
        for f in (base.with_suffix(".py"), base / "__init__.py"):
            if f.is_file():
                rest = parts[k:]
                if not rest or rest[0] in _top_level_names(f):
                    return None
                return f"{name}: {f.relative_to(repo)} defines no {rest[0]!r}"
    return f"{name}: no such module"


def _prose_problems(text: str, repo: Path) -> list[str]:
    """Paths and dotted ``vipcore`` names in backticks (outside code blocks)
    that do not exist in ``repo``."""
    prose = _FENCE.sub("", text)
    problems = []
    for span in re.findall(r"`([^`\n]+)`", prose):
        if re.fullmatch(r"vipcore(\.\w+)+", span):
            problem = _dotted_problem(span, repo)
            if problem:
                problems.append(problem)
        elif re.fullmatch(r"[\w.-]+(/[\w.-]+)*/?", span) and (
                "/" in span or span.endswith((".py", ".md", ".ipynb"))):
            rel = "vipcore/" + span if span.startswith("_src/") else span
            if rel.split("/")[0] not in _TOP or not (repo / rel).exists():
                problems.append(f"{span}: no such path")
    return problems


def _unnamed_modules(paths: list[str], repo: Path) -> list[str]:
    """Modules and packages of ``repo/vipcore`` the tree does not name
    (``__init__.py`` inside ``_src`` only marks a package)."""
    named = set(paths)
    missing = []
    for f in sorted((repo / "vipcore").rglob("*.py")):
        rel = f.relative_to(repo).as_posix()
        if not (f.name == "__init__.py" and "/_src/" in rel) and rel not in named:
            missing.append(rel)
    for d in sorted((repo / "vipcore").rglob("*/")):
        rel = d.relative_to(repo).as_posix() + "/"
        if (d / "__init__.py").is_file() and rel not in named:
            missing.append(rel)
    return missing


def test_architecture_doc_tree_names_what_exists():
    paths, problems = _tree_paths(DOC.read_text())
    assert not problems, problems
    assert [p for p in paths if not (ROOT.parent / p).exists()] == []


def test_architecture_doc_names_every_module():
    paths, _ = _tree_paths(DOC.read_text())
    missing = _unnamed_modules(paths, ROOT.parent)
    assert not missing, (f"docs/architecture.md's tree does not name {missing}; "
                         "add them (a few words each) where they belong")


def test_architecture_doc_prose_names_what_exists():
    assert _prose_problems(DOC.read_text(), ROOT.parent) == []


def test_architecture_doc_examples_run():
    """The worked examples run as written (in a fresh process: they
    register a predictor and an allocator) and their asserts hold."""
    blocks = [b for lang, b in _FENCE.findall(DOC.read_text()) if lang == "python"]
    assert len(blocks) >= 4
    code = ("import json, sys\n"
            "for i, src in enumerate(json.load(sys.stdin)):\n"
            "    exec(compile(src, f'architecture.md python block {i}', 'exec'), {})\n")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(blocks),
                         capture_output=True, text=True, cwd=ROOT.parent)
    assert out.returncode == 0, out.stderr[-3000:]


def test_the_doc_checks_can_fail(tmp_path):
    """Negative controls on a small hand-made repository and doc."""
    (tmp_path / "vipcore" / "_src" / "sub").mkdir(parents=True)
    for f in ("vipcore/__init__.py", "vipcore/_src/__init__.py",
              "vipcore/_src/sub/__init__.py", "vipcore/_src/sub/a.py",
              "vipcore/_src/sub/b.py"):
        (tmp_path / f).write_text("X = 1\n")
    doc = ("```\nvipcore/\n  __init__.py  public\n  _src/\n    sub/\n"
           "      a.py c.py   c is gone\n```\n"
           "See `_src/sub/a.py`, `_src/sub/z.py`, `vipcore._src.sub.a.X`, "
           "`vipcore._src.sub.a.Y`, `vipcore._src.nope` and `docs/none.md`.\n")
    paths, problems = _tree_paths(doc)
    assert problems == []
    assert [p for p in paths if not (tmp_path / p).exists()] == [
        "vipcore/_src/sub/c.py"]
    assert _unnamed_modules(paths, tmp_path) == ["vipcore/_src/sub/b.py"]
    assert [p.split(":")[0] for p in _prose_problems(doc, tmp_path)] == [
        "_src/sub/z.py", "vipcore._src.sub.a.Y", "vipcore._src.nope", "docs/none.md"]
    bad = "```\nvipcore/\n  a.py, b.py\n```\n"
    assert _tree_paths(bad)[1]


def test_public_namespace_is_its_all():
    """``import vipcore`` exposes exactly ``vipcore.__all__`` (plus modules
    and dunders): no helper leaks such as ``version``."""
    import types

    import vipcore

    extra = {n for n in dir(vipcore) if not n.startswith("_")
             and not isinstance(getattr(vipcore, n), types.ModuleType)} - set(
                 vipcore.__all__)
    assert not extra, extra
