"""Graph helpers the zoo added: fast frozen spmm, learned k-NN graphs, mixing, FREEDOM's pruning."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from motorec.data.graph import (
    FrozenSparse,
    degree_sensitive_prune,
    mix_graphs,
    row_normalize,
    sparse_sym_normalize,
    to_torch_sparse,
    topk_cosine,
)


def test_frozen_sparse_matches_dense_gradients():
    a = sp.random(7, 5, density=0.4, random_state=1, dtype=np.float32)
    dense = torch.from_numpy(a.toarray())
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(7, 3)
    (FrozenSparse(to_torch_sparse(a)) @ x * w).sum().backward()
    g_fast = x.grad.clone()
    x.grad = None
    (dense @ x * w).sum().backward()
    torch.testing.assert_close(g_fast, x.grad)


def test_topk_cosine_excludes_self_and_is_differentiable():
    x = torch.randn(10, 4, requires_grad=True)
    rows, cols, vals = topk_cosine(x, 3)
    assert (rows != cols).all() and len(rows) == 30
    unit = torch.nn.functional.normalize(x.detach(), dim=1)
    sim = unit @ unit.T
    sim.fill_diagonal_(-2)
    expected = sim.topk(3, dim=1).values.reshape(-1)
    torch.testing.assert_close(vals.detach(), expected)
    vals.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_sparse_sym_normalize_and_mix():
    rows, cols = torch.tensor([0, 0, 1, 2]), torch.tensor([1, 2, 0, 0])
    g = sparse_sym_normalize(rows, cols, torch.tensor([1.0, 3.0, 2.0, -1.0]), 3).to_dense()
    deg = torch.tensor([4.0, 2.0, 0.0])  # negative weight clipped to 0
    assert g[0, 1] == torch.tensor(1.0) / (deg[0].sqrt() * deg[1].sqrt())
    assert g[2].sum() == 0
    mixed = mix_graphs([g.to_sparse(), torch.eye(3).to_sparse()], [0.5, 2.0]).to_dense()
    torch.testing.assert_close(mixed, 0.5 * g + 2 * torch.eye(3))


def test_degree_sensitive_prune_keeps_share_and_normalises():
    train = sp.random(30, 40, density=0.2, random_state=2, format="csr", dtype=np.float32)
    train.data[:] = 1
    adj = degree_sensitive_prune(train, 0.5, torch.Generator().manual_seed(0)).to_dense()
    n_users = 30
    kept = (adj[:n_users, n_users:] > 0).sum()
    assert kept == round(train.nnz * 0.5)
    torch.testing.assert_close(adj, adj.T)
    block = adj[:n_users, n_users:]
    du, di = (block > 0).sum(1).float(), (block > 0).sum(0).float()
    r, c = block.nonzero(as_tuple=True)
    torch.testing.assert_close(block[r, c], 1 / (du[r] * di[c]).sqrt())


def test_row_normalize_means_and_empty_rows():
    m = row_normalize(sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 0]], dtype=np.float32))).toarray()
    np.testing.assert_allclose(m, [[0.5, 0.5, 0], [0, 0, 0]])


def test_blockwise_knn_equals_dense_and_faiss_recovers_most_neighbours(monkeypatch):
    """Exact k-NN in tiny similarity blocks equals the dense top-k; the faiss path (used above
    EXACT_KNN_MAX_ITEMS items) finds most of the exact neighbours on clustered data."""
    import motorec.data.graph as graph

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 16))
    x = torch.from_numpy((centres[rng.integers(0, 20, 3000)] + 0.3 * rng.normal(size=(3000, 16))).astype(np.float32))
    unit = torch.nn.functional.normalize(x, dim=1)
    sim = unit @ unit.T
    sim.fill_diagonal_(-torch.inf)
    want = sim.topk(10, dim=1).indices
    monkeypatch.setattr(graph, "KNN_MEMORY_MB", 0.05)  # blocks of a few hundred columns
    rows, cols = graph.cosine_neighbours(x, 10)
    assert torch.equal(rows, torch.arange(3000).repeat_interleave(10))
    got = cols.view(3000, 10)
    same = (got.sort(1).values == want.sort(1).values).all(1).float().mean()
    assert same > 0.99  # float rounding may swap a near-tie at the 10th place
    rows_a, cols_a = graph.cosine_neighbours(x, 10, exact=False)
    assert (rows_a != cols_a).all() and torch.bincount(rows_a, minlength=3000).max() <= 10
    found = set(zip(rows_a.tolist(), cols_a.tolist()))
    exact = set(zip(rows.tolist(), cols.tolist()))
    assert len(found & exact) / len(exact) > 0.9
