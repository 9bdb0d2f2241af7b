"""Training of the semantic-ID ranker (DCN-V2, rating > 3) with the one early-stopping loop:
binary cross-entropy on the train part of a chronological split, early stopping on valid AUC,
test AUC / GAUC once per item group at the best-valid weights."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from motorec.config import ConfigModel, NonNegativeFloat, PositiveFloat, PositiveInt
from motorec.data import TEST, TRAIN, VALID, Dataset
from motorec.errors import MotorecError
from motorec.generative.ranking import DCN, auc, gauc, item_groups
from motorec.training import loop
from motorec.training.loop import Schedule


class RankTrainConfig(ConfigModel):
    """The `train:` keys of the ranker (values in configs/tasks/rank.yaml)."""

    epochs: PositiveInt = 20
    batch_size: PositiveInt = 1024
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 1e-6
    patience: PositiveInt = 2  # epochs without a better valid AUC


def fit_ranker(
    model: DCN, ds: Dataset, labels: np.ndarray, fields: np.ndarray, cfg: RankTrainConfig, seed: int
) -> dict[str, Any]:
    """Train DCN on the train part, early-stop on valid AUC, report test AUC/GAUC per item group."""
    if ds.ratings is None:
        raise MotorecError(f"Dataset '{ds.name}' has no ratings: the rating > 3 label needs them.")
    device = next(model.parameters()).device
    y = (ds.ratings > 3).astype(np.float32)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x = torch.from_numpy(fields).to(device)
    target = torch.from_numpy(y).to(device)
    train = torch.from_numpy(np.flatnonzero(labels == TRAIN))
    valid, test = np.flatnonzero(labels == VALID), np.flatnonzero(labels == TEST)
    g = torch.Generator().manual_seed(seed)

    def train_epoch(epoch: int) -> float:
        total, n = torch.zeros((), device=device), 0
        for idx in train[torch.randperm(len(train), generator=g)].split(cfg.batch_size):
            idx = idx.to(device)
            loss = F.binary_cross_entropy_with_logits(model(x[idx]), target[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, n = total + loss.detach(), n + 1
        return float(total) / max(1, n)

    result = loop.run(
        model,
        Schedule(cfg.epochs, cfg.patience, 1, "valid_auc"),
        train_epoch,
        lambda: auc(y[valid], _predict(model, x, valid)),
        name="dcn",
    )
    s = _predict(model, x, test)
    out: dict[str, Any] = {"valid_auc": result.state.best_score, "best_epoch": result.state.best_epoch}
    for name, mask in item_groups(ds, labels, test).items():
        out[name] = {
            "auc": auc(y[test][mask], s[mask]),
            "gauc": gauc(ds.users[test][mask], y[test][mask], s[mask]),
            "rows": int(mask.sum()),
        }
    return out


@torch.no_grad()
def _predict(model: DCN, x: Tensor, rows: np.ndarray, batch: int = 65536) -> np.ndarray:
    model.eval()
    idx = torch.from_numpy(rows).to(x.device)
    return torch.cat([model(x[idx[s : s + batch]]) for s in range(0, len(idx), batch)]).cpu().numpy()
