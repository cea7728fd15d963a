"""``run_sweep``: batched and concurrent evaluation, resume that loses nothing
and never counts a rollout twice, and a checked results file."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter

import numpy as np
import pytest

from vipcore import sweep


class Boom(RuntimeError):
    pass


def _lines(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _score(sample, j) -> float:
    """A deterministic score per (sample, rollout), so results are checkable."""
    return float((hash((sample, j)) % 7) < 3)


def _check_file(path, ids, k):
    """Every (id, rollout) exactly once, rollout indices 0..k-1."""
    recs = _lines(path)
    seen = Counter((r["prompt_id"], r["rollout"]) for r in recs)
    assert all(v == 1 for v in seen.values()), [x for x, v in seen.items() if v > 1]
    assert set(seen) == {(i, j) for i in ids for j in range(k)}


@pytest.mark.parametrize("workers", [1, 4])
@pytest.mark.parametrize("batched", [False, True])
def test_interrupted_run_resumes_without_loss_or_double_count(tmp_path, workers,
                                                              batched):
    samples = [f"s{i}" for i in range(9)]
    k = 5
    calls = Counter()
    lock = threading.Lock()
    fail_at = {"n": 7}

    def unbatched(sample):
        with lock:
            calls[sample] += 1
            n = sum(calls.values())
        if n == fail_at["n"]:
            raise Boom
        time.sleep(0.001)
        return 0.0

    def batch(sample, n):
        with lock:
            calls[sample] += n
            total = sum(calls.values())
        if total >= fail_at["n"] and fail_at["n"]:
            fail_at["n"] = 0
            raise Boom
        return [0.0] * n

    fn = batch if batched else unbatched
    path = tmp_path / "r.jsonl"
    with pytest.raises(Boom):
        sweep.run_sweep(fn, samples, k=k, path=path, batched=batched,
                        max_workers=workers, progress=False)
    recorded = _lines(path)
    assert recorded  # what finished before the error was kept
    assert len(recorded) < len(samples) * k
    fail_at["n"] = 0
    data = sweep.run_sweep(fn, samples, k=k, path=path, batched=batched,
                           max_workers=workers, progress=False)
    _check_file(path, range(len(samples)), k)
    assert data.counts.tolist() == [k] * len(samples)
    # nothing recorded was asked for again: calls = rollouts in the file + the
    # ones that were lost in the failing call(s)
    assert sum(calls.values()) - len(samples) * k <= (k if batched else 1) * workers


def test_concurrent_results_are_in_sample_and_rollout_order(tmp_path):
    samples = [f"s{i}" for i in range(12)]
    rng = np.random.default_rng(0)
    delays = {s: float(d) for s, d in zip(samples, rng.uniform(0, 0.004, 12),
                                          strict=True)}
    counters = Counter()
    lock = threading.Lock()

    def evaluate(sample):
        with lock:
            j = counters[sample]
            counters[sample] += 1
        time.sleep(delays[sample])
        return _score(sample, j)

    path = tmp_path / "r.jsonl"
    par = sweep.run_sweep(evaluate, samples, k=6, path=path, max_workers=5,
                          progress=False)
    _check_file(path, range(12), 6)
    by_key = {(r["prompt_id"], r["rollout"]): r["score"] for r in _lines(path)}
    want = [by_key[(i, j)] for i in range(12) for j in range(6)]
    assert par.scores.tolist() == want


def test_batched_calls_once_per_sample(tmp_path):
    seen = []

    def evaluate_batch(sample, n):
        seen.append((sample, n))
        return [j % 2 == 0 for j in range(n)]  # booleans are pass/fail

    d = sweep.run_sweep(evaluate_batch, ["a", "b"], ids=["x", "y"], k=4,
                        path=tmp_path / "r.jsonl", batched=True, progress=False)
    assert seen == [("a", 4), ("b", 4)]
    assert d.scores.tolist() == [1.0, 0.0, 1.0, 0.0] * 2
    # resuming with a larger k asks each sample for the missing rollouts only
    d = sweep.run_sweep(evaluate_batch, ["a", "b"], ids=["x", "y"], k=6,
                        path=tmp_path / "r.jsonl", batched=True, progress=False)
    assert seen[2:] == [("a", 2), ("b", 2)]
    assert d.counts.tolist() == [6, 6]
    # a smaller k returns rollouts 0..k-1 and runs nothing
    d = sweep.run_sweep(evaluate_batch, ["a", "b"], ids=["x", "y"], k=2,
                        path=tmp_path / "r.jsonl", batched=True, progress=False)
    assert len(seen) == 4 and d.scores.tolist() == [1.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize("ret, match", [
    ([0.5], r"returned 1 scores for sample 0; expected 3"),
    ("0.5", r"with batched=True it must return a list of 3"),
    ([0.5, "1", 0.5], r"evaluate returned '1' for sample 0 \(rollout 1\)"),
    ([0.5, 2, 0.5], r"evaluate returned 2 for sample 0"),
])
def test_batched_bad_returns(tmp_path, ret, match):
    path = tmp_path / "r.jsonl"
    with pytest.raises(ValueError, match=match):
        sweep.run_sweep(lambda s, n: ret, [1], k=3, path=path, batched=True,
                        progress=False)
    assert not path.exists() or path.read_text() == ""


@pytest.mark.parametrize("value, ok", [
    (0.5, True), (True, True), (np.float32(0.25), True), (np.bool_(False), True),
    (np.array(0.5), True), ("0.5", False), (b"1", False), (None, False),
    (float("nan"), False), (np.array([0.5]), False), (1.5, False), (-0.0, True),
    (10**400, False), ([1], False),
])
def test_evaluate_return_types(tmp_path, value, ok):
    path = tmp_path / "r.jsonl"
    if ok:
        d = sweep.run_sweep(lambda s: value, [1], k=1, path=path, progress=False)
        assert d.scores.tolist() == [float(value)]
    else:
        with pytest.raises(ValueError, match="evaluate returned"):
            sweep.run_sweep(lambda s: value, [1], k=1, path=path, progress=False)


RESULTS_ERRORS = [
    ('{"prompt_id": 0, "rollout": 0, "score": 5}\n', r":1: score must be a number"),
    ('{"prompt_id": 0, "rollout": 0, "score": NaN}\n', r":1: score must be a number"),
    ('{"prompt_id": 0, "rollout": 0, "score": "0.5"}\n', r":1: score must be"),
    ('{"prompt_id": 0, "rollout": 0, "score": true}\n', r":1: score must be"),
    ('{"prompt_id": 0, "rollout": 0, "score": null}\n', r":1: score must be"),
    ('{"prompt_id": 0, "rollout": -1, "score": 1}\n', r":1: rollout must be"),
    ('{"prompt_id": 0, "rollout": 1.0, "score": 1}\n', r":1: rollout must be"),
    ('{"prompt_id": 0, "rollout": 0, "score": 1}\n'
     '{"prompt_id": 0, "rollout": 0, "score": 0}\n', r":2: rollout 0 of prompt 0 is "
                                                     "recorded twice"),
    ('{"prompt_id": 5, "rollout": 0, "score": 1}\n', r":1: prompt_id 5 is not among"),
    ('{"prompt_id": "0", "rollout": 0, "score": 1}\n', r"prompt_id '0' is not among"),
    ('{"prompt_id": 0, "score": 1}\n', r"not a vipcore sweep results file"),
    ('{"prompt_id": 0, "rollout": 0, "score": 1, "score": 0}\n', r"duplicate key"),
    ('{"prompt_id": 0, "rollout": 0, "score": 1}\n[1]\n', r":2: expected a JSON"),
]


@pytest.mark.parametrize("text, match", RESULTS_ERRORS)
def test_results_file_is_checked(tmp_path, text, match):
    path = tmp_path / "r.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        sweep.run_sweep(lambda s: 0.0, ["a"], k=2, path=path, progress=False)


def test_results_file_utf8_and_directory(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"prompt_id": 0, "rollout": 0, "score": 1}\n{"prompt_id": '
                     b'"\xff", "rollout": 0, "score": 1}\n')
    with pytest.raises(ValueError, match=r"r\.jsonl: line 2, column 16: not valid "
                       "UTF-8"):
        sweep.run_sweep(lambda s: 0.0, ["a"], k=2, path=path, progress=False)
    with pytest.raises(ValueError, match="is a directory"):
        sweep.run_sweep(lambda s: 0.0, ["a"], k=2, path=tmp_path, progress=False)


def test_argument_errors(tmp_path):
    path = tmp_path / "r.jsonl"
    for kw, match in ((dict(k=2, max_workers=0), "max_workers"),
                      (dict(k=2, max_workers=True), "max_workers"),
                      (dict(k=True), "k must be"), (dict(k=2, batched=1), "batched"),
                      (dict(k=2, ids=["a", "a"]), "unique"),
                      (dict(k=2, ids=[7, "7"]), "unique"),
                      (dict(k=2, ids=[" a", "b"]), "spaces"),
                      (dict(k=2, ids=[1.5, 2]), "strings or integers")):
        with pytest.raises(ValueError, match=match):
            sweep.run_sweep(lambda s: 0.0, ["x", "y"], path=path, progress=False,
                            **kw)
    with pytest.raises(ValueError, match="callable"):
        sweep.run_sweep("not a function", ["x"], k=1, path=path)


def test_progress_bar_reports_resume(tmp_path):
    path = tmp_path / "r.jsonl"
    sweep.run_sweep(lambda s: 1.0, ["a", "b"], k=2, path=path, progress=False)
    err = io.StringIO()
    sweep.run_sweep(lambda s: 1.0, ["a", "b", "c"], k=2, path=path, stream=err)
    assert "resuming, 4/6" in err.getvalue() and "6/6 evals" in err.getvalue()


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from vipcore import sweep
    def evaluate(sample, n):
        time.sleep(0.02)
        return [0.5] * n
    sweep.run_sweep(evaluate, list(range(400)), k=3, path=sys.argv[1],
                    batched=True, max_workers=3, progress=False)
""")


def test_sigkill_mid_run_loses_nothing(tmp_path):
    """A killed process leaves a file that the next run completes exactly."""
    path = tmp_path / "r.jsonl"
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, str(script), str(path)], env=env)
    deadline = time.time() + 60
    while time.time() < deadline and (not path.exists() or path.stat().st_size < 2000):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = path.read_bytes()
    assert before and len(before.splitlines()) < 1200
    d = sweep.run_sweep(lambda s, n: [0.5] * n, list(range(400)), k=3, path=path,
                        batched=True, progress=False)
    _check_file(path, range(400), 3)
    assert d.scores.size == 1200
