"""Reproducible splitters; each returns a split Dataset that `write_mmrec` can share as a file."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd

from motorec.data.dataset import TEST, TRAIN, VALID, Dataset
from motorec.io import atomic_open, atomic_write_text


def _per_user_random(users: np.ndarray, rng: np.random.Generator, ratios: tuple[float, float, float]) -> np.ndarray:
    """Label each user's interactions train/valid/test in shuffled order (at least one train each)."""
    labels = np.full(len(users), TRAIN, dtype=np.int8)
    order = np.argsort(users, kind="stable")
    bounds = np.flatnonzero(np.diff(np.r_[-1, users[order], -2]))
    for start, end in pairwise(bounds):
        idx = order[start:end]
        idx = idx[rng.permutation(len(idx))]
        n = len(idx)
        n_valid = round(n * ratios[1])
        n_test = round(n * ratios[2])
        if n - n_valid - n_test < 1:
            n_valid, n_test = (n - 1) // 2, n - 1 - (n - 1) // 2
        labels[idx[n - n_valid - n_test : n - n_test]] = VALID
        labels[idx[n - n_test :]] = TEST
    return labels


def random_split(ds: Dataset, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 2026) -> Dataset:
    """Per-user random split (MMRec's usual 80/10/10)."""
    labels = _per_user_random(ds.users, np.random.default_rng(seed), ratios)
    return ds.with_split(labels, name=ds.name)


def loo_split(ds: Dataset) -> Dataset:
    """Chronological leave-one-out: last item test, second last valid, the rest train.

    Users with fewer than 3 interactions keep them all in train.
    """
    times = ds.timestamps if ds.timestamps is not None else np.zeros(ds.n_interactions, dtype=np.int64)
    order = np.lexsort((np.arange(ds.n_interactions), times, ds.users))
    users = ds.users[order]
    labels_sorted = np.full(len(order), TRAIN, dtype=np.int8)
    ends = np.flatnonzero(np.r_[users[1:] != users[:-1], True])
    starts = np.r_[0, ends[:-1] + 1]
    long_enough = ends - starts >= 2
    labels_sorted[ends[long_enough]] = TEST
    labels_sorted[ends[long_enough] - 1] = VALID
    labels = np.empty_like(labels_sorted)
    labels[order] = labels_sorted
    return ds.with_split(labels, name=f"{ds.name}-loo")


def cold_split(
    ds: Dataset, cold_fraction: float = 0.2, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 2026
) -> Dataset:
    """Zero-shot item cold start: a fraction of items gets no train interactions.

    Cold items' interactions are split half valid, half test; the others per user by `ratios`.
    Users left with no train interaction lose their valid/test rows (they cannot be evaluated).
    """
    rng = np.random.default_rng(seed)
    present = np.unique(ds.items)
    cold = np.sort(rng.choice(present, size=round(cold_fraction * len(present)), replace=False))
    is_cold = np.isin(ds.items, cold)
    labels = np.empty(ds.n_interactions, dtype=np.int8)
    labels[~is_cold] = _per_user_random(ds.users[~is_cold], rng, ratios)
    cold_rows = np.flatnonzero(is_cold)
    labels[cold_rows] = np.where(rng.random(len(cold_rows)) < 0.5, VALID, TEST)
    has_train = np.zeros(ds.n_users, dtype=bool)
    has_train[ds.users[labels == TRAIN]] = True
    keep = has_train[ds.users]
    split = ds.with_split(labels, cold_items=cold, name=f"{ds.name}-cold")
    if keep.all():
        return split
    return split.select_rows(keep)


def write_mmrec(ds: Dataset, path: str | Path) -> Path:
    """Write the split as an MMRec `.inter` (and `.cold_items.txt`), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(
        {
            "userID": ds.users,
            "itemID": ds.items,
            "rating": ds.ratings if ds.ratings is not None else np.ones(ds.n_interactions, dtype=np.float32),
            "timestamp": ds.timestamps if ds.timestamps is not None else np.zeros(ds.n_interactions, dtype=np.int64),
            "x_label": ds._require_split(),
        }
    )
    with atomic_open(path) as f:
        df.to_csv(f, sep="\t", index=False)
    if ds.cold_items is not None:
        atomic_write_text(path.with_name(path.stem + ".cold_items.txt"), "".join(f"{i}\n" for i in ds.cold_items))
    return path
