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


def _feature_key(features: np.ndarray, **params: object) -> str:
    h = hashlib.sha256()
    arr = np.ascontiguousarray(features, dtype=np.float32)
    h.update(str(arr.shape).encode())
    h.update(arr.tobytes())
    h.update(repr(sorted(params.items())).encode())
    return h.hexdigest()[:24]


def knn_item_graph(features: np.ndarray, k: int = 10, cache_dir: str | Path | None = None) -> sp.csr_matrix:
    """Top-k cosine item-item graph (self excluded), symmetric-normalised as in LATTICE/FREEDOM.

    Cached in `cache_dir` (safetensors) under a hash of the features and k.
    """
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"knn_{_feature_key(features, k=k, version=1)}.safetensors"
        if path.is_file():
            t = load_file(str(path))
            n = features.shape[0]
            return sp.csr_matrix((t["data"].numpy(), (t["row"].numpy(), t["col"].numpy())), shape=(n, n))
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    x = torch.nn.functional.normalize(x, dim=1)
    n = x.shape[0]
    k = min(k, n - 1)
    rows, cols = [], []
    for start in range(0, n, 4096):
        sim = x[start : start + 4096] @ x.T
        sim[torch.arange(sim.shape[0]), torch.arange(start, start + sim.shape[0])] = -torch.inf
        idx = sim.topk(k, dim=1).indices
        rows.append(torch.arange(start, start + sim.shape[0]).repeat_interleave(k))
        cols.append(idx.reshape(-1))
    row = torch.cat(rows).numpy()
    col = torch.cat(cols).numpy()
    graph = sym_normalize(sp.csr_matrix((np.ones(len(row), np.float32), (row, col)), shape=(n, n)))
    if path is not None:
        coo = graph.tocoo()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path_beside(path)
        save_file({"row": torch.from_numpy(coo.row.astype(np.int64)), "col": torch.from_numpy(coo.col.astype(np.int64)),
                   "data": torch.from_numpy(coo.data)}, str(tmp))
        os.replace(tmp, path)
    return graph
