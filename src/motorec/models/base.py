"""The Recommender contract shared by every model, and the model registry.

MMRec's contract (`calculate_loss`, `full_sort_predict`) for training and evaluation, plus
cornac-style `score`/`recommend` for users of the library. Graphs and features come from the
shared ModelContext; item base vectors from the item-representation hook.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np
import torch
from torch import nn

from motorec.errors import MotorecError, did_you_mean
from motorec.models.context import ModelContext
from motorec.tokenizers.base import TokenSlot


class Recommender(nn.Module):
    """Subclasses implement calculate_loss and full_sort_predict; everything else is optional."""

    name: ClassVar[str] = ""
    #: True when a zero-shot cold item (no train interactions) is scored through item content.
    content_path: ClassVar[bool] = False
    #: False for training-free models (content profile, ItemKNN): the loop skips optimisation.
    trainable: ClassVar[bool] = True
    #: Modalities the model needs at least (0 = graph only).
    min_modalities: ClassVar[int] = 0

    def __init__(self, ctx: ModelContext, params: dict[str, Any]) -> None:
        super().__init__()
        if len(ctx.modalities) < self.min_modalities:
            raise MotorecError(
                f"model '{self.name}' needs at least {self.min_modalities} content modalities; "
                f"dataset '{ctx.dataset.name}' has {len(ctx.modalities)} ({', '.join(ctx.modalities) or 'none'})."
            )
        self.ctx = ctx
        self.params = params
        self.n_users = ctx.n_users
        self.n_items = ctx.n_items

    def calculate_loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> dict[str, torch.Tensor]:
        """Losses for one BPR batch; must contain 'loss' (the sum that is optimised)."""
        raise NotImplementedError

    def full_sort_predict(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of these users against every item: (len(users), n_items)."""
        raise NotImplementedError

    def on_epoch_start(self, epoch: int) -> None:
        """Hook for per-epoch work (graph refresh, codebook restarts)."""

    def prepare_scoring(self) -> None:
        """Called under no_grad before evaluation: cache propagated embeddings here."""

    def finish_scoring(self) -> None:
        """Drop caches made by prepare_scoring."""

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Final (user, item) vectors when scores are their dot product (serving indexes them)."""
        return None

    def token_table(self) -> tuple[np.ndarray, list[TokenSlot]] | None:
        """(codes (n_items, slots), what each column means) of the item tokens the model reads,
        or None for a model without tokens. Default: the token item representation's table."""
        if self.ctx.tokens is None or self.ctx.token_slots is None:
            return None
        return np.asarray(self.ctx.tokens), list(self.ctx.token_slots)

    # cornac-style convenience API -------------------------------------------------------------
    @torch.no_grad()
    def score(self, user: int, items: np.ndarray | None = None) -> np.ndarray:
        if not 0 <= user < self.n_users:
            raise MotorecError(f"unknown user id {user}: this model knows users 0..{self.n_users - 1}.")
        self.eval()
        self.prepare_scoring()
        scores = self.full_sort_predict(torch.tensor([user], device=self.ctx.device))[0].cpu().numpy()
        self.finish_scoring()
        if items is None:
            return scores
        items = np.asarray(items)
        unknown = items[(items < 0) | (items >= self.n_items)]
        if len(unknown):
            raise MotorecError(f"unknown item id {unknown[0]}: this model knows items 0..{self.n_items - 1}.")
        return scores[items]

    def recommend(self, user: int, k: int = 20, exclude_seen: bool = True) -> np.ndarray:
        scores = self.score(user)
        if exclude_seen:
            seen = self.ctx.dataset.train_matrix[user].indices
            scores[seen] = -np.inf
        order = np.lexsort((np.arange(self.n_items), -scores))
        return order[:k]


MODELS: dict[str, type[Recommender]] = {}


def register_model(name: str) -> Callable[[type[Recommender]], type[Recommender]]:
    def wrap(cls: type[Recommender]) -> type[Recommender]:
        cls.name = name
        MODELS[name] = cls
        return cls

    return wrap


def model_class(name: str) -> type[Recommender]:
    if name not in MODELS:
        raise MotorecError(f"unknown model '{name}'. Known: {', '.join(sorted(MODELS))}.{did_you_mean(name, MODELS)}")
    return MODELS[name]


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    return -torch.nn.functional.logsigmoid(pos_scores - neg_scores).mean()


def l2_reg(*tensors: torch.Tensor) -> torch.Tensor:
    """Sum of squared norms / 2 / batch size (the usual per-batch embedding regulariser)."""
    return sum(t.pow(2).sum() for t in tensors) / 2 / tensors[0].shape[0]
