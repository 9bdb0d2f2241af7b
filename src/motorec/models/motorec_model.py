"""MoToRec: sparse-regularised RQ-VAE tokens + a hierarchical multi-source graph encoder.

Liu, Zhang & Cheung, "MoToRec: ...", AAAI 2026 (arXiv 2602.11062); graph channels are LightGCN
(He et al., SIGIR 2020); the ID dropout that forces the content path to rank items on its own is
DropoutNet's (Volkovs et al., NeurIPS 2017); InfoNCE as in SGL (Wu et al., SIGIR 2021).

Per modality m, an item's content vector c_m is built from its RQ-VAE tokens (by default plus a
projection of its raw features, see `TokenContent`), so an item never seen in training is placed
by its content. Three kinds of LightGCN channel share the train graph: one per modality (users
free, items c_m) and one ID channel (users free, items from the item-representation hook). Fusion per node:
    e = alpha * concat(v_1..v_M) + (1 - alpha) * concat(M * a_1 v_1, ..., M * a_M v_M)
with a = softmax attention over the M views (the attention keeps the concat's width, so both terms
add up; uniform attention gives back the concat). Items then get the ID channel through a gated
residual e_i + g_i * id_i, g_i = sigmoid(W [e_i; id_i]); id_i = 0 for zero-shot cold items.

Cold-item scale: a warm item's propagated vector mixes in its users, a cold item's cannot, so the
two are on different scales. With `item_readout: mixed` (default) warm items are read out from the
layer mean and zero-shot cold items as their content vector c_m; training simulates cold items
(content vector, no graph or ID part: DropoutNet-style), which puts content vectors on the warm
items' scale. With `cold_pairs` every BPR pair is scored in all four kinds (positive and
negative each read out warm or cold): (1 - id_dropout) weighs warm/warm, id_dropout the three kinds
with a cold side; without it (default: the two are within noise on validation) a share `id_dropout`
of the batch's items is read out as cold at random, which leaves warm/warm (1 - id_dropout)^2 of the
signal. `ego` reads every item at layer 0 (only users propagated); `propagate` reads all items from
the layer mean (plain LightGCN).

Loss: BPR (optionally rarity-weighted) + cl_weight * InfoNCE(modality views; content <-> ID view with
one modality) + rq_weight * sum_m mean(w_i * L_RQ-VAE,i) + reg_weight * ||ego embeddings||^2.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from motorec.data.graph import FrozenSparse
from motorec.errors import MotorecError
from motorec.models.base import EmbeddingRecommender, l2_reg, register_model
from motorec.models.context import ModelContext
from motorec.models.item_repr import build_item_repr, uses_ids
from motorec.models.lightgcn import propagate
from motorec.models.rarity import rarity_weights
from motorec.config import validate_params
from motorec.tokenizers.base import TokenSlot, build_tokenizer, load_tokenizer
from motorec.tokenizers.rqvae import RQVAE, RQVAEConfig, mlp

TOKEN_INPUTS = ("zq", "codes", "both", "hybrid", "continuous")
USES_ZQ = ("zq", "both", "hybrid")
USES_CODES = ("codes", "both", "hybrid")
USES_RAW = ("hybrid", "continuous")
READOUTS = ("ego", "propagate", "mixed")
# InfoNCE's logits are rows x rows: past this many distinct users (or items) in a batch a uniform
# sample of them is contrasted, so a large batch (10^5 pairs at a million items) stays bounded.
# Batches up to this size (the default 2048 included) are unaffected.
CL_MAX_ROWS = 4096


class TokenContent(nn.Module):
    """One modality's item content vectors (n_items, dim), computed from the item's tokens.

    token_input: "zq" = linear map of the sum of the item's code vectors (the RQ-VAE's quantised
    latent z_q; gradients reach the codebooks, which is what couples the tokenizer to ranking);
    "codes" = sum over levels of learned code-embedding tables; "both" = their sum; "hybrid" = both
    plus a linear map of the raw features (tokens refine a content projection; the quantisation
    loses detail that the projection keeps); "continuous" = linear map of the standardised raw
    features only (no tokens: the ablation). A residual MLP then maps
    content to the collaborative space.
    """

    def __init__(self, features: Tensor, dim: int, tok: RQVAEConfig, token_input: str) -> None:
        super().__init__()
        self.features = features  # not a buffer: shared with the context, never checkpointed
        self.token_input = token_input
        self.rqvae: RQVAE | None = None
        if token_input != "continuous":
            self.rqvae = RQVAE(features.shape[1], **tok.model_kwargs())
            self.register_buffer("codes", torch.zeros(features.shape[0], tok.levels, dtype=torch.long))
        if token_input in USES_ZQ:
            self.zq_proj = nn.Linear(tok.latent_dim, dim)
        if token_input in USES_CODES:
            self.tables = nn.ModuleList(nn.Embedding(tok.codebook_size, dim) for _ in range(tok.levels))
            for t in self.tables:
                nn.init.normal_(t.weight, std=0.1)
        if token_input in USES_RAW:
            self.register_buffer("mean", features.mean(0))
            self.register_buffer("scale", features.var(0, unbiased=False).mean().sqrt().clamp_min(1e-8))
            self.raw_proj = nn.Linear(features.shape[1], dim)
        self.head = mlp([dim, dim, dim])

    def forward(self) -> Tensor:
        return self.content(self.features, self.codes if self.rqvae is not None else None)

    def content(self, features: Tensor, codes: Tensor | None) -> Tensor:
        """Content vectors of items given their raw features and codes (any items, new ones too)."""
        x = 0.0
        if self.token_input in USES_RAW:
            x = x + self.raw_proj((features - self.mean) / self.scale)
        if self.token_input in USES_ZQ:
            x = x + self.zq_proj(self.rqvae.quantizer.lookup(codes))
        if self.token_input in USES_CODES:
            x = x + sum(t(codes[:, k]) for k, t in enumerate(self.tables))
        return x + self.head(x)

    @torch.no_grad()
    def refresh_codes(self) -> None:
        """Re-encode every item (codes move as the tokenizer is fine-tuned jointly)."""
        if self.rqvae is not None:
            self.codes.copy_(self.rqvae.encode(self.features))

    def rq_loss(self, items: Tensor, weights: Tensor) -> Tensor:
        """mean(w_i * L_RQ-VAE,i) over these items."""
        return self.rqvae(self.features[items], weights[items]).loss


@register_model("motorec")
class MoToRec(EmbeddingRecommender):
    """MoToRec: RQ-VAE semantic tokens + multi-source LightGCN channels; cold items via tokens."""

    content_path = True
    min_modalities = 1

    def __init__(self, ctx: ModelContext, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        p = params
        for key, allowed in (("token_input", TOKEN_INPUTS), ("item_readout", READOUTS)):
            if p[key] not in allowed:
                raise MotorecError(f"model.{key} '{p[key]}': choose one of {', '.join(allowed)}.")
        if not 0.0 <= p["alpha"] <= 1.0 or not 0.0 <= p["id_dropout"] < 1.0:
            raise MotorecError("model.alpha must lie in [0, 1] and model.id_dropout in [0, 1).")
        self.mods = self._modalities(ctx, p["modalities"])
        dim = p["embedding_dim"]
        self.tok_params = dict(p["tokenizer"])
        self.tok_cfg = validate_params(RQVAEConfig, self.tok_params, "model.tokenizer")
        self.content = nn.ModuleDict(
            {m: TokenContent(ctx.features(m), dim, self.tok_cfg, p["token_input"]) for m in self.mods})
        self.user_views = nn.ParameterDict(
            {m: nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, dim))) for m in self.mods})
        width = dim * len(self.mods)
        self.attn = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1, bias=False))
        self.item_id: nn.Module | None = None
        if p["id_channel"]:
            self.user_id = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, width)))
            self.item_id = build_item_repr(ctx, width)
            self.gate = nn.Linear(2 * width, width)
        degree = ctx.dataset.item_degree
        w = rarity_weights(degree, p["rarity"]["form"], p["rarity"]["tau"])
        self.register_buffer("rarity", torch.from_numpy(w))
        # ID vectors of items without train interactions carry nothing (random init, no gradient):
        # they are masked. A content-based item representation (tokens) keeps them.
        masks_ids = uses_ids(self.item_id) if self.item_id is not None else True
        self.register_buffer("id_mask", torch.from_numpy((degree > 0) | (not masks_ids)).float())
        # The tokenizer learns from items with train interactions only: an item with none is new
        # (zero-shot cold) and, like any new item, is only encoded.
        self.register_buffer("fit_items", torch.from_numpy(np.flatnonzero(degree > 0)))
        self.register_buffer("warm_items", torch.from_numpy(degree > 0).unsqueeze(1))
        self.register_buffer("tokenizer_ready", torch.tensor(False))
        self.adj = FrozenSparse(ctx.norm_adj, symmetric=True)

    @staticmethod
    def _modalities(ctx: ModelContext, wanted: str | list[str]) -> list[str]:
        if wanted == "all":
            return ctx.modalities
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        missing = [m for m in wanted if m not in ctx.modalities]
        if missing or not wanted:
            raise MotorecError(f"model.modalities {wanted}: dataset '{ctx.dataset.name}' has "
                               f"{', '.join(ctx.modalities)}; give 'all' or a non-empty subset.")
        return wanted

    # ------------------------------------------------------------------ tokenizer
    @property
    def uses_tokens(self) -> bool:
        return self.params["token_input"] != "continuous"

    @torch.no_grad()
    def init_tokenizer(self, seed: int) -> None:
        """Pre-train each modality's RQ-VAE with the "rqvae" tokenizer (rarity-weighted), or only
        k-means-initialise its codebooks when `pretrain_tokenizer` is off; then encode all items."""
        for i, m in enumerate(self.mods):
            rq = self.content[m].rqvae
            if self.params["pretrain_tokenizer"]:
                rq.load_state_dict(self._pretrained_state(m, seed + i))
            else:
                feats = self.content[m].features[self.fit_items]
                rq.init_codebooks_kmeans(feats, seed=seed + i, n_iter=self.tok_cfg.kmeans_iters)
            self.content[m].refresh_codes()
        self.tokenizer_ready.fill_(True)

    def _pretrained_state(self, modality: str, seed: int) -> dict[str, Tensor]:
        """RQ-VAE state after fitting the "rqvae" tokenizer on one modality; cached in the context's
        cache_dir under a hash of features, rarity weights, tokenizer params and seed, so seeds and
        ablation variants that share a tokenizer fit it once."""
        feats = self.content[modality].features[self.fit_items].cpu().numpy()
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
        return {k[len(prefix):]: v for k, v in tok.state_tensors().items() if k.startswith(prefix)}

    def tokens(self) -> dict[str, np.ndarray]:
        """Current (n_items, levels) code table of each modality (empty for continuous input)."""
        if not self.uses_tokens:
            return {}
        return {m: self.content[m].codes.cpu().numpy() for m in self.mods}

    def token_table(self) -> tuple[np.ndarray, list[TokenSlot]] | None:
        """The per-modality RQ-VAE codes, in `token_slots()` order (the ID channel's table without them)."""
        if not self.uses_tokens:
            return super().token_table()
        codes = self.tokens()
        return np.concatenate([codes[m] for m in self.mods], axis=1), self.token_slots()

    def on_epoch_start(self, epoch: int) -> None:
        if not self.uses_tokens:
            return
        if not bool(self.tokenizer_ready):
            seed = self.params["tokenizer_seed"]
            self.init_tokenizer(int(torch.randint(2**31 - 1, (1,))) if seed is None else int(seed))
        elif self._finetunes_tokenizer and self.params["refresh_codes"]:
            with torch.no_grad():
                for m in self.mods:
                    self.content[m].rqvae.restart_dead_codes()
                    self.content[m].refresh_codes()

    @property
    def _finetunes_tokenizer(self) -> bool:
        return self.uses_tokens and self.params["rq_weight"] > 0

    # ------------------------------------------------------------------ encoder
    def _fuse(self, views: list[Tensor]) -> Tensor:
        """alpha * concat(views) + (1 - alpha) * concat(M * a_m * v_m), a = softmax attention."""
        if len(views) == 1:
            return views[0]
        stacked = torch.stack(views, 1)  # (n, M, d)
        a = torch.softmax(self.attn(stacked).squeeze(-1), dim=1)  # (n, M)
        alpha = self.params["alpha"]
        scale = alpha + (1.0 - alpha) * len(views) * a
        return (stacked * scale.unsqueeze(-1)).flatten(1)

    def _encode(self) -> dict[str, Any]:
        """All channels in one propagation (channels side by side in the feature dimension):
        per-modality user/item views, fused content vectors, ID channel outputs."""
        n_users, dim = self.n_users, self.params["embedding_dim"]
        ego_items = [self.content[m]() for m in self.mods]
        users = [self.user_views[m] for m in self.mods]
        items = list(ego_items)
        if self.item_id is not None:
            users.append(self.user_id)
            items.append(self.item_id())
        out = propagate(self.adj, torch.cat([torch.cat(users, 1), torch.cat(items, 1)]), self.params["n_layers"])
        n_mod = len(self.mods)
        u_views = list(out[:n_users, : n_mod * dim].split(dim, 1))
        readout = self.params["item_readout"]
        i_views = ego_items
        if readout != "ego":
            i_views = list(out[n_users:, : n_mod * dim].split(dim, 1))
        if readout == "mixed":  # warm items propagated, zero-shot cold items their content vector
            i_views = [torch.where(self.warm_items, v, c) for v, c in zip(i_views, ego_items)]
        enc = {"u_views": u_views, "i_views": i_views, "ego_items": ego_items,
               "users": self._fuse(u_views), "items": self._fuse(i_views), "u_id": None, "i_id": None,
               "items_ego": self._fuse(ego_items) if readout == "mixed" else None}
        if self.item_id is not None:
            enc["u_id"] = out[:n_users, n_mod * dim :]
            enc["i_id"] = out[n_users:, n_mod * dim :] * self.id_mask.unsqueeze(1)
            enc["users"] = enc["users"] + enc["u_id"]
        return enc

    def _items(self, enc: dict[str, Any], idx: Tensor | None = None, drop: float = 0.0) -> Tensor:
        """Final item vectors (all items when idx is None); `drop` zeroes the ID part at random."""
        e = enc["items"] if idx is None else enc["items"][idx]
        keep = torch.rand(len(e), 1, device=e.device) >= drop if drop > 0 else None
        if keep is not None and enc["items_ego"] is not None:
            # cold simulation: a dropped warm item is read out as a cold one (content vector only)
            e = torch.where(keep, e, enc["items_ego"] if idx is None else enc["items_ego"][idx])
        if enc["i_id"] is None:
            return e
        iid = enc["i_id"] if idx is None else enc["i_id"][idx]
        if keep is not None:
            iid = iid * keep
        g = torch.sigmoid(self.gate(torch.cat([e, iid], -1)))
        return e + g * iid

    # ------------------------------------------------------------------ losses
    def calculate_loss(self, users: Tensor, pos: Tensor, neg: Tensor) -> dict[str, Tensor]:
        p = self.params
        enc = self._encode()
        u = enc["users"][users]
        w = self.rarity[pos] if p["rarity"]["bpr"] else torch.ones(len(pos), device=u.device)

        def bpr_of(pos_s: Tensor, neg_s: Tensor) -> Tensor:
            return -(w * F.logsigmoid(pos_s - neg_s)).sum() / w.sum()

        drop = p["id_dropout"]
        if p["cold_pairs"] and enc["items_ego"] is not None:
            # every pair kind at once: warm/warm ranks warm items, the mixed kinds put cold
            # (content-only) vectors on the warm vectors' scale, cold/cold ranks cold items
            pw, nw = ((u * self._items(enc, i)).sum(-1) for i in (pos, neg))
            pc, nc = ((u * enc["items_ego"][i]).sum(-1) for i in (pos, neg))
            bpr = (1 - drop) * bpr_of(pw, nw) + drop * (bpr_of(pc, nw) + bpr_of(pw, nc) + bpr_of(pc, nc)) / 3
        else:
            bpr = bpr_of((u * self._items(enc, pos, drop)).sum(-1), (u * self._items(enc, neg, drop)).sum(-1))
        losses = {"bpr": bpr}
        losses["cl"] = p["cl_weight"] * self._contrastive(enc, users, pos) if p["cl_weight"] > 0 else bpr.new_zeros(())
        losses["rq"] = p["rq_weight"] * self._rq_loss() if self._finetunes_tokenizer else bpr.new_zeros(())
        ego = [self.user_views[m][users] for m in self.mods] + [c[pos] for c in enc["ego_items"]] + [c[neg] for c in enc["ego_items"]]
        if self.item_id is not None:
            ids = self.item_id()
            ego += [self.user_id[users], ids[pos], ids[neg]]
        losses["reg"] = p["reg_weight"] * l2_reg(*ego)
        losses["loss"] = sum(losses.values())
        return losses

    def _contrastive(self, enc: dict[str, Any], users: Tensor, pos: Tensor) -> Tensor:
        """InfoNCE between every pair of modality views (users and items of the batch); with one
        modality, between the content view and the ID view (the only other view there is)."""
        items, users = _at_most(pos.unique(), CL_MAX_ROWS), _at_most(users.unique(), CL_MAX_ROWS)
        u_views = [v[users] for v in enc["u_views"]]
        i_views = [v[items] for v in enc["i_views"]]
        if len(self.mods) == 1:
            if enc["i_id"] is None:
                return pos.new_zeros((), dtype=torch.float32)
            u_views.append(enc["u_id"][users])
            i_views.append(enc["i_id"][items])
        t = self.params["cl_temperature"]
        pairs = list(itertools.combinations(range(len(u_views)), 2))
        total = sum(info_nce(a[i], a[j], t) for a in (u_views, i_views) for i, j in pairs)
        return total / len(pairs)

    def _rq_loss(self) -> Tensor:
        """sum over modalities of mean(w_i * L_RQ-VAE,i) on a uniform sample of the fitted items."""
        n = self.params["rq_batch_size"]
        total = 0.0
        for m in self.mods:
            items = self.fit_items[torch.randint(len(self.fit_items), (n,), device=self.fit_items.device)]
            total = total + self.content[m].rq_loss(items, self.rarity)
        return total

    # ------------------------------------------------------------------ scoring
    def final_vectors(self) -> tuple[Tensor, Tensor]:
        enc = self._encode()
        return enc["users"], self._items(enc)

    # ------------------------------------------------------------------ serving protocol
    @torch.no_grad()
    def item_tokens_from_content(self, features: dict[str, Tensor]) -> Tensor:
        """Codes of new items, per modality in `token_slots()` order (features -> tokens)."""
        if not self.uses_tokens:
            raise MotorecError("this MoToRec was trained on continuous features (token_input=continuous): it has no tokens.")
        return torch.cat([self.content[m].rqvae.encode(features[m]) for m in self.mods], 1)

    def token_slots(self) -> list[TokenSlot]:
        return [TokenSlot(m, k, self.tok_cfg.codebook_size) for m in self.mods for k in range(self.tok_cfg.levels)]

    @torch.no_grad()
    def item_vector_from_content(self, features: dict[str, Tensor]) -> Tensor:
        """A new item's final vector: features -> tokens -> content vector, read out like a
        zero-shot cold item (no graph edges, no ID part), so it is scored on the warm items' scale."""
        if self.params["item_readout"] == "propagate":
            raise MotorecError("model.item_readout=propagate scores items from the graph: new items need 'ego' or 'mixed'.")
        if self.item_id is not None and not uses_ids(self.item_id):
            raise MotorecError("with a token item representation in the ID channel (item_repr != id) new items "
                               "cannot be embedded by the model yet; export falls back to nothing, so train with item_repr=id.")
        views = []
        for m in self.mods:
            tc = self.content[m]
            codes = tc.rqvae.encode(features[m]) if tc.rqvae is not None else None
            views.append(tc.content(features[m], codes))
        return self._fuse(views)


def _at_most(rows: Tensor, n: int) -> Tensor:
    """`rows` itself when it has at most n entries, else a uniform sample of n of them."""
    return rows if len(rows) <= n else rows[torch.randperm(len(rows), device=rows.device)[:n]]


def info_nce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """One-directional InfoNCE: row i of a should match row i of b against b's other rows."""
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    logits = a @ b.T / temperature
    return F.cross_entropy(logits, torch.arange(len(a), device=a.device))
