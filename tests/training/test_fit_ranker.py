"""The ranker's training: DCN learns an item effect from semantic IDs that item IDs cannot give
items without train ratings, early-stopped on valid AUC by the one loop."""

from __future__ import annotations

import numpy as np
import torch

from motorec.data import TEST, Dataset
from motorec.generative.ranking import DCN, chronological_split, field_table
from motorec.training.ranking import RankTrainConfig, fit_ranker


def test_dcn_uses_semantic_ids_for_items_without_train_ratings():
    """Liking depends on an item's content cluster; items of the test period are unseen in train:
    item-ID features cannot rank them, semantic-ID features (the cluster) can."""
    rng = np.random.default_rng(0)
    n_users, n_items = 50, 60
    cluster = np.arange(n_items) % 4
    liked = np.array([1, 0, 1, 0])
    users = rng.integers(0, n_users, 4000)
    items = np.where(np.arange(4000) < 3400, rng.integers(0, 40, 4000), rng.integers(40, 60, 4000))
    ratings = np.where(
        rng.random(4000) < 0.85, np.where(liked[cluster[items]] == 1, 5, 2), np.where(liked[cluster[items]] == 1, 2, 5)
    )
    ds = Dataset(
        name="t",
        n_users=n_users,
        n_items=n_items,
        users=users,
        items=items,
        ratings=ratings.astype(np.float32),
        timestamps=np.arange(4000),
    )
    labels = chronological_split(ds, 0.15, 0.1)
    sid = np.column_stack([cluster, np.arange(n_items) // 4])
    cfg = RankTrainConfig(epochs=8, batch_size=256, lr=3e-3, patience=8)
    scores = {}
    for feats in ("id", "sid"):
        fields, sizes = field_table(ds, feats, sid, [4, 15])
        torch.manual_seed(0)
        scores[feats] = fit_ranker(DCN(sizes), ds, labels, fields, cfg, seed=0)
    assert scores["sid"]["cold"]["auc"] > 0.75
    assert scores["id"]["cold"]["auc"] < 0.65
    assert scores["sid"]["cold"]["rows"] == (labels == TEST).sum()
