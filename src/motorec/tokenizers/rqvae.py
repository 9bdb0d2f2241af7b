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

import logging
import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from motorec.config import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from motorec.distributed import DistContext, current, data_parallel
from motorec.errors import MotorecError
from motorec.progress import progress
from motorec.tokenizers.base import (
    ROW_CHUNK,
    Features,
    Tokenizer,
    TokenizerConfig,
    TokenSlot,
    check_features,
    register_tokenizer,
    row_chunks,
)
from motorec.tokenizers.codebook import (
    ReconstructionError,
    ResidualQuantizer,
    bernoulli_kl,
    code_sparsity,
    collision_rate,
    pairwise_sqdist,
    soft_assign,
    usage,
)
from motorec.tokenizers.collisions import CollisionConfig, LastLevel, make_resolver
from motorec.tokenizers.corpus import CorpusCodes, row_fingerprints

log = logging.getLogger(__name__)

ENCODE_CHUNK = ROW_CHUNK  # rows pushed through the encoder at once when encoding a corpus


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(pairwise(sizes)):
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

    input_mean: Tensor  # (d_in,) standardisation of the inputs (fit_input_stats)
    input_scale: Tensor  # () one scale for all input dimensions

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
        return torch.cat(
            [self.encoder(self.normalise(x[s : s + ENCODE_CHUNK])) for s in range(0, len(x), ENCODE_CHUNK)]
        )

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


class RQVAEConfig(CollisionConfig, TokenizerConfig):
    """Every knob of the "rqvae" tokenizer (`--set key=value`); `model_kwargs` builds the module."""

    codebook_size: Annotated[int, Field(ge=2)] = 512
    levels: PositiveInt = 3
    latent_dim: PositiveInt = 64
    hidden: list[PositiveInt] = Field(default_factory=lambda: [512, 256])
    beta: NonNegativeFloat = 0.25
    gamma: NonNegativeFloat = 0.05
    sparsity_target: Annotated[float, Field(gt=0, lt=1)] | None = (
        None  # rho of the Bernoulli prior; None -> 1 / codebook_size
    )
    temperature: PositiveFloat = 0.05  # soft assignment for L_sparse, relative to the mean distance
    rotation_trick: bool = False
    epochs: NonNegativeInt = 50
    batch_size: PositiveInt = 256
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    warmup_epochs: NonNegativeInt = 20  # autoencoder-only epochs before the k-means codebook init
    kmeans_iters: PositiveInt = 25
    restart_every: NonNegativeInt = 0  # optimiser steps between dead-code restarts; 0 = once per epoch

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
    corpus: CorpusCodes


@register_tokenizer("rqvae")
class RQVAETokenizer(Tokenizer):
    """One sparse-regularised RQ-VAE per modality; codes [mod1 levels, mod1 suffix?, mod2 ...].

    Collisions (items of one modality sharing all L codes) are resolved over the fitted corpus by
    the `collisions` mode (`tokenizers.collisions`: suffix, sinkhorn or none). Fitted items are
    recognised by a hash of their feature row, so encoding the corpus again reproduces the fitted
    table exactly (on any device).
    """

    Config = RQVAEConfig
    config: RQVAEConfig

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._fitted: dict[str, _Fitted] = {}
        self.history: list[dict[str, Any]] = []  # per-epoch loss parts of the last fit

    # ---------------------------------------------------------------- fit
    def fit(self, features: Features, weights: np.ndarray | None = None, seed: int = 0) -> RQVAETokenizer:
        n = check_features(features)
        w = self.item_weights(weights, n)
        self._fitted = {}
        self.history = []
        with self.seeded(seed):
            for i, (name, feat) in enumerate(features.items()):
                self._fitted[name] = self._fit_one(name, feat, w, seed + 1000 * i)
        return self

    def _fit_one(self, name: str, feat: np.ndarray, weights: np.ndarray | None, seed: int) -> _Fitted:
        """Under torchrun (`distributed.current()`), every rank draws the same epoch order and
        steps on its share of each batch with DDP-averaged gradients; the k-means corpus, the
        final codes and fingerprints are computed on item shards and gathered; dead-code restarts
        use usage summed over ranks and rank 0's residuals, so every rank keeps the same model."""
        cfg = self.config
        ctx = current()
        x = self.tensor(feat)
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

        def batches():
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
                    summed = ctx.all_reduce_sum(
                        torch.stack([totals[k] for k in sorted(totals)]).double(), "tokenizer loss"
                    )
                    totals = dict(zip(sorted(totals), summed))
                self.history.append(
                    {
                        "modality": name,
                        "epoch": epoch,
                        "restarted": restarted,
                        **{k: float(v) for k, v in totals.items()},
                    }
                )
                log.info("rqvae %s %s", name, self.history[-1])
                task.advance(status=f"loss {self.history[-1].get('loss', float('nan')):.4f}")
        model.eval()
        raw = _sharded_rows(model.encode, x, ctx).cpu().numpy()
        fingerprints = ctx.gather_rows(row_fingerprints(feat[ctx.shard(len(feat))]), "tokenizer fingerprints")
        corpus = CorpusCodes.fit(raw, lambda: self._last_level(model, x, raw), fingerprints, make_resolver(cfg))
        return _Fitted(model, corpus)

    def _last_level(self, model: RQVAE, x: Tensor, raw: np.ndarray) -> LastLevel:
        """What the last codebook quantises for every row of x (with codes `raw`)."""
        with torch.no_grad():
            residual = model.quantizer.residual_inputs(model.latent(x), torch.from_numpy(raw).to(self.device))[-1]
        return LastLevel(residual, model.quantizer.book_list[-1])

    # ---------------------------------------------------------------- encode / decode
    def encode(self, features: Features) -> np.ndarray:
        self.require_fitted()
        check_features({m: features[m] for m in self._fitted if m in features}, self._input_dims())
        return np.concatenate([self._encode_one(f, features[m]) for m, f in self._fitted.items()], axis=1)

    def _encode_one(self, fitted: _Fitted, feat: np.ndarray) -> np.ndarray:
        model = fitted.model

        def raw_codes(rows: np.ndarray) -> tuple[np.ndarray, Any]:
            parts = [
                model.encode(self.tensor(feat[rows[s : s + ENCODE_CHUNK]])).cpu().numpy()
                for s in range(0, len(rows), ENCODE_CHUNK)
            ]
            raw = np.concatenate(parts) if parts else np.zeros((0, model.levels), dtype=np.int64)
            return raw, lambda: self._last_level(model, self.tensor(feat[rows]), raw)

        return fitted.corpus.encode(row_fingerprints(feat), raw_codes)

    def decode(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        self.require_fitted()
        codes = self.check_codes(codes)
        out, col = {}, 0
        for name, fitted in self._fitted.items():
            model = fitted.model
            block = codes[:, col : col + model.levels]
            if (block < 0).any() or (block >= model.codebook_size).any():
                raise MotorecError(f"decode: modality '{name}' codes must lie in [0, {model.codebook_size}).")
            with torch.no_grad():
                parts = [model.decode(torch.from_numpy(b).to(self.device)).cpu().numpy() for _, b in row_chunks(block)]
            out[name] = np.concatenate(parts) if parts else np.zeros((0, model.input_mean.numel()), np.float32)
            col += fitted.corpus.width
        return out

    # ---------------------------------------------------------------- description
    @property
    def slots(self) -> list[TokenSlot]:
        slots = []
        for name, fitted in self._fitted.items():
            levels = fitted.model.levels
            slots += [TokenSlot(name, k, fitted.model.codebook_size) for k in range(levels)]
            slots += fitted.corpus.resolver.slots(name, levels)
        return slots

    def codebooks(self) -> dict[str, np.ndarray]:
        return {
            f"{name}.level{k}": book.embed.detach().cpu().numpy()
            for name, fitted in self._fitted.items()
            for k, book in enumerate(fitted.model.quantizer.book_list)
        }

    def _input_dims(self) -> dict[str, int]:
        return {name: int(f.model.input_mean.numel()) for name, f in self._fitted.items()}

    def diagnostics(self, features: Features) -> dict[str, Any]:
        """Per modality: per-level utilisation / perplexity / code sparsity, collision rate before
        and after resolution, reconstruction MSE (raw and relative), the corpus sparsity KL.

        Code sparsity = mean top-code soft-assignment mass (see `codebook.code_sparsity`).
        """
        codes = self.encode(features)
        report = self.report(codes)
        col = 0
        for name, fitted in self._fitted.items():
            model, width, k = fitted.model, fitted.corpus.width, fitted.model.codebook_size
            block = codes[:, col : col + width]
            col += width
            level_codes = block[:, : model.levels]
            recon = ReconstructionError()
            sparsity = np.zeros(model.levels)
            soft_usage = torch.zeros(model.levels, k)
            raw_parts = []
            for start, chunk in row_chunks(features[name]):
                x = self.tensor(chunk)
                with torch.no_grad():
                    z = model.latent(x)
                    raw_parts.append(model.quantizer.encode(z).cpu().numpy())
                    c = torch.from_numpy(level_codes[start : start + len(chunk)]).to(self.device)
                    recon.update(chunk, model.decode(c).cpu().numpy())
                    for lvl, r in enumerate(model.quantizer.residual_inputs(z, c)):
                        d = pairwise_sqdist(r, model.quantizer.book_list[lvl].embed)
                        sparsity[lvl] += code_sparsity(d, model.quantizer.temperature) * len(chunk)
                        soft_usage[lvl] += soft_assign(d, model.quantizer.temperature).sum(0).cpu()
            n = max(1, len(block))
            report["modalities"][name] = {
                "levels": model.levels,
                "codebook_size": k,
                **usage(level_codes, [k] * model.levels),
                "code_sparsity": (sparsity / n).tolist(),
                "sparsity_kl": float(model.sparsity_loss(soft_usage / n)),
                "collision_rate_raw": collision_rate(np.concatenate(raw_parts)) if raw_parts else 0.0,
                "collision_rate": collision_rate(block),
                "collision_mode": fitted.corpus.resolver.mode,
                "suffix_size": fitted.corpus.resolver.size,
                "reconstruction": recon.result(),
            }
        report["collision_rate_joint"] = collision_rate(codes)
        return report

    # ---------------------------------------------------------------- persistence
    def meta(self) -> dict[str, Any]:
        return {
            **super().meta(),
            "modalities": {
                name: {"input_dim": int(f.model.input_mean.numel()), **f.corpus.meta()}
                for name, f in self._fitted.items()
            },
        }

    def state_tensors(self) -> dict[str, torch.Tensor]:
        self.require_fitted()
        tensors: dict[str, torch.Tensor] = {}
        for name, f in self._fitted.items():
            tensors.update({f"{name}.model.{k}": v for k, v in f.model.state_dict().items()})
            tensors.update(f.corpus.tensors(f"{name}."))
        return tensors

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self._fitted = {}
        for name, info in meta.get("modalities", {}).items():
            prefix = f"{name}.model."
            model = RQVAE(int(info["input_dim"]), **self.config.model_kwargs())
            what = f"saved rqvae tokenizer, modality '{name}'"
            try:
                model.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
            except RuntimeError as exc:
                raise MotorecError(f"{what}: model tensors are missing or malformed ({exc}).") from exc
            corpus = CorpusCodes.load(tensors, info, make_resolver(self.config), f"{name}.", what)
            self._fitted[name] = _Fitted(model.to(self.device).eval(), corpus)
