"""Training and evaluation shared by every next-item model (TIGER, SASRec).

A model provides `batches(data, batch_size, generator, limit)`, `loss(*batch)` and
`recommend(history, k, exclude)`. Early stopping is on valid Recall@10 (validation only); the
test set is evaluated once, with the best-valid weights.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from motorec.evaluation import rank_metrics
from motorec.generative.sequences import EvalSet, SequenceData

log = logging.getLogger(__name__)

KS = (5, 10)


@dataclass
class LoopConfig:
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 4  # evaluations without a better valid recall@10
    eval_every: int = 1
    samples_per_epoch: int = 0  # 0 = every train example each epoch
    valid_users: int = 0  # 0 = all; else a fixed seeded subset for early stopping
    eval_batch_size: int = 256

    @classmethod
    def from_dict(cls, cfg: dict[str, Any]) -> "LoopConfig":
        return cls(**{k: cfg[k] for k in cls.__dataclass_fields__ if k in cfg})


def exclusion(data: SequenceData, users: np.ndarray, device: torch.device) -> Tensor:
    """(U, n_items) bool: each user's train items (masked from the ranking, as EVALUATION.md says)."""
    mask = torch.zeros(len(users), data.n_items, dtype=torch.bool)
    for row, u in enumerate(users):
        mask[row, torch.from_numpy(data.train_sequences[u])] = True
    return mask.to(device)


@torch.no_grad()
def evaluate(model: nn.Module, data: SequenceData, split: str, batch_size: int = 256,
             rows: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """Recall/NDCG@5,10 per group (all, longtail, cold) over the full catalogue, single target."""
    was_training = model.training
    model.eval()
    evalset: EvalSet = data.valid if split == "valid" else data.test
    rows = np.arange(len(evalset.users)) if rows is None else rows
    device = next(model.parameters()).device
    per_user: dict[str, list[Tensor]] = {}
    for start in range(0, len(rows), batch_size):
        r = rows[start : start + batch_size]
        history = torch.from_numpy(evalset.history[r]).to(device)
        top = model.recommend(history, max(KS), exclusion(data, evalset.users[r], device))  # type: ignore[operator]
        hits = top == torch.from_numpy(evalset.target[r]).to(device).unsqueeze(1)
        for key, value in rank_metrics(hits, torch.ones(len(r), dtype=torch.long, device=device), KS).items():
            per_user.setdefault(key, []).append(value.cpu())
    model.train(was_training)
    values = {k: torch.cat(v).numpy() for k, v in per_user.items()}
    out = {}
    for group, mask in data.groups(split).items():
        mask = mask[rows]
        out[group] = {k: float(v[mask].mean()) if mask.any() else float("nan") for k, v in values.items() if k.split("@")[0] in ("recall", "ndcg")}
        out[group]["users"] = int(mask.sum())
    return out


def fit(model: nn.Module, data: SequenceData, cfg: LoopConfig, seed: int, test: bool = True) -> dict[str, Any]:
    """Adam + early stopping on valid recall@10; returns valid (and, with `test`, test) metrics at
    the best epoch."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    valid_rows = None
    if cfg.valid_users and cfg.valid_users < len(data.valid.users):
        valid_rows = np.sort(np.random.default_rng(seed).choice(len(data.valid.users), cfg.valid_users, replace=False))
    best, best_state, best_valid, best_epoch, bad, history = -1.0, None, {}, -1, 0, []
    train_seconds = 0.0
    for epoch in range(cfg.epochs):
        model.train()
        t0 = time.perf_counter()
        total, n = 0.0, 0
        for batch in model.batches(data, cfg.batch_size, g, cfg.samples_per_epoch):  # type: ignore[operator]
            loss = model.loss(*batch)  # type: ignore[operator]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, n = total + float(loss.detach()), n + 1
        train_seconds += time.perf_counter() - t0
        if (epoch + 1) % cfg.eval_every and epoch + 1 < cfg.epochs:
            continue
        valid = evaluate(model, data, "valid", cfg.eval_batch_size, valid_rows)
        score = valid["all"]["recall@10"]
        history.append({"epoch": epoch, "loss": total / max(1, n), "valid_recall@10": score})
        log.info("epoch %d loss %.4f valid recall@10 %.4f", epoch, total / max(1, n), score)
        if score > best:
            best, best_state, best_valid, best_epoch, bad = score, copy.deepcopy(model.state_dict()), valid, epoch, 0
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    if valid_rows is not None or not best_valid:  # report valid on every user, not the stopping subset
        best_valid = evaluate(model, data, "valid", cfg.eval_batch_size)
    t0 = time.perf_counter()
    test_metrics = evaluate(model, data, "test", cfg.eval_batch_size) if test else {}
    return {
        "valid": best_valid,
        "test": test_metrics,
        "best_epoch": best_epoch,
        "epochs_run": len(history) and history[-1]["epoch"] + 1,
        "train_seconds": train_seconds,
        "test_eval_seconds": time.perf_counter() - t0,
        "history": history,
    }
