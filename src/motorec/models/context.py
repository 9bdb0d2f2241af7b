"""What a model is built from: the dataset plus the shared graphs and features on one device.

Graphs and feature tensors are built here once and shared, so no model builds its own graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from motorec.config import RunConfig
from motorec.data.dataset import Dataset
from motorec.data.graph import knn_item_graph, to_torch_sparse, user_item_adjacency
from motorec.tokenizers.base import TokenSlot


def feature_tensor(features: np.ndarray, device: torch.device) -> torch.Tensor:
    """A modality matrix as a float32 tensor on `device`, shared with the dataset, not copied, when
    it already is a writable float32 array: a memory-mapped feature file then stays file-backed on
    CPU (pages load on demand). Models treat features as read-only (fine-tuned copies are cloned)."""
    arr = np.asarray(features, dtype=np.float32)
    if not (arr.flags.writeable and arr.flags.c_contiguous):
        arr = np.array(arr, dtype=np.float32)
    return torch.from_numpy(arr).to(device)


@dataclass
class ModelContext:
    dataset: Dataset
    device: torch.device
    config: RunConfig | None = None  # None: the defaults (ID item table)
    cache_dir: Path | None = None
    tokens: np.ndarray | None = None  # item code table (n_items, slots) when a tokenizer is in use
    token_sizes: list[int] | None = None  # codebook size of each code column
    token_slots: list[TokenSlot] | None = None  # what each code column means (modality, level)

    @property
    def n_users(self) -> int:
        return self.dataset.n_users

    @property
    def n_items(self) -> int:
        return self.dataset.n_items

    @property
    def modalities(self) -> list[str]:
        return list(self.dataset.modalities)

    @cached_property
    def norm_adj(self) -> torch.Tensor:
        """Symmetric-normalised (users + items) adjacency of the train graph, torch sparse."""
        return to_torch_sparse(user_item_adjacency(self.dataset.train_matrix), self.device)

    @cached_property
    def item_degree(self) -> torch.Tensor:
        return torch.from_numpy(self.dataset.item_degree).to(self.device)

    @cached_property
    def _features(self) -> dict[str, torch.Tensor]:
        return {m: feature_tensor(f, self.device) for m, f in self.dataset.modalities.items()}

    def features(self, modality: str) -> torch.Tensor:
        return self._features[modality]

    @cached_property
    def _knn(self) -> dict[tuple[str, int], torch.Tensor]:
        return {}

    def item_knn(self, modality: str, k: int = 10) -> torch.Tensor:
        """Normalised top-k cosine item-item graph of one modality (disk-cached by feature hash)."""
        key = (modality, k)
        if key not in self._knn:
            graph = knn_item_graph(self.dataset.modalities[modality], k=k, cache_dir=self.cache_dir)
            self._knn[key] = to_torch_sparse(graph, self.device)
        return self._knn[key]
