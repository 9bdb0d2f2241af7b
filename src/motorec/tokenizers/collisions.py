"""Collision resolution: what a tokenizer does when items of its fitted corpus share a code tuple.

One `CollisionResolver` per mode, behind one interface: `fit` turns the corpus' raw code tuples into
its final code table, `encode_new` gives items outside the corpus their codes against that table,
`slots` names the columns the mode adds. The mode (`collisions` of a tokenizer config) is read
here only, by `make_resolver`.

- "suffix": an extra slot numbering the items of a shared tuple 0, 1, 2 ... in row order; its size
  is the largest group. A new item gets the next free number of its group; beyond the slot size it
  is clipped to the last value (the collision then remains, and diagnostics show it).
- "sinkhorn": colliding corpus items get their last code re-assigned by a Sinkhorn-balanced plan
  over the free codes; a new item takes its most preferred last code whose tuple is still free.
- "none": raw codes.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from motorec.config import ConfigModel, PositiveFloat
from motorec.tokenizers.base import TokenSlot
from motorec.tokenizers.codebook import Codebook, pairwise_sqdist


class CollisionConfig(ConfigModel):
    """The collision keys of a tokenizer that resolves them over its fitted corpus."""

    collisions: Literal["suffix", "sinkhorn", "none"] = "suffix"
    sinkhorn_epsilon: PositiveFloat = 0.05  # entropic regularisation of the sinkhorn plan, relative to the cost range


@dataclass
class LastLevel:
    """What the last code column quantises: its input rows and its codebook (sinkhorn moves it)."""

    inputs: Tensor  # (n, D), one row per item being resolved
    book: Codebook


#: Computes the `LastLevel` of the rows being resolved, only when a mode needs it.
LastLevelOf = Callable[[], LastLevel]


class CollisionResolver(ABC):
    """Fit on the corpus' raw codes, encode new items against the fitted table, add slots."""

    mode: ClassVar[str]

    def __init__(self) -> None:
        self.size = 0  # codes of the slot this mode adds (0: it adds none)

    @classmethod
    def from_config(cls, config: CollisionConfig) -> CollisionResolver:
        return cls()

    @abstractmethod
    def fit(self, raw: np.ndarray, last_level: LastLevelOf) -> np.ndarray:
        """The corpus' final (n, width) int64 code table from its raw (n, L) codes."""

    @abstractmethod
    def encode_new(self, corpus: np.ndarray, raw: np.ndarray, last_level: LastLevelOf) -> np.ndarray:
        """(n_new, width) codes of items outside the fitted corpus (whose table is `corpus`)."""

    def slots(self, modality: str, level: int) -> list[TokenSlot]:
        """Columns this mode adds after the code levels (the first at `level`)."""
        return []


class KeepCollisions(CollisionResolver):
    """Raw codes: items may share a tuple."""

    mode = "none"

    def fit(self, raw: np.ndarray, last_level: LastLevelOf) -> np.ndarray:
        return np.asarray(raw, dtype=np.int64)

    def encode_new(self, corpus: np.ndarray, raw: np.ndarray, last_level: LastLevelOf) -> np.ndarray:
        return np.asarray(raw, dtype=np.int64)


class SuffixResolver(CollisionResolver):
    """A disambiguating suffix slot: the items of a shared tuple are numbered 0, 1, 2 ..."""

    mode = "suffix"

    def fit(self, raw: np.ndarray, last_level: LastLevelOf | None = None) -> np.ndarray:
        suffix, self.size = suffix_codes(raw)
        return np.column_stack([raw, suffix]).astype(np.int64)

    def encode_new(self, corpus: np.ndarray, raw: np.ndarray, last_level: LastLevelOf) -> np.ndarray:
        return np.column_stack([raw, new_item_suffix(corpus[:, :-1], raw, self.size)]).astype(np.int64)

    def slots(self, modality: str, level: int) -> list[TokenSlot]:
        return [TokenSlot(modality, level, self.size, kind="suffix")]


class SinkhornResolver(CollisionResolver):
    """Colliding items move to free codes of the last level (no extra slot)."""

    mode = "sinkhorn"

    def __init__(self, epsilon: float = 0.05) -> None:
        super().__init__()
        self.epsilon = epsilon

    @classmethod
    def from_config(cls, config: CollisionConfig) -> SinkhornResolver:
        return cls(config.sinkhorn_epsilon)

    def fit(self, raw: np.ndarray, last_level: LastLevelOf) -> np.ndarray:
        codes = np.asarray(raw, dtype=np.int64).copy()
        last = last_level()
        codes[:, -1] = sinkhorn_resolve(
            raw[:, :-1], raw[:, -1], last.inputs, last.book.vectors().detach(), self.epsilon
        )
        return codes

    def encode_new(self, corpus: np.ndarray, raw: np.ndarray, last_level: LastLevelOf) -> np.ndarray:
        codes = np.asarray(raw, dtype=np.int64).copy()
        last = last_level()
        codes[:, -1] = free_last_codes(corpus, raw, last.book.preference(last.inputs).cpu().numpy())
        return codes


RESOLVERS: dict[str, type[CollisionResolver]] = {r.mode: r for r in (SuffixResolver, SinkhornResolver, KeepCollisions)}


def make_resolver(config: CollisionConfig) -> CollisionResolver:
    """The resolver of a tokenizer config's `collisions` mode."""
    return RESOLVERS[config.collisions].from_config(config)


# --------------------------------------------------------------------------------------------
# The algorithms behind the resolvers
# --------------------------------------------------------------------------------------------


def group_rank(keys: np.ndarray) -> np.ndarray:
    """Rank of each row among the rows with an identical key row, in row order (0, 1, 2...)."""
    keys = np.asarray(keys)
    if keys.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    _, inverse = np.unique(keys.reshape(keys.shape[0], -1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    sorted_inv = inverse[order]
    starts = np.flatnonzero(np.r_[True, sorted_inv[1:] != sorted_inv[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(starts, sizes)
    return rank


def suffix_codes(tuples: np.ndarray) -> tuple[np.ndarray, int]:
    """Disambiguating suffix: items sharing a full code tuple get 0, 1, 2... in row order.

    Returns (suffix (n,), suffix level size = largest group, at least 1).
    """
    rank = group_rank(tuples)
    return rank, int(rank.max()) + 1 if rank.size else 1


def new_item_suffix(corpus_codes: np.ndarray, raw_new: np.ndarray, suffix_size: int) -> np.ndarray:
    """Suffix of items outside the fitted corpus: the next free number of their code tuple,
    clipped to the last value of the slot (the collision then remains and diagnostics show it)."""
    counts: dict[tuple[int, ...], int] = {}
    for row in corpus_codes:
        key = tuple(row.tolist())
        counts[key] = counts.get(key, 0) + 1
    out = np.empty(len(raw_new), dtype=np.int64)
    for i, row in enumerate(raw_new):
        key = tuple(row.tolist())
        out[i] = min(counts.get(key, 0), suffix_size - 1)
        counts[key] = counts.get(key, 0) + 1
    return out


def sinkhorn(cost: Tensor, epsilon: float = 0.05, n_iter: int = 100) -> Tensor:
    """Entropic optimal-transport plan between uniform rows and uniform columns (log domain).

    The cost is divided by its maximum first, so `epsilon` is relative to the cost range.
    """
    n, k = cost.shape
    log_kernel = -cost / (cost.max().clamp_min(1e-12) * epsilon)
    u = cost.new_zeros(n)
    v = cost.new_zeros(k)
    log_a, log_b = -math.log(n), -math.log(k)
    for _ in range(n_iter):
        u = log_a - torch.logsumexp(log_kernel + v.unsqueeze(0), dim=1)
        v = log_b - torch.logsumexp(log_kernel + u.unsqueeze(1), dim=0)
    return torch.exp(log_kernel + u.unsqueeze(1) + v.unsqueeze(0))


def sinkhorn_resolve(
    prefix: np.ndarray, last: np.ndarray, last_residual: Tensor, codebook: Tensor, epsilon: float = 0.05
) -> np.ndarray:
    """Re-assign the last level of colliding items so full tuples become unique where possible.

    `last_residual` (n, D) is what the last codebook (K, D) quantises. Per group of items sharing
    the prefix (all levels but the last): items whose tuple is unique keep their code, as does
    one item of each shared tuple; the others are spread over the still-free last-level codes by
    a Sinkhorn-balanced plan on their distances, rounded greedily (largest plan mass first, one
    item per code). A group larger than K keeps its overflow where it was.
    """
    last = np.asarray(last, dtype=np.int64).copy()
    prefix = np.asarray(prefix, dtype=np.int64).reshape(len(last), -1)
    k = codebook.shape[0]
    full = np.column_stack([prefix, last])
    _, inverse, counts = np.unique(full, axis=0, return_inverse=True, return_counts=True)
    colliding = counts[inverse.reshape(-1)] > 1
    if not colliding.any():
        return last
    _, prefix_group = np.unique(prefix, axis=0, return_inverse=True)
    prefix_group = prefix_group.reshape(-1)
    for g in np.unique(prefix_group[colliding]):
        members = np.flatnonzero(prefix_group == g)
        movers = members[colliding[members]]
        keepers = members[~colliding[members]]
        # one item of each colliding tuple may stay put; the others move
        stay = movers[group_rank(last[movers]) == 0]
        movers = movers[group_rank(last[movers]) > 0]
        taken = set(last[keepers].tolist()) | set(last[stay].tolist())
        free = np.array([c for c in range(k) if c not in taken], dtype=np.int64)
        if free.size == 0 or movers.size == 0:
            continue
        rows = last_residual[torch.as_tensor(movers, device=last_residual.device)]
        cost = pairwise_sqdist(rows, codebook[torch.as_tensor(free, device=codebook.device)]).double()
        plan = sinkhorn(cost, epsilon).cpu().numpy()
        order = np.argsort(-plan, axis=None, kind="stable")
        assigned = np.full(len(movers), -1, dtype=np.int64)
        used = np.zeros(len(free), dtype=bool)
        for flat in order:
            i, j = divmod(int(flat), len(free))
            if assigned[i] < 0 and not used[j]:
                assigned[i], used[j] = free[j], True
                if (assigned >= 0).all() or used.all():
                    break
        done = assigned >= 0
        last[movers[done]] = assigned[done]
    return last


def free_last_codes(corpus_codes: np.ndarray, raw_new: np.ndarray, preference: np.ndarray) -> np.ndarray:
    """Last-level codes for new items: each takes its most preferred code whose full tuple is free.

    The sinkhorn counterpart of `new_item_suffix`: `preference` (n_new, K) lists last-level codes
    best first; new items are placed in order and claim their tuple, so two new items never share
    one either. An item whose every tuple is taken keeps its own nearest code.
    """
    taken = {tuple(r) for r in np.asarray(corpus_codes, dtype=np.int64).tolist()}
    out = np.asarray(raw_new, dtype=np.int64)[:, -1].copy()
    for i, row in enumerate(np.asarray(raw_new, dtype=np.int64).tolist()):
        prefix = tuple(row[:-1])
        for c in np.asarray(preference[i]).tolist():
            if (*prefix, c) not in taken:
                out[i] = c
                break
        taken.add((*prefix, int(out[i])))
    return out
