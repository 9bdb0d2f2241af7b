"""VBPR: He & McAuley, "VBPR: Visual Bayesian Personalized Ranking from Implicit Feedback", AAAI 2016.

Item = [ID vector ; E·f] with f the item's content (all modalities concatenated, as MMRec does),
user = [γ_u ; θ_u]; BPR loss with L2 on the batch's final vectors. Like MMRec, the bias terms are
dropped. Cold items: the ID half is zeroed (never trained), so they are ranked by θ_u·E·f alone.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from motorec.config import ConfigModel, NonNegativeFloat, PositiveInt
from motorec.models.base import bpr_loss, l2_reg, register_model
from motorec.models.context import ModelContext
from motorec.models.lightgcn import IDEmbeddingModel
from motorec.models.multimodal import item_vectors, warm_mask


@register_model("vbpr")
class VBPR(IDEmbeddingModel):
    """Matrix factorisation plus a linear visual/content term (He & McAuley, AAAI 2016)."""

    warm: torch.Tensor  # items with train interactions (warm_mask)
    content: torch.Tensor  # (n_items, d) visual features

    class Params(ConfigModel):
        embedding_dim: PositiveInt  # the user vector is 2 x embedding_dim ([gamma_u ; theta_u])
        reg_weight: NonNegativeFloat

    content_path = True
    min_modalities = 1

    def __init__(self, ctx: ModelContext, params: Any) -> None:
        super().__init__(ctx, params)
        dim = self.params.embedding_dim
        self.user_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, 2 * dim)))
        feats = torch.cat([ctx.features(m) for m in ctx.modalities], dim=1)
        self.register_buffer("content", feats, persistent=False)
        self.content_proj = nn.Linear(feats.shape[1], dim)
        nn.init.xavier_normal_(self.content_proj.weight)
        self.register_buffer("warm", warm_mask(ctx), persistent=False)

    def final_vectors(self):
        items = torch.cat([item_vectors(self.item_repr, self.warm), self.content_proj(self.content)], dim=1)
        return self.user_emb, items

    def calculate_loss(self, users, pos, neg):
        u_all, i_all = self.final_vectors()
        u, p, n = u_all[users], i_all[pos], i_all[neg]
        mf = bpr_loss((u * p).sum(-1), (u * n).sum(-1))
        reg = self.params.reg_weight * l2_reg(u, p, n)
        return {"loss": mf + reg, "bpr": mf, "reg": reg}
