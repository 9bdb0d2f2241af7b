"""Shared codebook machinery: k-means, assignment, dead-code restart, diagnostics."""

from __future__ import annotations

import numpy as np
import torch
from tok_helpers import clustered

from motorec.tokenizers import codebook as cb


def test_kmeans_finds_separated_clusters():
    x = torch.from_numpy(clustered(300, 8, 5, seed=0, spread=0.01))
    result = cb.kmeans(x, 5, seed=0)
    assert result.centroids.shape == (5, 8) and result.codes.shape == (300,)
    assert result.inertia < 1.0  # every blob got its own centroid
    assert cb.utilisation(result.codes.numpy(), 5) == 1.0


def test_kmeans_seeded_and_handles_more_codes_than_points():
    x = torch.from_numpy(clustered(50, 4, 3, seed=0))
    a, b = cb.kmeans(x, 8, seed=3), cb.kmeans(x, 8, seed=3)
    assert torch.equal(a.codes, b.codes) and torch.allclose(a.centroids, b.centroids)
    tiny = cb.kmeans(x[:5], 8, seed=0, init="random")  # k > n: no crash, every point is a centroid
    assert tiny.inertia < 1e-8


def test_nearest_code_chunked_equals_brute_force(monkeypatch):
    x, c = torch.randn(257, 6), torch.randn(10, 6)
    monkeypatch.setattr(cb, "CHUNK_ELEMENTS", 30)  # 3 rows per chunk
    codes, dist = cb.nearest_code(x, c)
    brute = torch.cdist(x, c).pow(2)
    assert torch.equal(codes, brute.argmin(1))
    assert torch.allclose(dist, brute.min(1).values, atol=1e-4)


def test_dead_code_restart_revives_unused_codes():
    torch.manual_seed(0)
    x = torch.from_numpy(clustered(256, 8, 8, seed=0))
    book = cb.Codebook(16, 8)
    book.fit_kmeans(x, seed=0)
    with torch.no_grad():
        book.embed[:6] = 1e3  # six codes nobody can reach
    book.train()
    book(x)
    assert int((book.usage == 0).sum()) >= 6
    assert book.restart_dead() >= 6
    codes, _ = book.assign(x)
    assert cb.utilisation(codes.numpy(), 16) == 1.0, "every revived code now has items"


def test_residual_quantizer_contract():
    rq = cb.ResidualQuantizer(levels=3, codebook_size=8, dim=4)
    z = torch.randn(64, 4, requires_grad=True)
    rq.fit_kmeans(z.detach(), seed=0)
    out = rq(z)
    assert out.codes.shape == (64, 3) and out.quantized.shape == (64, 4)
    assert out.codebook_loss.shape == (64,) and out.soft_usage.shape == (3, 8)
    assert torch.allclose(out.soft_usage.sum(1), torch.ones(3))
    assert torch.equal(out.codes, rq.encode(z.detach()))
    assert torch.allclose(rq.lookup(out.codes), out.quantized)
    residuals = rq.residual_inputs(z.detach(), out.codes)
    norms = [float(r.norm()) for r in residuals]
    assert norms == sorted(norms, reverse=True)


def test_diagnostic_helpers():
    codes = np.array([0, 0, 1, 1])
    assert cb.utilisation(codes, 4) == 0.5
    assert abs(cb.perplexity(codes, 4) - 2.0) < 1e-9
    err = cb.ReconstructionError()
    x = np.random.default_rng(0).normal(size=(100, 3))
    err.update(x[:50], np.zeros((50, 3)) + x.mean(0))
    err.update(x[50:], np.zeros((50, 3)) + x.mean(0))
    assert abs(err.result()["relative_mse"] - 1.0) < 1e-9  # predicting the mean scores 1
    assert float(cb.bernoulli_kl(0.1, torch.tensor(0.1))) < 1e-9
    d = torch.tensor([[0.0, 100.0, 100.0], [0.0, 100.0, 100.0]])
    assert cb.code_sparsity(d, 0.05) > 0.99
