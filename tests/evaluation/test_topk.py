"""Tie-aware top-k: both the fast path and the exact fallback must equal a lexsort."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motorec.evaluation.metrics import topk_tiebreak


def lexsort_topk(scores: np.ndarray, k: int) -> np.ndarray:
    return np.stack([np.lexsort((np.arange(len(row)), -row))[:k] for row in scores])


@pytest.mark.parametrize("levels", [None, 3, 50])
def test_matches_lexsort_with_and_without_ties(levels):
    rng = np.random.default_rng(levels or 0)
    scores = rng.normal(size=(64, 300)).astype(np.float32)
    if levels:
        scores = np.round(scores * levels / 3) / levels  # many ties, some at the k-th position
    scores[:5, :] = -np.inf  # everything masked: all ties
    scores[5, ::2] = -0.0
    scores[5, 1::2] = 0.0
    scores[6, 10:] = -np.inf  # fewer candidates than k
    for k in (1, 20, 50, 300):
        got = topk_tiebreak(torch.from_numpy(scores), k).numpy()
        assert np.array_equal(got, lexsort_topk(scores + 0.0, k)), k


@pytest.mark.parametrize("width", [1, 7, 64, 299, 300])
def test_running_topk_over_blocks_equals_whole_rows(width):
    """Streaming column blocks through RunningTopK gives the exact whole-row top-k, ties included."""
    from motorec.topk import RunningTopK, blocks

    rng = np.random.default_rng(width)
    scores = (rng.integers(-3, 3, size=(40, 300)) / 2).astype(np.float32)  # many ties across blocks
    scores[0] = -np.inf
    scores[1, ::3] = -0.0
    running = RunningTopK(50)
    for start, stop in blocks(300, width):
        running.update(torch.from_numpy(scores[:, start:stop]), start)
    assert np.array_equal(running.ids.numpy(), lexsort_topk(scores + 0.0, 50))
