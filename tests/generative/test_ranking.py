"""AUC / GAUC against brute force, the chronological split, and DCN learning an item effect."""
from __future__ import annotations

import numpy as np
import torch

from motorec.data import TEST, TRAIN, VALID, Dataset
from motorec.generative.ranking import RankConfig, auc, chronological_split, field_table, fit_ranker, gauc


def pairwise_auc(y, s):
    pos, neg = s[y > 0], s[y == 0]
    return np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])


def test_auc_and_gauc_match_brute_force():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200) + y, 1)  # ties included
    assert auc(y, s) == np.float64(pairwise_auc(y, s)).item() or abs(auc(y, s) - pairwise_auc(y, s)) < 1e-12
    users = rng.integers(0, 5, 200)
    users[:3] = 9  # user 9 gets only these rows ...
    y[:3] = 1  # ... all positive: excluded from GAUC
    expected_num = sum(pairwise_auc(y[users == u], s[users == u]) * (users == u).sum() for u in range(5))
    assert abs(gauc(users, y, s) - expected_num / (users < 5).sum()) < 1e-12
    assert np.isnan(auc(np.ones(4), np.arange(4.0)))


def test_chronological_split_orders_by_time():
    n = 100
    ds = Dataset(name="t", n_users=1, n_items=1, users=np.zeros(n), items=np.zeros(n), timestamps=np.arange(n)[::-1])
    labels = chronological_split(ds, 0.1, 0.2)
    assert (labels[:10] == TEST).all() and (labels[10:30] == VALID).all() and (labels[30:] == TRAIN).all()


def test_dcn_uses_semantic_ids_for_items_without_train_ratings():
    """Liking depends on an item's content cluster; items of the test period are unseen in train:
    item-ID features cannot rank them, semantic-ID features (the cluster) can."""
    rng = np.random.default_rng(0)
    n_users, n_items = 50, 60
    cluster = np.arange(n_items) % 4
    liked = np.array([1, 0, 1, 0])
    users = rng.integers(0, n_users, 4000)
    items = np.where(np.arange(4000) < 3400, rng.integers(0, 40, 4000), rng.integers(40, 60, 4000))
    ratings = np.where(rng.random(4000) < 0.85, np.where(liked[cluster[items]] == 1, 5, 2), np.where(liked[cluster[items]] == 1, 2, 5))
    ds = Dataset(name="t", n_users=n_users, n_items=n_items, users=users, items=items,
                 ratings=ratings.astype(np.float32), timestamps=np.arange(4000))
    labels = chronological_split(ds, 0.15, 0.1)
    sid = np.column_stack([cluster, np.arange(n_items) // 4])
    cfg = RankConfig(epochs=8, batch_size=256, lr=3e-3, patience=8)
    scores = {}
    for feats in ("id", "sid"):
        fields, sizes = field_table(ds, feats, sid, [4, 15])
        torch.manual_seed(0)
        scores[feats] = fit_ranker(ds, labels, fields, sizes, cfg, seed=0, device=torch.device("cpu"))
    assert scores["sid"]["cold"]["auc"] > 0.75
    assert scores["id"]["cold"]["auc"] < 0.65
    assert scores["sid"]["cold"]["rows"] == (labels == TEST).sum()
