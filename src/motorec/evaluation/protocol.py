"""The evaluation protocol of ../shared/EVALUATION.md: full ranking, groups, coverage, export.

The evaluator takes a score function (users -> scores over all items), never a model, so any
recommender, baseline or external system can be measured the same way. Memory is bounded at any
catalogue size: users are ranked in batches sized from a memory budget, a `DotScorer` is scored
in item blocks whose top-K are merged exactly (`motorec.topk`), and ground truth and train masks
are looked up sparsely, never as dense rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from motorec.config import EvalConfig
from motorec.data.dataset import TEST, VALID, Dataset
from motorec.distributed import SINGLE, DistContext
from motorec.errors import MotorecError
from motorec.evaluation.metrics import rank_metrics
from motorec.io import atomic_open
from motorec.topk import RunningTopK, blocks

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
LONGTAIL_THRESHOLD = 10
EXPORT_K = 50
DEFAULT_MEMORY_MB = 1024
# Bytes per user x item cell of a batch: the float32 scores plus the top-k and masking temporaries.
BYTES_PER_CELL = 16
# Widest item block a DotScorer is scored in: a block's item vectors stay in cache while a batch's
# users stream past, and a batch holds many users even at 10^6 items.
MAX_ITEM_BLOCK = 1 << 16


@dataclass(frozen=True)
class DotScorer:
    """Scores that are the dot product of user and item vectors.

    The evaluator scores such a model block by block over the items, so a batch never holds a
    users x all-items matrix; any other score function (users -> (B, n_items)) works as before.
    """

    users: torch.Tensor
    items: torch.Tensor

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return self.users[batch] @ self.items.T

    def block(self, batch: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        return self.users[batch] @ self.items[start:stop].T


def batch_plan(n_items: int, memory_mb: float, batch_size: int | None, blockwise: bool) -> tuple[int, int]:
    """(users per batch, items per block) keeping a batch's cells within `memory_mb`.

    An explicit `batch_size` fixes the users per batch (the item block then shrinks to the budget
    when the scorer allows it); otherwise the users per batch follow from the budget.
    """
    cells = max(1, int(memory_mb * 2**20) // BYTES_PER_CELL)
    width = min(n_items, MAX_ITEM_BLOCK) if blockwise else n_items
    if batch_size:
        if blockwise:
            width = min(n_items, max(EXPORT_K + 1, cells // batch_size))
        return int(batch_size), max(1, width)
    return max(1, cells // max(1, width)), max(1, width)


@dataclass
class EvalResult:
    metrics: dict[str, dict[str, float]]
    users: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    topk: np.ndarray | None = None

    def get(self, group: str = "all", metric: str = "recall@20") -> float:
        return self.metrics[group][metric]


def _row_entries(m: sp.csr_matrix, rows: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch row, column) of every stored entry of these CSR rows, in row then column order."""
    starts, ends = m.indptr[rows], m.indptr[rows + 1]
    lengths = ends - starts
    total = int(lengths.sum())
    local = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    cols = m.indices[np.repeat(starts, lengths) + offsets].astype(np.int64)
    return torch.from_numpy(local).to(device), torch.from_numpy(cols).to(device)


class Evaluator:
    """Full-ranking evaluator for one split; groups all/warm/cold@full/cold@cold or all/longtail.

    Memory per batch is bounded by `memory_mb` (users per batch and item block chosen from it,
    see `batch_plan`); under torchrun (`dist`) each rank ranks a contiguous share of the users and
    the sums are reduced once, so every rank gets the single-process metrics.
    """

    def __init__(
        self,
        ds: Dataset,
        device: str | torch.device = "cpu",
        ks: tuple[int, ...] = (10, 20, 50),
        batch_size: int | None = None,
        memory_mb: float = DEFAULT_MEMORY_MB,
        dist: DistContext = SINGLE,
    ) -> None:
        self.device = torch.device(device)
        self.ks = tuple(ks)
        self.max_k = max(max(self.ks), EXPORT_K)
        self.batch_size = batch_size or None
        self.memory_mb = memory_mb
        self.dist = dist
        self.n_items = ds.n_items
        self.cold_split = ds.is_cold_split
        self.train = ds.train_matrix
        self.gt = {VALID: ds.matrix(VALID), TEST: ds.matrix(TEST)}
        for m in (self.train, *self.gt.values()):
            m.sort_indices()
        cold = torch.from_numpy(ds.cold_mask()).to(self.device)
        longtail = torch.from_numpy(ds.item_degree < LONGTAIL_THRESHOLD).to(self.device)
        self.cold = cold
        if self.cold_split:
            self.groups = {"all": None, "warm": ~cold, "cold@full": cold, "cold@cold": cold}
        else:
            self.groups = {"all": None, "longtail": longtail}
        # |GT ∩ group| per user, from the sparse GT once
        self.n_gt = {
            label: {
                g: torch.from_numpy(
                    np.asarray(m @ (np.ones(self.n_items) if mask is None else mask.cpu().numpy())).astype(np.int64)
                ).to(self.device)
                for g, mask in self.groups.items()
            }
            for label, m in self.gt.items()
        }
        test_items = ds.items[ds.labels == TEST]
        self.cold_test_share = float(ds.cold_mask()[test_items].mean()) if self.cold_split and len(test_items) else 0.0
        self.metric_names = list(rank_metrics(torch.zeros(0, self.max_k), torch.zeros(0, dtype=torch.int64), self.ks))

    @classmethod
    def from_config(
        cls, ds: Dataset, device: str | torch.device, eval_cfg: EvalConfig, dist: DistContext = SINGLE
    ) -> Evaluator:
        """The evaluator a run's `eval` config section describes (ks, batch_size, memory_mb)."""
        return cls(
            ds, device, ks=tuple(eval_cfg.ks), batch_size=eval_cfg.batch_size, memory_mb=eval_cfg.memory_mb, dist=dist
        )

    def _members(self, m: sp.csr_matrix, rows: np.ndarray, top: torch.Tensor) -> torch.Tensor:
        """(B, K) bool: is top[b, j] a stored entry of row rows[b] of m (sparse lookup, no dense row)."""
        local, cols = _row_entries(m, rows, self.device)
        if len(cols) == 0:
            return torch.zeros_like(top, dtype=torch.bool)
        keys = local * self.n_items + cols  # sorted: rows ascending, columns sorted within a row
        query = torch.arange(len(rows), device=self.device).unsqueeze(1) * self.n_items + top
        pos = torch.searchsorted(keys, query).clamp(max=len(keys) - 1)
        return keys[pos] == query

    def _rank_batch(self, score_fn: ScoreFn, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(top max_k over all unseen items, top max_k over unseen cold items or None) of these users."""
        batch = torch.from_numpy(rows).to(self.device)
        block_fn: Any = getattr(score_fn, "block", None)  # blockwise scorers (DotScorer) score an item block at a time
        blockwise = callable(block_fn)
        _, width = batch_plan(self.n_items, self.memory_mb, self.batch_size, blockwise)
        full = None
        if not blockwise:
            full = score_fn(batch).to(self.device, torch.float32)
            if full.shape != (len(rows), self.n_items):
                raise ValueError(
                    f"score function returned shape {tuple(full.shape)}, expected ({len(rows)}, {self.n_items})"
                )
        seen_rows, seen_cols = _row_entries(self.train, rows, self.device)
        top, cold_top = RunningTopK(self.max_k), RunningTopK(self.max_k) if self.cold_split else None
        for start, stop in blocks(self.n_items, width):
            inside = (seen_cols >= start) & (seen_cols < stop)
            index = (seen_rows[inside], seen_cols[inside] - start)
            if full is None:  # a fresh product: masked in place
                block = block_fn(batch, start, stop).to(self.device, torch.float32)
                block.index_put_(index, torch.tensor(-torch.inf, device=self.device))
            else:  # the caller's tensor may be shared: masked out of place
                block = full[:, start:stop].index_put(index, torch.tensor(-torch.inf, device=self.device))
            top.update(block, start)
            if cold_top is not None:
                cold_top.update(block.masked_fill(~self.cold[start:stop], -torch.inf), start)
        return top.top, None if cold_top is None else cold_top.top

    @torch.no_grad()
    def evaluate(
        self, score_fn: ScoreFn, split: str = "valid", export_topk: bool = False, users: np.ndarray | None = None
    ) -> EvalResult:
        """Metrics per group; valid masks train items, test masks train items only (MMRec).

        `users` restricts the evaluation to these users (those with ground truth in the split).
        """
        label = VALID if split == "valid" else TEST
        gt_csr = self.gt[label]
        all_users = np.flatnonzero(np.diff(gt_csr.indptr) > 0)
        if users is not None:
            all_users = np.intersect1d(all_users, np.asarray(users, dtype=np.int64))
        mine = all_users[self.dist.shard(len(all_users))]
        per_batch, _ = batch_plan(
            self.n_items, self.memory_mb, self.batch_size, callable(getattr(score_fn, "block", None))
        )
        # Sums stay on the device (float64) and are read once at the end: no host sync per batch.
        sums = {g: torch.zeros(len(self.metric_names), dtype=torch.float64, device=self.device) for g in self.groups}
        counts = torch.zeros(len(self.groups), dtype=torch.float64, device=self.device)
        covered = torch.zeros(self.n_items, dtype=torch.float64, device=self.device)
        cold_slots = torch.zeros(1, dtype=torch.float64, device=self.device)
        exported = []
        for start in range(0, len(mine), per_batch):
            rows = mine[start : start + per_batch]
            top, cold_top = self._rank_batch(score_fn, rows)
            hits_all = self._members(gt_csr, rows, top)
            batch = torch.from_numpy(rows).to(self.device)
            for gi, (group, item_mask) in enumerate(self.groups.items()):
                if group == "cold@cold" and cold_top is not None:  # (cold@cold exists only on cold splits)
                    g_hits = self._members(gt_csr, rows, cold_top) & self.cold[cold_top]
                elif item_mask is None:
                    g_hits = hits_all
                else:
                    g_hits = hits_all & item_mask[top]
                n_gt = self.n_gt[label][group][batch]
                per_user = rank_metrics(g_hits, n_gt, self.ks)
                keep = n_gt > 0
                counts[gi] += keep.sum()
                sums[group] += torch.stack(
                    [torch.where(keep, per_user[name], 0.0).double().sum() for name in self.metric_names]
                )
            covered[top[:, :20].reshape(-1)] = 1.0
            cold_slots += self.cold[top[:, :20]].sum()
            if export_topk:
                exported.append(top[:, :EXPORT_K].cpu().numpy())
        # one reduction over ranks: every sum, count and coverage flag in a single tensor
        packed = self.dist.all_reduce_sum(torch.cat([*sums.values(), counts, cold_slots, covered]), "evaluation")
        n_sums = len(self.groups) * len(self.metric_names)
        totals = packed[:n_sums].view(len(self.groups), -1).tolist()
        n_users = {g: round(c) for g, c in zip(self.groups, packed[n_sums : n_sums + len(self.groups)].tolist())}
        cold_slots_all = float(packed[n_sums + len(self.groups)])
        coverage = float((packed[n_sums + len(self.groups) + 1 :] > 0).double().mean())
        metrics = {
            g: {m: v / max(n_users[g], 1) for m, v in zip(self.metric_names, totals[gi])}
            for gi, g in enumerate(self.groups)
        }
        metrics["all"]["coverage@20"] = coverage
        if self.cold_split:
            metrics["all"]["cold_share@20"] = cold_slots_all / max(1, 20 * len(all_users))
            metrics["all"]["cold_test_share"] = self.cold_test_share
        for g in self.groups:
            metrics[g]["users"] = n_users[g]
        topk = None
        if export_topk:
            local = np.concatenate(exported) if exported else np.zeros((0, min(EXPORT_K, self.n_items)), dtype=np.int64)
            topk = self.dist.gather_rows(local, "top-k gather")
        return EvalResult(metrics=metrics, users=all_users, topk=topk)


def write_topk(path: str | os.PathLike[str], users: np.ndarray, topk: np.ndarray | None) -> None:
    """`userID` then the ranked item ids, tab-separated, one row per evaluated user, no header (atomic)."""
    if topk is None:
        raise MotorecError(f"{path}: no top-K lists to write (the evaluation kept none: export_topk=False).")
    with atomic_open(path) as f:
        for u, row in zip(users, topk):
            f.write(f"{u}\t" + "\t".join(map(str, row)) + "\n")
