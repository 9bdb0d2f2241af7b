"""GAR: Chen, Wang, Huang, Huang, Xu, Lin, He & Li, "Generative Adversarial Framework for Cold-Start Item
Recommendation", SIGIR 2022.

A generator G maps content to a warm-like item vector; a recommender R(u, v) = f_U(U_u) · f_I(v)
(two towers over the backbone's vectors) scores users against item vectors. R is the warm
recommender fine-tuned, as in the paper: its towers are residual (x + MLP(x)) and start as the
identity, so R starts as the backbone's own U_u · V_i. They are trained
adversarially on the batch (u, i, j) with positive i and negative j:
- recommender: L_R = −log σ(R(u, V_i) − α R(u, V_j) − (1 − α) R(u, G(x_i))): rank the real
  positive above both a real negative and the generated ("fake") positive;
- generator: L_G = (1 − β) · −log σ(R(u, G(x_i)) − R(u, V_i)) + β · ||G(x_i) − V_i||₁: fool the
  recommender into ranking the generated vector as high as the real one, with an L1 anchor.
Each loss updates only its own player: R's loss sees G(x) detached, G's loss sees R's weights
detached, so one optimiser step is one simultaneous step of both players. At inference R scores
every item: warm items through V_i, cold items through G(x_i).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from motorec.config import PositiveInt, UnitInterval
from motorec.models.base import register_model
from motorec.models.coldstart.common import ColdStartRecommender, ResidualTower, SpecialistParams, mlp, per_item
from motorec.models.context import ModelContext


def frozen(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """module(x) with its parameters detached: gradients reach x, never the module."""
    return functional_call(module, {k: v.detach() for k, v in module.named_parameters()}, (x,))


class GARParams(SpecialistParams):
    tower_hidden: list[PositiveInt]  # hidden layers of the recommender's user and item towers
    alpha: UnitInterval  # recommender loss: weight of the real negative against the generated positive
    beta: UnitInterval  # generator loss: weight of the L1 anchor against the adversarial term


@register_model("gar")
class GAR(ColdStartRecommender):
    """A content generator trained adversarially against a recommender that must tell it from warm vectors."""

    Params = GARParams

    def __init__(self, ctx: ModelContext, params: GARParams) -> None:
        super().__init__(ctx, params)
        d, p = self.backbone_dim, self.params
        self.generator = mlp([self.content_dim, *p.hidden, d])
        self.user_tower = ResidualTower(d, p.tower_hidden)
        self.item_tower = ResidualTower(d, p.tower_hidden)

    def losses(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        """The two players' losses separately (each only has gradients for its own parameters)."""
        alpha, beta = self.params.alpha, self.params.beta
        u, real, negative = self.user_warm[users], self.item_warm[pos], self.item_warm[neg]
        fake = per_item(self.generator, self.content, pos)
        fu = self.user_tower(u)
        score = lambda items: (fu * self.item_tower(items)).sum(-1)
        rec = -F.logsigmoid(score(real) - alpha * score(negative) - (1 - alpha) * score(fake.detach())).mean()
        fu_frozen = frozen(self.user_tower, u)
        frozen_score = lambda items: (fu_frozen * frozen(self.item_tower, items)).sum(-1)
        adversarial = -F.logsigmoid(frozen_score(fake) - frozen_score(real)).mean()
        anchor = (fake - real).abs().sum(-1).mean()
        return {"recommender": rec, "generator": (1 - beta) * adversarial + beta * anchor, "anchor": anchor}

    def calculate_loss(self, users, pos, neg):
        parts = self.losses(users, pos, neg)
        return {"loss": parts["recommender"] + parts["generator"], **parts}

    def final_vectors(self):
        items = torch.where(self.isolated, self.generator(self.content), self.item_warm)
        return self.user_tower(self.user_warm), self.item_tower(items)
