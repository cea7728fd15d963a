"""Applications built on the core: the CLI, ``verify``, ``simulate``, ``bench``.

The core modules of :mod:`vipcore._src` never import anything from here (a
test walks the import graph), and ``import vipcore`` loads none of it.
"""
