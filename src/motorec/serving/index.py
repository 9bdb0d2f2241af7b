"""The item vector index: exact inner-product search in faiss, growing as items arrive.

Exact (flat) search keeps results identical to the trained model's ranking; at 1e5 items of 64
dims one search is still well under a millisecond. Searches and additions take one lock, since
faiss does not allow a search to overlap an add on the same index.
"""
from __future__ import annotations

import threading

import faiss
import numpy as np


class ItemIndex:
    """Inner-product index over rows keyed by internal item id (int64)."""

    def __init__(self, dim: int) -> None:
        faiss.omp_set_num_threads(1)  # one request = one thread; parallelism comes from requests
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._lock = threading.Lock()
        self.version = 0  # bumped by every add: a search at version v sees every item added up to v

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> int:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), -1)
        with self._lock:
            self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
            self.version += 1
            return self.version

    def search(self, query: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
        """Top-k (ids, scores, index version) for one query, skipping `exclude` ids; ties by lower id."""
        n_ex = 0 if exclude is None else len(exclude)
        with self._lock:
            kk = min(len(self), k + n_ex)
            if kk == 0:
                return np.zeros(0, np.int64), np.zeros(0, np.float32), self.version
            scores, ids = self._index.search(np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1), kk)
            version = self.version
        ids, scores = ids[0], scores[0]
        keep = ids >= 0
        if n_ex:
            keep &= ~np.isin(ids, exclude)
        ids, scores = ids[keep], scores[keep]
        order = np.lexsort((ids, -scores))[:k]
        return ids[order], scores[order], version
