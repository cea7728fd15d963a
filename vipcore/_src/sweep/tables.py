"""Load a sweep source (file or in-memory table) as named columns.

Every reader in :mod:`.io` works on a :class:`Table`: named columns of raw
Python values, one entry per row, plus a way to name the place of a row in
the source (``FILE:LINE`` for JSONL and CSV, ``SOURCE: row R`` for Parquet,
Arrow and in-memory tables, ``R`` counted from 0 as in pandas and
Hugging Face ``datasets``). Loading checks only the container (valid UTF-8,
one JSON object per line, no duplicate keys, rectangular CSV); what the
values mean is checked by :mod:`.io`.

* JSONL is decoded line by line (an object split over two lines, or two
  objects on one line, is an error, not silently re-joined). Duplicate keys
  in an object are errors: lines without a backslash are checked by counting
  each key's quoted name, the others by decoding them once more with a hook
  that sees every key.
* CSV goes through :mod:`csv` in one pass; line numbers (quoted fields may
  span lines) are worked out again only when an error is reported. A field
  over :func:`csv.field_size_limit` is a ``ValueError`` naming the line.
* Parquet and Arrow (IPC file or stream, Feather v2) need ``pyarrow``.
"""

from __future__ import annotations

import csv
import io
import json
import json.scanner
import os
from collections.abc import Callable
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from vipcore._src._files import read_text

__all__ = ["MISSING", "Table", "load_file", "from_object", "file_format"]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


#: Placeholder for a key absent from one JSONL object.
MISSING = _Missing()

#: File formats and their extensions.
FORMATS = {
    "jsonl": (".jsonl", ".ndjson", ".json"),
    "csv": (".csv", ".tsv"),
    "parquet": (".parquet", ".pq"),
    "arrow": (".arrow", ".feather", ".ipc"),
}


class Table(NamedTuple):
    """Named columns of raw values.

    Attributes:
      source: the file name, or a description of the in-memory object.
      columns: column names in order of first appearance.
      n_rows: rows (JSONL objects, CSV data rows, table rows).
      get: ``get(name)`` returns the column as a list (``MISSING`` where a
        JSONL object lacks the key).
      where: ``where(i)`` names row ``i`` (``"FILE:LINE"`` or ``"SRC: row i"``).
      text_cells: True when every cell is text (CSV): numbers still need parsing.
    """

    source: str
    columns: list[str]
    n_rows: int
    get: Callable[[str], list]
    where: Callable[[int], str]
    text_cells: bool


def file_format(path: Path, fmt: str | None) -> str:
    """``fmt`` checked, or the format from the extension or the first bytes."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(
                f"format must be one of {', '.join(map(repr, FORMATS))}; got {fmt!r}")
        return fmt
    ext = path.suffix.lower()
    for name, exts in FORMATS.items():
        if ext in exts:
            return name
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1") or head.startswith(b"\xff\xff\xff\xff"):
        return "arrow"
    return "jsonl" if head.startswith((b"{", b"\xef\xbb\xbf{")) else "csv"


def load_file(path: str | os.PathLike, fmt: str | None = None) -> Table:
    """The :class:`Table` of a JSONL, CSV, Parquet or Arrow file."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a file")
    kind = file_format(path, fmt)
    if kind == "jsonl":
        return _load_jsonl(path)
    if kind == "csv":
        return _load_csv(path)
    return _from_arrow(_read_arrow(path, kind), str(path))


# --------------------------------------------------------------------------
# JSONL


def _load_jsonl(path: Path) -> Table:
    text = read_text(path).removeprefix("\ufeff")
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValueError(f"{path}: empty file")
    try:
        objs, numbers = _scan_lines(lines), None  # row i is line i + 1
    except (ValueError, StopIteration):  # a blank line, bad JSON, a non-object
        objs, numbers = _jsonl_lines(path, lines, json.JSONDecoder().decode)
    line_of = (lambda i: i + 1) if numbers is None else numbers.__getitem__
    keys0 = objs[0].keys()
    uniform = all(map(keys0.__eq__, map(dict.keys, objs)))
    columns = list(keys0) if uniform else list(dict.fromkeys(chain.from_iterable(objs)))
    _check_duplicate_keys(path, lines, objs, numbers, line_of, columns, uniform)

    def get(name: str) -> list:
        try:
            return list(map(itemgetter(name), objs))
        except KeyError:
            return [o.get(name, MISSING) for o in objs]

    return Table(str(path), columns, len(objs), get,
                 lambda i: f"{path}:{line_of(i)}", False)


def _scan_lines(lines: list[str]) -> list[dict]:
    """Each line exactly one JSON object (no space around it), else ValueError."""
    scan = json.scanner.make_scanner(json.JSONDecoder())
    objs = []
    append = objs.append
    for line in lines:
        obj, end = scan(line, 0)
        if end != len(line) or obj.__class__ is not dict:
            raise ValueError(line)
        append(obj)
    return objs


def _jsonl_lines(path: Path, lines: list[str], decode) -> tuple[list, list[int]]:
    objs, numbers = [], []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = decode(line)
        except ValueError as err:
            msg = getattr(err, "msg", str(err))
            raise ValueError(f"{path}:{lineno}: invalid JSON ({msg}); each line "
                             "must hold one complete JSON object") from None
        if obj.__class__ is not dict:
            raise ValueError(f"{path}:{lineno}: expected a JSON object, got "
                             f"{type(obj).__name__}")
        objs.append(obj)
        numbers.append(lineno)
    return objs, numbers


def _no_duplicates(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        for k, _ in pairs:
            if k in seen:
                raise _DuplicateKey(k)
            seen.add(k)
    return out


class _DuplicateKey(Exception):
    pass


def _check_duplicate_keys(path, lines, objs, numbers, line_of, keys, uniform) -> None:
    """Raise on an object with a repeated key (``json`` keeps the last one).

    A line without a backslash spells every key literally, so a key ``k``
    appears in it as ``"k"`` once per occurrence; when the count over those
    lines equals the number of objects holding ``k``, none repeats it. Lines
    with a backslash, and lines where a count does not add up, are decoded
    again with a hook that sees every key.
    """
    text_lines = lines if numbers is None else [lines[n - 1] for n in numbers]
    joined = "\n".join(text_lines)
    suspects = ({i for i, s in enumerate(text_lines) if "\\" in s}
                if "\\" in joined else set())
    for k in keys:
        pat = json.dumps(k, ensure_ascii=False)
        if pat != f'"{k}"':  # a key that needs escapes: check every line
            suspects = set(range(len(objs)))
            break
        holders = len(objs) if uniform else sum(k in o for o in objs)
        extra = sum(text_lines[i].count(pat) for i in suspects)
        held_by_suspects = sum(k in objs[i] for i in suspects)
        if joined.count(pat) - extra != holders - held_by_suspects:
            suspects |= {i for i, s in enumerate(text_lines) if s.count(pat) > 1}
    hooked = json.JSONDecoder(object_pairs_hook=_no_duplicates).decode
    for i in sorted(suspects):
        try:
            hooked(text_lines[i])
        except _DuplicateKey as dup:
            raise ValueError(
                f"{path}:{line_of(i)}: duplicate key {dup.args[0]!r} in one "
                "object (which value is meant?)") from None


# --------------------------------------------------------------------------
# CSV


def _csv_rows(path: Path, text: str) -> csv.reader:
    delim = "\t" if path.suffix.lower() == ".tsv" else ","
    return csv.reader(io.StringIO(text, newline=""), delimiter=delim)


def _load_csv(path: Path) -> Table:
    text = read_text(path).removeprefix("\ufeff")
    reader = _csv_rows(path, text)
    raw: list[list[str]] = []
    try:
        raw.extend(reader)
    except csv.Error as err:
        raise ValueError(
            f"{path}:{reader.line_num}: cannot parse CSV ({err}); a field longer "
            f"than csv.field_size_limit() = {csv.field_size_limit()} characters "
            "needs a larger limit, or convert the file to JSONL") from None
    start = next((i for i, r in enumerate(raw) if any(c.strip() for c in r)), None)
    if start is None:
        raise ValueError(f"{path}: empty file (no header row)")
    cols = [h.strip() for h in raw[start]]
    if len(set(cols)) != len(cols):
        raise ValueError(f"{path}:{_csv_line(path, text, start)}: duplicate "
                         f"column names {cols}")
    ncol = len(cols)
    rows = raw[start + 1:]
    if not all(rows) or set(map(len, rows)) != {ncol}:  # blank or short rows
        rows = _csv_body(path, text, raw, start, cols)
        keep = [i for i in range(start + 1, len(raw))
                if raw[i] and len(raw[i]) == ncol]
    else:
        keep = range(start + 1, len(raw))
    if not rows:
        raise ValueError(f"{path}: no data rows after the header")

    def get(name: str) -> list:
        return list(map(itemgetter(cols.index(name)), rows))

    return Table(str(path), cols, len(rows), get,
                 lambda i: f"{path}:{_csv_line(path, text, keep[i])}", True)


def _csv_body(path: Path, text: str, raw: list, start: int, cols: list) -> list:
    """Data rows without blank lines; a row of the wrong length is an error
    unless it is only whitespace."""
    ncol = len(cols)
    rows = []
    for i in range(start + 1, len(raw)):
        r = raw[i]
        if len(r) == ncol:
            rows.append(r)
        elif r and any(c.strip() for c in r):
            raise ValueError(f"{path}:{_csv_line(path, text, i)}: expected {ncol} "
                             f"fields ({','.join(cols)}), got {len(r)}")
    return rows


def _csv_line(path: Path, text: str, raw_index: int) -> int:
    """The line on which raw CSV row ``raw_index`` ends (read again)."""
    reader = _csv_rows(path, text)
    for i, _ in enumerate(reader):
        if i == raw_index:
            return reader.line_num
    return reader.line_num


# --------------------------------------------------------------------------
# Arrow, Parquet and in-memory tables


def _read_arrow(path: Path, kind: str):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(
            f"{path}: reading {kind.capitalize()} needs pyarrow (pip install "
            "'vipcore[parquet]'); or convert the file to JSONL/CSV") from None
    try:
        if kind == "parquet":
            return pq.read_table(path)
        with pa.memory_map(str(path)) as src:
            try:
                return pa.ipc.open_file(src).read_all()
            except pa.ArrowInvalid:
                src.seek(0)
                return pa.ipc.open_stream(src).read_all()
    except Exception as err:  # pyarrow's own error types
        raise ValueError(f"{path}: cannot read as {kind.capitalize()}: {err}") from None


def _from_arrow(table, source: str) -> Table:
    cols = [str(c) for c in table.column_names]
    if len(set(cols)) != len(cols):
        raise ValueError(f"{source}: duplicate column names {cols}")
    return Table(source, cols, table.num_rows,
                 lambda name: table.column(name).to_pylist(),
                 lambda i: f"{source}: row {i}", False)


def _plain(values: list) -> list:
    """NumPy scalars (from pandas or NumPy columns) as Python values."""
    if any(isinstance(v, np.generic) for v in values):
        return [v.item() if isinstance(v, np.generic) else v for v in values]
    return values


def from_object(obj: Any, source: str | None = None) -> Table:
    """A :class:`Table` from an in-memory object.

    Accepted: a Hugging Face ``datasets.Dataset``, a ``pyarrow.Table`` or
    ``RecordBatch``, a pandas ``DataFrame``, a mapping of column name to
    sequence, or a sequence of mappings (records).
    """
    name = source or type(obj).__name__
    if hasattr(obj, "column_names") and hasattr(obj, "num_rows"):
        if not isinstance(obj.num_rows, int):  # a datasets.DatasetDict
            raise ValueError(f"{name} holds several splits ({', '.join(map(str, obj))})"
                             "; pass one of them, e.g. ds['train']")
        # a datasets.Dataset as one Arrow table (any row selection applied)
        table = obj.with_format("arrow")[:] if hasattr(obj, "with_format") else obj
        return _from_arrow(table, name)
    if hasattr(obj, "keys") and callable(obj.keys) and hasattr(obj, "__getitem__") \
            and not hasattr(obj, "to_dict"):
        return _from_columns({str(k): obj[k] for k in obj.keys()}, name)
    if hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # pandas
        return _from_columns({str(k): v for k, v in obj.to_dict("list").items()},
                             name)
    if isinstance(obj, list | tuple) and all(isinstance(r, dict) for r in obj):
        if not obj:
            raise ValueError(f"{name}: no rows")
        cols = list(dict.fromkeys(chain.from_iterable(obj)))
        return Table(name, [str(c) for c in cols], len(obj),
                     lambda c: _plain([r.get(c, MISSING) for r in obj]),
                     lambda i: f"{name}: row {i}", False)
    raise ValueError(
        f"cannot read {name}: expected a datasets.Dataset, a pyarrow.Table, a "
        "pandas DataFrame, a dict of columns or a list of dicts")


def _from_columns(columns: dict, name: str) -> Table:
    lens = {k: len(v) for k, v in columns.items()}
    if len(set(lens.values())) > 1:
        raise ValueError(f"{name}: columns differ in length: {lens}")
    n = next(iter(lens.values()), 0)
    if not n:
        raise ValueError(f"{name}: no rows")
    return Table(name, list(columns), n, lambda c: _plain(list(columns[c])),
                 lambda i: f"{name}: row {i}", False)
