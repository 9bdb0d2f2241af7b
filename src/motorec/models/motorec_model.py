"""MoToRec: sparse-regularised RQ-VAE tokens + a multi-source graph encoder, built for cold items.

Liu, Zhang & Cheung, "MoToRec: ...", AAAI 2026 (arXiv 2602.11062); the ID channel is LightGCN
(He et al., SIGIR 2020); the content channel's user side is a leave-one-out mean of the user's
items (FISM, Kabbur et al., KDD 2013, with content instead of free item factors).

Two channels share the train graph and are scored in one dot product:

- **Content channel** (every item, cold or warm, the same way). Per modality m, an item's content
  vector c_m comes from its RQ-VAE tokens plus a projection of its raw features (`TokenContent`);
  the modality views are fused (`alpha` concat + attention). A user's content vector is the mean
  of the content vectors of the items they interacted with in train, read over the graph; in
  training the positive item is left out of that mean (leave-one-out), so the channel learns to
  predict an item from the user's *other* items, which is exactly what it does for a cold item.
  Score s_c(u, i) = cos(u_c, c_i) / temperature, trained with a softmax over all training items.
  With `content_heads` > 1 the channel is an ensemble: that many maps over the same tokens, each
  trained by its own softmax, and s_c is the mean of their cosines (still one dot product).
- **ID channel** (warm items only): LightGCN over user and item IDs (the item-representation hook).
  The warm score s_w(u, i) = s_c(u, i) + u_id . i_id is trained with its own softmax; the content
  part enters it detached, so the content channel stays a standalone ranker and the ID channel
  learns what content misses. Zero-shot cold items have no ID vector and never use this channel.

Merge (`merge_scores`): per user, warm items are ranked by s_w standardised over the warm items,
cold items by s_c standardised over all items plus `cold_prior` (in per-user standard
deviations). How many slots new items deserve is a property of the catalogue, not something
the train interactions can tell (see docs/motorec.md), so it is one explicit knob.

Loss: CE(content) + CE(warm) + rq_weight * sum_m mean(w_i * L_RQ-VAE,i) + reg_weight * ||ID ego||^2.
Training (`staged`): a content stage selected on valid cold@cold, then an ID stage on the frozen
content selected on valid all (`training_stages`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, SerializationInfo, field_serializer
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from motorec.config import (
    ConfigModel,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    Seed,
    UnitInterval,
)
from motorec.data.graph import FrozenSparse, row_normalize, to_torch_sparse
from motorec.errors import MotorecError
from motorec.models.base import EmbeddingRecommender, TrainingStage, l2_reg, register_model
from motorec.models.context import ModelContext
from motorec.models.item_repr import build_item_repr
from motorec.models.lightgcn import propagate
from motorec.models.rarity import RarityForm, rarity_weights
from motorec.tokenizers.base import TokenSlot, build_tokenizer, load_tokenizer
from motorec.tokenizers.rqvae import RQVAE, RQVAEConfig

TokenInput = Literal["zq", "codes", "both", "hybrid", "continuous"]
USES_ZQ = ("zq", "both", "hybrid")
USES_CODES = ("codes", "both", "hybrid")
USES_RAW = ("hybrid", "continuous")
CONTENT_BLOCK = 1 << 16  # items per block of the training-time content pass (activations kept for one block)


class TokenContent(nn.Module):
    """One modality's item content vectors (n_items, dim), computed from the item's tokens.

    token_input: "zq" = linear map of the sum of the item's code vectors (the RQ-VAE's quantised
    latent z_q; gradients reach the codebooks, which is what couples the tokenizer to ranking);
    "codes" = sum over levels of learned code-embedding tables; "both" = their sum; "hybrid" = both
    plus a projection of the raw features (tokens refine a content projection; the quantisation
    loses detail that the projection keeps); "continuous" = the raw projection only (no tokens:
    the ablation). The raw projection starts as the features' top principal directions, so the
    channel starts from a content-similarity ranker (a random or narrow projection measurably
    loses ranking detail); dropout on the standardised raw features keeps the map from memorising
    the training items. A residual MLP (zero-initialised output) then maps content to the
    collaborative space.

    `heads` maps (`ContentMap`) read the same tokens and features; their outputs sit side by side.
    """

    codes: Tensor  # (n_items, levels) current codes (token inputs)
    mean: Tensor  # raw-feature standardisation (raw inputs)
    scale: Tensor

    def __init__(
        self,
        features: Tensor,
        fit_items: Tensor,
        dim: int,
        hidden: int,
        dropout: float,
        tok: RQVAEConfig,
        token_input: str,
        heads: int = 1,
    ) -> None:
        super().__init__()
        self.features = features  # not a buffer: shared with the context, never checkpointed
        self.token_input = token_input
        self.rqvae: RQVAE | None = None
        if token_input != "continuous":
            self.rqvae = RQVAE(features.shape[1], **tok.model_kwargs())
            self.register_buffer("codes", torch.zeros(features.shape[0], tok.levels, dtype=torch.long))
        principal: Tensor | None = None
        if token_input in USES_RAW:
            self.register_buffer("mean", features.mean(0))
            self.register_buffer("scale", features.var(0, unbiased=False).mean().sqrt().clamp_min(1e-8))
            principal = principal_directions(self.standardise(features[fit_items]), dim)
        self.maps = nn.ModuleList(
            ContentMap(features.shape[1], principal, dim, hidden, dropout, tok, token_input) for _ in range(heads)
        )

    @property
    def rq(self) -> RQVAE:
        """The modality's RQ-VAE (every token input but "continuous" has one)."""
        if self.rqvae is None:
            raise MotorecError("token_input=continuous: this content channel has no tokens.")
        return self.rqvae

    def standardise(self, features: Tensor) -> Tensor:
        return (features - self.mean) / self.scale

    def forward(self, block: int = CONTENT_BLOCK) -> Tensor:
        """Content vectors of every item. With gradients on and more than `block` items, the pass
        runs block by block and each block's activations are recomputed in backward (activation
        checkpointing, same dropout masks): memory holds the (items, dim) output and one block's
        activations instead of every layer's activations for every item (about 15 GB at 10^6
        items). Catalogues up to `block` items take the plain pass."""
        codes = self.codes if self.rqvae is not None else None
        n = len(self.features)
        if n <= block or not torch.is_grad_enabled():
            return self.content(self.features, codes)
        parts = [
            checkpoint(
                self.content,
                self.features[i : i + block],
                None if codes is None else codes[i : i + block],
                use_reentrant=False,
            )
            for i in range(0, n, block)
        ]
        return torch.cat(parts)

    def content(self, features: Tensor, codes: Tensor | None) -> Tensor:
        """Content vectors of items given their raw features and codes (any items, new ones too):
        (items, heads x dim), the maps' outputs side by side."""
        raw = self.standardise(features) if self.token_input in USES_RAW else None
        zq = self.rq.quantizer.lookup(_given(codes)) if self.token_input in USES_ZQ else None
        return torch.cat([m(raw, zq, codes) for m in self.maps], 1)

    @torch.no_grad()
    def refresh_codes(self) -> None:
        """Re-encode every item (codes move as the tokenizer is fine-tuned jointly)."""
        if self.rqvae is not None:
            self.codes.copy_(self.rqvae.encode(self.features))

    def rq_loss(self, items: Tensor, weights: Tensor) -> Tensor:
        """mean(w_i * L_RQ-VAE,i) over these items."""
        return self.rq(self.features[items], weights[items]).loss


class ContentMap(nn.Module):
    """One map from an item's standardised raw features and tokens to a content vector: linear parts
    (raw projection started at the principal directions, z_q projection, per-level code tables) and
    a residual MLP with a zero-initialised output. `TokenContent` holds one per content head; the
    heads differ by their random initialisation and dropout masks."""

    def __init__(
        self,
        raw_dim: int,
        principal: Tensor | None,
        dim: int,
        hidden: int,
        dropout: float,
        tok: RQVAEConfig,
        token_input: str,
    ) -> None:
        super().__init__()
        self.token_input = token_input
        if token_input in USES_ZQ:
            self.zq_proj = nn.Linear(tok.latent_dim, dim)
        if token_input in USES_CODES:
            tables = [nn.Embedding(tok.codebook_size, dim) for _ in range(tok.levels)]
            self.tables = nn.ModuleList(tables)
            for t in tables:
                nn.init.normal_(t.weight, std=0.1)
        if token_input in USES_RAW:
            self.dropout = nn.Dropout(dropout)
            self.raw_proj = nn.Linear(raw_dim, dim, bias=False)
            with torch.no_grad():
                self.raw_proj.weight.copy_(_given(principal))
        self.head = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        out = cast(nn.Linear, self.head[2])
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)

    def forward(self, raw: Tensor | None, zq: Tensor | None, codes: Tensor | None) -> Tensor:
        x: Any = 0.0  # a Tensor after the first term (every token input has one)
        if self.token_input in USES_RAW:
            x = x + self.raw_proj(self.dropout(_given(raw)))
        if self.token_input in USES_ZQ:
            x = x + self.zq_proj(_given(zq))
        if self.token_input in USES_CODES:
            x = x + sum(t(_given(codes)[:, k]) for k, t in enumerate(self.tables))
        return x + self.head(x)


def _given(value: Tensor | None) -> Tensor:
    if value is None:
        raise MotorecError("this content input needs the items' codes or raw features.")
    return value


def principal_directions(x: Tensor, k: int) -> Tensor:
    """(k, d) rows = the top-k principal directions of x (eigenvectors of its covariance); rows
    beyond d (k > d) are small random directions."""
    centred = x - x.mean(0)
    _, vecs = torch.linalg.eigh(centred.T @ centred / max(len(x) - 1, 1))
    top = vecs.flip(1)[:, :k].T
    if k > top.shape[0]:
        top = torch.cat([top, 0.01 * torch.randn(k - top.shape[0], x.shape[1], dtype=x.dtype, device=x.device)])
    return top


def leave_one_out_mean(user_mean: Tensor, user_degree: Tensor, left_out: Tensor) -> Tensor:
    """Mean of a user's item vectors without one of them: (degree * mean - left_out) / (degree - 1).

    A user with a single item gets a zero vector (nothing else is known about them)."""
    d = user_degree.unsqueeze(1)
    return (user_mean * d - left_out) / (d - 1).clamp_min(1)


def score_moments(users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
    """Per user, the mean and standard deviation of u . i over these items, (users, 1) each, from the
    items' mean and covariance: no users x items matrix."""
    mean = items.mean(0)
    centred = items - mean
    cov = centred.T @ centred / max(len(items), 1)
    var = ((users @ cov) * users).sum(1, keepdim=True)
    return users @ mean.unsqueeze(1), var.clamp_min(1e-12).sqrt()


def merge_scores(
    u_warm: Tensor, i_warm: Tensor, u_cold: Tensor, i_cold: Tensor, warm: Tensor, cold_prior: float
) -> tuple[Tensor, Tensor]:
    """(users, items) whose dot products rank warm and cold items on one per-user scale.

    Warm items score (u_warm . i_warm - mu_w(u)) / sd_w(u) with mean and spread over the warm
    items; cold items (u_cold . i_cold - mu_c(u)) / sd_c(u) + cold_prior with mean and spread over
    all items. Means and spreads come from the items' mean and covariance (no n_users x n_items
    matrix), and are folded into the vectors: users [u_w/sd_w, -mu_w/sd_w, u_c/sd_c, prior - mu_c/sd_c],
    warm items [i_w, 1, 0, 0], cold items [0, 0, i_c, 1].
    """

    mu_w, sd_w = score_moments(u_warm, i_warm[warm])
    mu_c, sd_c = score_moments(u_cold, i_cold)
    users = torch.cat([u_warm / sd_w, -mu_w / sd_w, u_cold / sd_c, cold_prior - mu_c / sd_c], 1)
    w = warm.unsqueeze(1).to(i_warm.dtype)
    ones = torch.ones_like(w)
    items = torch.cat([i_warm * w, w, i_cold * (1 - w), ones - w], 1)
    return users, items


class RarityParams(ConfigModel):
    """`model.rarity`: the per-item weights of the tokenizer loss (models/rarity.py)."""

    form: RarityForm
    tau: PositiveInt  # items with fewer train interactions than this are rare
    ranking: bool  # also weight each positive's ranking (softmax) terms


class MoToRecParams(ConfigModel):
    """The `model:` section of MoToRec (values in configs/models/motorec.yaml)."""

    embedding_dim: PositiveInt  # ID channel width
    content_dim: PositiveInt  # per-modality content width
    n_layers: NonNegativeInt  # LightGCN layers of the ID channel
    modalities: str | list[str]  # "all", or a subset such as [text]
    token_input: TokenInput
    content_hidden: PositiveInt
    content_dropout: Probability
    content_heads: PositiveInt  # content maps over the same tokens; the content score averages their cosines
    softmax_cells: PositiveInt
    temperature: PositiveFloat
    alpha: UnitInterval
    cold_prior: Annotated[float, Field(allow_inf_nan=False)]
    id_channel: bool
    staged: bool  # content stage (selected on valid cold@cold), then ID stage with content frozen (valid all)
    rq_weight: NonNegativeFloat
    refresh_codes: bool
    rq_batch_size: PositiveInt
    reg_weight: NonNegativeFloat
    pretrain_tokenizer: bool
    tokenizer_seed: Seed | None  # null = drawn from the run seed
    rarity: RarityParams
    tokenizer: RQVAEConfig  # the "rqvae" tokenizer's parameters (only the keys given are saved)

    @field_serializer("tokenizer")
    def _given_tokenizer_keys(self, tokenizer: RQVAEConfig, info: SerializationInfo) -> dict[str, Any]:
        """The keys the config gave, as before the section was typed: saved configs, `--resume`
        identities and the pre-trained tokenizer's cache key stay the same."""
        return tokenizer.model_dump(mode=info.mode, exclude_unset=True)


@register_model("motorec")
class MoToRec(EmbeddingRecommender):
    """MoToRec: RQ-VAE semantic tokens -> content channel for every item, ID channel for warm items."""

    content_path = True
    min_modalities = 1
    Params = MoToRecParams
    params: MoToRecParams
    rarity: Tensor  # per-item weights of the tokenizer loss (models/rarity.py)
    warm: Tensor  # items with train interactions
    fit_items: Tensor  # their indices: the tokenizer's corpus, the softmax's candidates
    candidate_of: Tensor  # item -> position among fit_items (-1: cold)
    user_degree: Tensor
    tokenizer_ready: Tensor

    def __init__(self, ctx: ModelContext, params: MoToRecParams | dict[str, Any]) -> None:
        super().__init__(ctx, params)
        p = self.params
        self.mods = self._modalities(ctx, p.modalities)
        dim, cdim = p.embedding_dim, p.content_dim
        self.tok_cfg = p.tokenizer
        self.tok_params = p.tokenizer.model_dump(exclude_unset=True)  # the keys given (the cache key)
        fit = torch.from_numpy(np.flatnonzero(ctx.dataset.item_degree > 0)).to(ctx.device)
        self.content = nn.ModuleDict(
            {
                m: TokenContent(
                    ctx.features(m),
                    fit,
                    cdim,
                    p.content_hidden,
                    p.content_dropout,
                    self.tok_cfg,
                    p.token_input,
                    p.content_heads,
                )
                for m in self.mods
            }
        )
        self.attn = nn.Sequential(nn.Linear(cdim, cdim), nn.Tanh(), nn.Linear(cdim, 1, bias=False))
        self.item_id: nn.Module | None = None
        if p.id_channel:
            self.user_id = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, dim)))
            self.item_id = build_item_repr(ctx, dim)
            self.adj = FrozenSparse(ctx.norm_adj, symmetric=True)
        degree = ctx.dataset.item_degree
        self.register_buffer("rarity", torch.from_numpy(rarity_weights(degree, p.rarity.form, p.rarity.tau)))
        # Items with train interactions: the tokenizer's corpus and the softmax's candidates. An
        # item with none is new (zero-shot cold) and, like any new item, is only encoded and scored.
        warm = torch.from_numpy(degree > 0)
        self.register_buffer("warm", warm)
        self.register_buffer("fit_items", torch.nonzero(warm).squeeze(1))
        position = torch.full((self.n_items,), -1, dtype=torch.long)
        position[self.fit_items] = torch.arange(len(self.fit_items))
        self.register_buffer("candidate_of", position)
        self.register_buffer("user_degree", torch.from_numpy(ctx.dataset.user_degree.astype(np.float32)))
        self.user_mean = FrozenSparse(to_torch_sparse(row_normalize(ctx.dataset.train_matrix), ctx.device))
        self.register_buffer("tokenizer_ready", torch.tensor(False))
        self.content_frozen = False  # the ID stage of staged training: content fixed, read from `_frozen`
        self._frozen: Tensor | None = None

    def channel(self, modality: str) -> TokenContent:
        """The content channel of one modality."""
        return cast(TokenContent, self.content[modality])

    @staticmethod
    def _modalities(ctx: ModelContext, wanted: str | list[str]) -> list[str]:
        if wanted == "all":
            return ctx.modalities
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        missing = [m for m in wanted if m not in ctx.modalities]
        if missing or not wanted:
            raise MotorecError(
                f"model.modalities {wanted}: dataset '{ctx.dataset.name}' has "
                f"{', '.join(ctx.modalities)}; give 'all' or a non-empty subset."
            )
        return wanted

    # ------------------------------------------------------------------ tokenizer
    @property
    def uses_tokens(self) -> bool:
        return self.params.token_input != "continuous"

    @torch.no_grad()
    def init_tokenizer(self, seed: int) -> None:
        """Pre-train each modality's RQ-VAE with the "rqvae" tokenizer (rarity-weighted), or only
        k-means-initialise its codebooks when `pretrain_tokenizer` is off; then encode all items."""
        for i, m in enumerate(self.mods):
            rq = self.channel(m).rq
            if self.params.pretrain_tokenizer:
                rq.load_state_dict(self._pretrained_state(m, seed + i))
            else:
                feats = self.channel(m).features[self.fit_items]
                rq.init_codebooks_kmeans(feats, seed=seed + i, n_iter=self.tok_cfg.kmeans_iters)
            self.channel(m).refresh_codes()
        self.tokenizer_ready.fill_(True)

    def _pretrained_state(self, modality: str, seed: int) -> dict[str, Tensor]:
        """RQ-VAE state after fitting the "rqvae" tokenizer on one modality; cached in the context's
        cache_dir under a hash of features, rarity weights, tokenizer params and seed, so seeds and
        ablation variants that share a tokenizer fit it once."""
        feats = self.channel(modality).features[self.fit_items].cpu().numpy()
        weights = self.rarity[self.fit_items].cpu().numpy()
        params = {**self.tok_params, "device": str(self.ctx.device)}
        h = hashlib.sha256(feats.tobytes() + weights.tobytes())
        h.update(json.dumps([params, seed], sort_keys=True).encode())
        directory = Path(self.ctx.cache_dir) / f"rqvae_{h.hexdigest()[:24]}" if self.ctx.cache_dir else None
        if directory is not None and (directory / "tokenizer.json").is_file():
            tok = load_tokenizer(directory)
        else:
            tok = build_tokenizer("rqvae", **params)
            with torch.enable_grad():
                tok.fit({modality: feats}, weights=weights, seed=seed)
            if directory is not None:
                tok.save(directory)
        prefix = f"{modality}.model."
        return {k[len(prefix) :]: v for k, v in tok.state_tensors().items() if k.startswith(prefix)}

    def tokens(self) -> dict[str, np.ndarray]:
        """Current (n_items, levels) code table of each modality (empty for continuous input)."""
        if not self.uses_tokens:
            return {}
        return {m: self.channel(m).codes.cpu().numpy() for m in self.mods}

    def token_table(self) -> tuple[np.ndarray, list[TokenSlot]] | None:
        """The per-modality RQ-VAE codes, in `token_slots()` order (the ID channel's table without them)."""
        if not self.uses_tokens:
            return super().token_table()
        codes = self.tokens()
        return np.concatenate([codes[m] for m in self.mods], axis=1), self.token_slots()

    # ------------------------------------------------------------------ training stages
    def training_stages(self) -> tuple[TrainingStage, ...]:
        """Staged (`staged`, with an ID channel): the content channel is the ranker of items it never
        saw, and on a dense catalogue it over-fits the training items within a few epochs while the
        ID channel still needs many, so one selection epoch serves neither. The content stage trains
        both channels and is selected on valid cold@cold (a warm split: `all`); the ID stage then
        trains the ID channel alone on the frozen content, selected on valid `all`."""
        if self.params.staged and self.item_id is not None:
            return (TrainingStage("content", select="cold@cold"), TrainingStage("id", select="all"))
        return super().training_stages()

    def begin_stage(self, name: str) -> None:
        self.content_frozen = name == "id"
        self._frozen = None
        for module in (self.content, self.attn):
            module.requires_grad_(not self.content_frozen)

    def _training_content(self) -> Tensor:
        """Item content vectors for a training step; once frozen, computed once without dropout."""
        if not self.content_frozen:
            return self.item_content()
        if self._frozen is None:
            was_training = self.training
            self.eval()
            with torch.no_grad():
                self._frozen = self.item_content()
            self.train(was_training)
        return self._frozen

    def on_epoch_start(self, epoch: int) -> None:
        if not self.uses_tokens or self.content_frozen:
            return
        if not bool(self.tokenizer_ready):
            seed = self.params.tokenizer_seed
            self.init_tokenizer(int(torch.randint(2**31 - 1, (1,))) if seed is None else int(seed))
        elif self._finetunes_tokenizer and self.params.refresh_codes:
            with torch.no_grad():
                for m in self.mods:
                    self.channel(m).rq.restart_dead_codes()
                    self.channel(m).refresh_codes()

    @property
    def _finetunes_tokenizer(self) -> bool:
        return self.uses_tokens and self.params.rq_weight > 0 and not self.content_frozen

    # ------------------------------------------------------------------ encoder
    def _fuse(self, views: list[Tensor]) -> Tensor:
        """alpha * concat(views) + (1 - alpha) * concat(M * a_m * v_m), a = softmax attention."""
        if len(views) == 1:
            return views[0]
        stacked = torch.stack(views, 1)  # (n, M, d)
        a = torch.softmax(self.attn(stacked).squeeze(-1), dim=1)  # (n, M)
        alpha = self.params.alpha
        scale = alpha + (1.0 - alpha) * len(views) * a
        return (stacked * scale.unsqueeze(-1)).flatten(1)

    def _fuse_heads(self, views: list[Tensor]) -> Tensor:
        """Per-modality views (n, heads x dim) -> (n, heads x modalities x dim), fused head by head."""
        d = self.params.content_dim
        heads = [self._fuse([v[:, h * d : (h + 1) * d] for v in views]) for h in range(self.params.content_heads)]
        return torch.cat(heads, 1)

    def item_content(self) -> Tensor:
        """Fused content vectors of all items (n_items, heads x modalities x dim)."""
        return self._fuse_heads([self.channel(m)() for m in self.mods])

    def _by_head(self, vectors: Tensor) -> Tensor:
        """Content vectors (n, heads x width) viewed as (n, heads, width)."""
        return vectors.view(len(vectors), self.params.content_heads, -1)

    def unit_content(self, vectors: Tensor) -> Tensor:
        """Each head's part of content vectors (items' or users') normalised and divided by
        sqrt(heads): unit rows whose dot product is the mean of the heads' cosines."""
        return F.normalize(self._by_head(vectors), dim=2).flatten(1) / self.params.content_heads**0.5

    def _id_channel(self) -> tuple[Tensor, Tensor]:
        """LightGCN over IDs: (user vectors, item vectors) after propagation."""
        if self.item_id is None:
            raise MotorecError("model.id_channel is false: this MoToRec has no ID channel.")
        out = propagate(self.adj, torch.cat([self.user_id, self.item_id()]), self.params.n_layers)
        return out[: self.n_users], out[self.n_users :]

    def _content_users(self, items: Tensor) -> Tensor:
        """Each user's content vector: the mean content of their train items (graph read-out)."""
        return self.user_mean @ items

    # ------------------------------------------------------------------ losses
    def calculate_loss(self, users: Tensor, pos: Tensor, neg: Tensor) -> dict[str, Tensor]:
        """Softmax of each positive over the training items (the sampler's negatives are not
        needed). When batch x training items would pass `softmax_cells`, the positive competes with
        a uniform sample of training items instead, so the logits stay within that budget at any
        catalogue size and batch."""
        p = self.params
        content = self._training_content()
        u_c = leave_one_out_mean(self._content_users(content)[users], self.user_degree[users], content[pos])
        u_n, c_n = self.unit_content(u_c), self.unit_content(content)
        candidates, index = self._softmax_candidates(pos)
        target = index if index is not None else torch.zeros_like(pos)
        w = self.rarity[pos] if p.rarity.ranking else torch.ones(len(pos), device=pos.device)
        if self.content_frozen:
            s_c = candidate_logits(u_n, c_n, pos, candidates, index) / p.temperature
            losses = {"content": s_c.new_zeros(())}
        else:
            # each head ranks with its own softmax (an ensemble, not one wider map); s_c is their mean
            heads = p.content_heads
            u_h, c_h = self._by_head(u_n), self._by_head(c_n)
            s_heads = [
                candidate_logits(u_h[:, h], c_h[:, h], pos, candidates, index) * (heads / p.temperature)
                for h in range(heads)
            ]
            s_c = torch.stack(s_heads).mean(0)
            losses = {"content": cast(Tensor, sum(weighted_ce(s, target, w) for s in s_heads)) / heads}
        if self.item_id is not None:
            u_id, i_id = self._id_channel()
            # the warm score is content + ID; the content part is detached, so the ID channel learns
            # what content misses and the content channel stays a standalone ranker for cold items
            s_id = candidate_logits(u_id[users], i_id, pos, candidates, index)
            losses["warm"] = weighted_ce(s_c.detach() + s_id, target, w)
            losses["reg"] = p.reg_weight * l2_reg(self.user_id[users], self.item_id()[pos])
        losses["rq"] = p.rq_weight * self._rq_loss() if self._finetunes_tokenizer else s_c.new_zeros(())
        losses["loss"] = cast(Tensor, sum(losses.values()))
        return losses

    def _softmax_candidates(self, pos: Tensor) -> tuple[Tensor, Tensor | None]:
        """(candidate items, index of each positive among them): all training items when the batch's
        logits fit `softmax_cells`; else (a uniform sample of training items, None): each positive
        then takes column 0 of its own row (`candidate_logits`)."""
        per_row = max(2, int(self.params.softmax_cells) // max(1, len(pos)))
        if len(self.fit_items) <= per_row:
            return self.fit_items, self.candidate_of[pos]
        sample = self.fit_items[torch.randint(len(self.fit_items), (per_row - 1,), device=pos.device)]
        return sample, None

    def _rq_loss(self) -> Tensor:
        """sum over modalities of mean(w_i * L_RQ-VAE,i) on a uniform sample of the fitted items."""
        n = self.params.rq_batch_size
        total: Any = 0.0  # a Tensor after the first modality
        for m in self.mods:
            items = self.fit_items[torch.randint(len(self.fit_items), (n,), device=self.fit_items.device)]
            total = total + self.channel(m).rq_loss(items, self.rarity)
        return total

    # ------------------------------------------------------------------ scoring
    def _content_user_vectors(self, content: Tensor) -> Tensor:
        return self.unit_content(self._content_users(content)) / self.params.temperature

    def final_vectors(self) -> tuple[Tensor, Tensor]:
        content = self.item_content()
        u_c = self._content_user_vectors(content)
        c = self.unit_content(content)
        if self.item_id is None:
            u_w, i_w = u_c, c
        else:
            u_id, i_id = self._id_channel()
            u_w, i_w = torch.cat([u_c, u_id], 1), torch.cat([c, i_id], 1)
        return merge_scores(u_w, i_w, u_c, c, self.warm, self.params.cold_prior)

    # ------------------------------------------------------------------ serving protocol
    @torch.no_grad()
    def item_tokens_from_content(self, features: dict[str, Tensor]) -> Tensor:
        """Codes of new items, per modality in `token_slots()` order (features -> tokens)."""
        if not self.uses_tokens:
            raise MotorecError(
                "this MoToRec was trained on continuous features (token_input=continuous): it has no tokens."
            )
        return torch.cat([self.channel(m).rq.encode(features[m]) for m in self.mods], 1)

    def token_slots(self) -> list[TokenSlot]:
        return [TokenSlot(m, k, self.tok_cfg.codebook_size) for m in self.mods for k in range(self.tok_cfg.levels)]

    @torch.no_grad()
    def item_vector_from_content(self, features: dict[str, Tensor]) -> Tensor:
        """A new item's final vector: features -> tokens -> content vector, laid out like a zero-shot
        cold item's (content part only, the cold prior's slot set), so it is scored exactly like one."""
        views = []
        for m in self.mods:
            tc = self.channel(m)
            codes = tc.rqvae.encode(features[m]) if tc.rqvae is not None else None
            views.append(tc.content(features[m], codes))
        c = self.unit_content(self._fuse_heads(views))
        width = self.embeddings()[1].shape[1]
        out = c.new_zeros(len(c), width)
        out[:, width - 1 - c.shape[1] : width - 1] = c
        out[:, -1] = 1.0
        return out


def candidate_logits(users: Tensor, items: Tensor, pos: Tensor, candidates: Tensor, index: Tensor | None) -> Tensor:
    """Scores of each user row against the candidates; with `index` None (sampled softmax) the
    row's own positive is prepended as column 0."""
    scores = users @ items[candidates].T
    if index is not None:
        return scores
    return torch.cat([(users * items[pos]).sum(1, keepdim=True), scores], 1)


def weighted_ce(logits: Tensor, target: Tensor, weights: Tensor) -> Tensor:
    """Softmax cross-entropy, each row weighted (weights of ones = the plain mean)."""
    return (weights * F.cross_entropy(logits, target, reduction="none")).sum() / weights.sum()
