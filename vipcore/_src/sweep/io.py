"""Reading sweep results, running a sweep from a callable, and the demo data.

File formats (one row per rollout is *long*, one row per prompt is *wide*):

* JSONL long: ``{"prompt_id": "q1", "score": 1}`` per line, optional
  ``"step"`` (checkpoint) and ``"rollout"`` (an index, ignored).
* JSONL wide: ``{"prompt_id": "q1", "scores": [1, 0, 1]}``, optional ``"step"``.
* CSV long: header ``prompt_id,score[,step]``; CSV wide: ``prompt_id,scores``
  where a ``scores`` cell is ``"[1, 0, 1]"``, ``"1 0 1"`` or ``"1;0;1"``.
* Parquet with the same columns (``scores`` a list column), when ``pyarrow``
  is importable (``pip install vipcore[parquet]``).

Rows of one prompt (within one step) are merged, so a prompt may be split
over several lines in any order. Prompt ids are strings or integers (JSON
keeps the type; CSV ids are strings). Steps that are all integers (or, in
CSV, integer strings) are ordered numerically, other labels by first
appearance.

Errors name the file, the line (CSV and JSONL; the row for Parquet) and what
is wrong. Scores must be numbers in [0, 1]; with ``clip=True`` finite numbers
outside are clipped and counted in :attr:`SweepData.n_clipped` (non-numbers
and NaN remain errors). Input files are only read, never modified.

Parsing uses only the standard library. JSONL is first parsed in one
``json.loads`` over the whole file with vectorised checks; if anything looks
wrong the per-line reader runs instead and reports the exact line. CSV goes
through ``csv.reader`` in one tight loop. Measured on this shared 2-core CPU
(``benchmarks/bench_sweep.py``), 10^6 rows read and analysed in about 1 s of
CPU time for JSONL and 0.6 s for CSV, far below the 10 s budget.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "SweepData",
    "read_scores",
    "resolve_step",
    "select_step",
    "run_sweep",
    "demo_data",
    "write_signal_jsonl",
]

#: Column names the readers understand.
KNOWN_COLUMNS = ("prompt_id", "score", "scores", "step", "rollout")


class SweepData(NamedTuple):
    """Scores grouped by (step, prompt), in the flat ragged layout.

    Attributes:
      prompt_ids: prompt id of each group.
      steps: step label of each group, or None when the input had no steps.
      scores: ``float64`` scores, group by group (contiguous).
      counts: rollouts per group (``int64``, all ``>= 1``).
      step_labels: the distinct steps in order, or None.
      n_clipped: scores clipped into [0, 1] (only with ``clip=True``).
      source: where the data came from (file name or ``"demo ..."``).
      n_rows: rollouts read.
    """

    prompt_ids: list
    steps: list | None
    scores: np.ndarray
    counts: np.ndarray
    step_labels: list | None
    n_clipped: int
    source: str
    n_rows: int


def resolve_step(data: SweepData, step: Any = None) -> Any:
    """The step label ``step`` refers to (None: the last step; labels also
    match by their string form, so ``"100"`` finds step ``100``)."""
    if data.steps is None:
        if step is not None:
            raise ValueError(
                f"{data.source} has no step column; cannot select step {step!r}"
            )
        return None
    labels = data.step_labels
    if step is None:
        return labels[-1]
    for lab in labels:
        if lab == step or str(lab) == str(step):
            return lab
    shown = ", ".join(map(str, labels[:10])) + (" ..." if len(labels) > 10 else "")
    raise ValueError(f"step {step!r} not in {data.source} (steps: {shown})")


def select_step(
    data: SweepData, step: Any = None
) -> tuple[list, np.ndarray, np.ndarray]:
    """``(prompt_ids, scores, counts)`` of one step (all data if no steps).

    ``step=None`` picks the last step; see :func:`resolve_step`.
    """
    lab = resolve_step(data, step)
    if lab is None:
        return data.prompt_ids, data.scores, data.counts
    idx = np.flatnonzero(np.array([s == lab for s in data.steps], dtype=bool))
    lo, hi = int(idx[0]), int(idx[-1]) + 1  # groups of one step are contiguous
    starts = np.concatenate([[0], np.cumsum(data.counts)])
    return (
        data.prompt_ids[lo:hi],
        data.scores[starts[lo]:starts[hi]],
        data.counts[lo:hi],
    )


# --------------------------------------------------------------------------
# Readers


def _fmt_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in ("jsonl", "csv", "parquet"):
            raise ValueError(f"format must be 'jsonl', 'csv' or 'parquet'; got {fmt!r}")
        return fmt
    ext = path.suffix.lower()
    if ext in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if ext in (".csv", ".tsv"):
        return "csv"
    if ext in (".parquet", ".pq"):
        return "parquet"
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    if head.startswith(b"PAR1"):
        return "parquet"
    return "jsonl" if head.startswith(b"{") else "csv"


def read_scores(
    path: str | os.PathLike,
    *,
    fmt: str | None = None,
    clip: bool = False,
    ignore_extra_columns: bool = False,
) -> SweepData:
    """Read a sweep file (JSONL, CSV or Parquet; long or wide).

    Args:
      path: the file; the format comes from the extension (``.jsonl``,
        ``.ndjson``, ``.json``, ``.csv``, ``.parquet``) or its first bytes.
      fmt: force ``"jsonl"``, ``"csv"`` or ``"parquet"``.
      clip: clip finite scores outside [0, 1] instead of raising; the number
        clipped is returned in ``n_clipped``.
      ignore_extra_columns: ignore columns other than ``prompt_id``,
        ``score``/``scores``, ``step`` and ``rollout`` instead of raising.

    Raises:
      ValueError: naming the file, the line and the problem.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a file")
    kind = _fmt_of(path, fmt)
    reader = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet}[kind]
    ids, scores, steps = reader(path, clip, ignore_extra_columns)
    return _group(str(path), ids, scores, steps, clip)


def _columns_error(where: str, found: Iterable[str], extra: set[str]) -> ValueError:
    return ValueError(
        f"{where}: unknown column(s) {', '.join(sorted(map(repr, extra)))}; "
        f"known: {', '.join(KNOWN_COLUMNS)} (found: {', '.join(map(str, found))}); "
        "pass --ignore-extra-columns (ignore_extra_columns=True) to skip them"
    )


def _layout(where: str, cols: Sequence[str], ignore_extra: bool) -> str:
    """'long' or 'wide' from the column names, or a clear error."""
    colset = set(cols)
    found = ", ".join(map(str, cols))
    if "prompt_id" not in colset:
        raise ValueError(
            f"{where}: missing column 'prompt_id' (found: {found}); need prompt_id "
            "plus score (long format) or scores (wide format)"
        )
    if "score" in colset and "scores" in colset:
        raise ValueError(f"{where}: has both 'score' and 'scores'; use one layout")
    if "score" not in colset and "scores" not in colset:
        raise ValueError(
            f"{where}: missing column 'score' (long format) or 'scores' (wide "
            f"format) (found: {found})"
        )
    extra = colset - set(KNOWN_COLUMNS)
    if extra and not ignore_extra:
        raise _columns_error(where, cols, extra)
    return "long" if "score" in colset else "wide"


_INF = float("inf")


def _bad_score(where: str, value: Any, clip: bool) -> ValueError:
    if isinstance(value, float) and math.isnan(value):
        what = "is NaN"
    elif isinstance(value, float) and math.isinf(value):
        what = "is infinite"
    elif isinstance(value, int | float) and not isinstance(value, bool):
        what = "is outside [0, 1] (pass --clip / clip=True to clip it)"
    else:
        what = "is not a number"
    return ValueError(f"{where}: score {value!r} {what}")


def _check_id(where: str, pid: Any) -> None:
    if isinstance(pid, bool) or not isinstance(pid, str | int):
        raise ValueError(
            f"{where}: prompt_id must be a string or an integer; got {pid!r}"
        )
    if pid == "":
        raise ValueError(f"{where}: empty prompt_id")


def _check_step(where: str, step: Any) -> None:
    if isinstance(step, bool) or not isinstance(step, str | int) or step == "":
        raise ValueError(f"{where}: step must be an integer or a label; got {step!r}")


def _read_jsonl(path: Path, clip: bool, ignore_extra: bool):
    """Fast path (whole file, vectorised checks); on any doubt the per-line
    reader below runs instead and produces the exact error and line."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark
        data = data[3:]
    fast = _read_jsonl_fast(data, clip, ignore_extra)
    if fast is not None:
        return fast
    return _read_jsonl_lines(path, clip, ignore_extra)


def _read_jsonl_fast(data: bytes, clip: bool, ignore_extra: bool):
    lines = data.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return None
    try:
        objs = json.loads(b"[" + b",".join(lines) + b"]")
    except (ValueError, UnicodeDecodeError):
        return None
    if len(objs) != len(lines) or set(map(type, objs)) != {dict}:
        return None
    keys = objs[0].keys()
    if set(keys) - set(KNOWN_COLUMNS) and not ignore_extra:
        return None
    if not all(o.keys() == keys for o in objs):
        return None
    if "prompt_id" not in keys or ("score" in keys) == ("scores" in keys):
        return None
    ids = [o["prompt_id"] for o in objs]
    if not set(map(type, ids)) <= {str, int} or "" in ids:
        return None
    steps = None
    if "step" in keys:
        steps = [o["step"] for o in objs]
        if not set(map(type, steps)) <= {str, int} or "" in steps:
            return None
    if "score" in keys:
        scores = [o["score"] for o in objs]
    else:
        rows = [o["scores"] for o in objs]
        if set(map(type, rows)) != {list} or min(map(len, rows)) == 0:
            return None
        lens = list(map(len, rows))
        scores = [s for r in rows for s in r]
        ids = [pid for pid, n in zip(ids, lens, strict=True) for _ in range(n)]
        if steps is not None:
            steps = [st for st, n in zip(steps, lens, strict=True) for _ in range(n)]
    if not set(map(type, scores)) <= {int, float}:
        return None
    arr = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(arr) if clip else (arr >= 0) & (arr <= 1)
    if not ok.all():
        return None
    return ids, arr, steps


def _read_jsonl_lines(path: Path, clip: bool, ignore_extra: bool):
    ids: list = []
    scores: list = []
    steps: list | None = None
    layout = None
    loads = json.loads
    ok_types = (int, float)
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            try:
                obj = loads(line)
            except ValueError as err:
                if not line.strip():
                    continue
                msg = getattr(err, "msg", str(err))
                raise ValueError(f"{path}:{lineno}: invalid JSON ({msg})") from None
            if obj.__class__ is not dict:
                raise ValueError(
                    f"{path}:{lineno}: expected a JSON object, got "
                    f"{type(obj).__name__}"
                )
            if layout is None:
                layout = _layout(f"{path}:{lineno}", list(obj), ignore_extra)
                keys = set(obj)
                has_step = "step" in obj
                steps = [] if has_step else None
                key = "score" if layout == "long" else "scores"
            if obj.keys() != keys:
                _check_keys(f"{path}:{lineno}", obj, key, has_step, ignore_extra)
            pid = obj["prompt_id"]
            if pid.__class__ is not str:
                _check_id(f"{path}:{lineno}", pid)
            if has_step:
                st = obj["step"]
                if st.__class__ is not int:
                    _check_step(f"{path}:{lineno}", st)
            if layout == "long":
                s = obj[key]
                if s.__class__ not in ok_types:
                    raise _bad_score(f"{path}:{lineno}", s, clip)
                if not 0 <= s <= 1 and (not clip or s != s or s in (_INF, -_INF)):
                    raise _bad_score(f"{path}:{lineno}", s, clip)
                ids.append(pid)
                scores.append(s)
                if has_step:
                    steps.append(st)
            else:
                row = obj[key]
                if row.__class__ is not list or not row:
                    raise ValueError(
                        f"{path}:{lineno}: 'scores' must be a non-empty list of "
                        f"numbers; got {row!r}"
                    )
                for s in row:
                    if s.__class__ not in ok_types or (
                        not 0 <= s <= 1
                        and (not clip or s != s or s in (_INF, -_INF))
                    ):
                        raise _bad_score(f"{path}:{lineno}", s, clip)
                ids.extend([pid] * len(row))
                scores.extend(row)
                if has_step:
                    steps.extend([st] * len(row))
    if layout is None:
        raise ValueError(f"{path}: empty file (no JSON records)")
    return ids, scores, steps


def _check_keys(where, obj, key, has_step, ignore_extra):
    need = {"prompt_id", key} | ({"step"} if has_step else set())
    missing = need - set(obj)
    if missing:
        raise ValueError(
            f"{where}: missing {', '.join(sorted(map(repr, missing)))} "
            f"(found: {', '.join(obj)})"
        )
    if not has_step and "step" in obj:
        raise ValueError(f"{where}: has 'step' but the first record did not")
    other = {"score", "scores"} - {key}
    if other & set(obj):
        raise ValueError(f"{where}: has both 'score' and 'scores'; use one layout")
    extra = set(obj) - set(KNOWN_COLUMNS)
    if extra and not ignore_extra:
        raise _columns_error(where, list(obj), extra)


_SPLIT = re.compile(r"[,;\s]+")


def _read_csv(path: Path, clip: bool, ignore_extra: bool):
    ids: list = []
    scores: list = []
    steps: list | None = None
    delim = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delim)
        header = None
        for header in reader:
            if header and any(h.strip() for h in header):
                break
        else:
            header = None
        if header is None:
            raise ValueError(f"{path}: empty file (no header row)")
        cols = [h.strip() for h in header]
        if len(set(cols)) != len(cols):
            raise ValueError(f"{path}:{reader.line_num}: duplicate column names {cols}")
        layout = _layout(f"{path}:{reader.line_num} (header)", cols, ignore_extra)
        ncol = len(cols)
        ii = cols.index("prompt_id")
        si = cols.index("score" if layout == "long" else "scores")
        ti = cols.index("step") if "step" in cols else None
        if ti is not None:
            steps = []
        nrows = 0
        for row in reader:
            if len(row) != ncol:
                if not row or not any(c.strip() for c in row):
                    continue
                raise ValueError(
                    f"{path}:{reader.line_num}: expected {ncol} fields "
                    f"({','.join(cols)}), got {len(row)}"
                )
            nrows += 1
            pid = row[ii]
            if not pid:
                raise ValueError(f"{path}:{reader.line_num}: empty prompt_id")
            if layout == "long":
                s = _csv_score(path, reader.line_num, row[si], clip)
                ids.append(pid)
                scores.append(s)
                if ti is not None:
                    steps.append(row[ti])
            else:
                cell = row[si].strip().strip("[]").strip()
                parts = _SPLIT.split(cell) if cell else []
                if not parts:
                    raise ValueError(
                        f"{path}:{reader.line_num}: 'scores' is empty; expected a "
                        "list such as [1, 0, 1]"
                    )
                vals = [_csv_score(path, reader.line_num, x, clip) for x in parts]
                ids.extend([pid] * len(vals))
                scores.extend(vals)
                if ti is not None:
                    steps.extend([row[ti]] * len(vals))
            if ti is not None and not row[ti].strip():
                raise ValueError(f"{path}:{reader.line_num}: empty step")
    if not nrows:
        raise ValueError(f"{path}: no data rows after the header")
    return ids, scores, steps


def _csv_score(path: Path, line: int, text: str, clip: bool) -> float:
    try:
        s = float(text)
    except ValueError:
        raise _bad_score(f"{path}:{line}", text, clip) from None
    if not 0 <= s <= 1 and (not clip or s != s or s in (_INF, -_INF)):
        raise _bad_score(f"{path}:{line}", s, clip)
    return s


def _read_parquet(path: Path, clip: bool, ignore_extra: bool):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(
            f"{path}: reading Parquet needs pyarrow (pip install 'vipcore[parquet]'); "
            "or convert the file to JSONL/CSV"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow's own error types
        raise ValueError(f"{path}: cannot read as Parquet: {err}") from None
    cols = list(table.column_names)
    layout = _layout(str(path), cols, ignore_extra)
    if table.num_rows == 0:
        raise ValueError(f"{path}: no rows")
    ids = table.column("prompt_id").to_pylist()
    steps = table.column("step").to_pylist() if "step" in cols else None
    for r, pid in enumerate(ids):
        if pid.__class__ is not str:
            _check_id(f"{path}: row {r}", pid)
        if steps is not None and steps[r].__class__ is not int:
            _check_step(f"{path}: row {r}", steps[r])
    if layout == "long":
        raw = table.column("score").to_pylist()
        rows = [[v] for v in raw]
    else:
        rows = table.column("scores").to_pylist()
    out_ids: list = []
    out_scores: list = []
    out_steps: list | None = [] if steps is not None else None
    for r, row in enumerate(rows):
        if not isinstance(row, list) or not row:
            raise ValueError(f"{path}: row {r}: 'scores' must be a non-empty list")
        for s in row:
            if isinstance(s, bool) or not isinstance(s, int | float) or (
                not 0 <= s <= 1 and (not clip or s != s or s in (_INF, -_INF))
            ):
                raise _bad_score(f"{path}: row {r}", s, clip)
        out_ids.extend([ids[r]] * len(row))
        out_scores.extend(row)
        if out_steps is not None:
            out_steps.extend([steps[r]] * len(row))
    return out_ids, out_scores, out_steps


def _order_steps(labels: list) -> list:
    """Integer steps (or integer strings) numerically, others by first appearance."""
    if all(isinstance(s, int) for s in labels):
        return sorted(labels)
    if all(isinstance(s, str) and _as_int_if(s) is not s for s in labels):
        return sorted(labels, key=int)
    return list(labels)


def _as_int_if(lab):
    """``int(lab)`` for a canonical integer string, else ``lab`` itself."""
    if isinstance(lab, str):
        try:
            if str(int(lab)) == lab:
                return int(lab)
        except ValueError:
            pass
    return lab


def _group(source: str, ids: list, scores: list, steps: list | None,
           clip: bool) -> SweepData:
    """Group rows by (step, prompt) into the contiguous ragged layout."""
    sc = np.asarray(scores, dtype=np.float64)
    n_clipped = 0
    if clip:
        out = (sc < 0) | (sc > 1)
        n_clipped = int(np.count_nonzero(out))
        if n_clipped:
            sc = np.clip(sc, 0.0, 1.0)
    idmap: dict = {}
    setdef = idmap.setdefault
    pidx = np.fromiter((setdef(x, len(idmap)) for x in ids), np.int64, len(ids))
    id_list = list(idmap)
    if steps is None:
        code = pidx
        step_labels = None
    else:
        smap: dict = {}
        sdef = smap.setdefault
        sidx = np.fromiter((sdef(x, len(smap)) for x in steps), np.int64, len(steps))
        first_seen = list(smap)
        ordered = _order_steps(first_seen)
        where = {lab: i for i, lab in enumerate(first_seen)}
        rank = np.empty(len(first_seen), dtype=np.int64)
        for r, lab in enumerate(ordered):
            rank[where[lab]] = r
        code = rank[sidx] * len(id_list) + pidx
        step_labels = [_as_int_if(lab) for lab in ordered]
    order = np.argsort(code, kind="stable")
    cs = code[order]
    new = np.ones(cs.size, dtype=bool)
    new[1:] = cs[1:] != cs[:-1]
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, cs.size)).astype(np.int64)
    gcode = cs[starts]
    prompt_ids = [id_list[i] for i in (gcode % len(id_list)).tolist()]
    gsteps = None
    if step_labels is not None:
        gsteps = [step_labels[i] for i in (gcode // len(id_list)).tolist()]
    return SweepData(prompt_ids, gsteps, sc[order], counts, step_labels,
                     n_clipped, source, int(sc.size))


# --------------------------------------------------------------------------
# Running a sweep from a callable (resumable)


class _Progress:
    """A plain-text progress bar on a stream (no tqdm)."""

    def __init__(self, total: int, done: int, stream, enabled: bool, every=0.2):
        self.total, self.done, self.stream = total, done, stream
        self.enabled, self.every = enabled and stream is not None, every
        self.t0 = time.perf_counter()
        self.start_done = done
        self.last = -math.inf

    def update(self, n: int = 1, *, force: bool = False) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last < self.every:
            return
        self.last = now
        frac = self.done / self.total if self.total else 1.0
        width = 30
        fill = int(round(width * frac))
        rate = (self.done - self.start_done) / max(now - self.t0, 1e-9)
        left = (self.total - self.done) / rate if rate > 0 else math.inf
        eta = "?" if not math.isfinite(left) else time.strftime(
            "%H:%M:%S", time.gmtime(left))
        self.stream.write(
            f"\rsweep [{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} "
            f"evals {100 * frac:5.1f}% {rate:6.1f}/s ETA {eta}"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.update(0, force=True)
            self.stream.write("\n")
            self.stream.flush()


def _load_results(path: Path, known: dict) -> dict:
    """Scores already recorded per id; drops a torn last line (our own file)."""
    done: dict = {pid: [] for pid in known}
    if not path.exists():
        return done
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1  # an interrupted write: drop it
            f.truncate(cut)
            data = data[:cut]
    for lineno, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            pid, s = rec["prompt_id"], rec["score"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                f"{path}:{lineno}: not a vipcore sweep results line: {line[:80]!r}"
            ) from None
        if pid not in done:
            raise ValueError(
                f"{path}:{lineno}: prompt_id {pid!r} is not among the samples of "
                "this sweep; use a different results file"
            )
        done[pid].append(float(s))
    return done


def run_sweep(
    evaluate: Callable[[Any], float],
    samples: Sequence[Any],
    *,
    k: int,
    path: str | os.PathLike,
    ids: Sequence[Any] | None = None,
    progress: bool = True,
    stream=None,
) -> SweepData:
    """Score every sample ``k`` times with ``evaluate``; resumable.

    Each score is appended to ``path`` as one JSONL line
    ``{"prompt_id": id, "rollout": j, "score": s}`` and flushed at once, so an
    interrupted sweep (exception, Ctrl-C, crash) loses at most the evaluation
    in flight. Calling again with the same ``path`` reads what is there and
    only runs the missing evaluations. A torn last line from a crash mid-write
    is dropped. The file is a long-format sweep file: ``vipcore sweep PATH``
    reads it directly.

    Args:
      evaluate: ``evaluate(sample) -> score`` in [0, 1] (bools are fine).
      samples: the prompts/samples, any objects.
      k: rollouts per sample (``>= 1``; the bucket rules need ``>= 2``).
      path: the append-only results file.
      ids: unique ids (str or int) per sample; default ``0 .. len-1``.
      progress: draw a progress bar on ``stream`` (default ``sys.stderr``).

    Returns:
      :class:`SweepData` with the first ``k`` scores of every sample, in
      sample order.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be an integer >= 1; got {k!r}")
    ids = list(range(len(samples))) if ids is None else [
        int(i) if isinstance(i, np.integer) else i for i in ids]
    if len(ids) != len(samples):
        raise ValueError(
            f"ids must have one entry per sample ({len(samples)}); got {len(ids)}"
        )
    for pid in ids:
        _check_id("ids", pid)
    if len(set(ids)) != len(ids):
        raise ValueError("ids must be unique")
    path = Path(path)
    done = _load_results(path, dict.fromkeys(ids))
    total = k * len(ids)
    already = sum(min(len(v), k) for v in done.values())
    stream = sys.stderr if stream is None else stream
    if progress and already:
        stream.write(f"sweep: resuming, {already}/{total} evaluations in {path}\n")
    bar = _Progress(total, already, stream, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "a", encoding="utf-8") as f:
            for pid, sample in zip(ids, samples, strict=True):
                have = done[pid]
                for j in range(len(have), k):
                    s = evaluate(sample)
                    if isinstance(s, bool | np.bool_):
                        s = float(s)
                    try:
                        sf = float(s)
                    except (TypeError, ValueError):
                        sf = math.nan
                    if not 0 <= sf <= 1:
                        raise ValueError(
                            f"evaluate returned {s!r} for sample {pid!r} "
                            f"(rollout {j}); scores must be numbers in [0, 1]"
                        )
                    f.write(json.dumps({"prompt_id": pid, "rollout": j, "score": sf})
                            + "\n")
                    f.flush()
                    have.append(sf)
                    bar.update()
    finally:
        bar.close()
    counts = np.array([k] * len(ids), dtype=np.int64)
    flat = np.array([s for pid in ids for s in done[pid][:k]], dtype=np.float64)
    return SweepData(ids, None, flat, counts, None, 0, str(path), int(flat.size))


# --------------------------------------------------------------------------
# Demo data and writers


def demo_data(
    *, seed: int = 0, n_prompts: int = 400, k: int = 16,
    steps: Sequence[int] = (0, 100, 200),
) -> SweepData:
    """A synthetic sweep over training, so ``vipcore sweep --demo`` needs no file.

    Each prompt has a latent difficulty; its success probability at step
    ``t`` is ``sigmoid(ability_t - difficulty)`` with ability rising over
    training, and 12 % of prompts are broken (``p = 0`` at every step, e.g. a
    wrong reference answer). Scores are binary, ``k`` per prompt per step,
    from ``numpy.random.default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(1.0, 3.0, n_prompts)
    broken = rng.random(n_prompts) < 0.12
    ids = [f"q{i:04d}" for i in range(n_prompts)]
    all_ids, all_steps, all_scores = [], [], []
    for t_i, t in enumerate(steps):
        logit = 0.9 * t_i - difficulty
        p = np.where(broken, 0.0, 1 / (1 + np.exp(-logit)))
        s = (rng.random((n_prompts, k)) < p[:, None]).astype(np.float64)
        all_ids += ids
        all_steps += [int(t)] * n_prompts
        all_scores.append(s.reshape(-1))
    flat = np.concatenate(all_scores)
    counts = np.full(n_prompts * len(steps), k, dtype=np.int64)
    return SweepData(all_ids, all_steps, flat, counts, [int(t) for t in steps], 0,
                     f"demo (synthetic, seed {seed})", int(flat.size))


def write_signal_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write one JSON object per line; returns the number of lines."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
            n += 1
    return n
