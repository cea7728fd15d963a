"""The ``vipcore`` command line: dispatch, ``allocate``, ``bench`` plumbing."""

import io
import json
from pathlib import Path

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


def test_a_command_loads_only_its_module():
    """``vipcore allocate ...`` imports the allocate command and none of the
    others (they stay bare choices, so a wrong command is still an error)."""
    import subprocess
    import sys

    code = ("import json, sys\n"
            "from vipcore._src.apps import cli\n"
            "parser, mods = cli.build_parser('allocate')\n"
            "print(json.dumps([sorted(mods), sorted(m for m in sys.modules if "
            "m.startswith(('vipcore._src.apps.cli.', 'vipcore._src.sweep', "
            "'vipcore._src.apps.verify', 'vipcore._src.apps.simulate')))]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True)
    mods, loaded = json.loads(out.stdout)
    assert mods == ["allocate"]
    assert loaded == ["vipcore._src.apps.cli._options",
                      "vipcore._src.apps.cli.allocate"]
    parser, mods = cli.build_parser("allocate")
    with pytest.raises(SystemExit):
        parser.parse_args(["allocate", "p.txt", "-C", "8", "-U", "4", "--nope"])
    assert parser.parse_args(["sweep"]).command == "sweep"


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"vipcore {vipcore.__version__}\n"
    parser, _ = cli.build_parser("allocate")  # not an option of any command
    assert "version" not in vars(parser.parse_args(["allocate", "p", "-C", "4",
                                                    "-U", "2"]))


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
        ("0.5\n1.5\n", ["-C", "8", "-U", "8"], r"line 2: p_hat must lie in \[0, 1\]"),
        ("0.5\n0.5\n", ["-C", "80", "-U", "8"], "--budget 80 is infeasible"),
        ("0.5\n0.5\n", ["-C", "8", "-L", "1", "-U", "8"], "--lower must be >= 2"),
        ("", ["-C", "8", "-U", "8"], "<stdin>: no p_hat values"),
        ("[0.5, \"x\"]", ["-C", "8", "-U", "8"], "line 1: expected a number"),
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


IDS = ["q1", "q2", "q3", "q4", "q5"]


def _records(path, fmt, id_key="prompt_id", p_key="p_hat"):
    rows = [{id_key: i, p_key: p, "bucket": "signal"}
            for i, p in zip(IDS, P, strict=True)]
    if fmt == "csv":
        path.write_text(f"{id_key},bucket,{p_key}\n"
                        + "".join(f"{r[id_key]},signal,{r[p_key]}\n" for r in rows))
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        path.write_text(json.dumps(rows, indent=1))


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_allocate_reads_ids_and_prints_a_table(tmp_path, capsys, fmt):
    path = tmp_path / f"prompts.{fmt}"
    _records(path, fmt)
    assert cli.main(["allocate", str(path), "-C", "40", "-U", "16"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["prompt_id", "n"]
    got = {k: int(v) for k, v in (line.split() for line in lines[1:])}
    want = vipcore.allocate(np.asarray(P), 40, 2, 16)
    assert got == dict(zip(IDS, want.tolist(), strict=True))


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_allocate_column_options(tmp_path, capsys, fmt):
    path = tmp_path / f"prompts.{fmt}"
    _records(path, fmt, id_key="question", p_key="acc")
    args = ["allocate", str(path), "-C", "40", "-U", "16"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "'p_hat'" in err and "--p-col" in err
    assert cli.main([*args, "--p-col", "acc", "--id-col", "question"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()[1:]
    assert [line.split()[0] for line in lines] == IDS
    assert cli.main([*args, "--p-col", "acc", "--id-col", "nope"]) == 2
    assert "'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json"])
def test_allocate_writes_ids_with_counts(tmp_path, capsys, suffix):
    src = tmp_path / "prompts.jsonl"
    _records(src, "jsonl")
    out = tmp_path / f"alloc{suffix}"
    assert cli.main(["allocate", str(src), "-C", "40", "-U", "16",
                     "--out", str(out)]) == 0
    assert "wrote 5 rows" in capsys.readouterr().err
    want = list(zip(IDS, vipcore.allocate(np.asarray(P), 40, 2, 16).tolist(),
                    strict=True))
    if suffix == ".csv":
        rows = [line.split(",") for line in out.read_text().splitlines()]
        assert rows[0] == ["prompt_id", "p_hat", "n"]
        assert [(r[0], int(r[2])) for r in rows[1:]] == want
    else:
        text = out.read_text()
        recs = (json.loads(text) if suffix == ".json"
                else [json.loads(x) for x in text.splitlines()])
        assert [(r["prompt_id"], r["n"]) for r in recs] == want
        assert [r["p_hat"] for r in recs] == P


def test_allocate_never_writes_over_its_input(tmp_path, capsys):
    src = tmp_path / "prompts.jsonl"
    _records(src, "jsonl")
    before = src.read_bytes()
    link = tmp_path / "link.jsonl"
    link.symlink_to(src)
    for out in (src, link):
        assert cli.main(["allocate", str(src), "-C", "40", "-U", "16",
                         "--out", str(out)]) == 2
        assert "refusing to write" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_allocate_reads_what_sweep_writes(tmp_path, capsys):
    """The pre-flight sweep's ``prompts.jsonl`` rows carry ``prompt_id`` and
    ``p_hat`` (plus other keys): ``vipcore allocate`` reads them directly."""
    rows = [{"prompt_id": f"p{i}", "K": 16, "mean": p, "std": 0.1, "best": 1,
             "bucket": "signal", "p_hat": p, "p_lo": 0.0, "p_hi": 1.0}
            for i, p in enumerate(P)]
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli.main(["allocate", str(path), "-C", "40", "-U", "16", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["prompt_id"] == [f"p{i}" for i in range(len(P))]
    assert out["n"] == vipcore.allocate(np.asarray(P), 40, 2, 16).tolist()


def test_allocate_stdin_jsonl(monkeypatch, capsys):
    text = "".join(json.dumps({"prompt_id": i, "p_hat": p}) + "\n"
                   for i, p in enumerate(P))
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert cli.main(["allocate", "-", "-C", "40", "-U", "16"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines[1:]] == [str(i) for i in range(5)]


def test_allocate_uses_a_compilation_cache_of_its_own(tmp_path):
    """The command-line process turns on JAX's persistent cache for itself,
    in the user's cache directory; neither the library nor a ``cli.main``
    call from Python changes the setting."""
    import os
    import subprocess
    import sys

    import jax

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONPATH": str(Path(vipcore.__file__).parents[1])}
    data = tmp_path / "p.txt"
    data.write_text("0.5\n0.2\n")
    subprocess.run([sys.executable, "-m", "vipcore", "allocate", str(data), "-C",
                    "4", "-U", "2"], check=True, env=env, capture_output=True)
    assert any((tmp_path / "cache" / "vipcore" / "jax").iterdir())
    code = ("import jax, vipcore; vipcore.allocate([0.5, 0.2], 4, 2, 2); "
            "print(jax.config.jax_compilation_cache_dir)")
    lib = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True, env=env)
    assert lib.stdout.strip() == "None"
    before = jax.config.jax_compilation_cache_dir
    assert cli.main(["allocate", str(data), "-C", "4", "-U", "2"]) == 0
    assert jax.config.jax_compilation_cache_dir == before


def test_bench_writes_json(tmp_path, monkeypatch, capsys):
    """Plumbing only (tiny sizes): a new directory in the working directory,
    the JSON has device, versions, load and ratios; results are never
    replaced without --overwrite, and never written into the package."""
    monkeypatch.chdir(tmp_path)
    args = ["bench", "--sizes", "16", "--batches", "2", "--slsqp", "1",
            "--slsqp-size", "8", "--batch-size", "16", "--reps", "2",
            "--precision", "2", "--no-cold-start", "--min-time", "0"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert out.index("expected roughly") < out.index("SLSQP ")  # printed first
    (made,) = tmp_path.glob("vipcore-bench-*/allocate_cpu.json")
    res = json.loads(made.read_text())
    for key in ("device", "jax", "numpy", "scipy", "vipcore", "loadavg_start"):
        assert key in res["environment"]
    row = res["latency"][0]
    assert row["B"] == 16 and row["ratio_previous_over_vip"] > 0
    assert row["objective_vip"] <= row["objective_numpy_greedy"] * (1 + 1e-6)
    assert row["one_fusion"]["median_s"] > 0  # a call's own cost, beside the solver
    assert res["slsqp"]["instances"][0]["continuous_not_worse"]
    assert res["float32_vs_float64"]["instances"] == 2
    assert res["environment"]["cpu_async_dispatch"] is True  # JAX's default
    sync = res["latency_sync_dispatch"]  # measured in a child process
    assert sync["cpu_async_dispatch"] is False
    assert [r["B"] for r in sync["latency"]] == [16]
    assert sync["latency"][0]["same_integers_as_previous"]
    assert res["throughput"]["vip_integers_unrolled"]["prompts_per_s"] > 0
    assert "throughput_unrolled_met" in res["goals"]
    assert "B512_latency_sync_dispatch_met" not in res["goals"]  # no B = 512
    assert cli.main([*args, "--out", str(made.parent)]) == 2
    assert "refusing to replace" in capsys.readouterr().err
    from vipcore._src.apps.cli.bench import output_path

    assert output_path(made.parent, "cpu", overwrite=True) == made
    pkg = Path(vipcore.__file__).parent / "results"
    assert cli.main([*args, "--out", str(pkg)]) == 2
    assert "inside the vipcore package" in capsys.readouterr().err
    assert not pkg.exists()


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
