"""Pieces the multimodal baselines share: cold-aware item vectors, modality projections, norm regulariser.

A zero-shot cold item has no train interactions, so its ID vector never receives a gradient: it is
noise at initial scale. `item_vectors` zeroes those rows when the item representation is an ID table
(a token representation such as MOTOR gives cold items meaningful vectors and passes through), so a
cold item is scored only through the model's content path.
"""

from __future__ import annotations

import torch
from torch import nn

from motorec.models.context import ModelContext
from motorec.models.item_repr import uses_ids


def warm_mask(ctx: ModelContext) -> torch.Tensor:
    """(n_items, 1) float mask: 1 for items with train interactions."""
    return (ctx.item_degree > 0).float().unsqueeze(1)


def item_vectors(item_repr: nn.Module, warm: torch.Tensor) -> torch.Tensor:
    """All item base vectors from the hook, with untrained cold ID rows zeroed."""
    vectors = item_repr()
    return vectors * warm if uses_ids(item_repr) else vectors


def feature_params(ctx: ModelContext, trainable: bool) -> nn.ParameterDict:
    """Raw modality features as parameters (LATTICE and BM3 fine-tune them, as in MMRec)."""
    return nn.ParameterDict({m: nn.Parameter(ctx.features(m).clone(), requires_grad=trainable) for m in ctx.modalities})


def projections(ctx: ModelContext, dim: int) -> nn.ModuleDict:
    """One linear map per modality from its feature size to `dim`."""
    return nn.ModuleDict({m: nn.Linear(ctx.features(m).shape[1], dim) for m in ctx.modalities})


def norm_reg(*tensors: torch.Tensor) -> torch.Tensor:
    """MMRec's EmbLoss: sum of Frobenius norms (not squared) / rows of the last tensor (BM3, LGMRec)."""
    return sum(t.norm(p=2) for t in tensors) / tensors[-1].shape[0]
