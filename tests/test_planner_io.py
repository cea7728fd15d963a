"""Planner files: round trips, the whole schema validated on load, atomic
saves, and a bit-flip fuzz (every damaged file loads to an equivalent planner
or raises ValueError naming the file)."""

from __future__ import annotations

import json
import os
import time
import zipfile

import numpy as np
import pytest

from vipcore._src import planner as plmod
from vipcore._src.planner import Planner
from vipcore._src.predict import _state_io

Q, D = 24, 4


@pytest.fixture(scope="module")
def emb():
    return np.random.default_rng(0).normal(size=(Q, D)).astype(np.float32)


def _ids():
    return [f"uid-{i}" for i in range(Q)]


def _trained(emb, **kw):
    pl = Planner(emb, ids=_ids(), **{"predictor": "beta", **kw})
    rng = np.random.default_rng(1)
    for _ in range(2):
        ids = [f"uid-{i}" for i in rng.choice(Q, 8, replace=False)]
        pl.observe(ids, successes=rng.integers(0, 5, 8), counts=np.full(8, 4))
    return pl


def _read(path):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return json.loads(bytes(arrays.pop("meta")).decode()), arrays


def _write(path, meta, arrays, *, redigest=True):
    """Write a (crafted) planner file; with ``redigest`` its digest is made
    valid again, so that the schema checks behind the digest are reached."""
    if redigest and "digest" in meta:
        rest = {k: v for k, v in meta.items() if k != "digest"}
        meta = {**rest, "digest": _state_io.digest(rest, arrays)}
    np.savez(path, **arrays, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))


def _equivalent(a: Planner, b: Planner):
    assert a.config == b.config and a.ids == b.ids and a.step == b.step
    ids = a.ids or list(range(a.num_prompts))
    np.testing.assert_array_equal(a.predict(ids), b.predict(ids))


@pytest.mark.parametrize("kw", [
    dict(), dict(predictor="gp", noise="binomial", bandwidth=2.0),
    dict(predictor="gp_authors"), dict(predictor="moving_average"),
    dict(predictor="ridge"), dict(predictor="pooled"),
    dict(predictor="beta", beta_prior="ridge", uncertainty="optimistic"),
])
def test_roundtrip(emb, tmp_path, kw):
    pl = _trained(emb, **kw)
    path = tmp_path / "planner.npz"
    pl.save(path)
    assert sorted(os.listdir(tmp_path)) == ["planner.npz"]  # no temp file left
    back = Planner.load(path)
    _equivalent(pl, back)
    more = dict(successes=[1, 2, 3], counts=[4, 4, 4])
    pl.observe(_ids()[:3], **more)
    back.observe(_ids()[:3], **more)
    _equivalent(pl, back)
    meta, arrays = _read(path)
    assert meta["format"] == "vipcore.planner" and meta["version"] == 2
    assert all(k.startswith("state.") for k in arrays)


def test_numpy_scalar_settings_save(emb, tmp_path):
    pl = Planner(emb, predictor="gp", block_size=np.int64(8), bandwidth=np.float32(2),
                 upper=np.int64(12), strict=np.bool_(True))
    pl.save(tmp_path / "p.npz")
    back = Planner.load(tmp_path / "p.npz")
    assert back.config["options"] == {"block_size": 8, "bandwidth": 2.0}
    assert back.config["upper"] == 12 and back.config["strict"] is True


def test_save_errors_name_the_target_and_keep_the_old_file(emb, tmp_path,
                                                           monkeypatch):
    pl = _trained(emb)
    with pytest.raises(OSError, match="no-such-dir/p.npz"):
        pl.save(tmp_path / "no-such-dir" / "p.npz")
    path = tmp_path / "p.npz"
    pl.save(path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match=f"{path}: No space left"):
        pl.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["p.npz"]


def test_save_removes_stale_temporary_files(emb, tmp_path):
    """A save killed mid-way leaves a temporary file; the next save removes it
    once it is old (a fresh one may belong to a concurrent save)."""
    pl = _trained(emb)
    old = tmp_path / ".p.npz.abc123.tmp"
    old_v1 = tmp_path / "p.npz.xyz.tmp"
    fresh = tmp_path / ".p.npz.def456.tmp"
    for f in (old, old_v1, fresh):
        f.write_bytes(b"partial")
    past = time.time() - 2 * plmod.STALE_TMP_SECONDS
    os.utime(old, (past, past))
    os.utime(old_v1, (past, past))
    pl.save(tmp_path / "p.npz")
    assert sorted(os.listdir(tmp_path)) == [".p.npz.def456.tmp", "p.npz"]


def _mutations():
    def meta_set(key, val):
        return lambda m, a: (m.__setitem__(key, val), a)[1]

    def cfg_set(key, val):
        return lambda m, a: (m["config"].__setitem__(key, val), a)[1]

    def arr(key, fn):
        return lambda m, a: {**a, key: fn(a[key])}

    return {
        "version true": (meta_set("version", True), "version True"),
        "future version": (meta_set("version", 3), "version 3 is not supported"),
        "lower abc": (cfg_set("lower", "abc"), "lower must be an integer"),
        "upper below lower": (cfg_set("upper", 1), "upper must lie in"),
        "unknown predictor": (meta_set("predictor", "knn"), "config does not name"),
        "unknown option": (lambda m, a: (m["config"]["options"].update(
            window=3), a)[1], "does not take window="),
        "ids not a list": (meta_set("ids", "abc"), "ids must be a list"),
        "duplicate ids": (meta_set("ids", ["a"] * Q), "ids must be unique"),
        "few ids": (meta_set("ids", ["a", "b"]), "one entry per prompt"),
        "bool step": (meta_set("step", True), "step must be an integer"),
        "nan evidence": (arr("state.successes", lambda x: x * np.nan),
                         "finite and >= 0"),
        "negative evidence": (arr("state.failures", lambda x: x - 100),
                              "finite and >= 0"),
        "complex mean": (arr("state.prior.mean", lambda x: x.astype(np.complex64)),
                         "dtype complex64"),
        "2-D mean": (arr("state.prior.mean", lambda x: np.stack([x, x])),
                     "inconsistent array shapes"),
        "negative bandwidth": (arr("state.prior.bandwidth", lambda x: -x),
                               "bandwidth > 0"),
        "short evidence": (arr("state.successes", lambda x: x[:-1]),
                           "inconsistent array shapes"),
        "int evidence": (arr("state.successes", lambda x: x.astype(np.int32)),
                         "share one floating dtype"),
        "float64 evidence": (arr("state.successes", lambda x: x.astype(np.float64)),
                             "share one floating dtype"),
        "extra array": (lambda m, a: {**a, "state.extra": np.zeros(3)},
                        "unexpected arrays"),
        "missing array": (lambda m, a: {k: v for k, v in a.items()
                                        if k != "state.last"}, "missing array"),
        "foreign state type": (lambda m, a: (m["state_tree"].__setitem__(
            "type", "os.system"), a)[1], "unknown state type"),
    }


@pytest.mark.parametrize("case", sorted(_mutations()))
def test_load_validates_the_whole_schema(emb, tmp_path, case):
    """Crafted files (digest recomputed, so the schema itself is checked):
    every one is refused with a ValueError naming the file."""
    pl = _trained(emb)
    good = tmp_path / "good.npz"
    pl.save(good)
    meta, arrays = _read(good)
    fn, match = _mutations()[case]
    arrays = fn(meta, arrays)
    bad = tmp_path / "bad.npz"
    _write(bad, meta, arrays)
    with pytest.raises(ValueError, match="bad.npz") as err:
        Planner.load(bad)
    assert match in str(err.value), str(err.value)


def test_edits_without_a_new_digest_are_refused(emb, tmp_path):
    """ids set to null in a file that had ids is a valid-looking planner with
    row numbers as ids; the digest recognises the edit."""
    pl = _trained(emb)
    good = tmp_path / "good.npz"
    pl.save(good)
    meta, arrays = _read(good)
    meta["ids"] = None
    bad = tmp_path / "bad.npz"
    _write(bad, meta, arrays, redigest=False)
    with pytest.raises(ValueError, match="bad.npz.*digest"):
        Planner.load(bad)
    _write(bad, meta, arrays)  # with a recomputed digest it is a planner
    assert Planner.load(bad).ids is None


def test_truncated_and_foreign_files(emb, tmp_path):
    pl = _trained(emb)
    good = tmp_path / "good.npz"
    pl.save(good)
    data = good.read_bytes()
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="trunc.npz: not a valid"):
        Planner.load(trunc)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"hello world")
    with pytest.raises(ValueError, match="junk.npz"):
        Planner.load(junk)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ValueError, match="other.npz.*metadata"):
        Planner.load(other)


def test_version_1_files_still_load(emb, tmp_path):
    """A file in the first format (flat config, no digest, no nested state)
    loads to the same GP planner."""
    pl = Planner(emb, ids=_ids(), predictor="gp", noise="binomial", bandwidth=2.0)
    pl.observe(_ids()[:4], successes=[0, 1, 2, 4], counts=[4, 4, 4, 4])
    st = pl.state
    arrays = {f"state.{k}": np.asarray(v) for k, v in st._asdict().items()
              if v is not None and k != "center"}
    cfg = dict(estimator="rloo", lower=2, upper=16, predictor="gp",
               reward="binary", eps=0.01, noise="binomial", bandwidth=2.0,
               prior_mean=0.0, block_size=None, window=3, ridge_capacity=1024,
               ridge_lam=1.0, seed=0)
    meta = dict(format="vipcore.planner", version=1, predictor="gp", config=cfg,
                ids=_ids(), step=1, fields=sorted(k[6:] for k in arrays))
    path = tmp_path / "v1.npz"
    _write(path, meta, arrays, redigest=False)
    back = Planner.load(path)
    assert back.state.center is None and back.step == 1
    np.testing.assert_array_equal(back.predict(_ids()), pl.predict(_ids()))
    assert back.config["options"]["noise"] == "binomial"


def _fuzz(emb, tmp_path, positions):
    pl = _trained(emb)
    good = tmp_path / "good.npz"
    pl.save(good)
    data = bytearray(good.read_bytes())
    ref = Planner.load(good)
    outcomes = {"equivalent": 0, "refused": 0}
    flipped = tmp_path / "flipped.npz"
    for pos in positions:
        buf = bytearray(data)
        buf[pos // 8] ^= 1 << (pos % 8)
        flipped.write_bytes(bytes(buf))
        try:
            got = Planner.load(flipped)
        except ValueError as err:
            assert "flipped.npz" in str(err)
            outcomes["refused"] += 1
        else:
            _equivalent(ref, got)
            outcomes["equivalent"] += 1
    return outcomes, len(data)


def test_bit_flip_fuzz_sample(emb, tmp_path):
    """200 single-bit flips at seeded positions (the full sweep over every bit
    is the slow test below)."""
    pl = _trained(emb)
    pl.save(tmp_path / "probe.npz")
    nbits = 8 * (tmp_path / "probe.npz").stat().st_size
    pos = np.random.default_rng(0).choice(nbits, 200, replace=False)
    outcomes, _ = _fuzz(emb, tmp_path, pos.tolist())
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == 200


@pytest.mark.slow
def test_bit_flip_fuzz_every_bit(emb, tmp_path):
    pl = _trained(emb)
    pl.save(tmp_path / "probe.npz")
    nbits = 8 * (tmp_path / "probe.npz").stat().st_size
    outcomes, _ = _fuzz(emb, tmp_path, range(nbits))
    assert sum(outcomes.values()) == nbits


def test_files_hold_no_pickles(emb, tmp_path):
    pl = _trained(emb)
    pl.save(tmp_path / "p.npz")
    with zipfile.ZipFile(tmp_path / "p.npz") as z:
        for name in z.namelist():
            head = z.read(name)[:10]
            assert head.startswith(b"\x93NUMPY"), name
    with np.load(tmp_path / "p.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
