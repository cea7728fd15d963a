"""``notebooks/walkthrough.ipynb``: it runs, it uses the public API only, it
leaves the matplotlib backend alone, and it is committed with the outputs of
its current cells.

The run executes the code cells in order in one namespace, as a kernel would,
with ``CI_SETTINGS`` predefined to small sizes. The sizes equal
``tests/test_simulate.py``'s ``TEST_CFG`` so the jitted round functions
compiled there are reused when both files run in one pytest process. The only
IPython magic the notebook may use, ``%matplotlib inline``, is dropped for
this run (it only makes Jupyter show figures inline).

The committed outputs come from ``python notebooks/execute.py``, which runs
the notebook in a real kernel and stores the SHA-256 of the code cells in the
notebook metadata; a test compares it with the cells as committed. Each
static check has a negative control on a small hand-made notebook.
"""

from __future__ import annotations

import ast
import base64
import copy
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from tests.test_simulate import TEST_SETTINGS

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"
CI_SETTINGS = dict(TEST_SETTINGS)
#: The one magic allowed: it only switches Jupyter to inline figures.
ALLOWED_MAGICS = {"%matplotlib inline"}


def _execute_module():
    spec = importlib.util.spec_from_file_location(
        "_walkthrough_execute", ROOT / "notebooks" / "execute.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _load(path: Path = NOTEBOOK) -> dict:
    return json.loads(path.read_text())


def _source(cell: dict) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _python(src: str) -> str:
    """The cell as plain Python: allowed magics blanked (line numbers kept);
    any other magic or shell escape raises ``ValueError``."""
    lines = []
    for line in src.split("\n"):
        s = line.strip()
        if s.startswith(("%", "!")):
            if s not in ALLOWED_MAGICS:
                raise ValueError(f"unsupported IPython syntax: {s!r}")
            line = ""
        lines.append(line)
    return "\n".join(lines)


def _private_imports(src: str) -> list[str]:
    """Imports of ``vipcore._src`` (any form) in one cell's source."""
    bad = []
    for node in ast.walk(ast.parse(_python(src))):
        if isinstance(node, ast.Import):
            bad += [a.name for a in node.names if a.name.startswith("vipcore._src")]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("vipcore._src"):
                bad.append(node.module)
            elif node.module == "vipcore":
                bad += [f"vipcore.{a.name}" for a in node.names if a.name == "_src"]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if "vipcore._src" in node.value:  # importlib.import_module("...")
                bad.append(node.value)
    return bad


def _backend_switches(src: str) -> list[int]:
    """Lines that call ``matplotlib.use`` (however imported) or
    ``pyplot.switch_backend``."""
    tree = ast.parse(_python(src))
    use_names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "matplotlib":
            use_names |= {a.asname or a.name for a in node.names if a.name == "use"}
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr in ("use", "switch_backend"):
            lines.append(node.lineno)
        elif isinstance(f, ast.Name) and f.id in use_names:
            lines.append(node.lineno)
    return lines


def _images(nb: dict) -> list[bytes]:
    out = []
    for c in _code_cells(nb):
        for o in c.get("outputs", []):
            data = o.get("data", {})
            if "image/png" in data:
                out.append(base64.b64decode(_source({"source": data["image/png"]})))
    return out


def _output_problems(nb: dict) -> list[str]:
    """Why ``nb`` is not committed with the outputs of one in-order run."""
    problems = []
    for i, c in enumerate(_code_cells(nb), start=1):
        if c.get("execution_count") != i:
            problems.append(f"code cell {i}: execution_count "
                            f"{c.get('execution_count')} (run top to bottom)")
        if not c.get("outputs"):
            problems.append(f"code cell {i}: no outputs")
        if any(o["output_type"] == "error" for o in c.get("outputs", [])):
            problems.append(f"code cell {i}: an error output")
    pngs = _images(nb)
    if not pngs:
        problems.append("no image/png output")
    if any(not p.startswith(b"\x89PNG\r\n\x1a\n") for p in pngs):
        problems.append("an image/png output is not a PNG")
    return problems


def _stale(nb: dict, source_hash) -> str | None:
    """Why the outputs are not from the current code cells, or ``None``."""
    meta = nb.get("metadata", {}).get("vipcore", {})
    if "source_sha256" not in meta:
        return "no metadata.vipcore.source_sha256 (run notebooks/execute.py)"
    if meta["source_sha256"] != source_hash(nb):
        return ("code cells changed since the outputs were made: "
                "run notebooks/execute.py")
    return None


# ------------------------------------------------------------ static checks


def test_notebook_imports_only_the_public_api():
    for i, c in enumerate(_code_cells(_load())):
        assert _private_imports(_source(c)) == [], f"code cell {i}"


def test_notebook_never_switches_the_matplotlib_backend():
    for i, c in enumerate(_code_cells(_load())):
        assert _backend_switches(_source(c)) == [], f"code cell {i}"


def test_notebook_is_committed_with_outputs():
    assert _output_problems(_load()) == []


def test_committed_outputs_are_from_the_current_cells():
    assert _stale(_load(), _execute_module().source_hash) is None


def test_the_static_checks_can_fail():
    """Negative controls: each check flags a notebook that breaks its rule."""
    assert _private_imports("from vipcore._src.apps.simulate import policy")
    assert _private_imports("import vipcore._src.planner as p")
    assert _private_imports("from vipcore import _src")
    assert _private_imports("m = importlib.import_module('vipcore._src.sweep')")
    assert not _private_imports("from vipcore.simulate import init_policy")
    assert _backend_switches("import matplotlib\nmatplotlib.use('Agg')") == [2]
    assert _backend_switches("import matplotlib as mpl\nmpl.use('Agg')") == [2]
    assert _backend_switches("from matplotlib import use as u\nu('Agg')") == [2]
    assert _backend_switches("plt.switch_backend('Agg')") == [1]
    assert _backend_switches("%matplotlib inline\nx = 1") == []
    with pytest.raises(ValueError, match="unsupported"):
        _python("%matplotlib agg")
    nb = _load()
    source_hash = _execute_module().source_hash
    bare = copy.deepcopy(nb)
    for c in _code_cells(bare):
        c["outputs"], c["execution_count"] = [], None
    assert len(_output_problems(bare)) == 2 * len(_code_cells(bare)) + 1
    shuffled = copy.deepcopy(nb)
    _code_cells(shuffled)[0]["execution_count"] = 99
    assert _output_problems(shuffled)
    edited = copy.deepcopy(nb)
    _code_cells(edited)[-1]["source"] += "\nprint('edited')"
    assert _stale(edited, source_hash) is not None
    del edited["metadata"]["vipcore"]
    assert _stale(edited, source_hash) is not None
    # the hash reads a cell stored as one string or as lines the same way
    lines = copy.deepcopy(nb)
    for c in _code_cells(lines):
        c["source"] = _source(c).splitlines(keepends=True)
    assert source_hash(lines) == source_hash(nb)


# ------------------------------------------------------------------ the run


def test_notebook_runs(capsys, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import matplotlib.pyplot as plt

    ns: dict = {"__name__": "__main__", "CI_SETTINGS": dict(CI_SETTINGS)}
    try:
        for i, c in enumerate(_code_cells(_load())):
            code = compile(_python(_source(c)), f"{NOTEBOOK.name}[code cell {i}]",
                           "exec")
            exec(code, ns)
    finally:
        plt.close("all")
    out = capsys.readouterr().out
    assert "objective  VIP" in out and "Prop 4.3" in out and "Validity gates" in out
    # what the notebook computed is consistent with its own settings
    cfg = ns["cfg"]
    assert cfg.steps == CI_SETTINGS["steps"] and cfg.seeds == CI_SETTINGS["seeds"]
    assert ns["n_vip"].sum() == cfg.budget
    assert ns["obj_v"] <= ns["obj_u"] * (1 + 1e-6)  # VIP is optimal for (5)
    assert (ns["out"] / "report.md").exists()
    shutil.rmtree(ns["out"])
