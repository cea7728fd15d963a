"""File handling every reader and writer shares.

* :func:`refuse_overwrite`: no command ever writes over one of its inputs.
* :func:`read_text`: UTF-8 text whose decoding errors name file, line and
  column (a ``ValueError``, so the CLI prints one line).
* :func:`atomic_write_bytes` / :func:`atomic_write_text`: write to a
  temporary file in the same directory and rename, so a crash never leaves
  a half-written output.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["refuse_overwrite", "read_text", "atomic_write_bytes",
           "atomic_write_text"]


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_overwrite(inputs: Iterable[str | os.PathLike],
                     outputs: Iterable[str | os.PathLike]) -> None:
    """Raise ``ValueError`` if an output path is one of the input files.

    Compares resolved paths and, for existing files, device and inode (so a
    symlink or hard link to an input is caught too).

    >>> refuse_overwrite(["a.jsonl"], ["out/summary.json"])  # different: fine
    """
    ins = [Path(p) for p in inputs if p is not None and str(p) != "-"]
    for out in outputs:
        o = Path(out)
        for i in ins:
            if o.resolve() == i.resolve() or _same(o, i):
                raise ValueError(
                    f"refusing to write {o}: it is the input file {i} "
                    "(choose another output directory or name)")


def read_text(path: str | os.PathLike) -> str:
    """The UTF-8 text of ``path``; undecodable bytes name file, line and column."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        col = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise ValueError(f"{path}: line {line}, column {col}: not valid UTF-8 "
                         f"({err.reason})") from None


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                               dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))
