"""The ``vipcore`` command line: dispatch, ``allocate``, ``bench`` plumbing."""

import io
import json

import numpy as np
import pytest

import vipcore
from vipcore._src.apps import cli


def test_all_commands_registered(capsys):
    parser, mods = cli.build_parser()
    assert set(mods) == set(cli.COMMANDS), "a subcommand module failed to import"
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


P = [0.5, 0.9, 0.99, 0.0, 0.3]


@pytest.mark.parametrize("fmt", ["json", "jsonobj", "csv", "txt", "npy"])
def test_allocate_file_formats(tmp_path, capsys, fmt):
    path = tmp_path / ("p." + ("json" if fmt.startswith("json") else fmt))
    if fmt == "json":
        path.write_text(json.dumps(P))
    elif fmt == "jsonobj":
        path.write_text(json.dumps({"p_hat": P}))
    elif fmt == "csv":
        path.write_text("p_hat\n" + "\n".join(map(str, P)) + "\n")
    elif fmt == "txt":
        path.write_text("# comment\n" + "\n\n".join(map(str, P)))
    else:
        np.save(path, np.asarray(P, np.float32))
    assert cli.main(["allocate", str(path), "-C", "40", "-U", "16"]) == 0
    got = [int(x) for x in capsys.readouterr().out.split()]
    np.testing.assert_array_equal(got, vipcore.allocate(np.float32(P), 40, 2, 16))


def test_allocate_stdin_json_output(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(P)))
    rc = cli.main(["allocate", "-", "-C", "40", "-L", "3", "-U", "16",
                   "--estimator", "drgrpo", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert sum(out["n"]) == 40 and out["estimator"] == "drgrpo"
    assert out["objective"] <= out["objective_uniform"]


@pytest.mark.parametrize("method", ["uniform", "inverse_accuracy", "inverse_variance"])
def test_allocate_heuristic_methods(monkeypatch, capsys, method):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(map(str, P))))
    assert cli.main(["allocate", "-", "-C", "40", "-U", "16", "--method", method]) == 0
    got = [int(x) for x in capsys.readouterr().out.split()]
    fn = getattr(vipcore, f"allocate_{method}")
    np.testing.assert_array_equal(got, fn(np.float32(P), 40, 2, 16))


@pytest.mark.parametrize(
    "content, args, match",
    [
        ("0.5\nabc\n", ["-C", "8", "-U", "8"], "line 2: expected one number"),
        ("0.5\n1.5\n", ["-C", "8", "-U", "8"], r"p_hat must lie in \[0, 1\]"),
        ("0.5\n0.5\n", ["-C", "80", "-U", "8"], "C=80 is infeasible"),
        ("0.5\n0.5\n", ["-C", "8", "-L", "1", "-U", "8"], "L must be >= 2"),
        ("", ["-C", "8", "-U", "8"], "p_hat is empty"),
        ("[0.5, \"x\"]", ["-C", "8", "-U", "8"], "item 1: expected a number"),
        ("[0.5,", ["-C", "8", "-U", "8"], "invalid JSON"),
    ],
)
def test_allocate_errors_are_one_line(monkeypatch, capsys, content, args, match):
    monkeypatch.setattr("sys.stdin", io.StringIO(content))
    assert cli.main(["allocate", "-", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vipcore allocate: error:")
    assert len(err.strip().splitlines()) == 1
    import re

    assert re.search(match, err), err


def test_allocate_missing_file(capsys):
    assert cli.main(["allocate", "/nonexistent/p.json", "-C", "8", "-U", "8"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_bench_writes_json(tmp_path):
    """Plumbing only (tiny sizes): the JSON has device, versions and ratios."""
    out = tmp_path / "b.json"
    rc = cli.main(["bench", "--sizes", "16", "--batches", "2", "--slsqp", "1",
                   "--batch-size", "16",
                   "--reps", "2", "--out", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    for key in ("device", "jax", "numpy", "scipy", "vipcore"):
        assert key in res["environment"]
    assert res["latency"][0]["B"] == 16
    assert res["slsqp"]["instances"][0]["continuous_not_worse"]
    assert res["slsqp"]["median_speedup"] > 0
    assert cli.main(["bench", "--reps", "0", "--out", str(out)]) == 2


def test_closed_pipe_is_not_an_error():
    """``vipcore sweep --demo --json | head -1``: no error line, exit 0."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "vipcore", "sweep", "--demo", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    with proc:
        proc.stdout.readline()
        proc.stdout.close()  # the reader goes away, like `head -1`
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0, err
    assert "Broken pipe" not in err and "Traceback" not in err, err
