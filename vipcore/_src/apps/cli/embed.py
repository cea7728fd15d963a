"""``vipcore embed FILE --text-col COL --out X.npz``: prompt embeddings by id.

Reads the prompts of a JSONL, CSV, Parquet or Arrow file (a rollout log may
repeat a prompt on many rows: each distinct prompt is embedded once), embeds
them with all-MiniLM-L6-v2 (:func:`vipcore.embed`, needs
``pip install 'vipcore[embed]'``) and writes an ``.npz`` with

* ``ids``: the prompt ids (``int64`` when every id is an integer, else
  strings), in order of first appearance;
* ``embeddings``: ``float32``, one unit-length row of 384 numbers per id;
* ``model``: the encoder's name.

Ids come from ``--id-col`` (default ``prompt_id``) with the text in
``--text-col``, or, with ``--id-from-text COL``, from a stable hash of the
text in ``COL`` (the same ids ``vipcore sweep --id-from-text COL`` writes). Load with
``z = np.load("X.npz"); dict(zip(z["ids"].tolist(), z["embeddings"]))``.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

from vipcore._src._files import atomic_write_bytes, refuse_overwrite
from vipcore._src.apps.cli._columns import add_column_arguments, column_name, out_file
from vipcore._src.apps.cli._options import int_in
from vipcore._src.embed import MODEL_NAME, embed
from vipcore._src.sweep.io import _ids_from_text, _labels, _text_per_id, _texts
from vipcore._src.sweep.tables import load_file

__all__ = ["HELP", "add_arguments", "run", "read_prompts"]

HELP = "embed prompt texts (all-MiniLM-L6-v2, offline) into an .npz keyed by id"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path,
                        help="JSONL/CSV/Parquet/Arrow file with a prompt-text column")
    add_column_arguments(parser, scores=False)
    parser.add_argument("--text-col", type=column_name, default=None, metavar="COL",
                        help="column holding the prompt text (with --id-col, or "
                             "the default id column prompt_id)")
    parser.add_argument("--out", type=out_file(".npz"), required=True,
                        help="the .npz file to write (ids, embeddings, model)")
    parser.add_argument("--batch-size", type=int_in(1, 65536), default=64,
                        help="texts per forward pass (default 64)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--no-progress", action="store_true",
                        help="do not draw the progress bar")


def read_prompts(path: Path, *, text_col: str, id_col: str | None = None,
                 id_from_text: bool = False, fmt: str | None = None
                 ) -> tuple[list, list]:
    """Distinct ``(ids, texts)`` of a file, in order of first appearance.

    A prompt id that comes with two different texts is an error (file, line).
    """
    table = load_file(path, fmt)
    if text_col not in table.columns:
        raise ValueError(f"{path}: missing column {text_col!r} for the prompt text "
                         f"(found: {', '.join(table.columns)})")
    texts = _texts(table, text_col)
    if id_from_text:
        ids, by_id = _ids_from_text(table, texts)
    else:
        col = id_col or "prompt_id"
        if col not in table.columns:
            raise ValueError(f"{path}: missing column {col!r} for the prompt id "
                             f"(found: {', '.join(table.columns)}); name it with "
                             "--id-col, or use --id-from-text")
        ids = _labels(table, col, "prompt id")
        by_id = _text_per_id(table, ids, texts)
    distinct = list(dict.fromkeys(ids))
    return distinct, [by_id[i] for i in distinct]


def _id_array(ids: list) -> np.ndarray:
    if all(type(i) is int for i in ids):
        if all(-2**63 <= i < 2**63 for i in ids):
            return np.array(ids, dtype=np.int64)
    return np.array([str(i) for i in ids], dtype=str)


def run(args: argparse.Namespace) -> int:
    if args.id_from_text and args.text_col and args.id_from_text != args.text_col:
        raise ValueError("--id-from-text and --text-col name different columns")
    text_col = args.id_from_text or args.text_col
    if text_col is None:
        raise ValueError("name the prompt-text column with --text-col (or "
                         "--id-from-text COL)")
    refuse_overwrite([args.file], [args.out])
    ids, texts = read_prompts(args.file, text_col=text_col, id_col=args.id_col,
                              id_from_text=bool(args.id_from_text), fmt=args.format)
    try:
        emb = embed(texts, batch_size=args.batch_size, progress=not args.no_progress,
                    device=args.device)
    except ImportError as err:
        raise ValueError(str(err)) from None
    buf = io.BytesIO()
    np.savez(buf, ids=_id_array(ids), embeddings=emb, model=np.array(MODEL_NAME))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, buf.getvalue())
    print(f"wrote {out}: {len(ids)} prompts x {emb.shape[1]} dimensions "
          f"({MODEL_NAME})")
    sys.stdout.flush()
    return 0
