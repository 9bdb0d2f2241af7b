"""DeepMusic: van den Oord, Dieleman & Schrauwen, "Deep content-based music recommendation", NeurIPS 2013.

A network g regresses each warm item's latent factor from its content, min Σ_i ||g(x_i) − v_i||²
(the paper's MSE objective); a cold item is scored with its regressed factor u · g(x_i), warm items
keep the backbone's factors.
"""

from __future__ import annotations

import torch

from motorec.models.base import register_model
from motorec.models.coldstart.common import ColdStartRecommender, SpecialistParams, mlp, per_item, warm_cold_readout
from motorec.models.context import ModelContext


@register_model("deepmusic")
class DeepMusic(ColdStartRecommender):
    """Content -> warm item vector regression (MSE); cold items get the regressed vector."""

    Params = SpecialistParams

    def __init__(self, ctx: ModelContext, params: SpecialistParams) -> None:
        super().__init__(ctx, params)
        self.generator = mlp([self.content_dim, *self.params.hidden, self.backbone_dim])

    def calculate_loss(self, users, pos, neg):
        items = torch.cat([pos, neg])
        mse = (per_item(self.generator, self.content, items) - self.item_warm[items]).pow(2).sum(-1).mean()
        return {"loss": mse, "mse": mse}

    def final_vectors(self):
        return warm_cold_readout(self.user_warm, self.item_warm, self.generator(self.content), self.isolated)
