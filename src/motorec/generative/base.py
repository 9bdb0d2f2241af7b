"""The contract of a next-item model (TIGER, SASRec): what the sequence trainer and evaluator use.

A `SequenceRecommender` turns the train sequences into batches, computes the loss of a batch and
recommends the next items for a batch of histories. `motorec.training.sequence` trains any of them
with the one early-stopping loop and evaluates them over the full catalogue.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import torch
from pydantic import ValidationInfo, field_validator
from torch import Tensor, nn

from motorec.config import ConfigModel, PositiveInt, Probability
from motorec.generative.sequences import SequenceData


class SequenceRecommender(nn.Module, ABC):
    """A next-item model over item histories (right-aligned item ids, -1 = padding)."""

    @abstractmethod
    def batches(
        self, data: SequenceData, batch_size: int, g: torch.Generator, limit: int = 0
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """One epoch of (history, target) training batches over `data`'s train sequences, shuffled
        with `g`; `limit` > 0 draws that many examples."""

    @abstractmethod
    def loss(self, history: Tensor, target: Tensor) -> Tensor:
        """The scalar training loss of one batch from `batches`."""

    @abstractmethod
    def recommend(self, history: Tensor, k: int, exclude: Tensor | None = None) -> Tensor:
        """(B, k) recommended item ids for (B, H) histories (-1 where fewer than k exist);
        `exclude` (B, n_items) bool removes items (the user's train items) from the ranking."""


class TransformerParams(ConfigModel):
    """Sizes every transformer generator shares (values in configs/tasks/)."""

    max_len: PositiveInt  # history length
    d_model: PositiveInt
    n_heads: PositiveInt
    n_layers: PositiveInt
    dropout: Probability

    @field_validator("n_heads")
    @classmethod
    def _heads_divide_width(cls, n_heads: int, info: ValidationInfo) -> int:
        d_model = info.data.get("d_model")
        if d_model is not None and d_model % n_heads:
            raise ValueError(f"must divide d_model ({d_model})")
        return n_heads
