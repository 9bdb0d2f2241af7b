"""What the cold-start specialists share: the warm backbone, the content input, the readout.

Every specialist is used as in practice: a warm model (any finished motorec embedding run, BPR-MF or
LightGCN) has already placed users and warm items; the specialist learns, from the warm items, how
to place an item from its content, and at scoring time a zero-shot cold item (no train
interactions) gets the generated vector while warm items keep the backbone's
(`warm_cold_readout`). Which backbone run a seed reads is decided by the training layer
(`training/backbone.py`: paired seed, trained once and cached); this module only loads it.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from pydantic import Field

from motorec.config import ConfigModel, PositiveInt, Seed
from motorec.errors import MotorecError
from motorec.models.base import EmbeddingRecommender
from motorec.models.content import ContentParams, centred_unit, selected_modalities
from motorec.models.context import ModelContext
from motorec.tokenizers.rqvae import mlp  # the one MLP (Linear + ReLU); the specialists import it from here


class BackboneSpec(ConfigModel):
    """`model.backbone`: which warm model a specialist learns from (resolved per seed by training/backbone.py)."""

    model: str  # bpr, lightgcn or any motorec embedding model
    run: str | None = None  # a finished run; null = trained once per seed into <cache_dir>/backbones
    seed: Seed | None = None  # which of its seeds; null = the specialist's own seed (paired)
    set: list[str] = Field(default_factory=list)  # --set overrides of a cached backbone run


class SpecialistParams(ContentParams):
    """Parameters every backbone specialist has: its backbone, content modalities, MLP hidden layers."""

    backbone: BackboneSpec
    hidden: list[PositiveInt]


def load_backbone(ctx: ModelContext, spec: BackboneSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(user vectors, item vectors) of the backbone run `spec.run` at seed `spec.seed`, frozen."""
    from motorec.models.factory import load_trained  # the factory imports the model registry

    if not spec.run:
        raise MotorecError(
            "model.backbone.run is not set: train through `motorec train` (it trains or reuses the "
            "backbone) or pass --set model.backbone.run=RUN_DIR of a finished bpr/lightgcn run."
        )
    _, _, model = load_trained(spec.run, spec.seed, dataset=ctx.dataset)
    if not isinstance(model, EmbeddingRecommender):
        raise MotorecError(
            f"model.backbone.run {spec.run}: model '{model.name}' does not score by user and item "
            "vectors; use an embedding model (bpr, lightgcn, ...)."
        )
    model.eval()
    with torch.no_grad():
        users, items = model.final_vectors()
    return users.detach().to(ctx.device).clone(), items.detach().to(ctx.device).clone()


def content_matrix(ctx: ModelContext, modalities: list[str] | None) -> torch.Tensor:
    """Item content: each modality centred and L2-normalised, then concatenated (each weighs the same)."""
    return torch.cat([centred_unit(ctx.features(m)) for m in selected_modalities(ctx, modalities)], dim=1)


def per_item(net: torch.nn.Module, inputs: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """net(inputs[keys]) computed once per distinct key: a BPR batch repeats popular items many times,
    and the content layers (1664 inputs on ml100k-mm) dominate a specialist's cost. Same values and
    gradients as the row-by-row call."""
    distinct, inverse = torch.unique(keys, return_inverse=True)
    return net(inputs[distinct])[inverse]


class ResidualTower(torch.nn.Module):
    """x + MLP(x) with the MLP's output layer starting at zero: a tower that starts as the identity.

    A recommender built over the backbone's vectors (GAR's R) then starts as the backbone's own dot
    product and is fine-tuned from there, instead of re-learning warm ranking from random towers.
    """

    def __init__(self, dim: int, hidden: list[int]) -> None:
        super().__init__()
        self.net = mlp([dim, *hidden, dim])
        out = cast(torch.nn.Linear, self.net[-1])
        torch.nn.init.zeros_(out.weight)
        torch.nn.init.zeros_(out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def warm_cold_readout(
    users: torch.Tensor,
    warm_items: torch.Tensor,
    cold_items: torch.Tensor,
    cold: torch.Tensor,
    cold_users: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Warm items keep their vectors, cold items (`cold`, (n_items, 1) bool) get the generated ones.

    With `cold_users` (a method that also maps users for the cold side, e.g. ALDI's f_U) a warm item is
    scored by users · warm and a cold item by cold_users · generated: users become [users ; cold_users]
    and items [warm ; 0] or [0 ; generated], so one dot product still scores every item.
    """
    if cold_users is None:
        return users, torch.where(cold, cold_items, warm_items)
    warm = warm_items * (~cold).float()
    generated = cold_items * cold.float()
    return torch.cat([users, cold_users], dim=1), torch.cat([warm, generated], dim=1)


class ColdStartRecommender(EmbeddingRecommender):
    """Base of the specialists: content input (`self.content`), the cold mask, and, when the
    parameters have a `backbone` section, the frozen backbone vectors `self.user_warm`, `self.item_warm`.

    Cold items are the zero-shot ones (no train interactions: `self.isolated`); the BPR sampler never
    draws them, so a specialist learns only from warm items and generates vectors for the cold ones.
    """

    content_path = True
    min_modalities = 1
    content: torch.Tensor  # (n_items, content_dim) item content (content_matrix)
    user_warm: torch.Tensor  # the backbone's user vectors (with a backbone)
    item_warm: torch.Tensor  # the backbone's item vectors (with a backbone)

    def __init__(self, ctx: ModelContext, params: Any) -> None:
        super().__init__(ctx, params)
        self.register_buffer("content", content_matrix(ctx, self.params.modalities), persistent=False)
        backbone = getattr(self.params, "backbone", None)
        if backbone is not None:
            users, items = load_backbone(ctx, backbone)
            self.register_buffer("user_warm", users, persistent=False)
            self.register_buffer("item_warm", items, persistent=False)

    @property
    def content_dim(self) -> int:
        return int(self.content.shape[1])

    @property
    def backbone_dim(self) -> int:
        return int(self.item_warm.shape[1])
