"""CGRC: Kim, Kim, Yeo, Jeon, Kim, Lee & Lee, "Content-based Graph Reconstruction for Cold-start Item
Recommendation", SIGIR 2024 (our reading of the paper's published description; see docs/coldstart.md).

A cold item is an isolated node, so graph convolution cannot reach it. CGRC gives it edges: a masked
graph autoencoder learns, from content, which users a fresh item would have, and the recommender
then convolves over the graph completed with those inferred edges.
- Fresh items: the zero-shot cold items, plus, in each training epoch, a random share `mask_rate`
  of warm items whose edges are masked ("simulating fresh items without connection to users").
  A fresh item's node vector is its content embedding g(x_i); a warm item's is e_i + g(x_i).
- Graph completion (no gradient): LightGCN over the masked graph gives user vectors h_u; each fresh
  item gets edges to its `inferred_edges` users with the highest decoder score h_u · g(x_i).
- Recommender: LightGCN over the completed graph, BPR on the batch plus L2 on its ego vectors, and
  the reconstruction loss of the masked edges: −log σ(h_u · g(x_i) − h_u · g(x_j)) for batch pairs
  whose positive i is fresh this epoch (the decoder learns to find an item's users from content).
At scoring time the cold items are completed the same way on the full train graph.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from motorec.config import NonNegativeFloat, NonNegativeInt, PositiveInt, Probability
from motorec.data.graph import FrozenSparse, to_torch_sparse, user_item_adjacency
from motorec.models.base import bpr_loss, l2_reg, register_model
from motorec.models.coldstart.common import ColdStartRecommender, mlp
from motorec.models.content import ContentParams
from motorec.models.context import ModelContext
from motorec.models.lightgcn import propagate


class CGRCParams(ContentParams):
    embedding_dim: PositiveInt
    n_layers: NonNegativeInt  # LightGCN layers of encoder and recommender
    hidden: list[PositiveInt]  # content encoder hidden layers
    reg_weight: NonNegativeFloat  # L2 on the batch's ego vectors
    mask_rate: Probability  # share of warm items whose edges are masked each epoch
    inferred_edges: PositiveInt  # users linked to each fresh item by the decoder
    recon_weight: NonNegativeFloat  # weight of the masked-edge reconstruction loss


@register_model("cgrc")
class CGRC(ColdStartRecommender):
    """LightGCN over the train graph completed with content-inferred edges for fresh (masked or cold) items."""

    Params = CGRCParams

    def __init__(self, ctx: ModelContext, params: CGRCParams) -> None:
        super().__init__(ctx, params)
        self.init_tables(self.params.embedding_dim)
        self.encoder = mlp([self.content_dim, *self.params.hidden, self.params.embedding_dim])
        self.register_buffer("fresh", self.isolated.clone(), persistent=False)
        self.adj = FrozenSparse(ctx.norm_adj, symmetric=True)

    def ego(self, fresh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(user + item node vectors, content embeddings g(x)); fresh items carry no ID vector."""
        content = self.encoder(self.content)
        items = torch.where(fresh, content, self.item_repr() + content)
        return torch.cat([self.user_emb, items]), content

    @torch.no_grad()
    def completed_graph(self, fresh: torch.Tensor) -> FrozenSparse:
        """Train graph without the fresh items' edges, plus each fresh item's top inferred users."""
        train = self.ctx.dataset.train_matrix.tocsr().astype(np.float32)
        fresh_items = torch.nonzero(fresh.squeeze(1)).squeeze(1).cpu().numpy()
        keep = np.ones(self.n_items, dtype=np.float32)
        keep[fresh_items] = 0
        masked = (train @ sp.diags(keep)).tocsr()
        masked.eliminate_zeros()
        ego, content = self.ego(fresh)
        adj = FrozenSparse(to_torch_sparse(user_item_adjacency(masked), self.ctx.device), symmetric=True)
        users = propagate(adj, ego, self.params.n_layers)[: self.n_users]
        k = min(int(self.params.inferred_edges), self.n_users)
        top = (users @ content[fresh_items].T).topk(k, dim=0).indices  # (k, n_fresh) users per fresh item
        inferred = sp.csr_matrix(
            (np.ones(top.numel(), np.float32), (top.reshape(-1).cpu().numpy(), np.tile(fresh_items, k))),
            shape=train.shape,
        )
        return FrozenSparse(to_torch_sparse(user_item_adjacency(masked + inferred), self.ctx.device), symmetric=True)

    def on_epoch_start(self, epoch: int) -> None:
        warm = ~self.isolated.squeeze(1)
        masked = warm & (torch.rand(self.n_items, device=warm.device) < self.params.mask_rate)
        self.fresh = (self.isolated.squeeze(1) | masked).unsqueeze(1)
        self.adj = self.completed_graph(self.fresh)

    def propagated(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(propagated node vectors, ego node vectors, content embeddings) on the current graph."""
        ego, content = self.ego(self.fresh)
        return propagate(self.adj, ego, self.params.n_layers), ego, content

    def calculate_loss(self, users, pos, neg):
        out, ego, content = self.propagated()
        u, items = out[: self.n_users][users], out[self.n_users :]
        rec = bpr_loss((u * items[pos]).sum(-1), (u * items[neg]).sum(-1))
        fresh_pos = self.fresh.squeeze(1)[pos]
        recon = (
            -F.logsigmoid((u * (content[pos] - content[neg])).sum(-1)) * fresh_pos
        ).sum() / fresh_pos.sum().clamp_min(1)
        reg = self.params.reg_weight * l2_reg(ego[users], ego[self.n_users + pos], ego[self.n_users + neg])
        loss = rec + self.params.recon_weight * recon + reg
        return {"loss": loss, "bpr": rec, "reconstruction": recon, "reg": reg}

    def prepare_scoring(self) -> None:
        self.fresh = self.isolated.clone()  # scoring: only the real cold items are completed
        self.adj = self.completed_graph(self.fresh)
        super().prepare_scoring()

    def final_vectors(self):
        out = self.propagated()[0]
        return out[: self.n_users], out[self.n_users :]
