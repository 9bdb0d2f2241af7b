"""BM3: Zhou et al., "Bootstrap Latent Representations for Multi-modal Recommendation", WWW 2023.

No negative sampling: the online network (LightGCN over users + item IDs, then a shared linear
predictor) is trained to match a dropout-perturbed, stop-gradient copy of itself (the target):
user -> its item, item -> its user, and each projected modality -> the item (inter-modal) and ->
its own perturbed copy (intra-modal), all with cosine losses; plus `reg_weight` × EmbLoss.
Scores are predictor(user) · predictor(item). The negatives the shared loop samples are ignored.

Cold items: their ID row is zeroed and they have no graph edges, so their online vector comes from
content: the mean of predictor(projection(features)) over modalities, which the inter-modal loss
trains towards the item vectors. The losses are cosine, so only directions are learned; the cold
vectors are rescaled to the warm items' mean norm.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from motorec.config import ConfigModel, NonNegativeFloat, NonNegativeInt, PositiveInt, Probability
from motorec.data.graph import FrozenSparse
from motorec.models.base import register_model
from motorec.models.context import ModelContext
from motorec.models.item_repr import uses_ids
from motorec.models.lightgcn import IDEmbeddingModel, propagate
from motorec.models.multimodal import feature_params, item_vectors, norm_reg, projections, warm_mask


def cosine_loss(online: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 1 - F.cosine_similarity(online, target.detach(), dim=-1).mean()


@register_model("bm3")
class BM3(IDEmbeddingModel):
    """Bootstrapped self-supervision without negatives (Zhou et al., WWW 2023)."""

    warm: torch.Tensor  # items with train interactions (warm_mask)

    class Params(ConfigModel):
        embedding_dim: PositiveInt
        n_layers: NonNegativeInt
        dropout: Probability
        reg_weight: NonNegativeFloat
        cl_weight: NonNegativeFloat

    content_path = True
    min_modalities = 1

    def __init__(self, ctx: ModelContext, params: Any) -> None:
        super().__init__(ctx, params)
        dim = self.params.embedding_dim
        self.predictor = nn.Linear(dim, dim)
        nn.init.xavier_normal_(self.predictor.weight)
        self.features = feature_params(ctx, trainable=True)
        self.proj = projections(ctx, dim)
        for layer in self.proj.values():
            nn.init.xavier_normal_(cast(nn.Linear, layer).weight)
        self.register_buffer("warm", warm_mask(ctx), persistent=False)
        self.adj = FrozenSparse(ctx.norm_adj, symmetric=True)

    def _online(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(users, items) before the predictor: LightGCN output, items plus their ID vectors."""
        ids = item_vectors(self.item_repr, self.warm)
        out = propagate(self.adj, torch.cat([self.user_emb, ids]), self.params.n_layers)
        return out[: self.n_users], self.read_items(out[self.n_users :], ids) + ids

    def _modal_online(self) -> dict[str, torch.Tensor]:
        return {m: self.proj[m](self.features[m]) for m in self.features}

    def final_vectors(self):
        users, items = self._online()
        if uses_ids(self.item_repr) and bool((self.warm == 0).any()):
            content = torch.stack([self.predictor(f) for f in self._modal_online().values()]).mean(0)
            scale = items[self.warm[:, 0] > 0].norm(dim=1).mean()
            items = items + (1 - self.warm) * F.normalize(content, dim=1) * scale
        return self.predictor(users), self.predictor(items)

    def calculate_loss(self, users, pos, neg):
        u_ori, i_ori = self._online()
        drop = self.params.dropout
        with torch.no_grad():
            u_target = F.dropout(u_ori, drop)[users]
            i_target = F.dropout(i_ori, drop)[pos]
        u_online, i_online = self.predictor(u_ori[users]), self.predictor(i_ori[pos])
        loss_ui = cosine_loss(u_online, i_target) + cosine_loss(i_online, u_target)
        modal = torch.zeros((), device=u_ori.device)
        for m in self.features:
            f = self.proj[m](self.features[m][pos])  # only the batch's items enter the loss
            f_target = F.dropout(f.detach(), drop)
            f_online = self.predictor(f)
            modal = modal + cosine_loss(f_online, i_target) + cosine_loss(f_online, f_target)
        reg = self.params.reg_weight * norm_reg(u_ori, i_ori)
        cl = self.params.cl_weight * modal
        return {"loss": loss_ui + reg + cl, "bootstrap": loss_ui, "modal": cl, "reg": reg}
