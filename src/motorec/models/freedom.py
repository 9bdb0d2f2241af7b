"""FREEDOM: Zhou & Shen, "A Tale of Two Graphs: Freezing and Denoising Graph Structures for
Multimodal Recommendation", ACM MM 2023.

Two graphs: the item-item k-NN graph built once from each modality's features and *frozen*
(mixed with weight `mm_image_weight` for images), and the user-item graph *denoised* each epoch by
degree-sensitive edge pruning (training only; evaluation uses the full graph). Item = LightGCN item
vector + item-graph propagation of the item ID vectors; BPR loss plus `reg_weight` × BPR losses of
the projected modality features (MMRec's default reg_weight 0 switches them off).

Cold items: their ID row is zeroed, so they are scored through the frozen item-item graph alone
(the ID vectors of their content neighbours).
"""

from __future__ import annotations

from typing import Any

import torch

from motorec.config import ConfigModel, NonNegativeFloat, NonNegativeInt, PositiveInt, Probability, UnitInterval
from motorec.data.graph import FrozenSparse, degree_sensitive_prune, mix_graphs
from motorec.models.base import bpr_loss, register_model
from motorec.models.context import ModelContext
from motorec.models.lightgcn import IDEmbeddingModel, propagate
from motorec.models.multimodal import feature_params, item_vectors, projections, warm_mask

IMAGE = "image"


def modality_weights(modalities: list[str], image_weight: float) -> list[float]:
    """FREEDOM's graph mixing: `image_weight` for images, the rest shared by the other modalities."""
    if IMAGE not in modalities or len(modalities) == 1:
        return [1.0 / len(modalities)] * len(modalities)
    rest = (1.0 - image_weight) / (len(modalities) - 1)
    return [image_weight if m == IMAGE else rest for m in modalities]


def frozen_item_graph(ctx: ModelContext, k: int, image_weight: float) -> FrozenSparse:
    """The shared k-NN graphs of every modality, mixed once (FREEDOM/LATTICE's 'original' graph)."""
    graphs = [ctx.item_knn(m, k) for m in ctx.modalities]
    return FrozenSparse(mix_graphs(graphs, modality_weights(ctx.modalities, image_weight)))


@register_model("freedom")
class FREEDOM(IDEmbeddingModel):
    """Frozen modality item-item graph + degree-sensitive pruning of the user-item graph (Zhou & Shen, MM 2023)."""

    warm: torch.Tensor  # items with train interactions (warm_mask)

    class Params(ConfigModel):
        embedding_dim: PositiveInt
        feat_embed_dim: PositiveInt
        knn_k: PositiveInt
        mm_image_weight: UnitInterval
        n_mm_layers: NonNegativeInt
        n_ui_layers: NonNegativeInt
        dropout: Probability
        reg_weight: NonNegativeFloat

    content_path = True
    min_modalities = 1

    def __init__(self, ctx: ModelContext, params: Any) -> None:
        super().__init__(ctx, params)
        self.item_graph = frozen_item_graph(ctx, self.params.knn_k, self.params.mm_image_weight)
        self.register_buffer("warm", warm_mask(ctx), persistent=False)
        self.features = feature_params(ctx, trainable=True)
        self.proj = projections(ctx, self.params.feat_embed_dim)
        self.full_adj = FrozenSparse(ctx.norm_adj, symmetric=True)
        self.train_adj = self.full_adj

    def on_epoch_start(self, epoch: int) -> None:
        drop = self.params.dropout
        self.train_adj = (
            FrozenSparse(
                degree_sensitive_prune(self.ctx.dataset.train_matrix, 1.0 - drop, device=self.ctx.device),
                symmetric=True,
            )
            if drop > 0
            else self.full_adj
        )

    def _propagated(self, adj: FrozenSparse) -> tuple[torch.Tensor, torch.Tensor]:
        ids = item_vectors(self.item_repr, self.warm)
        h = ids
        for _ in range(self.params.n_mm_layers):
            h = self.item_graph @ h
        out = propagate(adj, torch.cat([self.user_emb, ids]), self.params.n_ui_layers)
        return out[: self.n_users], self.read_items(out[self.n_users :], ids) + h

    def final_vectors(self):
        return self._propagated(self.full_adj)

    def calculate_loss(self, users, pos, neg):
        u_all, i_all = self._propagated(self.train_adj)
        u = u_all[users]
        mf = bpr_loss((u * i_all[pos]).sum(-1), (u * i_all[neg]).sum(-1))
        losses = {"bpr": mf}
        if self.params.reg_weight:
            modal = sum(
                bpr_loss((u * f[pos]).sum(-1), (u * f[neg]).sum(-1))
                for f in (self.proj[m](self.features[m]) for m in self.features)
            )
            losses["modal_bpr"] = self.params.reg_weight * modal
        losses["loss"] = sum(losses.values())
        return losses
