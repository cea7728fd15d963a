"""Reading sweep scores from files and tables, with column mapping.

Sources: JSONL, CSV/TSV, Parquet and Arrow files (:func:`read_scores`), and
in-memory tables such as a Hugging Face ``datasets.Dataset``, a
``pyarrow.Table``, a pandas ``DataFrame``, a dict of columns or a list of
records (:func:`from_table`). One row per rollout is *long*, one row per
prompt with a list of scores is *wide*; rows may mix both.

Columns (the defaults, each can be renamed):

* the prompt id: ``prompt_id`` (``id_col``), a string or an integer; or,
  with ``id_from_text=COL``, the :func:`text_id` of the prompt text in
  column ``COL`` (the text is kept: ``SweepData.texts``);
* the score: ``score`` (one number) or ``scores`` (a list) (``score_col``);
  booleans count as pass (1) and fail (0);
* the checkpoint: ``step`` if present (``step_col``); ``rollout`` (an index)
  is accepted and ignored.

Without a mapping any other column is an error (``ignore_extra_columns``
skips them); as soon as a column is named, the others are ignored.

Scores must lie in [0, 1]. ``reward_range=(lo, hi)`` rescales rewards given
on another scale, ``s -> (s - lo) / (hi - lo)`` (``(-1, 1)`` for ``{-1, +1}``
rewards); values outside ``[lo, hi]`` remain errors. ``clip=True`` clips
finite out-of-range values instead and counts them (``n_clipped``); NaN,
infinities, strings, missing values and booleans under ``reward_range`` are
always errors. Rows of one prompt (within one step) are merged, in any order.
Steps that are all integers (or integer strings) are ordered numerically,
other labels by first appearance.

Nothing is silently altered: an id or step with spaces around it, the same
label as an integer and as a string (``1`` and ``"1"``), a JSONL object
split over lines or with a repeated key, an empty element in a CSV list
(``"[1, , 0]"``) or a non-ASCII digit are errors naming the file and line
(``SOURCE: row R`` for tables, ``R`` from 0). Input files are only read.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from vipcore._src._files import atomic_write_text
from vipcore._src.sweep.tables import MISSING, Table, from_object, load_file

__all__ = [
    "SweepData",
    "read_scores",
    "from_table",
    "text_id",
    "resolve_step",
    "select_step",
    "demo_data",
    "write_jsonl",
]

#: Column names the readers understand without a mapping.
KNOWN_COLUMNS = ("prompt_id", "score", "scores", "step", "rollout")


class SweepData(NamedTuple):
    """Scores grouped by (step, prompt), in the flat ragged layout.

    Attributes:
      prompt_ids: prompt id of each group.
      steps: step label of each group, or None when the input had no steps.
      scores: ``float64`` scores in [0, 1], group by group (contiguous).
      counts: rollouts per group (``int64``, all ``>= 1``).
      step_labels: the distinct steps in order, or None.
      n_clipped: scores clipped into range (only with ``clip=True``).
      source: where the data came from (file name or ``"demo ..."``).
      n_rows: rollouts read.
      texts: prompt text per prompt id, when a text column was read.
      reward_range: the ``(lo, hi)`` the scores were rescaled from, or None.
      columns: the columns read (``id``, ``score``, ``step``, ``text``).
    """

    prompt_ids: list
    steps: list | None
    scores: np.ndarray
    counts: np.ndarray
    step_labels: list | None
    n_clipped: int
    source: str
    n_rows: int
    texts: dict | None = None
    reward_range: tuple[float, float] | None = None
    columns: dict | None = None


def text_id(text: str) -> str:
    """The stable id of a prompt text: ``"t"`` + 16 hex digits of its SHA-256.

    The same text (compared exactly, as UTF-8) always gets the same id, in
    every process and on every machine.

    >>> text_id("What is 2 + 2?")
    't38d46ad3618826cf'
    """
    return "t" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------
# Steps


def resolve_step(data: SweepData, step: Any = None) -> Any:
    """The step label ``step`` refers to (None: the last step; labels also
    match by their string form, so ``"100"`` finds step ``100``)."""
    if data.steps is None:
        if step is not None:
            raise ValueError(
                f"{data.source} has no step column; cannot select step {step!r}")
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
    return (data.prompt_ids[lo:hi], data.scores[starts[lo]:starts[hi]],
            data.counts[lo:hi])


# --------------------------------------------------------------------------
# Public readers


def read_scores(
    path: str | os.PathLike,
    *,
    fmt: str | None = None,
    id_col: str | None = None,
    score_col: str | None = None,
    step_col: str | None = None,
    text_col: str | None = None,
    id_from_text: str | None = None,
    reward_range: tuple[float, float] | None = None,
    clip: bool = False,
    ignore_extra_columns: bool = False,
) -> SweepData:
    """Read a sweep file (JSONL, CSV/TSV, Parquet or Arrow; long or wide).

    Args:
      path: the file; the format comes from the extension (``.jsonl``,
        ``.ndjson``, ``.json``, ``.csv``, ``.tsv``, ``.parquet``, ``.arrow``,
        ``.feather``) or its first bytes.
      fmt: force ``"jsonl"``, ``"csv"``, ``"parquet"`` or ``"arrow"``.
      id_col: the prompt-id column (default ``prompt_id``).
      score_col: the score column (default ``score`` or ``scores``).
      step_col: the step column (default ``step`` when present).
      text_col: a prompt-text column to keep (``SweepData.texts``).
      id_from_text: a prompt-text column whose :func:`text_id` is the id.
      reward_range: ``(lo, hi)``: rescale scores from ``[lo, hi]`` to [0, 1].
      clip: clip finite out-of-range scores instead of raising.
      ignore_extra_columns: without a mapping, skip unknown columns.

    Raises:
      ValueError: naming the file, the line (or row) and the problem.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.csv"
    >>> _ = p.write_text("question_id,sample_idx,reward\\nq1,0,1\\nq1,1,-1\\n")
    >>> d = read_scores(p, id_col="question_id", score_col="reward",
    ...                 reward_range=(-1, 1))
    >>> d.prompt_ids, d.scores.tolist()
    (['q1'], [1.0, 0.0])
    """
    table = load_file(path, fmt)
    return _read(table, id_col=id_col, score_col=score_col, step_col=step_col,
                 text_col=text_col, id_from_text=id_from_text,
                 reward_range=reward_range, clip=clip,
                 ignore_extra_columns=ignore_extra_columns)


def from_table(
    table: Any,
    *,
    id_col: str | None = None,
    score_col: str | None = None,
    step_col: str | None = None,
    text_col: str | None = None,
    id_from_text: str | None = None,
    reward_range: tuple[float, float] | None = None,
    clip: bool = False,
    ignore_extra_columns: bool = False,
    source: str | None = None,
) -> SweepData:
    """:func:`read_scores` for an in-memory table.

    ``table`` is a Hugging Face ``datasets.Dataset``, a ``pyarrow.Table``,
    a pandas ``DataFrame``, a dict of columns or a list of records (dicts);
    errors name ``source`` (default: the type name) and the row (from 0).

    >>> d = from_table({"prompt": ["a", "a", "b"], "acc": [True, False, True]},
    ...                id_from_text="prompt", score_col="acc")
    >>> d.counts.tolist(), d.texts[d.prompt_ids[0]]
    ([2, 1], 'a')
    """
    return _read(from_object(table, source), id_col=id_col, score_col=score_col,
                 step_col=step_col, text_col=text_col, id_from_text=id_from_text,
                 reward_range=reward_range, clip=clip,
                 ignore_extra_columns=ignore_extra_columns)


def _read(table: Table, *, reward_range, clip, **names) -> SweepData:
    cols = _resolve_columns(table, **names)
    rr = _check_range(reward_range)
    flat, lens, n_clipped = _scores(table, cols["score"], rr, clip)
    texts = None
    if cols["text"] is not None:
        text = _texts(table, cols["text"])
        if cols["id"] is None:
            ids, texts = _ids_from_text(table, text)
        else:
            ids = _labels(table, cols["id"], "prompt id")
            texts = _text_per_id(table, ids, text)
    else:
        ids = _labels(table, cols["id"], "prompt id")
    steps = _labels(table, cols["step"], "step") if cols["step"] else None
    if lens is not None:
        rows = np.repeat(np.arange(table.n_rows), lens).tolist()
        ids = [ids[r] for r in rows]
        steps = None if steps is None else [steps[r] for r in rows]
    data = _group(table.source, ids, flat, steps, n_clipped)
    return data._replace(texts=texts, reward_range=rr, columns=cols)


# --------------------------------------------------------------------------
# Columns


def _check_name(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ValueError(f"{name} must be a non-empty column name; got {value!r}")


def _resolve_columns(table: Table, *, id_col, score_col, step_col, text_col,
                     id_from_text, ignore_extra_columns) -> dict:
    """Which column holds what; errors list the columns found."""
    for name, value in (("id_col", id_col), ("score_col", score_col),
                        ("step_col", step_col), ("text_col", text_col),
                        ("id_from_text", id_from_text)):
        _check_name(name, value)
    if id_from_text is not None and id_col is not None:
        raise ValueError("give id_col (--id-col) or id_from_text (--id-from-text), "
                         "not both")
    if id_from_text and text_col and id_from_text != text_col:
        raise ValueError(f"id_from_text={id_from_text!r} and text_col={text_col!r} "
                         "name different columns; the text kept is the one hashed")
    have = table.columns
    found = ", ".join(map(str, have)) or "none"
    mapped = any(v is not None for v in (id_col, score_col, step_col, text_col,
                                         id_from_text))
    cols = {"id": None if id_from_text else (id_col or "prompt_id"),
            "score": score_col or "score",
            "step": step_col or ("step" if "step" in have else None),
            "text": id_from_text or text_col}
    for key, option in (("id", "id_col (--id-col) or id_from_text "
                        "(--id-from-text)"), ("score", "score_col (--score-col)"),
                        ("step", "step_col (--step-col)"),
                        ("text", "id_from_text/text_col (--id-from-text/--text-col)")):
        if key == "score" and score_col is None:
            cols["score"] = _default_score(table.source, have, found)
        if cols[key] is not None and cols[key] not in have:
            hint = f"; name the column with {option}" if not mapped else ""
            raise ValueError(f"{table.source}: missing column {cols[key]!r} (the "
                             f"{'prompt id' if key == 'id' else key}; found: "
                             f"{found}){hint}")
    extra = [c for c in have if c not in KNOWN_COLUMNS]
    if extra and not mapped and not ignore_extra_columns:
        where = table.source
        if not table.text_cells:  # name the first row that has one
            vals = table.get(extra[0])
            where = table.where(_first(vals, lambda v: v is not MISSING))
        raise ValueError(
            f"{where}: unknown column(s) {', '.join(map(repr, extra))}; "
            f"known: {', '.join(KNOWN_COLUMNS)} (found: {found}); name the columns "
            "to read with --id-col/--score-col (id_col=, score_col=), or pass "
            "--ignore-extra-columns (ignore_extra_columns=True)")
    return cols


def _default_score(source: str, have: list, found: str) -> str:
    if "score" in have and "scores" in have:
        raise ValueError(f"{source}: has both 'score' and 'scores'; use one, or "
                         "pick one with score_col (--score-col)")
    for name in ("score", "scores"):
        if name in have:
            return name
    raise ValueError(f"{source}: missing column 'score' (long format) or 'scores' "
                     f"(wide format) (found: {found}); name the score column with "
                     "score_col (--score-col)")


def _first(values: list, bad) -> int:
    return next(i for i, v in enumerate(values) if bad(v))


def _labels(table: Table, col: str, what: str) -> list:
    """Prompt ids or steps: strings or integers, exactly as written."""
    vals = table.get(col)
    ok = {str, int}
    if not set(map(type, vals)) <= ok:
        i = _first(vals, lambda v: type(v) not in ok)
        v = vals[i]
        if v is MISSING:
            raise ValueError(f"{table.where(i)}: missing {col!r}")
        raise ValueError(f"{table.where(i)}: {col} must be a string or an "
                         f"integer; got {v!r}")
    distinct = dict.fromkeys(vals)
    for v in distinct:
        if v.__class__ is str and (not v or v != v.strip()):
            i = vals.index(v)
            if not v:
                raise ValueError(f"{table.where(i)}: empty {col}")
            raise ValueError(f"{table.where(i)}: {col} {v!r} has spaces around it; "
                             f"fix the file ({what}s are compared exactly)")
    if not table.text_cells and {str, int} <= set(map(type, distinct)):
        as_text = {v: str(v) for v in distinct}
        seen: dict = {}
        for v, t in as_text.items():
            if t in seen:
                a, b = vals.index(seen[t]), vals.index(v)
                raise ValueError(
                    f"{col} {seen[t]!r} ({table.where(a)}) and {v!r} "
                    f"({table.where(b)}) differ only in type (number and string); "
                    f"write each {what} one way")
            seen[t] = v
    return vals


def _texts(table: Table, col: str) -> list:
    vals = table.get(col)
    if set(map(type, vals)) != {str} or "" in vals:
        i = _first(vals, lambda v: v.__class__ is not str or not v)
        v = vals[i]
        got = "missing" if v is MISSING else repr(v)[:60]
        raise ValueError(f"{table.where(i)}: prompt text ({col!r}) must be a "
                         f"non-empty string; got {got}")
    return vals


def _ids_from_text(table: Table, texts: list) -> tuple[list, dict]:
    by_text = {t: text_id(t) for t in dict.fromkeys(texts)}
    if len(set(by_text.values())) != len(by_text):  # 64-bit hash collision
        raise ValueError(f"{table.source}: two different prompt texts hash to the "
                         "same id; use an id column (--id-col) instead")
    return list(map(by_text.__getitem__, texts)), {v: k for k, v in by_text.items()}


def _text_per_id(table: Table, ids: list, texts: list) -> dict:
    out: dict = {}
    for i, (pid, t) in enumerate(zip(ids, texts, strict=True)):
        have = out.setdefault(pid, t)
        if have is not t and have != t:
            j = ids.index(pid)
            raise ValueError(f"{table.where(i)}: prompt id {pid!r} has a different "
                             f"text than at {table.where(j)}; one id, one prompt")
    return out


# --------------------------------------------------------------------------
# Scores


def _check_range(rr) -> tuple[float, float] | None:
    if rr is None:
        return None
    try:
        lo, hi = (float(x) for x in rr)
    except (TypeError, ValueError):
        raise ValueError(f"reward_range must be two numbers (lo, hi); got {rr!r}") \
            from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"reward_range must be finite with lo < hi; got {rr!r}")
    return lo, hi


_NUMBER = re.compile(r"\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*\Z|"
                     r"\s*[+-]?(nan|inf|infinity)\s*\Z", re.IGNORECASE)
_BOOLS = {"true": True, "false": False}


def _cell(text: str) -> float | bool:
    """One CSV number or boolean, strictly (ASCII digits only)."""
    b = _BOOLS.get(text.strip().lower())
    if b is not None:
        return b
    if not _NUMBER.match(text):
        raise ValueError(text.strip())
    return float(text)


class _EmptyElement(ValueError):
    pass


def _cell_list(text: str) -> list:
    """A CSV cell: one score, or a list ``[1, 0]``, ``1 0``, ``1;0``."""
    body = text.strip()
    if not body:
        return []
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1].strip()
    elif not (" " in body or ";" in body or "," in body):
        return [_cell(body)]
    if not body:
        return []
    sep = "," if "," in body else ";" if ";" in body else None
    parts = body.split(sep)
    if any(not p.strip() for p in parts):
        raise _EmptyElement(f"{text!r} has an empty element")
    return [_cell(p) for p in parts]


def _score_values(table: Table, col: str) -> tuple[list, np.ndarray | None]:
    """Raw values (numbers, booleans) flattened, and per-row lengths if any
    row held a list."""
    vals = table.get(col)
    types = set(map(type, vals))
    if table.text_cells:
        joined = "".join(vals)
        if joined.isascii() and "_" not in joined:  # float() takes "1_0", "１"
            try:
                return np.array(vals, dtype=np.float64).tolist(), None
            except ValueError:
                pass
        rows = []
        for i, v in enumerate(vals):
            try:
                rows.append(_cell_list(v))
            except _EmptyElement as err:
                raise ValueError(f"{table.where(i)}: score list {err}") from None
            except ValueError as err:
                raise ValueError(f"{table.where(i)}: score {err.args[0]!r} is not a "
                                 "number") from None
    elif types <= {int, float, bool}:
        return vals, None
    else:
        rows = [v if v.__class__ is list else [v] for v in vals]
    lens = np.fromiter(map(len, rows), np.int64, len(rows))
    if lens.min() == 0:
        i = int(np.argmin(lens))
        raise ValueError(f"{table.where(i)}: {col!r} is empty: expected a score or "
                         "a non-empty list such as [1, 0, 1]")
    return [s for r in rows for s in r], lens


def _too_big(v: Any) -> bool:
    try:
        float(v)
    except OverflowError:
        return True
    return False


def _bad_score(where: str, value: Any, rr, col: str = "score") -> ValueError:
    scale = "[0, 1]" if rr is None else f"the reward range [{rr[0]:g}, {rr[1]:g}]"
    if value is MISSING:
        return ValueError(f"{where}: missing {col!r}")
    if isinstance(value, bool):
        return ValueError(f"{where}: score {value!r} is a boolean (pass = 1, fail = "
                          "0 on the [0, 1] scale); reward_range (--reward-range) "
                          "applies to numbers only")
    if isinstance(value, float) and math.isnan(value):
        return ValueError(f"{where}: score {value!r} is NaN")
    if isinstance(value, float) and math.isinf(value):
        return ValueError(f"{where}: score {value!r} is infinite")
    if isinstance(value, int | float):
        shown = repr(value) if len(repr(value)) < 40 else repr(value)[:30] + "..."
        hint = ("pass --clip / clip=True to clip it" if rr is not None else
                "pass --reward-range=LO,HI (reward_range=) to rescale another "
                "scale, or --clip / clip=True to clip it")
        return ValueError(f"{where}: score {shown} is outside {scale} ({hint})")
    return ValueError(f"{where}: score {value!r} is not a number")


def _scores(table: Table, col: str, rr, clip: bool):
    """``(scores in [0, 1], per-row lengths or None, number clipped)``."""
    vals, lens = _score_values(table, col)

    def where(j: int) -> str:
        row = j if lens is None else int(np.searchsorted(np.cumsum(lens), j, "right"))
        return table.where(row)

    types = set(map(type, vals))
    if not types <= {int, float, bool} or (rr is not None and bool in types):
        j = _first(vals, lambda v: type(v) not in (int, float) and not (
            type(v) is bool and rr is None))
        raise _bad_score(where(j), vals[j], rr, col)
    try:
        arr = np.asarray(vals, dtype=np.float64)
    except OverflowError:  # an integer too large for a float
        j = _first(vals, _too_big)
        raise _bad_score(where(j), vals[j], rr) from None
    lo, hi = (0.0, 1.0) if rr is None else rr
    ok = (arr >= lo) & (arr <= hi)
    n_clipped = 0
    if not ok.all():
        finite = np.isfinite(arr)
        if not clip or not finite.all():
            j = int(np.flatnonzero(~ok if not clip else ~finite)[0])
            raise _bad_score(where(j), vals[j], rr)
        n_clipped = int(np.count_nonzero(~ok))
        arr = np.clip(arr, lo, hi)
    if rr is not None:
        arr = (arr - lo) / (hi - lo)
    return arr, lens, n_clipped


# --------------------------------------------------------------------------
# Grouping


def _order_steps(labels: list) -> list:
    """Integer steps (or integer strings) numerically, others by first appearance."""
    if all(isinstance(s, int) for s in labels):
        return sorted(labels)
    if all(isinstance(s, str) and _as_int_if(s) is not s for s in labels):
        return sorted(labels, key=int)
    return list(labels)


def _as_int_if(lab):
    """``int(lab)`` for a canonical integer string, else ``lab`` itself."""
    if isinstance(lab, str) and lab.isascii() and len(lab) < 4000:
        try:
            if str(int(lab)) == lab:
                return int(lab)
        except ValueError:
            pass
    return lab


def _group(source: str, ids: list, scores, steps: list | None,
           n_clipped: int = 0) -> SweepData:
    """Group rows by (step, prompt) into the contiguous ragged layout."""
    sc = np.asarray(scores, dtype=np.float64)
    id_list = list(dict.fromkeys(ids))
    idmap = {pid: i for i, pid in enumerate(id_list)}
    pidx = np.fromiter(map(idmap.__getitem__, ids), np.int64, len(ids))
    step_labels = None
    code = pidx
    if steps is not None:
        first_seen = list(dict.fromkeys(steps))
        smap = {lab: i for i, lab in enumerate(first_seen)}
        sidx = np.fromiter(map(smap.__getitem__, steps), np.int64, len(steps))
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


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write one JSON object per line (atomically); returns the number of lines."""
    lines = [json.dumps(row) + "\n" for row in rows]
    atomic_write_text(Path(path), "".join(lines))
    return len(lines)
