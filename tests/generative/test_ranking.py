"""AUC / GAUC against brute force and the chronological split (DCN's training: tests/training/test_ranking.py)."""

from __future__ import annotations

import numpy as np

from motorec.data import TEST, TRAIN, VALID, Dataset
from motorec.generative.ranking import auc, chronological_split, gauc


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
