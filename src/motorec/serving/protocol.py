"""What a model may implement so the service embeds brand-new items the model's own way.

A model that turns content into its item vector (MoToRec: features -> tokens -> item embedding
from its tokens) implements `item_vector_from_content`; if it also exposes its tokens, the service
returns and indexes them. Models without these methods are served through a ridge map from
features to their warm item vectors fitted at export time (see `linalg.ContentMap`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from motorec.tokenizers.base import TokenSlot


@runtime_checkable
class ContentToVector(Protocol):
    def item_vector_from_content(self, features: dict[str, Tensor]) -> Tensor:
        """(B, dim) item vectors, in the space of `embeddings()[1]`, from (B, d_m) features per modality.

        Must not depend on interactions of these items (they have none) and must be
        deterministic in eval mode; the service calls it under torch.no_grad() on CPU.
        """
        ...


@runtime_checkable
class ContentToTokens(Protocol):
    def item_tokens_from_content(self, features: dict[str, Tensor]) -> Tensor:
        """(B, len(token_slots())) int64 codes of these items."""
        ...

    def token_slots(self) -> list[TokenSlot]:
        """What each code column means (modality, level, codebook size)."""
        ...
