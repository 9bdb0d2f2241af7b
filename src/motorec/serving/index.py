"""The item vector index: inner-product search in faiss, exact or approximate by catalogue size,
growing as items arrive.

Up to `IndexConfig.exact_max_items` items the index is exact (flat): results are identical to the
trained model's ranking, and one search over 10^5 items of 64 dims stays around a millisecond.
Above it, a flat scan grows linearly with the catalogue, so `auto` switches to an IVF index (or
HNSW when asked): IVF's cells are k-means centroids of the catalogue, and the number of cells
probed per search (`nprobe`) is calibrated at build time as the smallest that reaches
`target_recall` for the top-k of sample queries (the service passes user vectors) against an
exact search.

Trained item vectors differ widely in norm (popular items are long), and an IVF over raw inner
products puts the long vectors that win most searches in cells whose centroids the queries do
not rank first. So the IVF searches the exact Euclidean reduction of inner-product search: every
item becomes [x, sqrt(M^2 - |x|^2)] with M the largest norm at build time and every query
[q, 0], so that |q' - x'|^2 = |q|^2 + M^2 - 2 q.x ranks items exactly as q.x does (Bachrach et al.,
RecSys 2014). New items are added to their nearest cell (IVF) or linked into the graph (HNSW):
no rebuild; a new item longer than M, which the reduction cannot hold, goes to a small exact
side index searched alongside. Searches and additions take one lock, since faiss does not allow
a search to overlap an add on the same index.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import faiss
import numpy as np
import torch

from motorec.errors import MotorecError
from motorec.topk import RunningTopK, blocks

KINDS = ("auto", "flat", "ivf", "hnsw")
NPROBE_GRID = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
CALIBRATION_K = 20
EXACT_BLOCK = 16_384  # items per block of the exact scan (1,000 queries x block floats)
LIFT_BLOCK = 262_144  # items lifted into the IVF's Euclidean space per add at build


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
    """Row ids of each query's k largest inner products, ties by lower row: the exact search that
    calibration and tests measure against. Item blocks stream through one running top-k, which
    keeps the scan linear in the catalogue (faiss's flat search with 1,000 queries was 1.5x slower
    per item at 10^6 items than at 10^5)."""
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    v = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    best = RunningTopK(min(k, len(v)))
    for start, stop in blocks(len(v), EXACT_BLOCK):
        best.update(q @ v[start:stop].T, start)
    return best.top.numpy()


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each row of `exact` that appears in the same row of `found`."""
    return float(np.mean([len(set(f) & set(e)) / max(1, len(e)) for f, e in zip(found.tolist(), exact.tolist())]))


class ItemIndex:
    """Inner-product index over rows keyed by internal item id (int64).

    `ItemIndex(dim)` is an empty exact index; `ItemIndex.build(ids, vectors, config, queries)`
    picks the kind from the catalogue size and calibrates it.
    """

    def __init__(
        self,
        dim: int,
        index: Any | None = None,
        info: dict[str, Any] | None = None,
        norm_bound: float | None = None,
    ) -> None:
        faiss.omp_set_num_threads(1)  # one request = one thread; parallelism comes from requests
        # a faiss index: an ID map over flat or HNSW, or IVF (which has nprobe)
        self._index: Any = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        # set when `_index` holds the Euclidean reduction of inner-product search (see module doc)
        self._norm_bound = norm_bound
        self._longer = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))  # items added later longer than the bound
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
        try:
            if kind == "flat":
                built = cls(dim)
                built._index.add_with_ids(vectors, ids)
            elif kind == "ivf":
                bound = float(np.sqrt(_squared_norms(vectors).max())) if n else 0.0
                nlist = max(1, min(config.nlist or int(4 * np.sqrt(n)), n))
                ivf = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim + 1), dim + 1, nlist, faiss.METRIC_L2)
                ivf.cp.seed = 0
                sample = np.sort(np.random.default_rng(0).choice(n, size=min(n, 40 * nlist), replace=False))
                ivf.train(_lift(vectors[sample], bound))
                info["train_seconds"] = time.perf_counter() - t0
                for start in range(0, n, LIFT_BLOCK):  # the lifted copy is made a block at a time
                    ivf.add_with_ids(_lift(vectors[start : start + LIFT_BLOCK], bound), ids[start : start + LIFT_BLOCK])
                info.update(nlist=nlist, norm_bound=bound)
                built = cls(dim, ivf, info, norm_bound=bound)
            else:
                hnsw = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
                hnsw.hnsw.efSearch = config.ef_search
                built = cls(dim, faiss.IndexIDMap2(hnsw), info)
                built._index.add_with_ids(vectors, ids)
            built.info = info
            if kind != "flat" and queries is not None and len(queries) and n:
                t_calibrate = time.perf_counter()
                built._calibrate(vectors, ids, np.ascontiguousarray(queries, dtype=np.float32), config)
                info["calibration_seconds"] = time.perf_counter() - t_calibrate
            if kind == "ivf" and not config.nprobe and info.get("nprobe") == info["nlist"] > 1:
                # the target recall needed every cell: that is exact search plus the cells' overhead
                # (vectors without cluster structure), so serve exact search
                built = cls(dim, info=info)
                built._index.add_with_ids(vectors, ids)
                info.update(kind="flat", fallback="IVF reached the target recall only when probing every cell")
        finally:
            faiss.omp_set_num_threads(1)
        if built.kind == "ivf" and "nprobe" not in info:
            built._index.nprobe = min(info["nlist"], config.nprobe or 32)
            info["nprobe"] = int(built._index.nprobe)
        info["build_seconds"] = time.perf_counter() - t0
        built.version = int(n > 0)  # the initial catalogue counts as the first add
        return built

    def _calibrate(self, vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, config: IndexConfig) -> None:
        info = self.info
        k = min(CALIBRATION_K, len(ids))
        exact = ids[exact_topk(queries, vectors, k)]
        if self.kind == "ivf":
            grid = [config.nprobe] if config.nprobe else [p for p in NPROBE_GRID if p < info["nlist"]] + [info["nlist"]]
            by_nprobe = {}
            for nprobe in grid:
                self._index.nprobe = nprobe
                by_nprobe[nprobe] = recall_at(self._search(queries, k)[1], exact)
                if by_nprobe[nprobe] >= config.target_recall:
                    break
            info["nprobe"] = int(self._index.nprobe)
            info["calibration_recall_by_nprobe"] = {str(p): r for p, r in by_nprobe.items()}
            recall = by_nprobe[info["nprobe"]]  # the probe count kept was the last one searched
        else:
            recall = recall_at(self._search(queries, k)[1], exact)
        info["calibration_queries"] = len(queries)
        info[f"calibration_recall@{k}"] = recall

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(inner products, ids) of up to k items per query row; missing slots have id -1."""
        if self._norm_bound is None:
            return self._index.search(queries, k)
        dist, ids = self._index.search(_lift(queries, None), k)
        scores = (_squared_norms(queries)[:, None] + self._norm_bound**2 - dist) / 2
        scores = np.where(ids >= 0, scores, -np.inf).astype(np.float32)
        if self._longer.ntotal:
            more_scores, more_ids = self._longer.search(queries, min(k, self._longer.ntotal))
            scores, ids = np.hstack([scores, more_scores]), np.hstack([ids, more_ids])
        return scores, ids

    def __len__(self) -> int:
        return int(self._index.ntotal + self._longer.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> int:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), -1)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        with self._lock:
            if self._norm_bound is None:
                self._index.add_with_ids(vectors, ids)
            else:
                longer = _squared_norms(vectors) > self._norm_bound**2
                if (~longer).any():
                    self._index.add_with_ids(_lift(vectors[~longer], self._norm_bound), ids[~longer])
                if longer.any():
                    self._longer.add_with_ids(np.ascontiguousarray(vectors[longer]), ids[longer])
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
            scores, ids = self._search(np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1), kk)
            version = self.version
        ids, scores = ids[0], scores[0]
        keep = ids >= 0
        if n_ex and exclude is not None:
            keep &= ~np.isin(ids, exclude)
        ids, scores = ids[keep], scores[keep]
        order = np.lexsort((ids, -scores))[:k]
        return ids[order], scores[order], version


def _lift(vectors: np.ndarray, norm_bound: float | None) -> np.ndarray:
    """Items (norm_bound given) or queries (None) in the Euclidean reduction of inner-product search."""
    if norm_bound is None:
        extra = np.zeros(len(vectors), dtype=np.float32)
    else:
        extra = np.sqrt(np.maximum(np.float32(norm_bound**2) - _squared_norms(vectors), 0.0))
    return np.ascontiguousarray(np.hstack([vectors, extra[:, None]]), dtype=np.float32)


def _squared_norms(vectors: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", vectors, vectors)
