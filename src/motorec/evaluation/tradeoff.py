"""The warm/cold trade-off of a full ranking: how warm recall and cold@full move together.

A zero-shot cold item reaches a real top-K only by taking a slot from a warm item, so `warm` and
`cold@full` are two ends of one budget. `offset_curve` makes that budget visible: each user's scores
are standardised separately over warm and over cold items (per-user z-scores, so the two groups are
on one scale whatever model produced them), cold items are shifted by an offset, and every group is
measured at each offset. A large negative offset gives the warm-only ranking, a large positive one
the cold-only ranking. Validation picks the offset: the best valid `all`, optionally only among
offsets that keep a share of the warm-only ranking's warm recall (`warm_floor_offset`). `blend`
makes one ranking from two score sources (a warm expert for items with train interactions, a cold
expert for the others) on the same standardised scale.
Scores in, metrics out: nothing here knows about models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from motorec.evaluation.protocol import Evaluator

ScoreFn = Callable[[Tensor], Tensor]
GROUPS = ("all", "warm", "cold@full", "cold@cold")
WARM_ONLY_OFFSET = -1.0e4  # ranks every cold item below every warm one (standardised scores are O(1))


def standardize_groups(scores: Tensor, cold: Tensor) -> Tensor:
    """Per-user z-scores, computed separately over the warm and over the cold columns."""
    out = torch.empty_like(scores)
    for mask in (cold, ~cold):
        if mask.any():
            part = scores[:, mask]
            std = part.std(1, keepdim=True) if part.shape[1] > 1 else torch.ones_like(part[:, :1])
            out[:, mask] = (part - part.mean(1, keepdim=True)) / std.clamp_min(1e-12)
    return out


def blend(warm_scores: ScoreFn, cold_scores: ScoreFn, cold: Tensor) -> ScoreFn:
    """Warm items scored by one source, cold items by another; `offset_curve` puts the two
    groups on one scale (it standardises each group per user), so the raw scores are kept."""
    return lambda users: torch.where(cold, cold_scores(users), warm_scores(users))


@dataclass(frozen=True)
class TradeoffPoint:
    offset: float
    split: str
    recall: dict[str, float]  # recall@20 per group
    cold_share: float  # share of top-20 slots held by cold items


def offset_curve(
    evaluator: Evaluator, score_fn: ScoreFn, offsets: Sequence[float], splits: Sequence[str] = ("valid", "test")
) -> list[TradeoffPoint]:
    """Recall@20 of every group with cold items' standardised scores shifted by each offset."""
    if not evaluator.cold_split:
        raise ValueError("the warm/cold trade-off needs a zero-shot cold split (cold items with no train interactions)")
    cold = evaluator.cold

    def shifted(offset: float) -> ScoreFn:
        return lambda users: standardize_groups(score_fn(users).to(cold.device), cold) + offset * cold

    points = []
    for offset in offsets:
        for split in splits:
            m = evaluator.evaluate(shifted(offset), split).metrics
            points.append(
                TradeoffPoint(offset, split, {g: m[g]["recall@20"] for g in GROUPS}, m["all"]["cold_share@20"])
            )
    return points


def best_valid_offset(points: Sequence[TradeoffPoint], min_warm: float = 0.0) -> float | None:
    """The offset with the best valid `all` recall@20 among those whose valid `warm` recall@20 is at
    least `min_warm` (validation-only selection); None when no offset keeps that much warm."""
    valid = [p for p in points if p.split == "valid" and p.recall["warm"] >= min_warm]
    return max(valid, key=lambda p: p.recall["all"]).offset if valid else None


def warm_floor_offset(points: Sequence[TradeoffPoint], floor: float) -> float | None:
    """The best valid `all` among offsets that keep valid `warm` at `floor` x or more of the warm
    recall with no cold item ranked (the point at `WARM_ONLY_OFFSET`, which the curve must hold):
    cold items take top-K slots, but not at any price to the warm items."""
    reference = [p.recall["warm"] for p in points if p.split == "valid" and p.offset == WARM_ONLY_OFFSET]
    if not reference:
        raise ValueError(f"a warm floor needs the curve's warm-only point (offset {WARM_ONLY_OFFSET:g})")
    return best_valid_offset([p for p in points if p.offset != WARM_ONLY_OFFSET], floor * reference[0])
