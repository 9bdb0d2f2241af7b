"""Codebook machinery shared by every quantising tokenizer (RQ-VAE, PQ, MMQ).

Small focused pieces, each with one contract:

* `kmeans`, `nearest_code`: seeded, chunked, device-agnostic k-means and assignment.
* `Codebook`: one vector-quantisation level (nearest code, usage tracking, dead-code restart).
* `ResidualQuantizer`: N cascaded codebooks on successive residuals, plus the soft code usage
  that MoToRec's sparsity prior acts on.
* Diagnostics: utilisation, perplexity, collision rate, reconstruction error, code sparsity.

Collision resolution lives in `collisions`, corpus fingerprints in `corpus`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from motorec.distributed import SINGLE, DistContext

# Distance matrices are computed in row chunks of at most this many elements (n_rows * K).
CHUNK_ELEMENTS = 1 << 24


def pairwise_sqdist(x: Tensor, codebook: Tensor) -> Tensor:
    """(n, K) squared Euclidean distances, expanded so no (n, K, D) tensor is ever built."""
    d = x.pow(2).sum(-1, keepdim=True) - 2.0 * (x @ codebook.t()) + codebook.pow(2).sum(-1)
    return d.clamp_min(0.0)


def _chunk_rows(k: int) -> int:
    return max(1, CHUNK_ELEMENTS // max(1, k))


@torch.no_grad()
def nearest_code(x: Tensor, codebook: Tensor) -> tuple[Tensor, Tensor]:
    """Index of the nearest code for each row and its squared distance, in bounded memory."""
    n = x.shape[0]
    codes = torch.empty(n, dtype=torch.long, device=x.device)
    dist = torch.empty(n, dtype=x.dtype, device=x.device)
    step = _chunk_rows(codebook.shape[0])
    for start in range(0, n, step):
        d = pairwise_sqdist(x[start : start + step], codebook)
        dist[start : start + step], codes[start : start + step] = d.min(dim=1)
    return codes, dist


@dataclass
class KMeansResult:
    centroids: Tensor  # (k, d)
    codes: Tensor  # (n,) nearest centroid of every input row
    sqdist: Tensor  # (n,) squared distance to it

    @property
    def inertia(self) -> float:
        return float(self.sqdist.sum())


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


@torch.no_grad()
def kmeans_plusplus(x: Tensor, k: int, seed: int = 0) -> Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): spread-out centres, so no code starts dead.

    When every point is already a centre (fewer distinct points than k) the rest are drawn
    uniformly, i.e. duplicated; such codes stay unused, which the utilisation metric then shows.
    """
    g = _generator(seed)
    n = x.shape[0]
    centres = torch.empty(k, x.shape[1], dtype=x.dtype, device=x.device)
    first = int(torch.randint(n, (1,), generator=g))
    x_sq = x.pow(2).sum(-1)

    def sqdist_to(i: int) -> Tensor:  # expanded form: one matrix-vector product per step
        return (x_sq - 2.0 * (x @ x[i]) + x_sq[i]).clamp_min(0.0)

    centres[0] = x[first]
    closest = sqdist_to(first)
    for i in range(1, k):
        total = float(closest.sum())
        if total > 0.0:
            idx = int(torch.multinomial((closest / total).float().cpu(), 1, generator=g))
        else:
            idx = int(torch.randint(n, (1,), generator=g))
        centres[i] = x[idx]
        closest = torch.minimum(closest, sqdist_to(idx))
    return centres


@torch.no_grad()
def split_seeds(x: Tensor, codes: Tensor, sqdist: Tensor, k: int, n_seeds: int) -> Tensor:
    """Rows to re-seed `n_seeds` empty/dead codes with: the worst-quantised points.

    A point is only taken from a cluster that keeps at least one other member, so reviving one
    code never kills another. Falls back to the worst points overall when too few qualify.
    """
    counts = torch.bincount(codes, minlength=k).cpu().numpy()
    order = torch.argsort(sqdist, descending=True).cpu().numpy()
    codes_np = codes.cpu().numpy()
    picked: list[int] = []
    for i in order:
        if len(picked) == n_seeds:
            break
        c = codes_np[i]
        if counts[c] >= 2:
            counts[c] -= 1
            picked.append(int(i))
    taken = set(picked)
    for i in order:  # not enough splittable clusters (tiny or duplicated data)
        if len(picked) == n_seeds:
            break
        if int(i) not in taken:
            picked.append(int(i))
    while len(picked) < n_seeds:  # fewer rows than seeds wanted
        picked.append(int(order[len(picked) % len(order)]))
    return x[torch.as_tensor(picked, device=x.device)].clone()


@torch.no_grad()
def kmeans(
    x: Tensor,
    k: int,
    *,
    n_iter: int = 25,
    init: str | Tensor = "k-means++",
    seed: int = 0,
    max_points: int | None = 1 << 18,
) -> KMeansResult:
    """Lloyd's k-means on any device, seeded, with empty clusters re-seeded by `split_seeds`.

    `init` is "k-means++", "random" (k distinct rows) or a (k, d) tensor (warm start). At most
    `max_points` rows (a seeded sample) fit the centroids; the returned codes cover every row.
    """
    x = x.float()
    fit_x = x
    if max_points is not None and x.shape[0] > max_points:
        sample = torch.randperm(x.shape[0], generator=_generator(seed))[:max_points].to(x.device)
        fit_x = x[sample]
    n = fit_x.shape[0]
    if isinstance(init, Tensor):
        centroids = init.detach().to(device=x.device, dtype=x.dtype).clone()
    elif init == "k-means++":
        centroids = kmeans_plusplus(fit_x, k, seed)
    elif init == "random":
        idx = torch.randperm(n, generator=_generator(seed))[:k]
        if idx.numel() < k:
            idx = torch.cat([idx, torch.randint(n, (k - idx.numel(),), generator=_generator(seed + 1))])
        centroids = fit_x[idx.to(x.device)].clone()
    else:
        raise ValueError(f"unknown k-means init {init!r} (use 'k-means++', 'random' or a tensor)")
    previous: Tensor | None = None
    for _ in range(n_iter):
        codes, dist = nearest_code(fit_x, centroids)
        counts = torch.bincount(codes, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, codes, fit_x)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled].unsqueeze(1).to(x.dtype)
        empty = int((~filled).sum())
        if empty:
            centroids[~filled] = split_seeds(fit_x, codes, dist, k, empty)
        elif previous is not None and torch.equal(codes, previous):
            break
        previous = codes
    codes, dist = nearest_code(x, centroids)
    return KMeansResult(centroids, codes, dist)


# --------------------------------------------------------------------------------------------
# Quantiser modules
# --------------------------------------------------------------------------------------------


@dataclass
class CodebookOutput:
    quantized: Tensor  # (B, D) chosen code vectors; gradient reaches the codebook only
    codes: Tensor  # (B,) long
    sqdist: Tensor  # (B, K) squared distances to every code (differentiable in input and codes)


class Codebook(nn.Module):
    """One vector-quantisation level: K learnable codes, nearest-code lookup, dead-code restart.

    In training mode every forward records which codes were used and keeps a small pool of
    recent inputs; `restart_dead()` re-seeds codes unused since the previous call from the
    worst-quantised pooled inputs (they sit where the codebook covers the data worst).
    """

    usage: Tensor  # (K,) how often each code was used since the last restart

    def __init__(self, size: int, dim: int, pool_size: int | None = None) -> None:
        super().__init__()
        self.embed = nn.Parameter(torch.randn(size, dim) / math.sqrt(dim))
        self.register_buffer("usage", torch.zeros(size), persistent=False)
        self.pool_size = pool_size if pool_size is not None else 4 * size
        self._pool: list[Tensor] = []

    @property
    def size(self) -> int:
        return self.embed.shape[0]

    def forward(self, r: Tensor) -> CodebookOutput:
        d = pairwise_sqdist(r, self.embed)
        codes = d.argmin(dim=-1)
        if self.training:
            self._track(r.detach(), codes)
        return CodebookOutput(self.embed[codes], codes, d)

    @torch.no_grad()
    def _track(self, r: Tensor, codes: Tensor) -> None:
        self.usage += torch.bincount(codes, minlength=self.size).to(self.usage.dtype)
        self._pool.append(r)
        while len(self._pool) > 1 and sum(p.shape[0] for p in self._pool) - self._pool[0].shape[0] >= self.pool_size:
            self._pool.pop(0)

    @torch.no_grad()
    def assign(self, r: Tensor) -> tuple[Tensor, Tensor]:
        """Nearest code and squared distance for every row, chunked (no gradient)."""
        return nearest_code(r, self.embed)

    def vectors(self) -> Tensor:
        """The code vectors as the distances of `assign` see them."""
        return self.embed

    @torch.no_grad()
    def preference(self, r: Tensor) -> Tensor:
        """(n, K) codes of every row, nearest first."""
        return pairwise_sqdist(r, self.embed).argsort(dim=1)

    @torch.no_grad()
    def fit_kmeans(self, r: Tensor, *, seed: int = 0, n_iter: int = 25) -> Tensor:
        """Set the codes by k-means++ / Lloyd on `r`; returns the codes of r."""
        result = kmeans(r, self.size, n_iter=n_iter, seed=seed)
        self.embed.copy_(result.centroids)
        self.reset_usage()
        return result.codes

    @torch.no_grad()
    def reset_usage(self) -> None:
        self.usage.zero_()
        self._pool.clear()

    @torch.no_grad()
    def restart_dead(self, ctx: DistContext = SINGLE) -> int:
        """Re-seed codes unused since the last call; returns how many were restarted.

        Data-parallel (`ctx`): a code is dead when no rank used it; rank 0 re-seeds from its recent
        residuals and every rank takes its codebook, so the ranks' models stay identical."""
        if not self._pool:
            return 0
        ctx.all_reduce_sum(self.usage, "codebook usage")
        dead = (self.usage == 0).nonzero().flatten()
        n_dead = int(dead.numel())
        if n_dead:
            pool = torch.cat(self._pool)
            codes, dist = self.assign(pool)
            self.embed[dead] = split_seeds(pool, codes, dist, self.size, n_dead).to(self.embed.dtype)
            ctx.broadcast(self.embed.data, "codebook restart")
        self.reset_usage()
        return n_dead


def soft_assign(sqdist: Tensor, temperature: float) -> Tensor:
    """softmax(-d / (temperature * mean d)): scale-free, so one temperature serves every level.

    Deeper residuals are much smaller than the input; dividing by the (detached) mean distance
    keeps the soft assignment equally sharp at every level.
    """
    scale = sqdist.detach().mean().clamp_min(1e-12)
    return F.softmax(-sqdist / (temperature * scale), dim=-1)


def bernoulli_kl(rho: float, rho_hat: Tensor, eps: float = 1e-6) -> Tensor:
    """KL(Bernoulli(rho) || Bernoulli(rho_hat)) elementwise: the sparse-autoencoder penalty."""
    rho_hat = rho_hat.clamp(eps, 1.0 - eps)
    return rho * torch.log(rho / rho_hat) + (1.0 - rho) * torch.log((1.0 - rho) / (1.0 - rho_hat))


@dataclass
class ResidualQuantizerOutput:
    quantized: Tensor  # (B, D) sum of the chosen codes; gradient reaches codebooks only
    codes: Tensor  # (B, L) long
    codebook_loss: Tensor  # (B,) sum over levels of mean_d (sg(r^(k-1)) - q^(k))^2
    soft_usage: Tensor  # (L, K) batch mean of the soft assignment at each level (rho_hat)


class ResidualQuantizer(nn.Module):
    """L cascaded codebooks: q^(k) = nearest code of r^(k-1), r^(k) = r^(k-1) - q^(k), z_q = sum q^(k).

    forward(z, weights) returns the hard quantisation (no straight-through: the caller chooses
    straight-through or the rotation trick), the codebook loss per row, and the soft code usage
    per level (weighted batch mean of `soft_assign`), on which a usage prior can act.
    Residuals keep their gradient to `z`, so a prior on soft usage also shapes the encoder.
    """

    def __init__(self, levels: int, codebook_size: int, dim: int, temperature: float = 0.05) -> None:
        super().__init__()
        if levels < 1 or codebook_size < 2:
            raise ValueError("a residual quantizer needs >= 1 level and >= 2 codes per level")
        self.codebooks = nn.ModuleList(Codebook(codebook_size, dim) for _ in range(levels))
        self.temperature = temperature

    @property
    def book_list(self) -> list[Codebook]:
        """The levels' codebooks in order (a typed view of the `codebooks` ModuleList)."""
        return cast(list[Codebook], list(self.codebooks))

    @property
    def levels(self) -> int:
        return len(self.codebooks)

    @property
    def codebook_size(self) -> int:
        return self.book_list[0].size

    def forward(self, z: Tensor, weights: Tensor | None = None) -> ResidualQuantizerOutput:
        residual = z
        quantized = torch.zeros_like(z)
        codes, usage = [], []
        codebook_loss = z.new_zeros(z.shape[0])
        for book in self.book_list:
            out = book(residual)
            p = soft_assign(out.sqdist, self.temperature)
            usage.append(p.mean(0) if weights is None else (weights.unsqueeze(1) * p).sum(0) / weights.sum())
            codebook_loss = codebook_loss + (residual.detach() - out.quantized).pow(2).mean(-1)
            quantized = quantized + out.quantized
            residual = residual - out.quantized.detach()
            codes.append(out.codes)
        return ResidualQuantizerOutput(quantized, torch.stack(codes, 1), codebook_loss, torch.stack(usage))

    @torch.no_grad()
    def encode(self, z: Tensor) -> Tensor:
        """(n, L) codes, chunked, no gradient."""
        residual = z
        codes = []
        for book in self.book_list:
            c, _ = book.assign(residual)
            residual = residual - book.embed[c]
            codes.append(c)
        return torch.stack(codes, 1)

    def lookup(self, codes: Tensor) -> Tensor:
        """Sum of the code vectors named by (n, L) codes."""
        return cast(Tensor, sum(book.embed[codes[:, k]] for k, book in enumerate(self.book_list)))

    @torch.no_grad()
    def residual_inputs(self, z: Tensor, codes: Tensor) -> list[Tensor]:
        """r^(k-1) for every level k, given the codes: what each codebook was asked to quantise."""
        out, residual = [], z
        for k, book in enumerate(self.book_list):
            out.append(residual)
            residual = residual - book.embed[codes[:, k]]
        return out

    @torch.no_grad()
    def fit_kmeans(self, z: Tensor, *, seed: int = 0, n_iter: int = 25) -> Tensor:
        """k-means every level on the residuals of the whole corpus `z`, level by level; returns codes."""
        residual = z
        codes = []
        for k, book in enumerate(self.book_list):
            c = book.fit_kmeans(residual, seed=seed + k, n_iter=n_iter)
            residual = residual - book.embed[c]
            codes.append(c)
        return torch.stack(codes, 1)

    def restart_dead_codes(self, ctx: DistContext = SINGLE) -> list[int]:
        """Dead-code restart at every level; returns the number restarted per level."""
        return [book.restart_dead(ctx) for book in self.book_list]


# --------------------------------------------------------------------------------------------
# Diagnostics
# --------------------------------------------------------------------------------------------


def utilisation(codes: np.ndarray, k: int) -> float:
    """Share of the K codes that at least one item uses."""
    return float(np.unique(np.asarray(codes)).size / k)


def perplexity(codes: np.ndarray, k: int) -> float:
    """exp(entropy of the code histogram): the effective number of codes in use (max K)."""
    p = np.bincount(np.asarray(codes, dtype=np.int64), minlength=k) / max(1, len(codes))
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def usage(codes: np.ndarray, sizes: list[int]) -> dict[str, list[float]]:
    """Utilisation and perplexity of every column of a (n, L) code table (column j has sizes[j] codes)."""
    return {
        "utilisation": [utilisation(codes[:, j], k) for j, k in enumerate(sizes)],
        "perplexity": [perplexity(codes[:, j], k) for j, k in enumerate(sizes)],
    }


def collision_rate(tuples: np.ndarray) -> float:
    """Share of items whose full code tuple is shared with at least one other item."""
    tuples = np.asarray(tuples)
    if tuples.shape[0] == 0:
        return 0.0
    _, inverse, counts = np.unique(tuples.reshape(len(tuples), -1), axis=0, return_inverse=True, return_counts=True)
    return float((counts[inverse.reshape(-1)] > 1).mean())


class ReconstructionError:
    """Accumulates reconstruction error over row chunks (corpora too big to decode at once).

    Reports MSE per element and relative MSE (divided by the mean per-dimension variance of x),
    which makes modalities of different scale comparable: 0 is perfect, 1 is no better than
    predicting the mean feature vector.
    """

    def __init__(self) -> None:
        self.n = 0
        self.sq_err = 0.0
        self.sum: np.ndarray | None = None
        self.sum_sq: np.ndarray | None = None

    def update(self, x: np.ndarray, x_hat: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        self.sq_err += float(((x - np.asarray(x_hat, dtype=np.float64)) ** 2).sum())
        self.sum = x.sum(0) if self.sum is None else self.sum + x.sum(0)
        self.sum_sq = (x**2).sum(0) if self.sum_sq is None else self.sum_sq + (x**2).sum(0)
        self.n += x.shape[0]

    def result(self) -> dict[str, float]:
        if self.n == 0 or self.sum is None or self.sum_sq is None:
            return {"mse": float("nan"), "relative_mse": float("nan")}
        mse = self.sq_err / (self.n * self.sum.shape[0])
        var = float(np.mean(self.sum_sq / self.n - (self.sum / self.n) ** 2))
        return {"mse": mse, "relative_mse": mse / var if var > 0 else float("nan")}


@torch.no_grad()
def code_sparsity(sqdist: Tensor, temperature: float) -> float:
    """Mean over items of the soft-assignment mass on the top code (same softmax as training).

    1.0 means each item is explained by a single code (sparse, crisp); 1/K means the item sits
    equally far from every code.
    """
    return float(soft_assign(sqdist, temperature).max(dim=-1).values.mean())
