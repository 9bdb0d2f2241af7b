"""The item index: exact below the size threshold, calibrated IVF / HNSW above, growing without a rebuild."""

from __future__ import annotations

import numpy as np
import pytest

from motorec.errors import MotorecError
from motorec.serving import index as index_module
from motorec.serving.index import IndexConfig, ItemIndex, exact_topk, recall_at


@pytest.fixture(scope="module")
def catalogue():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 16))
    items = (centres[rng.integers(0, 40, 6000)] + 0.5 * rng.normal(size=(6000, 16))).astype(np.float32)
    users = (centres[rng.integers(0, 40, 300)] + 0.5 * rng.normal(size=(300, 16))).astype(np.float32)
    return np.arange(6000, dtype=np.int64) + 100, items, users


def test_auto_is_exact_below_the_threshold(catalogue):
    ids, items, users = catalogue
    index = ItemIndex.build(ids, items, IndexConfig(), users)
    assert index.kind == "flat" and len(index) == 6000 and index.version == 1
    got, _, _ = index.search(users[0], 20)
    assert np.array_equal(got, ids[exact_topk(users[:1], items, 20)[0]])


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_index_reaches_its_recall_and_grows(catalogue, kind):
    ids, items, users = catalogue
    config = IndexConfig(kind="auto" if kind == "ivf" else kind, exact_max_items=1000, target_recall=0.95)
    index = ItemIndex.build(ids, items, config, users[:200])
    assert index.kind == kind
    if kind == "ivf":
        assert index.info["calibration_recall_by_nprobe"][str(index.info["nprobe"])] >= 0.95
    # held-out queries (not used for calibration) against exact search
    found = np.stack([index.search(q, 20)[0] for q in users[200:]])
    assert recall_at(found, ids[exact_topk(users[200:], items, 20)]) >= 0.9
    new = items[5] * 3  # a new item far along an existing direction: its own best match
    version = index.add(np.array([99_999]), new[None, :])
    got, _, seen_version = index.search(new, 1)
    assert got[0] == 99_999 and seen_version == version == 2 and len(index) == 6001
    excluded, _, _ = index.search(new, 5, exclude=np.array([99_999]))
    assert 99_999 not in excluded and len(excluded) == 5


def test_ivf_searches_inner_products_of_vectors_of_unequal_norm(monkeypatch):
    """Popular items are long: the IVF's Euclidean reduction keeps the cells it probes few, its
    scores are the inner products, and items added later longer than every built one are found."""
    monkeypatch.setattr(index_module, "LIFT_BLOCK", 1000)  # the catalogue is lifted in six blocks
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 16))
    directions = centres[rng.integers(0, 40, 6000)] + 0.5 * rng.normal(size=(6000, 16))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    items = (directions * rng.lognormal(0, 0.8, size=(6000, 1))).astype(np.float32)
    users = (centres[rng.integers(0, 40, 300)] + 0.5 * rng.normal(size=(300, 16))).astype(np.float32)
    ids = np.arange(6000, dtype=np.int64)
    index = ItemIndex.build(ids, items, IndexConfig(kind="ivf", target_recall=0.95), users[:200])
    assert index.kind == "ivf" and index.info["nprobe"] <= 16 < index.info["nlist"]  # raw inner-product IVF: 64
    found = np.stack([index.search(q, 20)[0] for q in users[200:]])
    assert recall_at(found, ids[exact_topk(users[200:], items, 20)]) >= 0.95
    got, scores, _ = index.search(users[200], 20)
    np.testing.assert_allclose(scores, items[got] @ users[200], rtol=1e-4, atol=1e-4)
    longest = items[np.argmax(np.linalg.norm(items, axis=1))]
    index.add(np.array([7_000, 7_001]), np.stack([2 * longest, longest / 2]))
    assert len(index) == 6002 and index._longer.ntotal == 1
    got, scores, _ = index.search(longest, 2)
    assert got.tolist() == [7_000, int(np.argmax(items @ longest))]
    assert scores[0] == pytest.approx(2 * float(longest @ longest), rel=1e-5)
    assert 7_000 not in index.search(longest, 3, exclude=np.array([7_000]))[0]


def test_ivf_that_must_probe_every_cell_falls_back_to_exact_search():
    """Structureless vectors (random directions): no cell subset reaches the recall target, so the
    index serves exact search instead of an IVF that scans every cell."""
    rng = np.random.default_rng(1)
    items = rng.normal(size=(4000, 32)).astype(np.float32)
    users = rng.normal(size=(100, 32)).astype(np.float32)
    config = IndexConfig(kind="ivf", nlist=64, target_recall=0.999)
    index = ItemIndex.build(np.arange(4000, dtype=np.int64), items, config, users)
    assert index.kind == "flat" and "fallback" in index.info
    assert index.info["calibration_recall_by_nprobe"]["64"] >= 0.999 > index.info["calibration_recall_by_nprobe"]["32"]
    got, _, _ = index.search(users[0], 20)
    assert np.array_equal(got, exact_topk(users[:1], items, 20)[0])


def test_bad_settings_are_named():
    with pytest.raises(MotorecError, match="index kind"):
        IndexConfig(kind="lsh").validate()
    with pytest.raises(MotorecError, match="target_recall"):
        IndexConfig(target_recall=1.5).validate()
