"""Running a sweep from a scoring callable: resumable, batched, concurrent.

:func:`run_sweep` scores every sample ``k`` times and appends each score to
a JSONL results file as soon as it is known, so an interrupted sweep
(exception, Ctrl-C, a killed process) loses at most the evaluations in
flight, and calling it again runs only what is missing. Each line records
``(prompt_id, rollout, score)``; a rollout index is scheduled only when the
file does not hold it yet and is written once, so a resumed sweep never
counts a rollout twice. Only the main thread writes the file.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

from vipcore._src._progress import Progress
from vipcore._src.sweep.io import SweepData
from vipcore._src.sweep.tables import load_file

__all__ = ["run_sweep"]

#: The keys of one results line.
RESULT_KEYS = ("prompt_id", "rollout", "score")


def _check_args(k, max_workers, batched, evaluate) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be an integer >= 1; got {k!r}")
    if (isinstance(max_workers, bool) or not isinstance(max_workers, int | np.integer)
            or max_workers < 1):
        raise ValueError(f"max_workers must be an integer >= 1; got {max_workers!r}")
    if not isinstance(batched, bool):
        raise ValueError(f"batched must be True or False; got {batched!r}")
    if not callable(evaluate):
        raise ValueError(f"evaluate must be callable; got {type(evaluate).__name__}")


def _check_ids(ids, n: int) -> list:
    ids = list(range(n)) if ids is None else [
        int(i) if isinstance(i, np.integer) else i for i in ids]
    if len(ids) != n:
        raise ValueError(f"ids must have one entry per sample ({n}); got {len(ids)}")
    for pid in ids:
        if isinstance(pid, bool) or not isinstance(pid, str | int):
            raise ValueError(f"ids must be strings or integers; got {pid!r}")
        if isinstance(pid, str) and (not pid or pid != pid.strip()):
            raise ValueError(f"ids must not be empty or have spaces around them; "
                             f"got {pid!r}")
    if len(set(ids)) != len(ids) or len({str(i) for i in ids}) != len(ids):
        raise ValueError("ids must be unique (also as text: 7 and '7' clash)")
    return ids


def _drop_torn_line(path: Path) -> None:
    """An interrupted write leaves a last line without newline: drop it."""
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def _load_results(path: Path, ids: list) -> dict:
    """``{id: {rollout: score}}`` from an existing results file, checked."""
    done: dict = {pid: {} for pid in ids}
    if not path.exists() or path.stat().st_size == 0:
        return done
    _drop_torn_line(path)
    if not path.read_bytes().strip():
        return done
    table = load_file(path, "jsonl")
    if sorted(table.columns) != sorted(RESULT_KEYS):
        raise ValueError(f"{path}: not a vipcore sweep results file (keys "
                         f"{table.columns}, expected {list(RESULT_KEYS)}); use a "
                         "different results file")
    pids, rolls, scores = (table.get(c) for c in RESULT_KEYS)
    for i, (pid, j, s) in enumerate(zip(pids, rolls, scores, strict=True)):
        where = table.where(i)
        if pid.__class__ not in (str, int) or pid not in done:
            raise ValueError(f"{where}: prompt_id {pid!r} is not among the samples "
                             "of this sweep; use a different results file")
        if j.__class__ is not int or j < 0:
            raise ValueError(f"{where}: rollout must be an integer >= 0; got {j!r}")
        if s.__class__ not in (int, float) or not 0 <= s <= 1:
            raise ValueError(f"{where}: score must be a number in [0, 1]; got {s!r}")
        if j in done[pid]:
            raise ValueError(f"{where}: rollout {j} of prompt {pid!r} is recorded "
                             "twice; the results file was edited or merged")
        done[pid][j] = float(s)
    return done


def _as_score(value: Any, pid: Any, j: int) -> float:
    """A returned score as a float in [0, 1] (booleans are 1/0), or raise."""
    ok = isinstance(value, bool | np.bool_) or (
        hasattr(type(value), "__float__") and not isinstance(value, str | bytes)
        and getattr(value, "ndim", 0) == 0)
    s = math.nan
    if ok:
        try:
            s = float(value)
        except (TypeError, ValueError, OverflowError):
            s = math.nan
    if not 0 <= s <= 1:
        raise ValueError(f"evaluate returned {value!r} for sample {pid!r} (rollout "
                         f"{j}); scores must be numbers in [0, 1] (or booleans)")
    return s


def _as_scores(values: Any, pid: Any, rollouts: list[int]) -> list[float]:
    """The scores of one batched call: exactly one per requested rollout."""
    if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
        raise ValueError(f"evaluate returned {values!r} for sample {pid!r}; with "
                         f"batched=True it must return a list of {len(rollouts)} "
                         "scores")
    vals = list(values)
    if len(vals) != len(rollouts):
        raise ValueError(f"evaluate returned {len(vals)} scores for sample {pid!r}; "
                         f"expected {len(rollouts)} (one per rollout asked for)")
    return [_as_score(v, pid, j) for v, j in zip(vals, rollouts, strict=True)]


def _tasks(ids, samples, done, k, batched):
    """``(pid, sample, rollout indices)`` still to run, in sample order."""
    for pid, sample in zip(ids, samples, strict=True):
        missing = [j for j in range(k) if j not in done[pid]]
        if not missing:
            continue
        if batched:
            yield pid, sample, missing
        else:
            yield from ((pid, sample, [j]) for j in missing)


def _call(evaluate, batched: bool, task) -> list[float]:
    pid, sample, rollouts = task
    if batched:
        return _as_scores(evaluate(sample, len(rollouts)), pid, rollouts)
    return [_as_score(evaluate(sample), pid, rollouts[0])]


class _Writer:
    """Appends checked results to the file (main thread only)."""

    def __init__(self, f, done, bar):
        self.f, self.done, self.bar = f, done, bar

    def write(self, task, scores) -> None:
        pid, _, rollouts = task
        self.f.write("".join(
            json.dumps({"prompt_id": pid, "rollout": j, "score": s}) + "\n"
            for j, s in zip(rollouts, scores, strict=True)))
        self.f.flush()
        for j, s in zip(rollouts, scores, strict=True):
            self.done[pid][j] = s
        self.bar.update(len(rollouts))


def _run_serial(tasks, evaluate, batched, writer) -> None:
    for task in tasks:
        writer.write(task, _call(evaluate, batched, task))


def _run_threads(tasks, evaluate, batched, writer, workers: int) -> None:
    """At most ``2 * workers`` tasks in flight; on an error, finish and record
    the running ones, start no new one, then raise the first error."""
    pool = ThreadPoolExecutor(max_workers=workers)
    pending: dict[Future, Any] = {}
    error: BaseException | None = None
    tasks = iter(tasks)
    try:
        while True:
            while error is None and len(pending) < 2 * workers:
                task = next(tasks, None)
                if task is None:
                    break
                pending[pool.submit(_call, evaluate, batched, task)] = task
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                task = pending.pop(fut)
                try:
                    writer.write(task, fut.result())
                except Exception as err:  # evaluate's own error, or a bad score
                    error = error or err
        pool.shutdown(wait=True)
    except BaseException:  # Ctrl-C: do not wait for evaluations in flight
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    if error is not None:
        raise error


def run_sweep(
    evaluate: Callable[..., Any],
    samples: Sequence[Any],
    *,
    k: int,
    path: str | os.PathLike,
    ids: Sequence[Any] | None = None,
    batched: bool = False,
    max_workers: int = 1,
    progress: bool = True,
    stream=None,
) -> SweepData:
    """Score every sample ``k`` times with ``evaluate``; resumable.

    Each score is appended to ``path`` as one JSONL line
    ``{"prompt_id": id, "rollout": j, "score": s}`` and flushed at once.
    Calling again with the same ``path`` reads what is there (checked: every
    line a known id, a rollout index recorded once, a score in [0, 1]) and
    runs only the missing rollouts. A torn last line from a crash mid-write
    is dropped. The file is a long-format sweep file: ``vipcore sweep PATH``
    reads it directly.

    Args:
      evaluate: ``evaluate(sample) -> score`` in [0, 1] (booleans are 1/0);
        with ``batched=True``, ``evaluate(sample, n) -> n scores`` (one call
        per sample for all its missing rollouts, e.g. one request to a model
        server for ``n`` completions).
      samples: the prompts/samples, any objects.
      k: rollouts per sample (``>= 1``; the bucket rules need ``>= 2``).
      path: the append-only results file.
      ids: unique ids (str or int) per sample; default ``0 .. len-1``.
      batched: call ``evaluate(sample, n)`` as described above.
      max_workers: run up to this many calls at once in a thread pool (for
        I/O-bound scorers such as model servers); 1 runs them in order.
      progress: draw a progress bar on ``stream`` (default ``sys.stderr``).

    Returns:
      :class:`SweepData` with rollouts ``0 .. k-1`` of every sample, in
      sample order.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.jsonl"
    >>> d = run_sweep(lambda s, n: [s > 1] * n, [1, 2], k=3, path=path,
    ...               batched=True, progress=False)
    >>> d.scores.tolist()
    [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    """
    _check_args(k, max_workers, batched, evaluate)
    k = int(k)
    ids = _check_ids(ids, len(samples))
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path {path} is a directory; give a results file name")
    done = _load_results(path, ids)
    total = k * len(ids)
    already = sum(sum(j < k for j in v) for v in done.values())
    stream = sys.stderr if stream is None else stream
    if progress and already:
        stream.write(f"sweep: resuming, {already}/{total} evaluations in {path}\n")
    bar = Progress("sweep", total, already, stream, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tasks = _tasks(ids, samples, done, k, batched)
    try:
        with open(path, "a", encoding="utf-8") as f:
            writer = _Writer(f, done, bar)
            if max_workers == 1:
                _run_serial(tasks, evaluate, batched, writer)
            else:
                _run_threads(tasks, evaluate, batched, writer, int(max_workers))
    finally:
        bar.close()
    flat = np.array([done[pid][j] for pid in ids for j in range(k)], dtype=np.float64)
    counts = np.full(len(ids), k, dtype=np.int64)
    return SweepData(ids, None, flat, counts, None, 0, str(path), int(flat.size))
