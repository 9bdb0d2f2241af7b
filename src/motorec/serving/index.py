"""The item vector index: inner-product search in faiss, exact or approximate by catalogue size,
growing as items arrive.

Up to `IndexConfig.exact_max_items` items the index is exact (flat): results are identical to the
trained model's ranking, and one search over 10^5 items of 64 dims stays around a millisecond.
Above it, a flat scan grows linearly with the catalogue, so `auto` switches to an IVF index (or
HNSW when asked): IVF's cells are k-means centroids of the catalogue, and the number of cells
probed per search (`nprobe`) is calibrated at build time as the smallest that reaches
`target_recall` for the top-k of sample queries (the service passes user vectors) against an
exact search. New items are added to their nearest cell (IVF) or linked into the graph (HNSW):
no rebuild. Searches and additions take one lock, since faiss does not allow a search to overlap
an add on the same index.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import faiss
import numpy as np

from motorec.errors import MotorecError

KINDS = ("auto", "flat", "ivf", "hnsw")
NPROBE_GRID = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
CALIBRATION_K = 20


@dataclass(frozen=True)
class IndexConfig:
    """How the service indexes item vectors (`motorec serve --index ...`)."""

    kind: str = "auto"  # auto (flat up to exact_max_items, else ivf) | flat | ivf | hnsw
    exact_max_items: int = 200_000
    nlist: int = 0  # IVF cells; 0 = 4 * sqrt(items)
    nprobe: int = 0  # IVF cells probed per search; 0 = calibrated to target_recall
    target_recall: float = 0.98  # recall@20 against exact search that nprobe calibration aims for
    hnsw_m: int = 32  # HNSW links per node
    ef_search: int = 128  # HNSW search breadth
    build_threads: int = 0  # faiss threads while building (0 = faiss default); searches use one

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise MotorecError(f"index kind '{self.kind}': choose one of {', '.join(KINDS)}.")
        if (
            min(self.exact_max_items, self.nlist, self.nprobe, self.build_threads) < 0
            or self.hnsw_m < 2
            or self.ef_search < 1
            or not 0 < self.target_recall <= 1
        ):
            raise MotorecError(
                "index settings: sizes must be >= 0, hnsw_m >= 2, ef_search >= 1, target_recall in (0, 1]."
            )

    def resolve(self, n_items: int) -> str:
        if self.kind != "auto":
            return self.kind
        return "flat" if n_items <= self.exact_max_items else "ivf"


def exact_topk(queries: np.ndarray, vectors: np.ndarray, k: int) -> np.ndarray:
    """Row ids of each query's k largest inner products (brute force, for calibration and tests)."""
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return flat.search(np.ascontiguousarray(queries, dtype=np.float32), k)[1]


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each row of `exact` that appears in the same row of `found`."""
    return float(np.mean([len(set(f) & set(e)) / max(1, len(e)) for f, e in zip(found.tolist(), exact.tolist())]))


class ItemIndex:
    """Inner-product index over rows keyed by internal item id (int64).

    `ItemIndex(dim)` is an empty exact index; `ItemIndex.build(ids, vectors, config, queries)`
    picks the kind from the catalogue size and calibrates it.
    """

    def __init__(self, dim: int, index: Any | None = None, info: dict[str, Any] | None = None) -> None:
        faiss.omp_set_num_threads(1)  # one request = one thread; parallelism comes from requests
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._lock = threading.Lock()
        self.version = 0  # bumped by every add: a search at version v sees every item added up to v
        self.info: dict[str, Any] = info or {"kind": "flat"}

    @property
    def kind(self) -> str:
        return self.info["kind"]

    @classmethod
    def build(
        cls,
        ids: np.ndarray,
        vectors: np.ndarray,
        config: IndexConfig = IndexConfig(),
        queries: np.ndarray | None = None,
    ) -> ItemIndex:
        """An index holding `vectors` under `ids`, of the kind `config` gives for their number.

        `queries` (e.g. a sample of user vectors) calibrate IVF's nprobe and measure the
        approximate index's recall@20 against exact search; both are recorded in `info`.
        """
        config.validate()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        n, dim = vectors.shape
        kind = config.resolve(n)
        info: dict[str, Any] = {"kind": kind, "config": asdict(config), "items_at_build": int(n)}
        t0 = time.perf_counter()
        if config.build_threads:
            faiss.omp_set_num_threads(config.build_threads)
        else:
            faiss.omp_set_num_threads(faiss.omp_get_max_threads())
        index: Any  # a faiss index: an ID map over flat or HNSW, or IVF (which has nprobe)
        try:
            if kind == "flat":
                index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
                index.add_with_ids(vectors, ids)
            elif kind == "ivf":
                nlist = max(1, min(config.nlist or int(4 * np.sqrt(n)), n))
                ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
                ivf.cp.seed = 0
                sample = np.sort(np.random.default_rng(0).choice(n, size=min(n, 40 * nlist), replace=False))
                ivf.train(vectors[sample])
                ivf.add_with_ids(vectors, ids)
                index = ivf
                info["nlist"] = nlist
            else:
                hnsw = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
                hnsw.hnsw.efSearch = config.ef_search
                index = faiss.IndexIDMap2(hnsw)
                index.add_with_ids(vectors, ids)
            if kind != "flat" and queries is not None and len(queries) and n:
                cls._calibrate(index, kind, vectors, ids, np.ascontiguousarray(queries, dtype=np.float32), config, info)
            if kind == "ivf" and not config.nprobe and info.get("nprobe") == info["nlist"] > 1:
                # the target recall needed every cell: that is exact search plus the cells' overhead
                # (vectors without cluster structure, e.g. barely trained), so serve exact search
                index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
                index.add_with_ids(vectors, ids)
                info.update(kind="flat", fallback="IVF reached the target recall only when probing every cell")
        finally:
            faiss.omp_set_num_threads(1)
        if kind == "ivf" and "nprobe" not in info:
            index.nprobe = min(info["nlist"], config.nprobe or 32)
            info["nprobe"] = int(index.nprobe)
        info["build_seconds"] = time.perf_counter() - t0
        built = cls(dim, index, info)
        built.version = int(n > 0)  # the initial catalogue counts as the first add
        return built

    @staticmethod
    def _calibrate(
        index: Any,
        kind: str,
        vectors: np.ndarray,
        ids: np.ndarray,
        queries: np.ndarray,
        config: IndexConfig,
        info: dict[str, Any],
    ) -> None:
        k = min(CALIBRATION_K, len(ids))
        exact = ids[exact_topk(queries, vectors, k)]
        if kind == "ivf":
            grid = [config.nprobe] if config.nprobe else [p for p in NPROBE_GRID if p < info["nlist"]] + [info["nlist"]]
            by_nprobe = {}
            for nprobe in grid:
                index.nprobe = nprobe
                by_nprobe[nprobe] = recall_at(index.search(queries, k)[1], exact)
                if by_nprobe[nprobe] >= config.target_recall:
                    break
            info["nprobe"] = int(index.nprobe)
            info["calibration_recall_by_nprobe"] = {str(p): r for p, r in by_nprobe.items()}
        info["calibration_queries"] = len(queries)
        info[f"calibration_recall@{k}"] = recall_at(index.search(queries, k)[1], exact)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> int:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), -1)
        with self._lock:
            self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
            self.version += 1
            return self.version

    def search(
        self, query: np.ndarray, k: int, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, int]:
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
        if n_ex and exclude is not None:
            keep &= ~np.isin(ids, exclude)
        ids, scores = ids[keep], scores[keep]
        order = np.lexsort((ids, -scores))[:k]
        return ids[order], scores[order], version
