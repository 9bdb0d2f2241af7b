"""DropoutNet: Volkovs, Yu & Poutanen, "DropoutNet: Addressing Cold Start in Recommender Systems", NeurIPS 2017.

Two towers re-learn the backbone's scores: f_U(U_u) · f_V([V_i ; φ(x_i)]) ≈ U_u · V_i (squared error
over the batch's positive and negative pairs). Input dropout: in training, the preference input V_i
of a pair is set to 0 with probability `dropout`, so the item tower learns to score from content
alone, which is exactly what a cold item gives it (V_i = 0 at inference). Users have no content here,
so the user tower reads U_u only; φ is the identity on the centred, normalised content.
"""

from __future__ import annotations

import torch

from motorec.config import UnitInterval
from motorec.models.base import register_model
from motorec.models.coldstart.common import ColdStartRecommender, SpecialistParams, mlp, per_item
from motorec.models.context import ModelContext


class DropoutNetParams(SpecialistParams):
    dropout: UnitInterval  # probability that a training pair's item preference input is zeroed


@register_model("dropoutnet")
class DropoutNet(ColdStartRecommender):
    """Two towers trained to reproduce the backbone's scores with input dropout of item preferences."""

    Params = DropoutNetParams

    def __init__(self, ctx: ModelContext, params: DropoutNetParams) -> None:
        super().__init__(ctx, params)
        d = self.backbone_dim
        self.user_tower = mlp([d, *self.params.hidden, d])
        self.item_tower = mlp([d + self.content_dim, *self.params.hidden, d])

    def item_vectors(self, items: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Item tower output with the preference input zeroed where keep is False."""
        dropped = torch.cat([torch.zeros_like(self.item_warm), self.content], dim=1)
        kept = torch.cat([self.item_warm, self.content], dim=1)
        return per_item(self.item_tower, torch.cat([dropped, kept]), items + self.n_items * keep.long())

    def calculate_loss(self, users, pos, neg):
        users2, items = users.repeat(2), torch.cat([pos, neg])
        keep = torch.rand(len(items), device=items.device) >= self.params.dropout
        pred = (self.user_tower(self.user_warm[users2]) * self.item_vectors(items, keep)).sum(-1)
        target = (self.user_warm[users2] * self.item_warm[items]).sum(-1)
        mse = (pred - target).pow(2).mean()
        return {"loss": mse, "mse": mse}

    def final_vectors(self):
        all_items = torch.arange(self.n_items, device=self.content.device)
        return self.user_tower(self.user_warm), self.item_vectors(all_items, ~self.isolated.squeeze(1))
