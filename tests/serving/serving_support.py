"""Helpers shared by the serving tests (a plain module: conftest modules are not importable by name)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def features_for_vector(bundle, target: np.ndarray) -> dict[str, list[float]]:
    """Features whose ridge-mapped item vector is `target` (least-squares inverse of the content map)."""
    cmap = bundle.content_map
    z, *_ = np.linalg.lstsq(cmap.weight.T.astype(np.float64), (target - cmap.bias).astype(np.float64), rcond=None)
    x = z * cmap.scale + cmap.mean
    out, start = {}, 0
    for m in sorted(bundle.modalities):
        d = bundle.modalities[m]
        out[m] = x[start : start + d].astype(np.float32).tolist()
        start += d
    return out
