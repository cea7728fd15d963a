"""``(prompt id, p_hat)`` tables in, allocations out, for ``vipcore allocate``.

Inputs (a path, or ``-`` for stdin):

* CSV with a header row (``.csv``, ``.tsv`` or anything whose first row names
  columns): the columns ``prompt_id`` and ``p_hat`` by default;
* JSON Lines (``.jsonl``/``.ndjson``): one object per line with those keys
  (or one number per line);
* JSON: a list of numbers, a list of such objects, or an object with a
  ``"p_hat"`` list;
* ``.npy``: a 1-D float array;
* one number per line (an optional one-word header, ``#`` comments and blank
  lines are allowed).

Every number is read exactly (as a decimal) and checked against [0, 1]
before any conversion, so ``1.0000000001`` is refused rather than rounded,
and a 5000-digit integer is named by its digits, not as ``inf``. Every
error names the file and the line. Ids must be unique.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from vipcore._src._files import read_text

__all__ = ["Table", "read_table", "write_allocation", "OUT_SUFFIXES"]

#: Output formats of ``--out``, by suffix.
OUT_SUFFIXES = (".csv", ".jsonl", ".json")
_BARE_HEADERS = ("p_hat", "p", "prob", "probability")


class Table(NamedTuple):
    """Probabilities read from a file, with ids when the file has them."""

    p: np.ndarray  # float64 (or the .npy dtype)
    ids: list | None  # one per row, or None
    name: str  # the file, for messages


def _short(text: str) -> str:
    text = text.strip()
    if len(text) <= 40:
        return repr(text)
    return f"'{text[:12]}...{text[-6:]}' ({len(text)} characters)"


class _Reader:
    """Shared state of one read: file name and column names for messages."""

    def __init__(self, name: str, id_col: str, p_col: str, id_required: bool):
        self.name, self.id_col, self.p_col = name, id_col, p_col
        self.id_required = id_required

    def fail(self, line: int | None, msg: str):
        where = f"{self.name}: line {line}: " if line else f"{self.name}: "
        raise ValueError(where + msg)

    def number(self, value: Any, line: int, text: str | None = None, *,
               from_text: bool = False) -> float:
        """A probability from a decimal (or CSV text), checked exactly in [0, 1]."""
        shown = _short(text if text is not None else str(value))
        if isinstance(value, str) and from_text:
            try:
                value = Decimal(value.strip())
            except InvalidOperation:
                self.fail(line, f"expected a number for {self.p_col}, got {shown}")
        if not isinstance(value, Decimal) or isinstance(value, bool):
            self.fail(line, f"expected a number for {self.p_col}, got {shown}")
        if value.is_nan():
            self.fail(line, f"{self.p_col} must not be NaN")
        if not (0 <= value <= 1):
            self.fail(line, f"{self.p_col} must lie in [0, 1]; got {shown}")
        return float(value)

    def table(self, rows: list[tuple[int, Any, float]], has_ids: bool) -> Table:
        if not rows:
            self.fail(None, f"no {self.p_col} values (the file is empty)")
        ids = None
        if has_ids:
            seen: dict[str, int] = {}
            for line, pid, _ in rows:
                key = str(pid)
                if key in seen:
                    self.fail(line, f"duplicate {self.id_col} {_short(key)} "
                                    f"(first on line {seen[key]})")
                seen[key] = line
            ids = [pid for _, pid, _ in rows]
        return Table(np.asarray([v for *_, v in rows], np.float64), ids, self.name)

    # --------------------------------------------------------------- JSON
    def record(self, obj: Any, line: int, text: str) -> tuple[Any, float]:
        """``(id, p)`` of one JSON value: a record or a bare number."""
        if isinstance(obj, dict):
            if self.p_col not in obj:
                self.fail(line, f"no key {self.p_col!r} (keys: "
                                f"{', '.join(map(str, obj)) or 'none'}); "
                                "choose one with --p-col")
            pid = obj.get(self.id_col)
            if self.id_required and self.id_col not in obj:
                self.fail(line, f"no key {self.id_col!r}")
            if pid is not None and not isinstance(pid, str | Decimal):
                self.fail(line, f"{self.id_col} must be a string or number; "
                                f"got {_short(json.dumps(pid, default=str))}")
            value = obj[self.p_col]
            return pid, self.number(value, line, json.dumps(value, default=str))
        return None, self.number(obj, line, text)

    def records(self, items: list[tuple[int, Any, str]]) -> Table:
        rows, with_id = [], 0
        for line, obj, text in items:
            pid, p = self.record(obj, line, text)
            with_id += pid is not None
            rows.append((line, _plain(pid), p))
        if 0 < with_id < len(rows):
            first = next(line for line, pid, _ in rows if pid is None)
            self.fail(first, f"no {self.id_col!r} here, but other rows have one")
        return self.table(rows, with_id > 0)


def _plain(pid):
    """JSON ids as the user wrote them: Decimal integers back to ``int``."""
    if isinstance(pid, Decimal):
        return int(pid) if pid == pid.to_integral_value() else float(pid)
    return pid


def _reject_constant(name):
    raise ValueError(f"{name} is not a number")


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=Decimal,
                            parse_constant=_reject_constant)


def _json_error(r: _Reader, text: str, err: Exception, pos: int | None = None):
    if isinstance(err, json.JSONDecodeError):
        r.fail(err.lineno, f"invalid JSON ({err.msg})")
    line = text.count("\n", 0, pos or 0) + 1
    r.fail(line, f"invalid JSON ({err})")


def _json_list_items(r: _Reader, text: str) -> list[tuple[int, Any, str]]:
    """The items of a top-level JSON list, each with its line and text."""
    items, pos = [], text.index("[") + 1
    ws = " \t\r\n"
    while True:
        while pos < len(text) and text[pos] in ws:
            pos += 1
        if pos < len(text) and text[pos] == "]":
            break
        try:
            obj, end = _DECODER.raw_decode(text, pos)
        except ValueError as err:
            _json_error(r, text, err, pos)
        items.append((text.count("\n", 0, pos) + 1, obj, text[pos:end]))
        pos = end
        while pos < len(text) and text[pos] in ws:
            pos += 1
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos >= len(text) or text[pos] != "]":
            r.fail(text.count("\n", 0, pos) + 1, "invalid JSON (expected , or ])")
    if text[pos + 1:].strip():
        r.fail(text.count("\n", 0, pos + 1) + 1, "invalid JSON (extra data)")
    return items


def _from_json(r: _Reader, text: str) -> Table:
    if text.lstrip().startswith("["):
        return r.records(_json_list_items(r, text))
    try:
        obj = _DECODER.decode(text)
    except ValueError as err:
        _json_error(r, text, err)
    if not isinstance(obj, dict):
        r.fail(1, "expected a JSON list, or an object with a list of "
                  f"{r.p_col!r}")
    if r.p_col not in obj or not isinstance(obj[r.p_col], list):
        r.fail(1, f"a JSON object needs a {r.p_col!r} list")
    values = obj[r.p_col]
    return r.records([(1, v, str(v)) for v in values])


def _from_jsonl(r: _Reader, text: str) -> Table:
    items = []
    for line, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = _DECODER.decode(raw)
        except ValueError as err:
            r.fail(line, f"invalid JSON ({getattr(err, 'msg', err)}); JSON Lines "
                         "needs one complete value per line")
        items.append((line, obj, raw))
    return r.records(items)


def _csv_rows(r: _Reader, text: str, delimiter: str):
    """``(line, cells)`` of the non-blank, non-comment rows."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        for cells in reader:
            if not cells or not "".join(cells).strip():
                continue
            if cells[0].lstrip().startswith("#"):
                continue
            yield reader.line_num, cells
    except csv.Error as err:
        r.fail(reader.line_num, f"malformed CSV ({err})")


def _from_csv(r: _Reader, text: str, delimiter: str) -> Table:
    rows_in = _csv_rows(r, text, delimiter)
    first = next(rows_in, None)
    if first is None:
        return r.table([], False)
    line, header = first
    names = [h.strip() for h in header]
    if r.p_col not in names:
        r.fail(line, f"no column {r.p_col!r} (columns: {', '.join(names)}); "
                     "choose one with --p-col")
    ip = names.index(r.p_col)
    has_ids = r.id_col in names
    if r.id_required and not has_ids:
        r.fail(line, f"no column {r.id_col!r} (columns: {', '.join(names)})")
    ii = names.index(r.id_col) if has_ids else None
    rows = []
    for line, cells in rows_in:
        if len(cells) != len(names):
            r.fail(line, f"expected {len(names)} fields (as the header), "
                         f"got {len(cells)}")
        rows.append((line, cells[ii] if has_ids else None,
                     r.number(cells[ip], line, from_text=True)))
    return r.table(rows, has_ids)


def _from_lines(r: _Reader, text: str) -> Table:
    rows = []
    for line, raw in enumerate(text.splitlines(), 1):
        value = raw.split("#", 1)[0].strip().rstrip(",")
        if not value:
            continue
        if not rows and value.lower() in (*_BARE_HEADERS, r.p_col.lower()):
            continue
        try:
            d = Decimal(value)
        except InvalidOperation:
            r.fail(line, f"expected one number per line, got {_short(raw)}")
        rows.append((line, None, r.number(d, line, value)))
    return r.table(rows, False)


def _looks_like_header(text: str, delimiter: str) -> bool:
    for raw in text.splitlines():
        s = raw.strip()
        if s and not s.startswith("#"):
            return delimiter in s or not _is_number(s.rstrip(","))
    return False


def _is_number(s: str) -> bool:
    try:
        Decimal(s)
    except InvalidOperation:
        return s.lower() in _BARE_HEADERS
    return True


def _read_source(source: str) -> tuple[str, str]:
    if source == "-":
        stream = sys.stdin
        data = stream.buffer.read() if hasattr(stream, "buffer") else None
        if data is None:
            return "<stdin>", stream.read()
        return "<stdin>", _decode(data, "<stdin>")
    path = Path(source)
    if not path.exists():
        raise ValueError(f"{source}: no such file")
    if path.is_dir():
        raise ValueError(f"{source}: is a directory, not a file")
    return source, read_text(path)


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        col = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise ValueError(f"{name}: line {line}, column {col}: not valid UTF-8 "
                         f"({err.reason})") from None


def _read_npy(source: str) -> Table:
    try:
        arr = np.load(source, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ValueError(f"{source}: not a readable .npy array ({err})") from None
    if arr.ndim != 1 or arr.dtype.kind not in "fiu":
        raise ValueError(f"{source}: expected a 1-D numeric array; got shape "
                         f"{arr.shape}, dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{source}: no p_hat values (the array is empty)")
    return Table(arr, None, source)


def read_table(source: str, *, id_col: str = "prompt_id", p_col: str = "p_hat",
               id_required: bool = False) -> Table:
    """Read ids and probabilities from ``source`` (see the module doc)."""
    suffix = Path(source).suffix.lower() if source != "-" else ""
    if suffix == ".npy":
        if not Path(source).is_file():
            raise ValueError(f"{source}: no such file")
        return _read_npy(source)
    name, text = _read_source(source)
    r = _Reader(name, id_col, p_col, id_required)
    head = text.lstrip()[:1]
    if suffix in (".jsonl", ".ndjson"):
        return _from_jsonl(r, text)
    if suffix == ".json" or (suffix == "" and head == "["):
        return _from_json(r, text)
    if suffix == "" and head == "{":
        first = text.lstrip().splitlines()[0]
        return (_from_jsonl(r, text) if _one_json_value(first)
                else _from_json(r, text))
    delimiter = "\t" if suffix == ".tsv" else ","
    if _looks_like_header(text, delimiter):
        return _from_csv(r, text, delimiter)
    return _from_lines(r, text)


def _one_json_value(line: str) -> bool:
    try:
        _DECODER.decode(line)
    except ValueError:
        return False
    return True


def write_allocation(path: Path, table: Table, n: np.ndarray, id_col: str,
                     p_col: str) -> None:
    """Write ids, p_hat and counts as CSV, JSON Lines or JSON (by suffix)."""
    from vipcore._src._files import atomic_write_text

    key = id_col if table.ids is not None else "index"
    ids = table.ids if table.ids is not None else list(range(len(n)))
    rows = [{key: i, p_col: float(p), "n": int(k)}
            for i, p, k in zip(ids, table.p, n, strict=True)]
    suffix = path.suffix.lower()
    if suffix == ".csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=[key, p_col, "n"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        text = buf.getvalue()
    elif suffix == ".jsonl":
        text = "".join(json.dumps(row) + "\n" for row in rows)
    else:
        text = json.dumps(rows, indent=1) + "\n"
    atomic_write_text(path, text)
