"""The evaluation protocol of ../shared/EVALUATION.md: full ranking, groups, coverage, export.

The evaluator takes a score function (users -> scores over all items), never a model, so any
recommender, baseline or external system can be measured the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch

from motorec.data.dataset import TEST, VALID, Dataset
from motorec.evaluation.metrics import rank_metrics, topk_tiebreak
from motorec.io import atomic_open

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
LONGTAIL_THRESHOLD = 10
EXPORT_K = 50


@dataclass
class EvalResult:
    metrics: dict[str, dict[str, float]]
    users: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    topk: np.ndarray | None = None

    def get(self, group: str = "all", metric: str = "recall@20") -> float:
        return self.metrics[group][metric]


def _csr_to_torch(m: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    return torch.sparse_csr_tensor(
        torch.from_numpy(m.indptr.astype(np.int64)), torch.from_numpy(m.indices.astype(np.int64)),
        torch.ones(m.nnz, dtype=torch.float32), size=m.shape,
    ).to(device)


class Evaluator:
    """Full-ranking evaluator for one split; groups all/warm/cold@full/cold@cold or all/longtail."""

    def __init__(self, ds: Dataset, device: str | torch.device = "cpu", ks: tuple[int, ...] = (10, 20, 50),
                 batch_size: int = 4096) -> None:
        self.device = torch.device(device)
        self.ks = tuple(ks)
        self.max_k = max(max(self.ks), EXPORT_K)
        self.batch_size = batch_size
        self.n_items = ds.n_items
        self.cold_split = ds.is_cold_split
        self.train = _csr_to_torch(ds.train_matrix, self.device)
        self.gt = {VALID: ds.matrix(VALID), TEST: ds.matrix(TEST)}
        self.gt_torch = {k: _csr_to_torch(v, self.device) for k, v in self.gt.items()}
        cold = torch.from_numpy(ds.cold_mask()).to(self.device)
        longtail = torch.from_numpy(ds.item_degree < LONGTAIL_THRESHOLD).to(self.device)
        self.cold = cold
        if self.cold_split:
            self.groups = {"all": None, "warm": ~cold, "cold@full": cold, "cold@cold": cold}
        else:
            self.groups = {"all": None, "longtail": longtail}
        # |GT ∩ group| per user, from the sparse GT once, instead of a dense (B, n_items) pass per batch
        self.n_gt = {
            label: {g: torch.from_numpy(np.asarray(m @ (np.ones(self.n_items) if mask is None else mask.cpu().numpy()))
                                        .astype(np.int64)).to(self.device) for g, mask in self.groups.items()}
            for label, m in self.gt.items()
        }
        test_items = ds.items[ds.labels == TEST]
        self.cold_test_share = float(ds.cold_mask()[test_items].mean()) if self.cold_split and len(test_items) else 0.0

    @torch.no_grad()
    def evaluate(self, score_fn: ScoreFn, split: str = "valid", export_topk: bool = False) -> EvalResult:
        """Metrics per group; valid masks train items, test masks train items only (MMRec)."""
        label = VALID if split == "valid" else TEST
        gt_csr = self.gt[label]
        users = np.flatnonzero(np.diff(gt_csr.indptr) > 0)
        # Sums stay on the device (float64) and are read once at the end: no host sync per batch.
        sums: dict[str, dict[str, torch.Tensor]] = {g: {} for g in self.groups}
        counts = {g: torch.zeros((), dtype=torch.int64, device=self.device) for g in self.groups}
        covered = torch.zeros(self.n_items, dtype=torch.bool, device=self.device)
        cold_slots = torch.zeros((), dtype=torch.float64, device=self.device)
        exported = []
        for start in range(0, len(users), self.batch_size):
            batch = torch.from_numpy(users[start : start + self.batch_size]).to(self.device)
            scores = score_fn(batch).to(self.device, torch.float32)
            if scores.shape != (len(batch), self.n_items):
                raise ValueError(f"score function returned shape {tuple(scores.shape)}, expected ({len(batch)}, {self.n_items})")
            seen = self._dense_rows(self.train, batch)
            scores = scores.masked_fill(seen, -torch.inf)
            gt = self._dense_rows(self.gt_torch[label], batch)
            top = topk_tiebreak(scores, self.max_k)
            hits_all = gt.gather(1, top)
            for group, item_mask in self.groups.items():
                if group == "cold@cold":
                    cold_scores = scores.masked_fill(~self.cold, -torch.inf)
                    g_top = topk_tiebreak(cold_scores, self.max_k)
                    g_hits = gt.gather(1, g_top) & self.cold[g_top]
                elif item_mask is None:
                    g_hits = hits_all
                else:
                    g_hits = hits_all & item_mask[top]
                n_gt = self.n_gt[label][group][batch]
                per_user = rank_metrics(g_hits, n_gt, self.ks)
                keep = n_gt > 0
                counts[group] += keep.sum()
                for name, values in per_user.items():
                    total = torch.where(keep, values, 0.0).double().sum()
                    sums[group][name] = sums[group][name] + total if name in sums[group] else total
            covered[top[:, :20].reshape(-1)] = True
            cold_slots += self.cold[top[:, :20]].sum()
            if export_topk:
                exported.append(top[:, :EXPORT_K].cpu().numpy())
        n_users = {g: int(c) for g, c in counts.items()}
        metrics = {g: {m: float(v) / max(n_users[g], 1) for m, v in sums[g].items()} for g in self.groups}
        metrics["all"]["coverage@20"] = float(covered.float().mean())
        if self.cold_split:
            metrics["all"]["cold_share@20"] = float(cold_slots) / max(1, 20 * len(users))
            metrics["all"]["cold_test_share"] = self.cold_test_share
        for g in self.groups:
            metrics[g]["users"] = n_users[g]
        topk = np.concatenate(exported) if exported else None
        return EvalResult(metrics=metrics, users=users, topk=topk)

    @staticmethod
    def _dense_rows(m: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Boolean dense rows of a sparse CSR matrix (index_select keeps it on device)."""
        crow, col = m.crow_indices(), m.col_indices()
        starts, ends = crow[rows], crow[rows + 1]
        lengths = ends - starts
        out = torch.zeros(len(rows), m.shape[1], dtype=torch.bool, device=m.device)
        if int(lengths.sum()) == 0:
            return out
        row_ids = torch.repeat_interleave(torch.arange(len(rows), device=m.device), lengths)
        offsets = torch.arange(int(lengths.sum()), device=m.device) - torch.repeat_interleave(
            lengths.cumsum(0) - lengths, lengths)
        out[row_ids, col[torch.repeat_interleave(starts, lengths) + offsets]] = True
        return out


def write_topk(path: str | Path, users: np.ndarray, topk: np.ndarray) -> None:
    """`userID` then the ranked item ids, tab-separated, one row per evaluated user, no header (atomic)."""
    with atomic_open(path) as f:
        for u, row in zip(users, topk):
            f.write(f"{u}\t" + "\t".join(map(str, row)) + "\n")
