"""The one Dataset type every reader produces and every model, tokenizer and evaluator consumes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from motorec.errors import MotorecError

TRAIN, VALID, TEST = 0, 1, 2
LABEL_NAMES = {TRAIN: "train", VALID: "valid", TEST: "test"}


@dataclass
class Dataset:
    """Implicit-feedback interactions, an optional split, item content and raw item fields.

    `labels` is None for an unsplit dataset (a splitter assigns train/valid/test). `modalities`
    maps a modality name to an (n_items, d) float matrix, usually memory-mapped from disk.
    `cold_items` lists the items a zero-shot cold split withheld from training (None otherwise).
    """

    name: str
    n_users: int
    n_items: int
    users: np.ndarray
    items: np.ndarray
    labels: np.ndarray | None = None
    ratings: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    modalities: dict[str, np.ndarray] = field(default_factory=dict)
    cold_items: np.ndarray | None = None
    item_table: pd.DataFrame | None = None
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.users = np.asarray(self.users, dtype=np.int64)
        self.items = np.asarray(self.items, dtype=np.int64)
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int8)

    @property
    def n_interactions(self) -> int:
        return int(self.users.shape[0])

    @property
    def is_split(self) -> bool:
        return self.labels is not None

    @property
    def is_cold_split(self) -> bool:
        return self.cold_items is not None

    def with_split(self, labels: np.ndarray, cold_items: np.ndarray | None = None, name: str | None = None) -> Dataset:
        """A copy sharing arrays and features, with a new split (no longer the split it was loaded with)."""
        source = {k: v for k, v in self.source.items() if k != "load"}
        return replace(self, labels=labels, cold_items=cold_items, name=name or self.name, source=source)

    def select_rows(self, keep: np.ndarray) -> Dataset:
        """A copy with only the interactions where `keep` (bool, one per interaction) is True; ids,
        features, item table and source are shared."""

        def rows(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[keep]

        return replace(
            self,
            users=self.users[keep],
            items=self.items[keep],
            labels=rows(self.labels),
            ratings=rows(self.ratings),
            timestamps=rows(self.timestamps),
        )

    def _require_split(self) -> np.ndarray:
        if self.labels is None:
            raise MotorecError(f"Dataset '{self.name}' has no train/valid/test split: apply a splitter first.")
        return self.labels

    def matrix(self, label: int) -> sp.csr_matrix:
        """Binary user x item CSR matrix of the interactions with this split label."""
        mask = self._require_split() == label
        data = np.ones(int(mask.sum()), dtype=np.float32)
        m = sp.csr_matrix((data, (self.users[mask], self.items[mask])), shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    @cached_property
    def train_matrix(self) -> sp.csr_matrix:
        return self.matrix(TRAIN)

    @cached_property
    def item_degree(self) -> np.ndarray:
        """Number of train interactions of each item (0 for cold items)."""
        return np.asarray(self.train_matrix.sum(axis=0)).ravel().astype(np.int64)

    @cached_property
    def user_degree(self) -> np.ndarray:
        return np.asarray(self.train_matrix.sum(axis=1)).ravel().astype(np.int64)

    def cold_mask(self) -> np.ndarray:
        """Boolean mask of the split's declared cold items (all False on a warm split)."""
        mask = np.zeros(self.n_items, dtype=bool)
        if self.cold_items is not None:
            mask[self.cold_items] = True
        return mask

    def split_sha256(self) -> str:
        """Hash of the split itself (users, items, labels), whatever file it came from."""
        h = hashlib.sha256()
        for arr in (self.users, self.items, self._require_split()):
            h.update(np.ascontiguousarray(arr).tobytes())
        if self.cold_items is not None:
            h.update(np.ascontiguousarray(np.sort(self.cold_items)).tobytes())
        return h.hexdigest()

    def sequences(self, label_max: int = TEST) -> list[np.ndarray]:
        """Each user's items in time order (timestamp, then file order), labels <= label_max."""
        order = np.lexsort(
            (
                np.arange(self.n_interactions),
                self.timestamps if self.timestamps is not None else np.zeros(self.n_interactions),
                self.users,
            )
        )
        if self.labels is not None:
            order = order[self.labels[order] <= label_max]
        users, items = self.users[order], self.items[order]
        bounds = np.searchsorted(users, np.arange(self.n_users + 1))
        return [items[bounds[u] : bounds[u + 1]] for u in range(self.n_users)]

    def stats(self) -> dict[str, Any]:
        """Figures printed by `motorec data stats`."""
        out: dict[str, Any] = {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": self.n_interactions,
            "density": self.n_interactions / max(1, self.n_users * self.n_items),
        }
        if self.labels is not None:
            out["split"] = {LABEL_NAMES[k]: int((self.labels == k).sum()) for k in LABEL_NAMES}
            deg = self.item_degree
            out["item_train_degree_percentiles"] = {
                f"p{p}": float(np.percentile(deg, p)) for p in (0, 25, 50, 75, 90, 99, 100)
            }
            out["user_train_degree_percentiles"] = {
                f"p{p}": float(np.percentile(self.user_degree, p)) for p in (0, 25, 50, 75, 90, 99, 100)
            }
            out["items_without_train_interactions"] = int((deg == 0).sum())
        out["cold_items"] = None if self.cold_items is None else len(self.cold_items)
        out["modalities"] = {m: list(f.shape[1:]) for m, f in self.modalities.items()}
        return out


def source_path(ds: Dataset) -> Path | None:
    p = ds.source.get("inter")
    return Path(p) if p else None
