"""The one item-representation hook: models get item base vectors from here, IDs or tokens.

`--set item_repr=id` (default) is a plain embedding table; other representations (MOTOR's token
cross network) register here and plug into every model without changing the model files.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from motorec.errors import MotorecError, did_you_mean
from motorec.models.context import ModelContext

ItemReprFactory = Callable[[ModelContext, int], nn.Module]
ITEM_REPRS: dict[str, ItemReprFactory] = {}
#: representations that read the item token table (ModelContext.tokens, filled by models.tokens)
TOKEN_ITEM_REPRS: set[str] = set()


def register_item_repr(name: str, needs_tokens: bool = False) -> Callable[[ItemReprFactory], ItemReprFactory]:
    def wrap(factory: ItemReprFactory) -> ItemReprFactory:
        ITEM_REPRS[name] = factory
        if needs_tokens:
            TOKEN_ITEM_REPRS.add(name)
        return factory

    return wrap


class IDEmbedding(nn.Module):
    """One free vector per item id: forward() returns all item vectors (n_items, dim)."""

    uses_ids = True

    def __init__(self, n_items: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_items, dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self) -> torch.Tensor:
        return self.weight


@register_item_repr("id")
def _id_repr(ctx: ModelContext, dim: int) -> nn.Module:
    return IDEmbedding(ctx.n_items, dim)


def uses_ids(item_repr: nn.Module) -> bool:
    """True when the representation is a per-item table (an item without interactions is untrained)."""
    return bool(getattr(item_repr, "uses_ids", True))


def build_item_repr(ctx: ModelContext, dim: int) -> nn.Module:
    name = ctx.config.item_repr if ctx.config is not None else "id"
    if name not in ITEM_REPRS:
        raise MotorecError(
            f"config field 'item_repr': unknown item representation '{name}'. Known: "
            f"{', '.join(sorted(ITEM_REPRS))}.{did_you_mean(name, ITEM_REPRS)}"
        )
    return ITEM_REPRS[name](ctx, dim)
