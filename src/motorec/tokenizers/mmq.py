"""MMQ: Multimodal Mixture-of-Quantization tokenizer (Xu et al. 2025, arXiv 2508.15281).

Shared-specific multi-expert tokenizer. Every modality is standardised; *shared* experts read the
concatenation of all modalities, *specific* experts read one modality each. Each expert's output
is L2-normalised and quantised by its own cosine-similarity codebook, so an item's semantic ID has
one token per expert (2 shared + 2 text + 2 image = 6 on ml100k-mm; 2 shared + 2 text = 4 on
text-only data). The quantised experts are fused as

    z = sum_s q_s + sum_m sum_j g_{m,j} q_{m,j},   g_m = softmax(W_m x_m)  (one gate per modality)

and decoded back to the concatenated features (L_recon) and to every modality (L_aux). An
orthogonality regulariser ||V V^T - I||_F^2 over the experts' L2-normalised output-layer weights
(one row per expert) keeps experts from collapsing onto the same subspace. Per item

    L = w_rec L_recon + w_aux sum_m L_aux,m + w_orth L_ortho + beta ||u - sg(c)||^2 + ||sg(u) - c||^2

(paper: w_rec = 12, w_aux = 10, w_orth = 0.005). `MMQTokenizer.finetune` is the paper's second
stage: a soft index (softmax of cosine / tau over each codebook, straight-through to the hard code)
lets a behavioural next-item loss move encoders and codebooks, while 0.5 L_recon + 0.5 L_aux keeps
the content information.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import AfterValidator, Field, ValidationInfo, field_validator
from torch import Tensor, nn

from motorec.config import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from motorec.errors import MotorecError
from motorec.progress import progress
from motorec.tokenizers.base import Features, Tokenizer, TokenizerConfig, TokenSlot, check_features, register_tokenizer
from motorec.tokenizers.codebook import (
    Codebook,
    CodebookOutput,
    ReconstructionError,
    collision_rate,
    kmeans,
    nearest_code,
    usage,
)
from motorec.tokenizers.collisions import CollisionConfig, LastLevel, make_resolver
from motorec.tokenizers.corpus import CorpusCodes, item_fingerprints
from motorec.tokenizers.rqvae import mlp

log = logging.getLogger(__name__)


class CosineCodebook(Codebook):
    """A `Codebook` compared on the unit sphere: inputs and codes are L2-normalised.

    Squared distance between unit vectors is 2 - 2 cos, so nearest code = most cosine-similar
    code and the base class' usage tracking, dead-code restart and k-means fit apply unchanged.
    """

    def unit_embed(self) -> Tensor:
        return F.normalize(self.embed, dim=-1)

    def forward(self, r: Tensor) -> CodebookOutput:
        u = F.normalize(r, dim=-1)
        e = self.unit_embed()
        d = (2.0 - 2.0 * (u @ e.t())).clamp_min(0.0)
        codes = d.argmin(dim=-1)
        if self.training:
            self._track(u.detach(), codes)
        return CodebookOutput(e[codes], codes, d)

    @torch.no_grad()
    def assign(self, r: Tensor) -> tuple[Tensor, Tensor]:
        return nearest_code(F.normalize(r, dim=-1), self.unit_embed())

    def vectors(self) -> Tensor:
        return self.unit_embed()

    @torch.no_grad()
    def preference(self, r: Tensor) -> Tensor:
        """(n, K) codes, most cosine-similar first (r's norm does not change the order)."""
        return (r @ self.unit_embed().t()).argsort(dim=1, descending=True)


@dataclass
class MMQOutput:
    """codes (B, E) one per expert; z (B, D) fused latent; shared (B, D) the shared experts' part
    of z; recon/aux/orth/commit scalars; loss_per_item (B,) the weighted training loss of each item
    (orth shared equally); index: with a soft index, each expert's (B, K) code weights, one-hot
    in value with the soft index's gradient (a downstream embedding table reads them), else empty."""

    codes: Tensor
    z: Tensor
    shared: Tensor
    recon: Tensor
    aux: Tensor
    orth: Tensor
    commit: Tensor
    loss_per_item: Tensor
    index: list[Tensor]


class MMQ(nn.Module):
    """The shared-specific multi-expert quantiser (one nn.Module over all modalities)."""

    gate_mean: Tensor  # (M, n_specific) mean gates over the fitted corpus

    def __init__(
        self,
        input_dims: dict[str, int],
        *,
        n_shared: int = 2,
        n_specific: int = 2,
        latent_dim: int = 64,
        hidden: Sequence[int] = (256,),
        codebook_size: int = 256,
        shared_codebook_size: int = 0,
        beta: float = 0.25,
        w_rec: float = 12.0,
        w_aux: float = 10.0,
        w_orth: float = 0.005,
    ) -> None:
        super().__init__()
        self.modalities = list(input_dims)
        concat = sum(input_dims.values())
        hidden = [int(h) for h in hidden]
        self.shared = nn.ModuleList(mlp([concat, *hidden, latent_dim]) for _ in range(n_shared))
        self.specific = nn.ModuleDict(
            {m: nn.ModuleList(mlp([d, *hidden, latent_dim]) for _ in range(n_specific)) for m, d in input_dims.items()}
        )
        self.gates = nn.ModuleDict({m: nn.Linear(d, n_specific) for m, d in input_dims.items()})
        sizes = [shared_codebook_size or codebook_size] * n_shared + [codebook_size] * (n_specific * len(input_dims))
        self.books = nn.ModuleList(CosineCodebook(k, latent_dim) for k in sizes)
        self.decoder = mlp([latent_dim, *reversed(hidden), concat])
        self.aux_decoders = nn.ModuleDict({m: mlp([latent_dim, *reversed(hidden), d]) for m, d in input_dims.items()})
        for m, d in input_dims.items():
            self.register_buffer(f"mean_{m}", torch.zeros(d))
            self.register_buffer(f"scale_{m}", torch.ones(()))
        # mean gate over the fitted corpus: `decode` has codes only, not the inputs gates are computed from
        self.register_buffer("gate_mean", torch.full((len(input_dims), n_specific), 1.0 / n_specific))
        self.n_shared, self.n_specific = n_shared, n_specific
        self.beta, self.w_rec, self.w_aux, self.w_orth = beta, w_rec, w_aux, w_orth

    @property
    def n_experts(self) -> int:
        return len(self.books)

    @property
    def book_list(self) -> list[CosineCodebook]:
        """Every expert's codebook in code-column order (a typed view of the `books` ModuleList)."""
        return cast(list[CosineCodebook], list(self.books))

    def experts_of(self, modality: str) -> list[nn.Sequential]:
        """The modality's specific experts (MLPs)."""
        return cast(list[nn.Sequential], list(cast(nn.ModuleList, self.specific[modality])))

    @property
    def book_sizes(self) -> list[int]:
        """Codes per expert, in code-column order (shared experts may be coarser: coarse-to-fine IDs)."""
        return [book.size for book in self.book_list]

    def expert_names(self) -> list[tuple[str, int]]:
        """(modality or 'shared', index within the group) of every expert, in code-column order."""
        return [("shared", j) for j in range(self.n_shared)] + [
            (m, j) for m in self.modalities for j in range(self.n_specific)
        ]

    # ------------------------------------------------------------------ inputs
    def standardise(self, x: dict[str, Tensor]) -> dict[str, Tensor]:
        return {m: (x[m] - getattr(self, f"mean_{m}")) / getattr(self, f"scale_{m}") for m in self.modalities}

    @torch.no_grad()
    def set_standardisation(self, x: dict[str, Tensor]) -> None:
        """Per-dimension mean and one global scale per modality, so no modality dominates the concat."""
        for m in self.modalities:
            getattr(self, f"mean_{m}").copy_(x[m].mean(0))
            getattr(self, f"scale_{m}").copy_(x[m].var(0, unbiased=False).mean().sqrt().clamp_min(1e-8))

    def expert_outputs(self, xs: dict[str, Tensor]) -> tuple[list[Tensor], Tensor]:
        """Unit-norm output of every expert (code-column order) and the gates (B, M, n_specific)."""
        cat = torch.cat([xs[m] for m in self.modalities], dim=-1)
        outs = [F.normalize(e(cat), dim=-1) for e in self.shared]
        for m in self.modalities:
            outs += [F.normalize(e(xs[m]), dim=-1) for e in self.experts_of(m)]
        gates = torch.stack([F.softmax(self.gates[m](xs[m]), dim=-1) for m in self.modalities], dim=1)
        return outs, gates

    def fuse(self, q: list[Tensor], gates: Tensor) -> Tensor:
        """z = sum of shared codes + gate-weighted specific codes of every modality."""
        z: Any = sum(q[: self.n_shared])  # a Tensor once a code is added (every model has one)
        for i, _ in enumerate(self.modalities):
            start = self.n_shared + i * self.n_specific
            for j in range(self.n_specific):
                z = z + gates[:, i, j : j + 1] * q[start + j]
        return z

    def orthogonality(self) -> Tensor:
        """||V V^T - I||_F^2, V = experts' L2-normalised (flattened) output-layer weights."""
        experts = cast(list[nn.Sequential], list(self.shared)) + [
            e for m in self.modalities for e in self.experts_of(m)
        ]
        v = F.normalize(torch.stack([cast(nn.Linear, e[-1]).weight.flatten() for e in experts]), dim=-1)
        gram = v @ v.t()
        return (gram - torch.eye(len(experts), device=gram.device)).pow(2).sum()

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        x: dict[str, Tensor],
        soft_tau: float | None = None,
        w_rec: float | None = None,
        w_aux: float | None = None,
    ) -> MMQOutput:
        """Raw features in; hard codes out. Gradient reaches encoders by straight-through, or, with
        `soft_tau`, through the soft index softmax(cos / tau) @ codes (forward value = hard code)."""
        xs = self.standardise(x)
        outs, gates = self.expert_outputs(xs)
        q, codes, index = [], [], []
        commit = outs[0].new_zeros(outs[0].shape[0])
        for u, book in zip(outs, self.book_list):
            hard = book(u)
            commit = (
                commit
                + self.beta * (u - hard.quantized.detach()).pow(2).sum(-1)
                + (u.detach() - hard.quantized).pow(2).sum(-1)
            )
            if soft_tau is None:
                q.append(u + (hard.quantized - u).detach())
            else:
                weights = F.softmax((1.0 - hard.sqdist / 2.0) / soft_tau, dim=-1)
                one_hot = F.one_hot(hard.codes, weights.shape[-1]).to(weights.dtype)
                index.append(weights + (one_hot - weights).detach())
                soft = weights @ book.unit_embed()
                q.append(soft + (hard.quantized - soft).detach())
            codes.append(hard.codes)
        z = self.fuse(q, gates)
        cat = torch.cat([xs[m] for m in self.modalities], dim=-1)
        recon = (self.decoder(z) - cat).pow(2).mean(-1)
        aux = sum((self.aux_decoders[m](z) - xs[m]).pow(2).mean(-1) for m in self.modalities)
        orth = self.orthogonality()
        w_rec = self.w_rec if w_rec is None else w_rec
        w_aux = self.w_aux if w_aux is None else w_aux
        per_item = w_rec * recon + w_aux * aux + self.w_orth * orth + commit
        shared = sum(q[: self.n_shared], torch.zeros_like(z))
        return MMQOutput(torch.stack(codes, 1), z, shared, recon, aux, orth, commit, per_item, index)

    @torch.no_grad()
    def encode(self, x: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Hard codes (n, E) and gates (n, M, n_specific), no gradient."""
        outs, gates = self.expert_outputs(self.standardise(x))
        return self.assign_codes(outs), gates

    @torch.no_grad()
    def assign_codes(self, outs: list[Tensor]) -> Tensor:
        """(n, E) nearest code of every expert's output."""
        return torch.stack([book.assign(u)[0] for u, book in zip(outs, self.book_list)], 1)

    def decode(self, codes: Tensor, gates: Tensor | None = None) -> dict[str, Tensor]:
        """Raw-scale features per modality from (n, E) codes (corpus-mean gates unless given)."""
        q = [book.unit_embed()[codes[:, e]] for e, book in enumerate(self.book_list)]
        if gates is None:
            gates = self.gate_mean.unsqueeze(0).expand(codes.shape[0], -1, -1)
        z = self.fuse(q, gates)
        return {
            m: self.aux_decoders[m](z) * getattr(self, f"scale_{m}") + getattr(self, f"mean_{m}")
            for m in self.modalities
        }

    @torch.no_grad()
    def init_codebooks(self, x: dict[str, Tensor], seed: int = 0, n_iter: int = 25) -> None:
        """Standardise from the corpus, then k-means every expert's codebook on its unit outputs."""
        self.set_standardisation(x)
        outs, _ = self.expert_outputs(self.standardise(x))
        for e, (u, book) in enumerate(zip(outs, self.book_list)):
            book.embed.copy_(kmeans(u, book.size, n_iter=n_iter, seed=seed + e).centroids)
            book.reset_usage()

    def restart_dead_codes(self) -> int:
        return sum(book.restart_dead() for book in self.book_list)


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------

# Stage-2 constants (no packaged config or documented experiment varies them; they were ft_* keys):
FT_W_REC = FT_W_AUX = 0.5  # weights of L_recon and L_aux that keep the content while behaviour moves the IDs
BEHAVIOUR_HISTORY = 5  # most recent items averaged into the user vector of the in-batch next-item loss
BEHAVIOUR_TEMPERATURE = 0.1  # of that loss' softmax over the batch's items


def _zero_or_at_least_two(size: int) -> int:
    if size == 1:
        raise ValueError("must be 0 (= codebook_size) or >= 2")
    return size


class MMQConfig(CollisionConfig, TokenizerConfig):
    """Every knob of the "mmq" tokenizer (`--set key=value`); defaults follow the paper where it says.

    `collisions`: suffix | sinkhorn (re-assign the last expert's code, as rqvae) | none.
    """

    n_shared: NonNegativeInt = 2
    n_specific: NonNegativeInt = 2  # per modality
    codebook_size: Annotated[int, Field(ge=2)] = 256
    # codes of the shared experts (decoded first); 0 = codebook_size
    shared_codebook_size: Annotated[NonNegativeInt, AfterValidator(_zero_or_at_least_two)] = 0
    latent_dim: PositiveInt = 64
    hidden: list[PositiveInt] = Field(default_factory=lambda: [256])
    beta: NonNegativeFloat = 0.25
    w_rec: NonNegativeFloat = 12.0
    w_aux: NonNegativeFloat = 10.0
    w_orth: NonNegativeFloat = 0.005
    epochs: NonNegativeInt = 50
    batch_size: PositiveInt = 256
    lr: PositiveFloat = 1e-3
    kmeans_iters: PositiveInt = 25
    restart_dead: bool = True  # re-seed unused codes after every fit epoch (False: the ablation without)
    # behaviour-aware fine-tuning (stage 2)
    ft_steps: NonNegativeInt = 150
    ft_lr: NonNegativeFloat = 5e-4  # 0 freezes the tokenizer (the control of the generator objective)
    ft_tau: PositiveFloat = 0.1  # soft-index temperature over cosine similarity
    ft_batch_size: PositiveInt = 128
    ft_restart_every: NonNegativeInt = 10  # steps between corpus-wide dead-code restarts (0 = never)
    # what the behavioural loss reads: fused (every expert) | shared (the shared experts only)
    ft_scope: Literal["fused", "shared"] = "fused"
    # next_item: the in-batch next-item loss of `finetune`; generator: the generative task's own loss
    # through the soft index (run by the generative task, motorec exp generative --ids mmq-ft)
    ft_objective: Literal["next_item", "generator"] = "next_item"

    @field_validator("n_specific")
    @classmethod
    def _some_expert(cls, n_specific: int, info: ValidationInfo) -> int:
        if n_specific + info.data.get("n_shared", 1) < 1:
            raise ValueError("n_shared + n_specific must be >= 1 (at least one expert)")
        return n_specific

    @field_validator("ft_scope")
    @classmethod
    def _shared_scope_needs_shared_experts(cls, scope: str, info: ValidationInfo) -> str:
        if scope == "shared" and info.data.get("n_shared", 1) < 1:
            raise ValueError("ft_scope=shared needs n_shared >= 1")
        return scope

    def model_kwargs(self) -> dict[str, Any]:
        keys = (
            "n_shared",
            "n_specific",
            "latent_dim",
            "hidden",
            "codebook_size",
            "shared_codebook_size",
            "beta",
            "w_rec",
            "w_aux",
            "w_orth",
        )
        return {k: getattr(self, k) for k in keys}


@register_tokenizer("mmq")
class MMQTokenizer(Tokenizer):
    """One MMQ over all modalities; codes [shared experts, modality experts..., suffix?].

    Collisions are resolved over the fitted corpus by the `collisions` mode (`tokenizers.collisions`);
    a fitted item is recognised by a hash of its feature rows, so re-encoding the corpus reproduces
    the fitted table exactly.
    """

    Config = MMQConfig
    config: MMQConfig

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.model: MMQ | None = None
        self.corpus = CorpusCodes(np.zeros((0, 0)), np.zeros(0), make_resolver(self.config))
        self.history: list[dict[str, Any]] = []

    @property
    def suffix_size(self) -> int:
        return self.corpus.resolver.size

    # ---------------------------------------------------------------- helpers
    def tensors(self, features: Features, rows: np.ndarray | slice = slice(None)) -> dict[str, Tensor]:
        """Raw feature rows of every modality the model reads, on the tokenizer's device."""
        return {m: self.tensor(features[m][rows]) for m in self._require_fitted().modalities}

    def _require_fitted(self) -> MMQ:
        if self.model is None:
            self.require_fitted()
        assert self.model is not None
        return self.model

    def _input_dims(self) -> dict[str, int]:
        model = self._require_fitted()
        return {m: int(getattr(model, f"mean_{m}").numel()) for m in model.modalities}

    # ---------------------------------------------------------------- fit
    def fit(self, features: Features, weights: np.ndarray | None = None, seed: int = 0) -> MMQTokenizer:
        n = check_features(features)
        cfg = self.config
        item_w = self.item_weights(weights, n)
        w = None if item_w is None else torch.from_numpy(item_w).to(self.device)
        dims = {m: int(f.shape[1]) for m, f in features.items()}
        self.history = []
        with self.seeded(seed):
            self.model = MMQ(dims, **cfg.model_kwargs()).to(self.device)
            x = self.tensors(features)
            self.model.init_codebooks(x, seed=seed, n_iter=cfg.kmeans_iters)
            opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
            g = torch.Generator().manual_seed(seed)
            self.model.train()
            with progress() as bar:
                task = bar.task("mmq", total=cfg.epochs)
                for epoch in range(cfg.epochs):
                    totals = {"loss": 0.0, "recon": 0.0, "aux": 0.0, "orth": 0.0}
                    for idx in torch.randperm(n, generator=g).to(self.device).split(cfg.batch_size):
                        out = self.model({m: v[idx] for m, v in x.items()})
                        loss = out.loss_per_item.mean() if w is None else (w[idx] * out.loss_per_item).mean()
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
                        for key, value in (
                            ("loss", loss),
                            ("recon", out.recon.mean()),
                            ("aux", out.aux.mean()),
                            ("orth", out.orth),
                        ):
                            totals[key] += float(value.detach()) * len(idx) / n
                    restarted = self.model.restart_dead_codes() if cfg.restart_dead else 0
                    self.history.append({"stage": "fit", "epoch": epoch, "restarted": restarted, **totals})
                    log.info("mmq epoch %d %s restarted=%d", epoch, totals, restarted)
                    task.advance(status=f"loss {totals['loss']:.4f}")
        self.freeze_corpus(features)
        return self

    def freeze_corpus(self, features: Features) -> None:
        """Encode the fitted corpus once, resolve collisions, remember the table and gates."""
        model = self._require_fitted().eval()
        raw, gates, last = self._encode_rows(features)
        model.gate_mean.copy_(gates.mean(0))
        self.corpus = CorpusCodes.fit(
            raw.cpu().numpy(), lambda: last, self._fingerprints(features), make_resolver(self.config)
        )

    def _fingerprints(self, features: Features) -> np.ndarray:
        return item_fingerprints(features, self._require_fitted().modalities)

    @torch.no_grad()
    def _encode_rows(
        self, features: Features, rows: np.ndarray | slice = slice(None)
    ) -> tuple[Tensor, Tensor, LastLevel]:
        """Codes (n, E), gates and the last expert's unit output (what sinkhorn re-assigns), one pass."""
        model = self._require_fitted()
        outs, gates = model.expert_outputs(model.standardise(self.tensors(features, rows)))
        return model.assign_codes(outs), gates, LastLevel(outs[-1], model.book_list[-1])

    # ---------------------------------------------------------------- stage 2
    def finetune(self, features: Features, sequences: Sequence[np.ndarray], seed: int = 0) -> MMQTokenizer:
        """Behaviour-aware fine-tuning (MMQ stage 2), then re-encode and re-resolve collisions.

        `sequences`: each user's *training* items in time order (never valid/test). The behavioural
        loss is a next-item softmax over the items of the batch (in-batch negatives: every history
        and target item of `ft_batch_size` sampled pairs): the user vector is the mean fused latent
        of the `BEHAVIOUR_HISTORY` items before a target, items are scored by cosine /
        `BEHAVIOUR_TEMPERATURE`. The fused latents come through the soft index, so the loss moves
        encoders, gates and codebooks; 0.5 L_recon + 0.5 L_aux keeps the content. `ft_scope=shared`
        scores with the shared experts' part of the latent only: behaviour then moves the shared
        experts (the leading ID tokens) while the modality experts keep to content, so co-consumed
        items share a prefix instead of a whole ID. Every
        `ft_restart_every` steps, codes no item of the corpus uses are re-seeded: the behavioural
        loss pulls co-consumed items onto the same codes and would otherwise empty the codebooks.
        """
        model = self._require_fitted()
        cfg = self.config
        if cfg.ft_objective != "next_item":
            raise MotorecError(
                f"finetune: ft_objective '{cfg.ft_objective}' is the generative task's own loss; "
                "it runs in `motorec exp generative --ids mmq-ft`, not here."
            )
        check_features(features, self._input_dims())
        hist, target = _next_item_pairs(sequences, BEHAVIOUR_HISTORY)
        if len(target) == 0:
            raise MotorecError("finetune: no user has two or more training items; nothing to learn from.")
        x = self.tensors(features)
        hist_t = torch.from_numpy(hist).to(self.device)
        target_t = torch.from_numpy(target).to(self.device)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.ft_lr)
        g = torch.Generator().manual_seed(seed)
        model.train()
        with self.seeded(seed):
            for step in range(cfg.ft_steps):
                batch = torch.randint(len(target), (cfg.ft_batch_size,), generator=g).to(self.device)
                h, t = hist_t[batch], target_t[batch]
                items, inverse = torch.unique(torch.cat([h.flatten(), t]).clamp_min(0), return_inverse=True)
                out = self.soft_index({m: v[items] for m, v in x.items()})
                z = F.normalize(out.shared if cfg.ft_scope == "shared" else out.z, dim=-1)
                h_local, t_local = inverse[: h.numel()].view_as(h), inverse[h.numel() :]
                mask = (h >= 0).unsqueeze(-1).float()
                user = F.normalize((z[h_local] * mask).sum(1) / mask.sum(1).clamp_min(1.0), dim=-1)
                behaviour = F.cross_entropy(user @ z.t() / BEHAVIOUR_TEMPERATURE, t_local)
                loss = behaviour + out.loss_per_item.mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                restarted = (
                    self.restart_unused(x) if cfg.ft_restart_every and (step + 1) % cfg.ft_restart_every == 0 else 0
                )
                self.history.append(
                    {
                        "stage": "finetune",
                        "step": step,
                        "behaviour": float(behaviour.detach()),
                        "loss": float(loss.detach()),
                        "restarted": restarted,
                    }
                )
        self.freeze_corpus(features)
        return self

    def soft_index(self, x: dict[str, Tensor]) -> MMQOutput:
        """Stage-2 forward of the items in `x`: soft index (ft_tau) and the content-keeping loss
        weights (FT_W_REC, FT_W_AUX) in `loss_per_item`; a downstream loss is added to it."""
        return self._require_fitted()(x, soft_tau=self.config.ft_tau, w_rec=FT_W_REC, w_aux=FT_W_AUX)

    @torch.no_grad()
    def restart_unused(self, x: dict[str, Tensor]) -> int:
        """Re-seed the codes no corpus item maps to (usage counted over the whole corpus)."""
        model = self._require_fitted().train()  # train mode: forward records usage and the input pool
        for book in model.book_list:
            book.reset_usage()
        n = len(next(iter(x.values())))
        for idx in torch.arange(n, device=self.device).split(self.config.batch_size):
            model({m: v[idx] for m, v in x.items()})
        return model.restart_dead_codes()

    # ---------------------------------------------------------------- encode / decode
    def encode(self, features: Features) -> np.ndarray:
        model = self._require_fitted()
        check_features({m: features[m] for m in model.modalities if m in features}, self._input_dims())

        def raw_codes(rows: np.ndarray) -> tuple[np.ndarray, Any]:
            raw, _, last = self._encode_rows(features, rows)
            return raw.cpu().numpy(), lambda: last

        return self.corpus.encode(self._fingerprints(features), raw_codes)

    def decode(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        model = self._require_fitted()
        codes = self.check_codes(codes)
        expert = codes[:, : model.n_experts]
        sizes = np.array(model.book_sizes)
        if (expert < 0).any() or (expert >= sizes).any():
            raise MotorecError(f"decode: expert codes must lie in [0, codes per expert {sizes.tolist()}).")
        with torch.no_grad():
            out = model.decode(torch.from_numpy(expert).to(self.device))
        return {m: v.cpu().numpy() for m, v in out.items()}

    # ---------------------------------------------------------------- description
    @property
    def slots(self) -> list[TokenSlot]:
        if self.model is None:
            return []
        slots = [TokenSlot(m, j, k) for (m, j), k in zip(self.model.expert_names(), self.model.book_sizes)]
        return slots + self.corpus.resolver.slots("shared", self.model.n_shared)

    def codebooks(self) -> dict[str, np.ndarray]:
        model = self._require_fitted()
        return {
            f"{m}.expert{j}": book.unit_embed().detach().cpu().numpy()
            for (m, j), book in zip(model.expert_names(), model.book_list)
        }

    def diagnostics(self, features: Features) -> dict[str, Any]:
        """The report shape every tokenizer shares, one entry per expert group ("shared" and each
        modality): per-expert utilisation / perplexity, the group's collision rate (of its raw codes:
        collisions are resolved over all experts, not per group), and the reconstruction of what the
        group reads (the concatenation for "shared", with each item's own gates); plus the joint
        collision rate before / after resolution, the orthogonality loss, the mean gates and the mean
        utilisation over all experts."""
        model = self._require_fitted()
        codes = self.encode(features)
        x = self.tensors(features)
        raw, gates = model.encode(x)
        with torch.no_grad():
            xs = model.standardise(x)
            z = model.fuse([book.unit_embed()[raw[:, e]] for e, book in enumerate(model.book_list)], gates)
            concat_hat = model.decoder(z).cpu().numpy()
            recon = model.decode(raw, gates)
            orth = float(model.orthogonality())
        raw_np, sizes = raw.cpu().numpy(), model.book_sizes
        groups: dict[str, list[int]] = {}
        for e, (group, _) in enumerate(model.expert_names()):
            groups.setdefault(group, []).append(e)
        report = self.report(codes)
        for group, cols in groups.items():
            err = ReconstructionError()
            if group == "shared":
                err.update(torch.cat([xs[m] for m in model.modalities], -1).cpu().numpy(), concat_hat)
            else:
                err.update(np.asarray(features[group]), recon[group].cpu().numpy())
            report["modalities"][group] = {
                "levels": len(cols),
                "codebook_size": sizes[cols[0]],
                **usage(raw_np[:, cols], [sizes[e] for e in cols]),
                "collision_rate": collision_rate(raw_np[:, cols]),
                "reconstruction": err.result(),
            }
        report.update(
            collision_rate_raw_joint=collision_rate(raw_np),
            collision_rate_joint=collision_rate(codes),
            suffix_size=self.suffix_size,
            orthogonality_loss=orth,
            gate_mean={m: gates[:, i].mean(0).cpu().tolist() for i, m in enumerate(model.modalities)},
            mean_utilisation=float(np.mean(usage(raw_np, sizes)["utilisation"])),
        )
        return report

    # ---------------------------------------------------------------- persistence
    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "input_dims": self._input_dims(), **self.corpus.meta()}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        model = self._require_fitted()
        return {**{f"model.{k}": v for k, v in model.state_dict().items()}, **self.corpus.tensors()}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        try:
            model = MMQ({m: int(d) for m, d in meta["input_dims"].items()}, **self.config.model_kwargs())
            model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
        except (KeyError, RuntimeError) as exc:
            raise MotorecError(f"saved mmq tokenizer: tensors or meta missing or malformed ({exc}).") from exc
        self.corpus = CorpusCodes.load(tensors, meta, make_resolver(self.config), what="saved mmq tokenizer")
        self.model = model.to(self.device).eval()


def _next_item_pairs(sequences: Sequence[np.ndarray], history: int) -> tuple[np.ndarray, np.ndarray]:
    """(history (N, history) right-aligned, -1 padded; target (N,)) for every position t >= 1."""
    hists, targets = [], []
    for seq in sequences:
        seq = np.asarray(seq, dtype=np.int64)
        for t in range(1, len(seq)):
            h = seq[max(0, t - history) : t]
            hists.append(np.r_[np.full(history - len(h), -1, dtype=np.int64), h])
            targets.append(seq[t])
    if not targets:
        return np.zeros((0, history), dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.stack(hists), np.asarray(targets, dtype=np.int64)
