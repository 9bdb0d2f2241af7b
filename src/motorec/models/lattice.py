"""LATTICE: Zhang et al., "Mining Latent Structures for Multimedia Recommendation", ACM MM 2021.

Each epoch, a k-NN item-item graph is *learned* from the projected (and fine-tuned) modality
features, mixed across modalities by learned softmax weights, and combined with the frozen
original k-NN graph: A = (1 - λ)·learned + λ·original. Items get F.normalize(A^L · item IDs) added
to their LightGCN vectors; BPR loss with L2 on the batch's final vectors (MMRec's version). The
learned graph is rebuilt with gradients at the first batch of each epoch and reused (detached)
for the rest, as in MMRec.

Cold items: their ID row is zeroed, so they are scored through the item-item graph alone.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from motorec.config import ConfigModel, NonNegativeFloat, NonNegativeInt, PositiveInt, UnitInterval
from motorec.data.graph import FrozenSparse, mix_graphs, sparse_sym_normalize, topk_cosine
from motorec.models.base import bpr_loss, l2_reg, register_model
from motorec.models.context import ModelContext
from motorec.models.lightgcn import IDEmbeddingModel, propagate
from motorec.models.multimodal import feature_params, item_vectors, projections, warm_mask


@register_model("lattice")
class LATTICE(IDEmbeddingModel):
    """Learned modality item-item graph mixed with the frozen k-NN graph (Zhang et al., MM 2021)."""

    warm: torch.Tensor  # items with train interactions (warm_mask)

    class Params(ConfigModel):
        embedding_dim: PositiveInt
        feat_embed_dim: PositiveInt
        knn_k: PositiveInt
        lambda_coeff: UnitInterval
        n_layers: NonNegativeInt
        n_ui_layers: NonNegativeInt
        reg_weight: NonNegativeFloat

    content_path = True
    min_modalities = 1

    def __init__(self, ctx: ModelContext, params: Any) -> None:
        super().__init__(ctx, params)
        n_mod = len(ctx.modalities)
        self.register_buffer("warm", warm_mask(ctx), persistent=False)
        self.features = feature_params(ctx, trainable=True)
        self.proj = projections(ctx, self.params.feat_embed_dim)
        self.modal_weight = nn.Parameter(torch.full((n_mod,), 1.0 / n_mod))
        self.originals = [ctx.item_knn(m, self.params.knn_k).to_sparse_coo() for m in ctx.modalities]
        self.adj = FrozenSparse(ctx.norm_adj, symmetric=True)
        self._item_graph: torch.Tensor | None = None

    def learned_graph(self) -> torch.Tensor:
        """(1 - λ)·normalised learned k-NN graph + λ·original graphs, both mixed over modalities by the
        same learned weights; differentiable in the projections and the weights."""
        weights = torch.softmax(self.modal_weight, dim=0)
        parts = []
        for m in self.features:
            rows, cols, vals = topk_cosine(self.proj[m](self.features[m]), self.params.knn_k)
            parts.append(torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, (self.n_items, self.n_items)))
        mixed = mix_graphs(parts, weights)
        idx = mixed.indices()
        learned = sparse_sym_normalize(idx[0], idx[1], mixed.values(), self.n_items)
        lam = self.params.lambda_coeff
        original = mix_graphs(self.originals, weights)
        return mix_graphs([learned, original], [1.0 - lam, lam])

    def on_epoch_start(self, epoch: int) -> None:
        self._item_graph = None

    def _propagated(self, item_graph: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ids = item_vectors(self.item_repr, self.warm)
        h = ids
        for _ in range(self.params.n_layers):
            h = torch.sparse.mm(item_graph, h)
        out = propagate(self.adj, torch.cat([self.user_emb, ids]), self.params.n_ui_layers)
        return out[: self.n_users], self.read_items(out[self.n_users :], ids) + F.normalize(h, dim=1)

    def final_vectors(self):
        return self._propagated(self.learned_graph())

    def calculate_loss(self, users, pos, neg):
        if self._item_graph is None:
            graph = self.learned_graph()
            self._item_graph = graph.detach()
        else:
            graph = self._item_graph
        u_all, i_all = self._propagated(graph)
        u, p, n = u_all[users], i_all[pos], i_all[neg]
        mf = bpr_loss((u * p).sum(-1), (u * n).sum(-1))
        reg = self.params.reg_weight * l2_reg(u, p, n)
        return {"loss": mf + reg, "bpr": mf, "reg": reg}
