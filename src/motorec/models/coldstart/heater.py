"""Heater: Zhu, Sefati, Saadatpanah & Caverlee, "Recommendation for New Users and New Items via Randomized
Training and Mixture-of-Experts Transformation", SIGIR 2020.

- Mixture-of-experts transformation of the content: Φ(x) = Σ_k g_k(x) · φ_k(x), g = softmax(W_g x),
  so each item gets its own blend of K experts ("personalised" transformation).
- Similarity constraint (the separate-training part): α · ||Φ(x_i) − V_i||² pulls the transformed
  content towards the item's pretrained (backbone) vector.
- Randomized training: the item's input to the final item tower is V_i, or, with probability
  `dropout`, Φ(x_i); users go through the user tower from U_u. Joint objective: the towers'
  f_U · f_I reproduces the backbone score U_u · V_i (squared error, as in the paper's code),
  plus the similarity constraint.
At inference a cold item enters the item tower as Φ(x_i), a warm one as V_i.
"""

from __future__ import annotations

import torch
from torch import nn

from motorec.config import NonNegativeFloat, PositiveInt, UnitInterval
from motorec.models.base import register_model
from motorec.models.coldstart.common import ColdStartRecommender, SpecialistParams, mlp, per_item
from motorec.models.context import ModelContext


class MixtureOfExperts(nn.Module):
    """Φ(x) = Σ_k softmax(W_g x)_k · expert_k(x)."""

    def __init__(self, in_dim: int, hidden: list[int], out_dim: int, n_experts: int) -> None:
        super().__init__()
        self.gate = nn.Linear(in_dim, n_experts)
        self.experts = nn.ModuleList(mlp([in_dim, *hidden, out_dim]) for _ in range(n_experts))

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.gate(x), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = torch.stack([expert(x) for expert in self.experts], dim=1)  # (n, K, out)
        return (self.weights(x).unsqueeze(-1) * outputs).sum(1)


class HeaterParams(SpecialistParams):
    n_experts: PositiveInt  # experts in the mixture (softmax gate over them)
    tower_hidden: list[PositiveInt]  # hidden layers of the final user and item towers
    dropout: UnitInterval  # randomised training: probability that an item enters the tower as Φ(x)
    alpha: NonNegativeFloat  # weight of the similarity constraint ||Φ(x) − V||²


@register_model("heater")
class Heater(ColdStartRecommender):
    """Randomised replacement of warm item vectors by a mixture-of-experts content transform."""

    Params = HeaterParams

    def __init__(self, ctx: ModelContext, params: HeaterParams) -> None:
        super().__init__(ctx, params)
        d, p = self.backbone_dim, self.params
        self.transform = MixtureOfExperts(self.content_dim, p.hidden, d, p.n_experts)
        self.user_tower = mlp([d, *p.tower_hidden, d])
        self.item_tower = mlp([d, *p.tower_hidden, d])

    def calculate_loss(self, users, pos, neg):
        users2, items = users.repeat(2), torch.cat([pos, neg])
        phi, warm = per_item(self.transform, self.content, items), self.item_warm[items]
        replace = (torch.rand(len(items), device=items.device) < self.params.dropout).unsqueeze(1)
        pred = (self.user_tower(self.user_warm[users2]) * self.item_tower(torch.where(replace, phi, warm))).sum(-1)
        target = (self.user_warm[users2] * warm).sum(-1)
        mse = (pred - target).pow(2).mean()
        similarity = (phi - warm).pow(2).sum(-1).mean()
        return {"loss": mse + self.params.alpha * similarity, "mse": mse, "similarity": similarity}

    def final_vectors(self):
        items = torch.where(self.isolated, self.transform(self.content), self.item_warm)
        return self.user_tower(self.user_warm), self.item_tower(items)
