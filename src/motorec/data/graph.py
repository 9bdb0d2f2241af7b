"""Graphs every model shares: the normalised user-item adjacency and item-item k-NN graphs.

Built once per dataset/device here, so no model re-implements graph building. k-NN graphs are
cached on disk under a key that hashes the features and the parameters (MMRec keys by k only and
silently reuses a stale graph when features change).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file

from motorec.io import temp_path_beside
from motorec.topk import RunningTopK, blocks


def sym_normalize(adj: sp.spmatrix) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 (rows/cols with zero degree stay zero)."""
    adj = sp.csr_matrix(adj, dtype=np.float32)
    deg = np.asarray(adj.sum(axis=1)).ravel()
    inv = np.zeros_like(deg)
    nz = deg > 0
    inv[nz] = deg[nz] ** -0.5
    d = sp.diags(inv)
    return (d @ adj @ d).tocsr()


def to_torch_sparse(m: sp.spmatrix, device: torch.device | str = "cpu") -> torch.Tensor:
    """scipy -> torch sparse CSR (fast spmm on CPU and CUDA)."""
    m = sp.csr_matrix(m, dtype=np.float32)
    return torch.sparse_csr_tensor(
        torch.from_numpy(m.indptr.astype(np.int64)),
        torch.from_numpy(m.indices.astype(np.int64)),
        torch.from_numpy(m.data),
        size=m.shape,
    ).to(device)


def user_item_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """Symmetric-normalised bipartite adjacency over (users + items) nodes, users first."""
    n_users, n_items = train.shape
    a = sp.bmat([[None, train], [train.T, None]], format="csr", dtype=np.float32)
    assert a.shape == (n_users + n_items, n_users + n_items)
    return sym_normalize(a)


KNN_MEMORY_MB = 512  # similarity block of one exact k-NN step (query rows x item block)
EXACT_KNN_MAX_ITEMS = 100_000  # above this, neighbours come from a faiss IVF index (n^2 is out of reach)
KNN_NPROBE = 32


def _feature_key(features: np.ndarray, **params: object) -> str:
    """Hash of the features (read in row blocks, so a memory-mapped matrix is never copied whole)."""
    h = hashlib.sha256()
    h.update(str(tuple(features.shape)).encode())
    step = max(1, (64 << 20) // max(1, 4 * features.shape[1]))
    for start in range(0, features.shape[0], step):
        h.update(np.ascontiguousarray(features[start : start + step], dtype=np.float32).tobytes())
    h.update(repr(sorted(params.items())).encode())
    return h.hexdigest()[:24]


@torch.no_grad()
def cosine_neighbours(
    x: torch.Tensor, k: int, shrink: float = 0.0, exclude_self: bool = True, exact: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, cols) of each row's k most cosine-similar rows of `x`, without an n x n matrix.

    Exact (default up to EXACT_KNN_MAX_ITEMS rows): query-row blocks against item blocks whose
    top-k are merged (`motorec.topk`, ties to the lower id), within KNN_MEMORY_MB. Above that,
    approximate: a faiss IVF index over the L2-normalised rows (`shrink` is then ignored).
    `shrink` is ItemKNN-CBF's damping: x_i·x_j / (|x_i||x_j| + shrink).
    """
    n = x.shape[0]
    k = min(k, n - 1 if exclude_self else n)
    if k <= 0:
        empty = torch.zeros(0, dtype=torch.int64, device=x.device)
        return empty, empty
    if exact is None:
        exact = n <= EXACT_KNN_MAX_ITEMS
    if not exact:
        return _faiss_neighbours(x, k, exclude_self)
    x = x.float()
    norms = x.norm(dim=1)
    per_block = min(n, 4096)
    width = min(n, max(k + 1, int(KNN_MEMORY_MB * 2**20) // (16 * per_block)))
    cols = []
    for rs, re in blocks(n, per_block):
        running = RunningTopK(k)
        for cs, ce in blocks(n, width):
            sim = (x[rs:re] @ x[cs:ce].T) / (norms[rs:re, None] * norms[None, cs:ce] + shrink).clamp_min(1e-12)
            lo, hi = max(rs, cs), min(re, ce)
            if exclude_self and lo < hi:
                diag = torch.arange(lo, hi, device=x.device)
                sim[diag - rs, diag - cs] = -torch.inf
            running.update(sim, cs)
        cols.append(running.top)
    return torch.arange(n, device=x.device).repeat_interleave(k), torch.cat(cols).reshape(-1)


def _faiss_neighbours(x: torch.Tensor, k: int, exclude_self: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Approximate cosine k-NN with a faiss IVF-flat inner-product index (seeded k-means training)."""
    import faiss

    xn = np.ascontiguousarray(torch.nn.functional.normalize(x.float(), dim=1).cpu().numpy())
    n, d = xn.shape
    nlist = max(1, int(4 * np.sqrt(n)))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = 0
    sample = np.random.default_rng(0).choice(n, size=min(n, 64 * nlist), replace=False)
    index.train(xn[np.sort(sample)])
    index.add(xn)
    index.nprobe = min(nlist, KNN_NPROBE)
    want = k + int(exclude_self)
    rows, cols = [], []
    for start, stop in blocks(n, 65536):
        _, found = index.search(xn[start:stop], want)
        ids = np.arange(start, stop)[:, None]
        keep = found >= 0
        if exclude_self:
            keep &= found != ids
        keep &= np.cumsum(keep, axis=1) <= k  # at most k per row (self dropped, else the last)
        rows.append(np.broadcast_to(ids, found.shape)[keep])
        cols.append(found[keep])
    return (
        torch.from_numpy(np.concatenate(rows).astype(np.int64)).to(x.device),
        torch.from_numpy(np.concatenate(cols).astype(np.int64)).to(x.device),
    )


def knn_item_graph(features: np.ndarray, k: int = 10, cache_dir: str | Path | None = None) -> sp.csr_matrix:
    """Top-k cosine item-item graph (self excluded), symmetric-normalised as in LATTICE/FREEDOM.

    Built by `cosine_neighbours` (blockwise exact, or faiss above EXACT_KNN_MAX_ITEMS items) and
    cached in `cache_dir` (safetensors) under a hash of the features and k.
    """
    n = features.shape[0]
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"knn_{_feature_key(features, k=k, version=2)}.safetensors"
        if path.is_file():
            t = load_file(str(path))
            return sp.csr_matrix((t["data"].numpy(), (t["row"].numpy(), t["col"].numpy())), shape=(n, n))
    row, col = (t.numpy() for t in cosine_neighbours(torch.from_numpy(np.asarray(features, dtype=np.float32)), k))
    graph = sym_normalize(sp.csr_matrix((np.ones(len(row), np.float32), (row, col)), shape=(n, n)))
    if path is not None:
        coo = graph.tocoo()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path_beside(path)
        save_file(
            {
                "row": torch.from_numpy(coo.row.astype(np.int64)),
                "col": torch.from_numpy(coo.col.astype(np.int64)),
                "data": torch.from_numpy(coo.data),
            },
            str(tmp),
        )
        os.replace(tmp, path)
    return graph


def topk_cosine(
    x: torch.Tensor, k: int, shrink: float = 0.0, exclude_self: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rows, cols, values) of each row's k most cosine-similar rows of `x`.

    Neighbours are chosen without gradient (`cosine_neighbours`), then their similarities are
    recomputed from the selected pairs only, so values stay differentiable when `x` requires grad
    (LATTICE learns its graph through them) while autograd holds n x k pairs, never an n x n block.
    `shrink` is ItemKNN-CBF's damping: x_i·x_j / (|x_i||x_j| + shrink).
    """
    rows, cols = cosine_neighbours(x.detach(), k, shrink, exclude_self)
    norms = x.norm(dim=1)
    values = (x[rows] * x[cols]).sum(1) / (norms[rows] * norms[cols] + shrink).clamp_min(1e-12)
    return rows, cols, values


def sparse_sym_normalize(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, n: int) -> torch.Tensor:
    """D^-1/2 A D^-1/2 of a (possibly learned, differentiable) weighted graph as torch sparse COO.

    Degrees are row sums, as in LATTICE's `compute_normalized_laplacian`; negative similarities are
    clipped to 0 so a degree can never be negative.
    """
    values = values.clamp_min(0)
    deg = torch.zeros(n, device=values.device, dtype=values.dtype).index_add(0, rows, values)
    inv = deg.clamp_min(1e-12).pow(-0.5) * (deg > 0)
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), inv[rows] * values * inv[cols], (n, n)).coalesce()


def mix_graphs(graphs: list[torch.Tensor], weights: list[float] | torch.Tensor) -> torch.Tensor:
    """Σ w_g · G_g over sparse graphs of one shape (weights may be learned tensors), torch sparse COO."""
    parts = [g.to_sparse_coo().coalesce() if g.layout != torch.sparse_coo else g.coalesce() for g in graphs]
    indices = torch.cat([p.indices() for p in parts], dim=1)
    values = torch.cat([w * p.values() for w, p in zip(weights, parts)])
    return torch.sparse_coo_tensor(indices, values, parts[0].shape).coalesce()


def degree_sensitive_prune(
    train: sp.csr_matrix,
    keep_ratio: float,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """FREEDOM's denoising: keep a share of user-item edges drawn with probability ∝ 1/sqrt(d_u·d_i),
    re-normalised, as the symmetric (users + items) adjacency (torch sparse CSR).

    Edges between popular nodes are the likeliest to be dropped (Zhou et al., MM 2023, Sec. 3.2).
    """
    coo = train.tocoo()
    n_users, n_items = train.shape
    du = np.asarray(train.sum(axis=1)).ravel()[coo.row]
    di = np.asarray(train.sum(axis=0)).ravel()[coo.col]
    prob = torch.from_numpy((1.0 / np.sqrt(du * di)).astype(np.float32))
    n_keep = max(1, round(len(prob) * keep_ratio))
    keep = torch.multinomial(prob, n_keep, replacement=False, generator=generator).numpy()
    kept = sp.csr_matrix((np.ones(n_keep, np.float32), (coo.row[keep], coo.col[keep])), shape=(n_users, n_items))
    return to_torch_sparse(user_item_adjacency(kept), device)


def row_normalize(m: sp.spmatrix) -> sp.csr_matrix:
    """D^-1 A: each row becomes the mean of its neighbours (empty rows stay zero)."""
    m = sp.csr_matrix(m, dtype=np.float32)
    deg = np.asarray(m.sum(axis=1)).ravel()
    inv = np.zeros_like(deg)
    inv[deg > 0] = 1.0 / deg[deg > 0]
    return (sp.diags(inv) @ m).tocsr()


class _FrozenSpMM(torch.autograd.Function):
    """A @ X for a constant sparse A; backward is Aᵀ @ G with a precomputed CSR transpose, which on CPU
    is ~30x faster than torch's own sparse-CSR backward (it re-transposes A at every call)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, a_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.a_t = a_t
        return a @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, None, ctx.a_t @ grad


class FrozenSparse:
    """A fixed (not learned) sparse graph usable as `graph @ x` with a fast backward pass.

    Drop-in for a torch sparse tensor in `propagate()` and friends; `symmetric=True` (e.g. the
    normalised user-item adjacency) skips building the transpose.
    """

    def __init__(self, a: torch.Tensor, symmetric: bool = False) -> None:
        self.a = a if a.layout == torch.sparse_csr else a.to_sparse_csr()
        self.t = self.a if symmetric else self.a.to_sparse_coo().t().coalesce().to_sparse_csr()
        self.shape = self.a.shape

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        return _FrozenSpMM.apply(self.a, self.t, x) if torch.is_grad_enabled() and x.requires_grad else self.a @ x
