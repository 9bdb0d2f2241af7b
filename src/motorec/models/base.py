"""The Recommender contract shared by every model, and the model registry.

MMRec's contract (`calculate_loss`, `full_sort_predict`) for training and evaluation, plus
cornac-style `score`/`recommend` for users of the library. Graphs and features come from the
shared ModelContext; item base vectors from the item-representation hook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch import nn

from motorec.config import ConfigModel, NoParams, register_params, validate_params
from motorec.errors import MotorecError, did_you_mean
from motorec.models.context import ModelContext
from motorec.models.item_repr import build_item_repr, uses_ids
from motorec.tokenizers.base import TokenSlot


@dataclass(frozen=True)
class TrainingStage:
    """One stage of training, early-stopped on its own validation group.

    The trainer runs a model's stages in order, each with the shared early-stopping loop and a
    fresh optimiser over the parameters that still require gradients after `begin_stage(name)`;
    the next stage starts from the previous stage's best-validation weights. `select` is the
    validation group (Recall@20) the stage is selected on; a split without that group (a warm
    split has no `cold@cold`) selects on `all`.
    """

    name: str
    select: str = "all"


class Recommender(nn.Module):
    """Subclasses implement calculate_loss and full_sort_predict; everything else is optional."""

    name: ClassVar[str] = ""
    #: True when a zero-shot cold item (no train interactions) is scored through item content.
    content_path: ClassVar[bool] = False
    #: False for training-free models (content profile, ItemKNN): the loop skips optimisation.
    trainable: ClassVar[bool] = True
    #: Modalities the model needs at least (0 = graph only).
    min_modalities: ClassVar[int] = 0
    #: The typed parameters the config's `model:` section is validated into (values in configs/models/<name>.yaml).
    Params: ClassVar[type[ConfigModel]] = NoParams

    def __init__(self, ctx: ModelContext, params: Any) -> None:
        super().__init__()
        if not isinstance(params, self.Params):
            params = validate_params(self.Params, params, f"model '{self.name}'")
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

    def training_stages(self) -> tuple[TrainingStage, ...]:
        """The stages `fit` trains one after another (default: one stage, all parameters, selected on `all`)."""
        return (TrainingStage("joint"),)

    def begin_stage(self, name: str) -> None:
        """Called before each stage of `training_stages()` (freeze here what the stage must not train)."""

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


class EmbeddingRecommender(Recommender):
    """Users and items as vectors, score = their dot product: the public base of every embedding model.

    A subclass implements `final_vectors()` (all propagated user and item vectors); this base caches
    them for evaluation (`prepare_scoring`), scores full rankings, hands the vectors to serving
    (`embeddings`) and reads zero-shot cold items out of a graph (`read_items`). `init_tables(dim)`
    adds the usual tables: `user_emb` and `item_repr` (IDs or tokens, from the one
    item-representation hook); models with their own layout (MoToRec) do not call it.
    """

    isolated: torch.Tensor  # (n_items, 1): items without train interactions (zero-shot cold)

    def __init__(self, ctx: ModelContext, params: Any) -> None:
        super().__init__(ctx, params)
        self.register_buffer("isolated", (ctx.item_degree == 0).unsqueeze(1), persistent=False)
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def init_tables(self, dim: int) -> None:
        """The usual layout: `user_emb` (n_users, dim) and `item_repr` (IDs or tokens, from the hook)."""
        self.user_emb = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, dim)))
        self.item_repr = build_item_repr(self.ctx, dim)

    def final_vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(user vectors (n_users, d), item vectors (n_items, d)) as scored."""
        raise NotImplementedError

    def read_items(self, propagated: torch.Tensor, ego: torch.Tensor) -> torch.Tensor:
        """Item vectors after graph propagation, cold-aware for ID-free item representations.

        A zero-shot item is an isolated node: the layer mean shrinks it to ego / (L+1) while warm
        items add their propagated layers, so it never reaches a full ranking. With a token
        representation its ego vector is meaningful, so it is read out whole; in training a
        random share `cold_dropout` (set by the representation) of items is read out the same
        way, DropoutNet's cold simulation (Volkovs et al., NeurIPS 2017), which trains ego vectors
        to rank on the propagated vectors' scale. ID tables keep the plain layer mean.
        """
        if uses_ids(self.item_repr) or getattr(self.item_repr, "cold_readout", "mean") != "ego":
            return propagated
        cold = self.isolated
        share = float(getattr(self.item_repr, "cold_dropout", 0.0))
        if self.training and share > 0:
            cold = cold | (torch.rand(cold.shape, device=cold.device) < share)
        return torch.where(cold, ego, propagated)

    def prepare_scoring(self) -> None:
        self._cache = self.final_vectors()

    def finish_scoring(self) -> None:
        self._cache = None

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._cache if self._cache is not None else self.final_vectors()

    def full_sort_predict(self, users: torch.Tensor) -> torch.Tensor:
        u_all, i_all = self.embeddings()
        return u_all[users] @ i_all.T


MODELS: dict[str, type[Recommender]] = {}


def register_model(name: str) -> Callable[[type[Recommender]], type[Recommender]]:
    def wrap(cls: type[Recommender]) -> type[Recommender]:
        cls.name = name
        MODELS[name] = cls
        register_params(name, cls.Params)
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
    return cast(torch.Tensor, sum(t.pow(2).sum() for t in tensors)) / 2 / tensors[0].shape[0]
