"""Training-free content baselines every cold-start claim must beat: content profile and ItemKNN-CBF.

ItemKNN-CBF: Dacrema et al., "Are We Really Making Much Progress? A Worrying Analysis of Recent
Neural Recommendation Approaches", RecSys 2019 (MMRec's `ItemKNNCBF`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from motorec.config import ConfigModel, NonNegativeFloat, PositiveInt
from motorec.data.graph import topk_cosine
from motorec.errors import MotorecError
from motorec.models.base import Recommender, register_model
from motorec.models.context import ModelContext


def selected_modalities(ctx: ModelContext, wanted: list[str] | None) -> list[str]:
    """The `modalities` parameter (null = all the dataset has), checked against the dataset."""
    if not wanted:
        return ctx.modalities
    missing = [m for m in wanted if m not in ctx.modalities]
    if missing:
        raise MotorecError(
            f"model parameter 'modalities': {', '.join(missing)} not in dataset '{ctx.dataset.name}' "
            f"(it has {', '.join(ctx.modalities) or 'none'})."
        )
    return list(wanted)


def centred_unit(x: torch.Tensor) -> torch.Tensor:
    """Subtract the catalogue mean, then L2-normalise rows: removes the shared 'average item' direction."""
    return F.normalize(x - x.mean(0, keepdim=True), dim=1)


class ContentParams(ConfigModel):
    modalities: list[str] | None = None  # null = every modality the dataset has


class _ContentModel(Recommender):
    trainable = False
    content_path = True
    min_modalities = 1

    def __init__(self, ctx: ModelContext, params: Any) -> None:
        super().__init__(ctx, params)
        self.modalities = selected_modalities(ctx, self.params.modalities)


@register_model("content_profile")
class ContentProfile(_ContentModel):
    """User = sum of the centred, L2-normalised content of their train items; score = dot product.

    Modalities are centred and normalised one by one, then concatenated, so each weighs the same.
    """

    Params = ContentParams

    def __init__(self, ctx: ModelContext, params: Any) -> None:
        super().__init__(ctx, params)
        items = torch.cat([centred_unit(ctx.features(m)) for m in self.modalities], dim=1)
        train = ctx.dataset.train_matrix
        users = torch.from_numpy(np.asarray(train @ items.cpu().numpy(), dtype=np.float32)).to(ctx.device)
        self.register_buffer("item_vecs", items, persistent=False)
        self.register_buffer("user_vecs", users, persistent=False)

    def embeddings(self):
        return self.user_vecs, self.item_vecs

    def full_sort_predict(self, users):
        return self.user_vecs[users] @ self.item_vecs.T


@register_model("itemknn_cbf")
class ItemKNNCBF(_ContentModel):
    """score(u, j) = Σ_{i ∈ train(u)} S_ij, S = each item's top-k shrunk cosine neighbours (itself included).

    As MMRec: modalities' raw features concatenated, similarity x_i·x_j / (|x_i||x_j| + shrink).
    """

    class Params(ContentParams):
        knn_k: PositiveInt
        shrink: NonNegativeFloat

    def __init__(self, ctx: ModelContext, params: Any) -> None:
        super().__init__(ctx, params)
        feats = torch.cat([ctx.features(m).cpu() for m in self.modalities], dim=1)
        rows, cols, vals = topk_cosine(feats, self.params.knn_k, shrink=self.params.shrink, exclude_self=False)
        n = ctx.n_items
        self.sim = sp.csr_matrix((vals.numpy(), (rows.numpy(), cols.numpy())), shape=(n, n))
        self.history = ctx.dataset.train_matrix

    def full_sort_predict(self, users):
        scores = (self.history[users.cpu().numpy()] @ self.sim).toarray()
        return torch.from_numpy(scores.astype(np.float32)).to(self.ctx.device)
