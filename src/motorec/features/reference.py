"""Row-wise agreement with published features, to prove a recipe reproduces them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from motorec.errors import MotorecError

COSINE_TARGET = 0.999


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of row i of `a` with row i of `b` (float64, zero rows give 0)."""
    if a.shape != b.shape:
        raise MotorecError(f"feature shapes differ: {a.shape} vs reference {b.shape}.")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    denom = np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1)
    return np.divide((a64 * b64).sum(axis=1), denom, out=np.zeros(len(a64)), where=denom > 0)


def compare_with_reference(produced: Path, reference: Path, rows: int | None = None) -> dict[str, Any]:
    """Min/mean row cosine of `produced` vs the first `rows` (default all) rows of `reference`."""
    if not reference.is_file():
        raise MotorecError(f"reference features not found: {reference}")
    ours = np.load(produced)
    ref = np.load(reference, mmap_mode="r")
    cos = row_cosines(ours, np.asarray(ref[: rows if rows is not None else len(ref)]))
    below = np.flatnonzero(cos < COSINE_TARGET)
    return {
        "rows": len(cos),
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
        "worst_row": int(cos.argmin()),
        "target": COSINE_TARGET,
        "rows_below_target": below.tolist(),
    }
