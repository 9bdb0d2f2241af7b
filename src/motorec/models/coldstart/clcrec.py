"""CLCRec: Wei, Wang, Li, Nie, Li, Li & Chua, "Contrastive Learning for Cold-Start Recommendation", ACM MM 2021.

CLCRec learns its own collaborative embeddings (users e_u, items e_i: no backbone) and a content
encoder f, and maximises two mutual informations with InfoNCE on cosine similarities at temperature τ:
- user-item (U-I): a user against its positive item among the batch's items,
  −log exp(s(e_u, r_i)/τ) / Σ_j exp(s(e_u, r_j)/τ), where an item's representation r_j is its
  collaborative embedding or, with probability `content_rate`, its content embedding f(x_j), so
  users learn to rank content embeddings too;
- representation-embedding (R-E): an item's collaborative embedding against its own content
  embedding among the batch's items, −log exp(s(e_i, f(x_i))/τ) / Σ_j exp(s(e_i, f(x_j))/τ).
Loss = λ · L_UI + (1 − λ) · L_RE (λ = `ui_weight`; regularisation through the optimiser's weight decay). Negatives are
the other distinct items of the batch (positives and sampled negatives). Scoring uses the same cosine
geometry: unit user vectors against unit item vectors, e_i for warm items and f(x_i) for cold ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from motorec.config import PositiveFloat, PositiveInt, UnitInterval
from motorec.models.base import register_model
from motorec.models.coldstart.common import ColdStartRecommender, mlp, warm_cold_readout
from motorec.models.content import ContentParams
from motorec.models.context import ModelContext


def info_nce(
    queries: torch.Tensor, keys: torch.Tensor, temperature: float, targets: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean −log softmax of cos(queries, keys)/τ at each row's positive key (default: key i for row i)."""
    logits = F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T / temperature
    targets = torch.arange(len(queries), device=queries.device) if targets is None else targets
    return F.cross_entropy(logits, targets)


class CLCRecParams(ContentParams):
    embedding_dim: PositiveInt
    hidden: list[PositiveInt]  # content encoder hidden layers
    temperature: PositiveFloat  # InfoNCE temperature on cosine similarities
    ui_weight: UnitInterval  # λ: weight of the user-item term; 1 − λ for the embedding-content term
    content_rate: UnitInterval  # probability that an item enters the user-item term as its content embedding


@register_model("clcrec")
class CLCRec(ColdStartRecommender):
    """Contrastive user-item and embedding-content objectives; cold items scored by their content embedding."""

    Params = CLCRecParams

    def __init__(self, ctx: ModelContext, params: CLCRecParams) -> None:
        super().__init__(ctx, params)
        self.init_tables(self.params.embedding_dim)
        self.encoder = mlp([self.content_dim, *self.params.hidden, self.params.embedding_dim])

    def calculate_loss(self, users, pos, neg):
        tau, ids = self.params.temperature, self.item_repr()
        distinct, inverse = torch.unique(torch.cat([pos, neg]), return_inverse=True)  # each batch item once
        encoded = self.encoder(self.content[distinct])
        use_content = (torch.rand(len(distinct), device=distinct.device) < self.params.content_rate).unsqueeze(1)
        reps = torch.where(use_content, encoded, ids[distinct])
        user_item = info_nce(self.user_emb[users], reps, tau, targets=inverse[: len(users)])
        rep_emb = info_nce(ids[distinct], encoded, tau)
        lam = self.params.ui_weight
        return {"loss": lam * user_item + (1 - lam) * rep_emb, "user_item": user_item, "rep_emb": rep_emb}

    def final_vectors(self):
        items = warm_cold_readout(self.user_emb, self.item_repr(), self.encoder(self.content), self.isolated)[1]
        return F.normalize(self.user_emb, dim=-1), F.normalize(items, dim=-1)
