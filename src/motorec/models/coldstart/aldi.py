"""ALDI: Huang, Wang, Huang, Qian, Li & Chen, "Aligning Distillation For Cold-start Item Recommendation", SIGIR 2023.

The warm backbone is the teacher (score t_ui = U_u · V_i); the student scores an item from its
content, s_ui = f_U(U_u) · f_I(x_i). On a batch (u, i, j) of warm items (i positive, j negative):
- supervised: −log σ(s_ui − s_uj) (BPR on the student);
- rating-distribution aligning: |t_ui − s_ui| + |t_uj − s_uj|: the student's scores on the teacher's
  scale, so generated items compete with warm ones in one ranking;
- ranking aligning: KL(Bern(σ(t_ui − t_uj)) || Bern(σ(s_ui − s_uj))), weighted by w_i;
- identification aligning: with d_i = |v_i|² − mean_j v_i · v_j (how well an item's vector picks
  itself out from the batch's negatives), KL(Bern(σ(d_i^T)) || Bern(σ(d_i^S))), weighted by w_i.
Loss = BPR + α ranking + β identification + γ rating. The two KL terms equal the paper's binary
cross-entropy with the teacher's soft labels minus the label entropy (same gradients), so they are
zero exactly when the student matches the teacher.
Teacher-qualifying weights (popularity-aware): w_i = min(tanh(a · q_i), tanh(M)), q_i = Σ_{u ∈ N(i)}
1 / |N(u)| and a = M / mean(q), so a teacher item seen by few (or only very active) users, whose
vector is less reliable, teaches less. Scoring: warm items by U_u · V_i, cold items by
f_U(U_u) · f_I(x_i).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from motorec.config import NonNegativeFloat, PositiveFloat
from motorec.models.base import register_model
from motorec.models.coldstart.common import ColdStartRecommender, SpecialistParams, mlp, per_item, warm_cold_readout
from motorec.models.context import ModelContext

Triple = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def binary_kl(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """KL(Bern(target) || Bern(σ(logits))) elementwise: BCE with soft labels minus their entropy."""
    p = target.clamp(eps, 1 - eps)
    entropy = -(p * p.log() + (1 - p) * (1 - p).log())
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none") - entropy


def teacher_weights(train, cap: float) -> np.ndarray:
    """w_i = min(tanh(a q_i), tanh(M)), q_i = Σ_{u∈N(i)} 1/|N(u)|, a = M / mean(q) (train matrix users × items)."""
    user_degree = np.asarray(train.sum(1)).ravel()
    q = np.asarray(train.T @ (1.0 / np.maximum(user_degree, 1))).ravel()
    a = cap / max(q.mean(), 1e-12)
    return np.minimum(np.tanh(a * q), math.tanh(cap)).astype(np.float32)


def alignment_losses(student: Triple, teacher: Triple, weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """ALDI's three aligning losses for (user, positive, negative) vectors of student and teacher."""
    (su, sp, sn), (tu, tp, tn) = student, teacher
    s_pos, s_neg, t_pos, t_neg = (su * sp).sum(-1), (su * sn).sum(-1), (tu * tp).sum(-1), (tu * tn).sum(-1)
    rating = ((t_pos - s_pos).abs() + (t_neg - s_neg).abs()).mean()
    ranking = (weight * binary_kl(s_pos - s_neg, torch.sigmoid(t_pos - t_neg))).mean()
    s_id = (sp * sp).sum(-1) - (sp @ sn.T).mean(1)
    t_id = (tp * tp).sum(-1) - (tp @ tn.T).mean(1)
    identification = (weight * binary_kl(s_id, torch.sigmoid(t_id))).mean()
    return {"rating": rating, "ranking": ranking, "identification": identification}


class ALDIParams(SpecialistParams):
    alpha: NonNegativeFloat  # ranking alignment weight
    beta: NonNegativeFloat  # identification alignment weight
    gamma: NonNegativeFloat  # rating-distribution alignment weight
    popularity_weight: bool  # teacher-qualifying weights w_i; false = all 1
    weight_cap: PositiveFloat  # M: the cap tanh(M) and the slope a = M / mean(q)


@register_model("aldi")
class ALDI(ColdStartRecommender):
    """A content student distilled from the warm teacher (rating, ranking and identification alignment)."""

    Params = ALDIParams

    def __init__(self, ctx: ModelContext, params: ALDIParams) -> None:
        super().__init__(ctx, params)
        d, p = self.backbone_dim, self.params
        self.item_student = mlp([self.content_dim, *p.hidden, d])
        self.user_student = mlp([d, *p.hidden, d])
        weights = (
            teacher_weights(ctx.dataset.train_matrix, p.weight_cap)
            if p.popularity_weight
            else np.ones(ctx.n_items, dtype=np.float32)
        )
        self.register_buffer("teacher_weight", torch.from_numpy(weights).to(ctx.device), persistent=False)

    def calculate_loss(self, users, pos, neg):
        tu = self.user_warm[users]
        items = per_item(self.item_student, self.content, torch.cat([pos, neg]))
        student = (self.user_student(tu), *items.chunk(2))
        teacher = (tu, self.item_warm[pos], self.item_warm[neg])
        supervised = -F.logsigmoid((student[0] * (student[1] - student[2])).sum(-1)).mean()
        align = alignment_losses(student, teacher, self.teacher_weight[pos])
        p = self.params
        loss = supervised + p.alpha * align["ranking"] + p.beta * align["identification"] + p.gamma * align["rating"]
        return {"loss": loss, "supervised": supervised, **align}

    def final_vectors(self):
        return warm_cold_readout(
            self.user_warm,
            self.item_warm,
            self.item_student(self.content),
            self.isolated,
            cold_users=self.user_student(self.user_warm),
        )
