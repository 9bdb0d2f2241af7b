"""Training and evaluation of next-item models (any `SequenceRecommender`: TIGER, SASRec).

Adam on the model's own batches and loss, run by the one early-stopping loop (`training.loop`) on
valid Recall@10 (validation only); the test set is evaluated once, with the best-valid weights.
Metrics are Recall/NDCG@5,10 over the full catalogue with the user's train items masked, per
group (all, longtail, cold), as EVALUATION.md says.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from motorec.config import ConfigModel, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from motorec.evaluation import rank_metrics
from motorec.generative.base import SequenceRecommender
from motorec.generative.sequences import EvalSet, SequenceData
from motorec.training import loop
from motorec.training.loop import LoopState, Schedule

log = logging.getLogger(__name__)

KS = (5, 10)
SELECT = "recall@10"  # valid metric of the "all" group that early stopping selects on
METRIC = f"valid_{SELECT}"  # its key in the loop's history


class SequenceTrainConfig(ConfigModel):
    """The `train:` keys of a next-item model (values in configs/tasks/)."""

    epochs: PositiveInt = 30
    batch_size: PositiveInt = 256
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    patience: PositiveInt = 4  # evaluations without a better valid recall@10
    eval_every: PositiveInt = 1
    samples_per_epoch: NonNegativeInt = 0  # 0 = every train example each epoch
    valid_users: NonNegativeInt = 0  # 0 = all; else a fixed seeded subset for early stopping
    eval_batch_size: PositiveInt = 256


def exclusion(data: SequenceData, users: np.ndarray, device: torch.device) -> Tensor:
    """(U, n_items) bool: each user's train items (masked from the ranking, as EVALUATION.md says)."""
    mask = torch.zeros(len(users), data.n_items, dtype=torch.bool)
    for row, u in enumerate(users):
        mask[row, torch.from_numpy(data.train_sequences[u])] = True
    return mask.to(device)


@torch.no_grad()
def evaluate(
    model: SequenceRecommender, data: SequenceData, split: str, batch_size: int = 256, rows: np.ndarray | None = None
) -> dict[str, dict[str, float]]:
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
        top = model.recommend(history, max(KS), exclusion(data, evalset.users[r], device))
        hits = top == torch.from_numpy(evalset.target[r]).to(device).unsqueeze(1)
        for key, value in rank_metrics(hits, torch.ones(len(r), dtype=torch.long, device=device), KS).items():
            per_user.setdefault(key, []).append(value.cpu())
    model.train(was_training)
    values = {k: torch.cat(v).numpy() for k, v in per_user.items()}
    out = {}
    for group, mask in data.groups(split).items():
        mask = mask[rows]
        out[group] = {
            k: float(v[mask].mean()) if mask.any() else float("nan")
            for k, v in values.items()
            if k.split("@")[0] in ("recall", "ndcg")
        }
        out[group]["users"] = int(mask.sum())
    return out


def fit(
    model: SequenceRecommender, data: SequenceData, cfg: SequenceTrainConfig, seed: int, test: bool = True
) -> dict[str, Any]:
    """Adam + early stopping on valid recall@10; returns valid (and, with `test`, test) metrics at
    the best epoch."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    valid_rows = None
    if cfg.valid_users and cfg.valid_users < len(data.valid.users):
        valid_rows = np.sort(np.random.default_rng(seed).choice(len(data.valid.users), cfg.valid_users, replace=False))
    valid: dict[str, dict[str, Any]] = {}  # "last" evaluation and the "best" one

    def train_epoch(epoch: int) -> float:
        total, n = 0.0, 0
        for history, target in model.batches(data, cfg.batch_size, g, cfg.samples_per_epoch):
            loss = model.loss(history, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, n = total + float(loss.detach()), n + 1
        return total / max(1, n)

    def validate() -> float:
        valid["last"] = evaluate(model, data, "valid", cfg.eval_batch_size, valid_rows)
        return valid["last"]["all"][SELECT]

    def keep_best(state: LoopState) -> None:
        row = state.history[-1]
        log.info("epoch %d loss %.4f valid %s %.4f", row["epoch"], row["loss"], SELECT, row[METRIC])
        if state.best_epoch == row["epoch"]:
            valid["best"] = valid["last"]

    result = loop.run(
        model,
        Schedule(cfg.epochs, cfg.patience, cfg.eval_every, METRIC),
        train_epoch,
        validate,
        on_evaluated=keep_best,
        name=type(model).__name__,
    )
    if valid_rows is not None or "best" not in valid:  # report valid on every user, not the stopping subset
        valid["best"] = evaluate(model, data, "valid", cfg.eval_batch_size)
    t0 = time.perf_counter()
    test_metrics = evaluate(model, data, "test", cfg.eval_batch_size) if test else {}
    state = result.state
    return {
        "valid": valid["best"],
        "test": test_metrics,
        "best_epoch": state.best_epoch,
        "epochs_run": state.next_epoch,
        "train_seconds": result.train_seconds,
        "test_eval_seconds": time.perf_counter() - t0,
        "history": state.history,
    }
