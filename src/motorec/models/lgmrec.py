"""LGMRec: Guo et al., "LGMRec: Local and Global Graph Learning for Multimodal Recommendation", AAAI 2024.

Local: collaborative embeddings (LightGCN over users + item IDs) plus, per modality, modal graph
embeddings (projected item features, users as the mean of their items, propagated over the user-item
graph). Global: a hypergraph per modality whose item-hyperedge memberships are Gumbel-softmax of
features × learned hyperedge vectors (users: summed over their items); hypergraph convolution of the
collaborative item vectors gives global embeddings. Final = local + α·normalize(global); BPR +
`cl_weight` × InfoNCE between the modalities' global embeddings + `reg_weight` × EmbLoss.

Changes, each needed and small: evaluation uses the softmax without Gumbel noise (deterministic
scores); with a single modality (text-only data) the cross-modal InfoNCE has no pair and is skipped,
while MMRec falls back to plain LightGCN and loses all content; a node with no edges keeps its own
projected features in the modal graph embedding (propagation would zero it).

Cold items: ID row zeroed; scored through their own projected features (local modal embedding) and
their hyperedge memberships (global embedding).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Any, cast

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from motorec.config import ConfigModel, NonNegativeFloat, NonNegativeInt, PositiveInt
from motorec.data.graph import FrozenSparse, row_normalize, to_torch_sparse
from motorec.models.base import bpr_loss, register_model
from motorec.models.context import ModelContext
from motorec.models.lightgcn import IDEmbeddingModel, propagate
from motorec.models.multimodal import item_vectors, norm_reg, warm_mask

TAU = 0.2


def xavier(rows: int, cols: int) -> nn.Parameter:
    return nn.Parameter(nn.init.xavier_uniform_(torch.empty(rows, cols)))


def info_nce(a: torch.Tensor, b: torch.Tensor, all_b: torch.Tensor) -> torch.Tensor:
    """-Σ log softmax over all rows of `all_b` at the matching row (MMRec's ssl_triple_loss)."""
    a = F.normalize(a) / TAU  # scale the (batch, d) side, not the (batch, n) logits
    b, all_b = F.normalize(b), F.normalize(all_b)
    return -((a * b).sum(1) - torch.logsumexp(a @ all_b.T, dim=1)).sum()


@register_model("lgmrec")
class LGMRec(IDEmbeddingModel):
    """Local graph + global hypergraph embeddings per modality (Guo et al., AAAI 2024)."""

    warm: torch.Tensor  # items with train interactions (warm_mask)
    user_active: torch.Tensor  # (n_users, 1): users with train interactions

    class Params(ConfigModel):
        embedding_dim: PositiveInt
        feat_embed_dim: PositiveInt
        n_ui_layers: NonNegativeInt
        n_mm_layers: NonNegativeInt
        n_hyper_layer: PositiveInt
        hyper_num: PositiveInt
        keep_rate: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
        alpha: NonNegativeFloat
        cl_weight: NonNegativeFloat
        reg_weight: NonNegativeFloat

    content_path = True
    min_modalities = 1

    def __init__(self, ctx: ModelContext, params: Any) -> None:
        super().__init__(ctx, params)
        train = ctx.dataset.train_matrix
        self.interactions = FrozenSparse(to_torch_sparse(train, ctx.device))
        self.user_mean = FrozenSparse(to_torch_sparse(row_normalize(train), ctx.device))
        self.adj = FrozenSparse(ctx.norm_adj, symmetric=True)
        self.register_buffer("warm", warm_mask(ctx), persistent=False)
        self.register_buffer(
            "user_active",
            (torch.from_numpy(ctx.dataset.user_degree) > 0).float().unsqueeze(1).to(ctx.device),
            persistent=False,
        )
        for m in ctx.modalities:
            self.register_buffer(f"feat_{m}", ctx.features(m), persistent=False)
        d_feat = {m: ctx.features(m).shape[1] for m in ctx.modalities}
        self.trs = nn.ParameterDict({m: xavier(d, self.params.feat_embed_dim) for m, d in d_feat.items()})
        self.hyper = nn.ParameterDict({m: xavier(d, self.params.hyper_num) for m, d in d_feat.items()})
        self.drop = nn.Dropout(1 - self.params.keep_rate)

    def _feat(self, m: str) -> torch.Tensor:
        return getattr(self, f"feat_{m}")

    def _memberships(self, logits: torch.Tensor) -> torch.Tensor:
        if self.training:
            return F.gumbel_softmax(logits, TAU, dim=1, hard=False)
        return torch.softmax(logits / TAU, dim=1)

    def _modal_graph(self, m: str) -> torch.Tensor:
        items = self._feat(m) @ self.trs[m]
        ego = torch.cat([self.user_mean @ items, items])
        out = ego
        for _ in range(self.params.n_mm_layers):
            out = self.adj @ out
        isolated = torch.cat([1 - self.user_active, 1 - self.warm])
        return out + isolated * ego

    def _hypergraph(self, m: str, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        i_logits = self._feat(m) @ self.hyper[m]
        i_hyper = self.drop(self._memberships(i_logits))
        u_hyper = self.drop(self._memberships(self.interactions @ i_logits))
        lat = i_hyper.T @ items
        i_ret, u_ret = i_hyper @ lat, u_hyper @ lat
        for _ in range(self.params.n_hyper_layer - 1):
            lat = i_hyper.T @ i_ret
            i_ret = i_hyper @ lat
            u_ret = u_hyper @ lat
        return u_ret, i_ret

    def _forward(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        ids = item_vectors(self.item_repr, self.warm)
        cge = propagate(self.adj, torch.cat([self.user_emb, ids]), self.params.n_ui_layers)
        cge = torch.cat([cge[: self.n_users], self.read_items(cge[self.n_users :], ids)])
        mge = sum(F.normalize(self._modal_graph(m)) for m in self.trs)
        hyper = {m: torch.cat(self._hypergraph(m, cge[self.n_users :])) for m in self.trs}
        ghe = cast(torch.Tensor, sum(hyper.values()))
        out = cge + mge + self.params.alpha * F.normalize(ghe)
        return out[: self.n_users], out[self.n_users :], hyper

    def final_vectors(self):
        users, items, _ = self._forward()
        return users, items

    def calculate_loss(self, users, pos, neg):
        u_all, i_all, hyper = self._forward()
        u, p, n = u_all[users], i_all[pos], i_all[neg]
        mf = bpr_loss((u * p).sum(-1), (u * n).sum(-1))
        cl = torch.zeros((), device=u.device)
        mods = list(hyper)
        for a, b in pairwise(mods):
            ua, ia = hyper[a][: self.n_users], hyper[a][self.n_users :]
            ub, ib = hyper[b][: self.n_users], hyper[b][self.n_users :]
            cl = cl + info_nce(ua[users], ub[users], ub) + info_nce(ia[pos], ib[pos], ib)
        cl = self.params.cl_weight * cl
        reg = self.params.reg_weight * norm_reg(u, p, n)
        return {"loss": mf + cl + reg, "bpr": mf, "hcl": cl, "reg": reg}
