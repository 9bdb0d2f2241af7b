"""Sequence data for next-item models, from a chronological leave-one-out split.

Train examples: every position t >= 1 of a user's train sequence, history = the (at most
`max_len`) items before it. Valid: history = the train sequence, target = the valid item. Test:
history = train + valid, target = the test item (the protocol of TIGER and SASRec).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motorec.data import TEST, TRAIN, VALID, Dataset
from motorec.errors import MotorecError

PAD = -1


def right_aligned(seq: np.ndarray, max_len: int) -> np.ndarray:
    """The last `max_len` items of seq, left-padded with PAD (most recent item last)."""
    tail = np.asarray(seq, dtype=np.int64)[-max_len:]
    return np.r_[np.full(max_len - len(tail), PAD, dtype=np.int64), tail]


@dataclass
class EvalSet:
    users: np.ndarray  # (U,)
    history: np.ndarray  # (U, max_len) right-aligned, PAD-filled
    target: np.ndarray  # (U,)


@dataclass
class SequenceData:
    """Everything a next-item model trains and is evaluated on."""

    n_items: int
    max_len: int
    train_sequences: list[np.ndarray]  # per user, train items in time order
    train_history: np.ndarray  # (N, max_len)
    train_target: np.ndarray  # (N,)
    valid: EvalSet
    test: EvalSet
    item_train_degree: np.ndarray  # (n_items,) interactions in train sequences

    def groups(self, split: str) -> dict[str, np.ndarray]:
        """Boolean masks over the eval users: all, longtail (target has < 10 train interactions),
        cold (target never seen in training: its ID comes from content alone)."""
        deg = self.item_train_degree[(self.valid if split == "valid" else self.test).target]
        return {"all": np.ones(len(deg), dtype=bool), "longtail": deg < 10, "cold": deg == 0}


def build_sequences(ds: Dataset, max_len: int = 20) -> SequenceData:
    """SequenceData from a split dataset whose valid/test hold one item per user (e.g. `loo_split`)."""
    if ds.labels is None:
        raise MotorecError(f"Dataset '{ds.name}' has no split: apply loo_split first.")
    if max_len < 1:
        raise MotorecError(f"max_len must be >= 1, got {max_len}.")
    train = sequences_with_label(ds, TRAIN)
    valid_items = sequences_with_label(ds, VALID)
    test_items = sequences_with_label(ds, TEST)
    hist, target = [], []
    for seq in train:
        for t in range(1, len(seq)):
            hist.append(right_aligned(seq[:t], max_len))
            target.append(seq[t])
    valid = _eval_set(train, [np.zeros(0, np.int64)] * len(train), valid_items, max_len)
    test = _eval_set(train, valid_items, test_items, max_len)
    degree = np.bincount(np.concatenate(train) if train else np.zeros(0, np.int64), minlength=ds.n_items)
    return SequenceData(
        n_items=ds.n_items,
        max_len=max_len,
        train_sequences=train,
        train_history=np.stack(hist) if hist else np.zeros((0, max_len), np.int64),
        train_target=np.asarray(target, dtype=np.int64),
        valid=valid,
        test=test,
        item_train_degree=degree.astype(np.int64),
    )


def _eval_set(train: list[np.ndarray], extra: list[np.ndarray], targets: list[np.ndarray], max_len: int) -> EvalSet:
    """Users with exactly one target and a train history; history = train then `extra` items."""
    users = np.array([u for u, t in enumerate(targets) if len(t) == 1 and len(train[u])], dtype=np.int64)
    history = np.zeros((len(users), max_len), dtype=np.int64)
    for row, u in enumerate(users):
        history[row] = right_aligned(np.r_[train[u], extra[u]], max_len)
    return EvalSet(users, history, np.array([targets[u][0] for u in users], dtype=np.int64))


def sequences_with_label(ds: Dataset, label: int) -> list[np.ndarray]:
    """Each user's items with exactly this label, in time order."""
    assert ds.labels is not None
    keep = ds.labels == label
    sub = Dataset(
        name=ds.name,
        n_users=ds.n_users,
        n_items=ds.n_items,
        users=ds.users[keep],
        items=ds.items[keep],
        timestamps=None if ds.timestamps is None else ds.timestamps[keep],
    )
    return sub.sequences()


def train_windows(sequences: list[np.ndarray], width: int) -> np.ndarray:
    """Right-aligned windows ending at len, len - (width - 1), ... of every sequence (consecutive
    windows share one item), so models that predict at every position see each target once."""
    out = []
    for seq in sequences:
        end = len(seq)
        while end >= 2:
            out.append(right_aligned(seq[max(0, end - width) : end], width))
            end -= width - 1
    return np.stack(out) if out else np.zeros((0, width), dtype=np.int64)
