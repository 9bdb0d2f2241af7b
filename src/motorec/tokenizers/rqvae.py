"""Sparse-regularised RQ-VAE (MoToRec, Liu, Zhang & Cheung, AAAI 2026, arXiv 2602.11062).

Per modality: MLP encoder f -> z_e, N_q residual quantisers, MLP decoder D. Loss per item

    ||f - D(z_q)||^2 + beta * ||z_e - sg(z_q)||^2 + sum_k ||sg(r^(k-1)) - q^(k)||^2 + gamma * L_sparse

with L_sparse = sum_levels sum_j KL(rho || rho_hat_j): rho_hat_j is code j's mean soft assignment
over the batch (softmax of -distance / temperature, see `codebook.soft_assign`), rho a small
Bernoulli prior (default 1/K). The codebook term (not EMA) keeps every parameter in the graph, so
the module trains jointly inside a recommender with one optimiser.

Two layers: `RQVAE` (one modality, an nn.Module a recommender can hold) and `RQVAETokenizer`
("rqvae", one RQVAE per modality behind the Tokenizer interface).
"""
from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor, nn

from motorec.distributed import DistContext, current, data_parallel
from motorec.errors import MotorecError
from motorec.progress import progress
from motorec.tokenizers.base import Features, Tokenizer, TokenSlot, check_features, register_tokenizer, resolve_params
from motorec.runtime import resolve_device
from motorec.tokenizers.codebook import (
    FingerprintIndex,
    ReconstructionError,
    ResidualQuantizer,
    bernoulli_kl,
    code_sparsity,
    collision_rate,
    free_last_codes,
    new_item_suffix,
    pairwise_sqdist,
    perplexity,
    sinkhorn_resolve,
    soft_assign,
    suffix_codes,
    utilisation,
)

log = logging.getLogger(__name__)

ENCODE_CHUNK = 65536  # rows pushed through the encoder at once when encoding a corpus


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def rotate_to(e: Tensor, q: Tensor, eps: float = 1e-8) -> Tensor:
    """Rotation trick (Fifty et al. 2024): e mapped onto q by a rotation + rescale held constant.

    The forward value equals q; the gradient reaching e is the decoder gradient rotated into
    e's frame, which keeps the relative angle between e and its code in the update.
    """
    e_norm = e.norm(dim=-1, keepdim=True).clamp_min(eps)
    q_norm = q.norm(dim=-1, keepdim=True).clamp_min(eps)
    u = (e / e_norm).detach()
    v = (q / q_norm).detach()
    w = nn.functional.normalize(u + v, dim=-1).detach()
    rotated = e - 2.0 * (e * w).sum(-1, keepdim=True) * w + 2.0 * (e * u).sum(-1, keepdim=True) * v
    return rotated * (q_norm / e_norm).detach()


@dataclass
class RQVAEOutput:
    """What `RQVAE.forward` returns.

    z_e: (B, D) encoder output. z_q: (B, D) quantised latent whose value is the sum of codes and
    whose gradient reaches the encoder (straight-through, or the rotation trick). codes: (B, L)
    long. x_hat: (B, d_in) reconstruction in input space. loss_per_item: (B,) recon + beta*commit
    + codebook + gamma*L_sparse (the batch-level sparsity term is shared equally by the items), so
    a caller can take mean(w_i * L_i). loss: mean(w_i * L_i) with the forward's weights (plain mean
    without). parts: detached scalars for logging: recon, commit, codebook, sparse, loss.
    """

    z_e: Tensor
    z_q: Tensor
    codes: Tensor
    x_hat: Tensor
    loss_per_item: Tensor
    loss: Tensor
    parts: dict[str, Tensor]


class RQVAE(nn.Module):
    """One modality's sparse-regularised RQ-VAE.

    Inputs are standardised inside (buffers set by `fit_input_stats`), so raw features of any
    scale go in and `decode` returns raw scale. Training loop contract:
    `fit_input_stats(corpus)`; optionally a few epochs minimising `autoencoder_loss`;
    `init_codebooks_kmeans(corpus)`; then `forward` every step and `restart_dead_codes()` every
    so often (e.g. once per epoch: a code no item chose for a whole epoch is dead).
    """

    def __init__(
        self,
        input_dim: int,
        *,
        latent_dim: int = 64,
        hidden: tuple[int, ...] | list[int] = (512, 256),
        levels: int = 3,
        codebook_size: int = 512,
        beta: float = 0.25,
        gamma: float = 0.05,
        sparsity_target: float | None = None,
        temperature: float = 0.05,
        rotation_trick: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = mlp([input_dim, *hidden, latent_dim])
        self.decoder = mlp([latent_dim, *reversed(list(hidden)), input_dim])
        self.quantizer = ResidualQuantizer(levels, codebook_size, latent_dim, temperature)
        self.beta = beta
        self.gamma = gamma
        self.rho = sparsity_target if sparsity_target is not None else 1.0 / codebook_size
        self.rotation_trick = rotation_trick
        self.register_buffer("input_mean", torch.zeros(input_dim))
        self.register_buffer("input_scale", torch.ones(()))

    @property
    def levels(self) -> int:
        return self.quantizer.levels

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def normalise(self, x: Tensor) -> Tensor:
        return (x - self.input_mean) / self.input_scale

    def denormalise(self, x: Tensor) -> Tensor:
        return x * self.input_scale + self.input_mean

    def sparsity_loss(self, soft_usage: Tensor) -> Tensor:
        """sum over levels and codes of KL(rho || rho_hat_j)."""
        return bernoulli_kl(self.rho, soft_usage).sum()

    def forward(self, x: Tensor, weights: Tensor | None = None) -> RQVAEOutput:
        """x: (B, d_in) raw features; weights: (B,) optional per-item loss weights (rarity).

        The weights enter `loss` as mean(w_i * L_i) and weight each item's soft usage in rho_hat.
        """
        xn = self.normalise(x)
        z_e = self.encoder(xn)
        rq = self.quantizer(z_e, weights)
        if self.rotation_trick:
            z_q = rotate_to(z_e, rq.quantized.detach())
        else:
            z_q = z_e + (rq.quantized - z_e).detach()
        xn_hat = self.decoder(z_q)
        recon = (xn_hat - xn).pow(2).mean(-1)
        commit = (z_e - rq.quantized.detach()).pow(2).mean(-1)
        sparse = self.sparsity_loss(rq.soft_usage)
        per_item = recon + self.beta * commit + rq.codebook_loss + self.gamma * sparse
        loss = per_item.mean() if weights is None else (weights * per_item).mean()
        parts = {
            "recon": recon.mean().detach(),
            "commit": commit.mean().detach(),
            "codebook": rq.codebook_loss.mean().detach(),
            "sparse": sparse.detach(),
            "loss": loss.detach(),
        }
        return RQVAEOutput(z_e, z_q, rq.codes, self.denormalise(xn_hat), per_item, loss, parts)

    @torch.no_grad()
    def latent(self, x: Tensor) -> Tensor:
        """Encoder output for a whole corpus, in row chunks, no gradient."""
        return torch.cat([self.encoder(self.normalise(x[s : s + ENCODE_CHUNK])) for s in range(0, len(x), ENCODE_CHUNK)])

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """(n, L) codes of raw features x."""
        return self.quantizer.encode(self.latent(x))

    def decode(self, codes: Tensor) -> Tensor:
        """Raw-scale reconstruction from (n, L) codes."""
        return self.denormalise(self.decoder(self.quantizer.lookup(codes)))

    @torch.no_grad()
    def fit_input_stats(self, x: Tensor) -> None:
        """Standardise inputs by the corpus: per-dimension mean, one global scale (keeps geometry)."""
        x = x.float()
        self.input_mean.copy_(x.mean(0))
        self.input_scale.copy_(x.var(0, unbiased=False).mean().sqrt().clamp_min(1e-8))

    def autoencoder_loss(self, x: Tensor) -> Tensor:
        """(B,) reconstruction error without quantisation, for warm-up before `init_codebooks_kmeans`.

        Why warm up: a random encoder's output changes scale many-fold early in training, far
        faster than gradient-trained codes can follow; codes fitted by k-means on a warmed-up
        encoder stay in use, codes fitted on a random one mostly die.
        """
        xn = self.normalise(x)
        return (self.decoder(self.encoder(xn)) - xn).pow(2).mean(-1)

    @torch.no_grad()
    def init_codebooks_kmeans(self, x: Tensor, seed: int = 0, n_iter: int = 25) -> Tensor:
        """k-means every level on the residuals of the whole corpus x; returns the corpus codes."""
        return self.quantizer.fit_kmeans(self.latent(x.float()), seed=seed, n_iter=n_iter)

    def restart_dead_codes(self) -> list[int]:
        """Re-seed codes unused since the last call from recent residuals; count per level."""
        return self.quantizer.restart_dead_codes()


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------

COLLISION_MODES = ("suffix", "sinkhorn", "none")


@dataclass
class RQVAEConfig:
    """Every knob of the "rqvae" tokenizer (`--set key=value`)."""

    codebook_size: int = 512
    levels: int = 3
    latent_dim: int = 64
    hidden: list[int] = field(default_factory=lambda: [512, 256])
    beta: float = 0.25
    gamma: float = 0.05
    sparsity_target: float | None = None  # rho of the Bernoulli prior; None -> 1 / codebook_size
    temperature: float = 0.05  # soft assignment for L_sparse, relative to the mean distance
    rotation_trick: bool = False
    collisions: str = "suffix"  # suffix | sinkhorn | none
    epochs: int = 50
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_epochs: int = 20  # autoencoder-only epochs before the k-means codebook init
    kmeans_iters: int = 25
    restart_every: int = 0  # optimiser steps between dead-code restarts; 0 = once per epoch
    sinkhorn_epsilon: float = 0.05
    device: str = "auto"

    def validate(self) -> None:
        checks = [
            (self.codebook_size >= 2, "codebook_size must be >= 2"),
            (self.levels >= 1, "levels must be >= 1"),
            (self.latent_dim >= 1, "latent_dim must be >= 1"),
            (all(int(h) >= 1 for h in self.hidden), "hidden sizes must be >= 1"),
            (self.sparsity_target is None or (isinstance(self.sparsity_target, (int, float)) and 0 < self.sparsity_target < 1),
             "sparsity_target must be a number in (0, 1)"),
            (self.temperature > 0, "temperature must be > 0"),
            (self.collisions in COLLISION_MODES, f"collisions must be one of {', '.join(COLLISION_MODES)}"),
            (self.epochs >= 0 and self.batch_size >= 1 and self.lr > 0, "epochs >= 0, batch_size >= 1, lr > 0"),
            (self.warmup_epochs >= 0 and self.kmeans_iters >= 1 and self.restart_every >= 0, "bad iteration counts"),
            (self.sinkhorn_epsilon > 0, "sinkhorn_epsilon must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise MotorecError(f"tokenizer 'rqvae': {message}.")

    def model_kwargs(self) -> dict[str, Any]:
        return {
            "latent_dim": self.latent_dim,
            "hidden": [int(h) for h in self.hidden],
            "levels": self.levels,
            "codebook_size": self.codebook_size,
            "beta": self.beta,
            "gamma": self.gamma,
            "sparsity_target": self.sparsity_target,
            "temperature": self.temperature,
            "rotation_trick": self.rotation_trick,
        }


def row_fingerprints(x: np.ndarray) -> np.ndarray:
    """64-bit hash of each row's float32 bytes: recognises fitted items when they are re-encoded."""
    out = np.empty(x.shape[0], dtype=np.int64)
    for start, block in _chunks(x):
        for i, row in enumerate(np.ascontiguousarray(block, dtype=np.float32)):
            out[start + i] = int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little", signed=True)
    return out


def _tensor(x: np.ndarray, device: torch.device) -> Tensor:
    """float32 copy on `device` (features may be read-only memmaps, which torch cannot wrap)."""
    return torch.tensor(np.asarray(x, dtype=np.float32), device=device)


def _chunks(x: np.ndarray, rows: int = ENCODE_CHUNK) -> Iterator[tuple[int, np.ndarray]]:
    for start in range(0, x.shape[0], rows):
        yield start, x[start : start + rows]


def _sharded_rows(fn, x: Tensor, ctx: DistContext) -> Tensor:
    """fn(x) computed on this rank's contiguous share of the rows and gathered in row order."""
    if not ctx.enabled:
        return fn(x)
    part = fn(x[ctx.shard(len(x))])
    return torch.from_numpy(ctx.gather_rows(part.cpu().numpy(), "tokenizer rows")).to(x.device)


@dataclass
class _Fitted:
    """One modality's trained model plus the fitted corpus' final code table."""

    model: RQVAE
    corpus_codes: np.ndarray  # (n_fit, width) int64, collisions resolved
    corpus_fingerprints: np.ndarray  # (n_fit,) int64
    suffix_size: int

    @cached_property
    def index(self) -> FingerprintIndex:
        return FingerprintIndex(self.corpus_fingerprints)

    def match(self, fingerprints: np.ndarray) -> np.ndarray:
        """Corpus row of every query row (-1 if new); duplicates are matched in row order."""
        return self.index.match(fingerprints)


@register_tokenizer("rqvae")
class RQVAETokenizer(Tokenizer):
    """One sparse-regularised RQ-VAE per modality; codes [mod1 levels, mod1 suffix?, mod2 ...].

    Collisions (items of one modality sharing all L codes) are resolved over the fitted corpus:
    - "suffix" (default): an extra slot numbering the items of a shared tuple 0, 1, 2 ... in row
      order; its size is the largest group. A new item (features not seen in fit) gets the next
      free number of its group; beyond the slot size it is clipped to the last value (the
      collision then remains, and diagnostics show it).
    - "sinkhorn": colliding corpus items get their last level re-assigned by a Sinkhorn-balanced
      plan over the free codes; a new item takes the nearest last-level code whose tuple is free.
    - "none": raw codes.
    Fitted items are recognised by a hash of their feature row, so encoding the corpus again
    reproduces the fitted table exactly (on any device).
    """

    def __init__(self, **params: Any) -> None:
        self.config = resolve_params("rqvae", RQVAEConfig, params)
        self.config.validate()
        super().__init__(**asdict(self.config))
        self.device = resolve_device(self.config.device)
        self._fitted: dict[str, _Fitted] = {}
        self.history: list[dict[str, Any]] = []  # per-epoch loss parts of the last fit

    # ---------------------------------------------------------------- fit
    def fit(self, features: Features, weights: np.ndarray | None = None, seed: int = 0) -> "RQVAETokenizer":
        n = check_features(features)
        w = self._check_weights(weights, n)
        self._fitted = {}
        self.history = []
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for i, (name, feat) in enumerate(features.items()):
                self._fitted[name] = self._fit_one(name, feat, w, seed + 1000 * i)
        return self

    @staticmethod
    def _check_weights(weights: np.ndarray | None, n: int) -> np.ndarray | None:
        if weights is None:
            return None
        w = np.asarray(weights, dtype=np.float32).reshape(-1)
        if w.shape[0] != n:
            raise MotorecError(f"weights: got {w.shape[0]} values for {n} items.")
        if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise MotorecError("weights: must be finite, non-negative and not all zero.")
        return w / w.mean()  # mean 1 keeps the learning-rate scale of the unweighted loss

    def _fit_one(self, name: str, feat: np.ndarray, weights: np.ndarray | None, seed: int) -> _Fitted:
        """Under torchrun (`distributed.current()`), every rank draws the same epoch order and
        steps on its share of each batch with DDP-averaged gradients; the k-means corpus, the
        final codes and fingerprints are computed on item shards and gathered; dead-code restarts
        use usage summed over ranks and rank 0's residuals, so every rank keeps the same model."""
        cfg = self.config
        ctx = current()
        x = _tensor(feat, self.device)
        w = None if weights is None else torch.from_numpy(weights).to(self.device)
        model = RQVAE(x.shape[1], **cfg.model_kwargs()).to(self.device)
        model.fit_input_stats(x)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        g = torch.Generator().manual_seed(seed)
        n = x.shape[0]

        def losses(warmup: bool, idx: Tensor):
            if warmup:
                per_item = model.autoencoder_loss(x[idx])
                return per_item.mean() if w is None else (w[idx] * per_item).mean()
            return model(x[idx], None if w is None else w[idx])

        step_fn = data_parallel(model, losses, ctx)

        def batches() -> Iterator[Tensor]:
            for idx in torch.randperm(n, generator=g).to(self.device).split(cfg.batch_size):
                yield idx[ctx.shard(len(idx))]

        model.train()
        for _ in range(cfg.warmup_epochs):
            for idx in batches():
                loss = step_fn(True, idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        model.quantizer.fit_kmeans(_sharded_rows(model.latent, x, ctx), seed=seed, n_iter=cfg.kmeans_iters)
        restart_every = cfg.restart_every or math.ceil(n / cfg.batch_size)
        step = 0
        with progress(enabled=ctx.is_main) as bar:
            task = bar.task(f"rqvae {name}", total=cfg.epochs)
            for epoch in range(cfg.epochs):
                totals: dict[str, Tensor] = {}  # summed on the device: no sync per step
                restarted = 0
                for idx in batches():
                    out = step_fn(False, idx)
                    opt.zero_grad(set_to_none=True)
                    out.loss.backward()
                    opt.step()
                    step += 1
                    if step % restart_every == 0:
                        restarted += sum(model.quantizer.restart_dead_codes(ctx))
                    for key, value in out.parts.items():
                        totals[key] = totals.get(key, 0.0) + value * (len(idx) / n)
                if ctx.enabled:  # every rank's share of the epoch
                    summed = ctx.all_reduce_sum(torch.stack([totals[k] for k in sorted(totals)]).double(), "tokenizer loss")
                    totals = dict(zip(sorted(totals), summed))
                self.history.append({"modality": name, "epoch": epoch, "restarted": restarted,
                                     **{k: float(v) for k, v in totals.items()}})
                log.info("rqvae %s %s", name, self.history[-1])
                task.advance(status=f"loss {self.history[-1].get('loss', float('nan')):.4f}")
        model.eval()
        raw = _sharded_rows(model.encode, x, ctx).cpu().numpy()
        fingerprints = ctx.gather_rows(row_fingerprints(feat[ctx.shard(len(feat))]), "tokenizer fingerprints")
        if cfg.collisions == "suffix":
            suffix, suffix_size = suffix_codes(raw)
            codes = np.column_stack([raw, suffix])
        elif cfg.collisions == "sinkhorn":
            last_residual = self._last_residual(model, x, torch.from_numpy(raw).to(self.device))
            codes = raw.copy()
            codes[:, -1] = sinkhorn_resolve(
                raw[:, :-1], raw[:, -1], last_residual, model.quantizer.codebooks[-1].embed.detach(), cfg.sinkhorn_epsilon
            )
            suffix_size = 0
        else:
            codes, suffix_size = raw, 0
        return _Fitted(model, codes.astype(np.int64), fingerprints, suffix_size)

    @staticmethod
    @torch.no_grad()
    def _last_residual(model: RQVAE, x: Tensor, codes: Tensor) -> Tensor:
        """What the last codebook quantises, for every row of x."""
        return model.quantizer.residual_inputs(model.latent(x), codes)[-1]

    # ---------------------------------------------------------------- encode / decode
    def _require_fitted(self) -> None:
        if not self._fitted:
            raise MotorecError("tokenizer 'rqvae' is not fitted: call fit() or load a saved tokenizer first.")

    def _raw_codes(self, model: RQVAE, feat: np.ndarray) -> np.ndarray:
        out = [
            model.encode(_tensor(block, self.device)).cpu().numpy()
            for _, block in _chunks(feat)
        ]
        return np.concatenate(out) if out else np.zeros((0, model.levels), dtype=np.int64)

    def encode(self, features: Features) -> np.ndarray:
        self._require_fitted()
        check_features({m: features[m] for m in self._fitted if m in features}, self._input_dims())
        return np.concatenate([self._encode_one(f, features[m]) for m, f in self._fitted.items()], axis=1)

    def _encode_one(self, fitted: _Fitted, feat: np.ndarray) -> np.ndarray:
        model = fitted.model
        raw = self._raw_codes(model, feat)
        corpus_row = fitted.match(row_fingerprints(feat))
        known = corpus_row >= 0
        width = fitted.corpus_codes.shape[1]
        codes = np.zeros((raw.shape[0], width), dtype=np.int64)
        codes[known] = fitted.corpus_codes[corpus_row[known]]
        new = np.flatnonzero(~known)
        if new.size == 0:
            return codes
        mode = self.config.collisions
        if mode == "suffix":
            codes[new, :-1] = raw[new]
            codes[new, -1] = new_item_suffix(fitted.corpus_codes[:, :-1], raw[new], fitted.suffix_size)
        elif mode == "sinkhorn":
            codes[new] = raw[new]
            x_new = _tensor(feat[new], self.device)
            residual = self._last_residual(model, x_new, torch.from_numpy(raw[new]).to(self.device))
            order = pairwise_sqdist(residual, model.quantizer.codebooks[-1].embed).argsort(dim=1).cpu().numpy()
            codes[new, -1] = free_last_codes(fitted.corpus_codes, raw[new], order)
        else:
            codes[new] = raw[new]
        return codes

    def decode(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        self._require_fitted()
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[1] != len(self.slots):
            raise MotorecError(f"decode: codes must be (n_items, {len(self.slots)}), got shape {codes.shape}.")
        out, col = {}, 0
        for name, fitted in self._fitted.items():
            model = fitted.model
            block = codes[:, col : col + model.levels]
            if (block < 0).any() or (block >= model.codebook_size).any():
                raise MotorecError(f"decode: modality '{name}' codes must lie in [0, {model.codebook_size}).")
            with torch.no_grad():
                parts = [
                    model.decode(torch.from_numpy(block[s : s + ENCODE_CHUNK]).to(self.device)).cpu().numpy()
                    for s in range(0, len(block), ENCODE_CHUNK)
                ]
            out[name] = np.concatenate(parts) if parts else np.zeros((0, model.input_mean.numel()), np.float32)
            col += fitted.corpus_codes.shape[1]
        return out

    # ---------------------------------------------------------------- description
    @property
    def slots(self) -> list[TokenSlot]:
        slots = []
        for name, fitted in self._fitted.items():
            slots += [TokenSlot(name, k, fitted.model.codebook_size) for k in range(fitted.model.levels)]
            if self.config.collisions == "suffix":
                slots.append(TokenSlot(name, fitted.model.levels, fitted.suffix_size, kind="suffix"))
        return slots

    def codebooks(self) -> dict[str, np.ndarray]:
        return {
            f"{name}.level{k}": book.embed.detach().cpu().numpy()
            for name, fitted in self._fitted.items()
            for k, book in enumerate(fitted.model.quantizer.codebooks)
        }

    def _input_dims(self) -> dict[str, int]:
        return {name: int(f.model.input_mean.numel()) for name, f in self._fitted.items()}

    def diagnostics(self, features: Features) -> dict[str, Any]:
        """Per modality: per-level utilisation / perplexity / code sparsity, collision rate before
        and after resolution, reconstruction MSE (raw and relative), the corpus sparsity KL.

        Code sparsity = mean top-code soft-assignment mass (see `codebook.code_sparsity`).
        """
        codes = self.encode(features)
        report: dict[str, Any] = {"tokenizer": self.name, "n_items": int(codes.shape[0]), "modalities": {}}
        col = 0
        for name, fitted in self._fitted.items():
            model, width, k = fitted.model, fitted.corpus_codes.shape[1], fitted.model.codebook_size
            block = codes[:, col : col + width]
            col += width
            level_codes = block[:, : model.levels]
            recon = ReconstructionError()
            sparsity = np.zeros(model.levels)
            usage = torch.zeros(model.levels, k)
            raw_parts = []
            for start, chunk in _chunks(features[name]):
                x = _tensor(chunk, self.device)
                with torch.no_grad():
                    z = model.latent(x)
                    raw_parts.append(model.quantizer.encode(z).cpu().numpy())
                    c = torch.from_numpy(level_codes[start : start + len(chunk)]).to(self.device)
                    recon.update(chunk, model.decode(c).cpu().numpy())
                    for lvl, r in enumerate(model.quantizer.residual_inputs(z, c)):
                        d = pairwise_sqdist(r, model.quantizer.codebooks[lvl].embed)
                        sparsity[lvl] += code_sparsity(d, model.quantizer.temperature) * len(chunk)
                        usage[lvl] += soft_assign(d, model.quantizer.temperature).sum(0).cpu()
            n = max(1, len(block))
            report["modalities"][name] = {
                "levels": model.levels,
                "codebook_size": k,
                "utilisation": [utilisation(level_codes[:, lvl], k) for lvl in range(model.levels)],
                "perplexity": [perplexity(level_codes[:, lvl], k) for lvl in range(model.levels)],
                "code_sparsity": (sparsity / n).tolist(),
                "sparsity_kl": float(model.sparsity_loss(usage / n)),
                "collision_rate_raw": collision_rate(np.concatenate(raw_parts)) if raw_parts else 0.0,
                "collision_rate": collision_rate(block),
                "collision_mode": self.config.collisions,
                "suffix_size": fitted.suffix_size,
                "reconstruction": recon.result(),
            }
        report["collision_rate_joint"] = collision_rate(codes)
        return report

    # ---------------------------------------------------------------- persistence
    def meta(self) -> dict[str, Any]:
        return {
            **super().meta(),
            "modalities": {
                name: {"input_dim": int(f.model.input_mean.numel()), "suffix_size": f.suffix_size}
                for name, f in self._fitted.items()
            },
        }

    def state_tensors(self) -> dict[str, torch.Tensor]:
        self._require_fitted()
        tensors: dict[str, torch.Tensor] = {}
        for name, f in self._fitted.items():
            tensors.update({f"{name}.model.{k}": v for k, v in f.model.state_dict().items()})
            tensors[f"{name}.corpus_codes"] = torch.from_numpy(f.corpus_codes)
            tensors[f"{name}.corpus_fingerprints"] = torch.from_numpy(f.corpus_fingerprints)
        return tensors

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self._fitted = {}
        for name, info in meta.get("modalities", {}).items():
            prefix = f"{name}.model."
            model = RQVAE(int(info["input_dim"]), **self.config.model_kwargs())
            try:
                model.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
                codes = tensors[f"{name}.corpus_codes"].numpy().astype(np.int64)
                fingerprints = tensors[f"{name}.corpus_fingerprints"].numpy().astype(np.int64)
            except (KeyError, RuntimeError) as exc:
                raise MotorecError(f"saved rqvae tokenizer: tensors for modality '{name}' are missing or malformed ({exc}).") from exc
            self._fitted[name] = _Fitted(model.to(self.device).eval(), codes, fingerprints, int(info["suffix_size"]))
