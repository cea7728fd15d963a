"""Every docstring example of every ``vipcore`` module runs in the default suite.

Modules are found by walking the package (``__main__`` excluded: importing it
runs the command line). Examples run with ``NORMALIZE_WHITESPACE`` and
``ELLIPSIS``, in float32 (x64 off, whatever ``JAX_ENABLE_X64`` says), since
their printed numbers are the float32 ones a user sees by default.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import jax
import pytest

import vipcore

FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
#: Optional dependencies (extras); a module that needs a missing one is
#: skipped (its own marked job runs it), any other import error fails.
OPTIONAL = {"torch", "trl", "transformers", "datasets", "verl", "ray",
            "sentence_transformers", "tensordict"}


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(vipcore.__path__, "vipcore.")
                  if not m.name.endswith("__main__"))


def _tests(name: str) -> list[doctest.DocTest]:
    try:
        mod = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] in OPTIONAL:
            return []
        raise
    return [t for t in doctest.DocTestFinder().find(mod, name) if t.examples]


MODULES = [name for name in _modules() if _tests(name)]


def test_the_walk_finds_the_documented_modules():
    assert len(MODULES) >= 20
    for name in ("vipcore._src.variance", "vipcore._src.montecarlo",
                 "vipcore._src.stats.api", "vipcore._src.allocation.solve",
                 "vipcore._src.predict.gp", "vipcore._src.sweep.analysis"):
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    out: list[str] = []
    with jax.enable_x64(False):
        for test in _tests(name):
            runner.run(test, out=out.append)
    res = runner.summarize(verbose=False)
    assert res.failed == 0, "".join(out)
