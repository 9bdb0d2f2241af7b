"""Discriminative ranking with semantic IDs: a DCN-V2 click/rating model (Wang et al., "DCN V2",
WWW 2021, arXiv 2008.13535) predicting whether a user rates an item above 3 (trained by
`motorec.training.ranking.fit_ranker`).

Item features: its ID ("id"), its semantic-ID tokens ("sid", content codes only, never the
collision suffix), or both. The split is chronological over the whole log (train / valid / test by
timestamp), so the test period holds items with few or no train ratings; AUC and GAUC
(impression-weighted per-user AUC, users with both classes) are reported overall, on items with
< 10 train interactions and on items with none (their semantic ID comes from content alone).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import torch
from scipy.stats import rankdata
from torch import Tensor, nn

from motorec.config import ConfigModel, NonNegativeInt, PositiveInt, Probability
from motorec.data import TEST, TRAIN, VALID, Dataset
from motorec.errors import MotorecError

FEATURE_SETS = ("id", "sid", "both")
LONGTAIL = 10


def chronological_split(ds: Dataset, test_frac: float = 0.1, valid_frac: float = 0.1) -> np.ndarray:
    """Labels by global time order (ties: file order): the last test_frac is test, the valid_frac
    before it valid (carved from the 90% train part), the rest train."""
    if ds.timestamps is None:
        raise MotorecError(f"Dataset '{ds.name}' has no timestamps: a chronological split needs them.")
    order = np.lexsort((np.arange(ds.n_interactions), ds.timestamps))
    n = len(order)
    n_test, n_valid = round(n * test_frac), round(n * valid_frac)
    labels = np.full(n, TRAIN, dtype=np.int8)
    labels[order[n - n_test :]] = TEST
    labels[order[n - n_test - n_valid : n - n_test]] = VALID
    return labels


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula (ties get average ranks); NaN without both classes."""
    pos = y > 0
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def gauc(users: np.ndarray, y: np.ndarray, s: np.ndarray) -> float:
    """Impression-weighted mean of per-user AUC over users with both classes."""
    order = np.argsort(users, kind="stable")
    users, y, s = users[order], y[order], s[order]
    bounds = np.flatnonzero(np.r_[True, users[1:] != users[:-1], True])
    num = den = 0.0
    for a, b in pairwise(bounds):
        value = auc(y[a:b], s[a:b])
        if not np.isnan(value):
            num, den = num + value * (b - a), den + (b - a)
    return num / den if den else float("nan")


class DCNParams(ConfigModel):
    """The `model:` section of the ranking task (DCN's constructor keywords; values in configs/tasks/rank.yaml)."""

    dim: PositiveInt  # embedding width of every field
    cross_layers: NonNegativeInt
    hidden: list[PositiveInt]  # the deep tower
    dropout: Probability


class DCN(nn.Module):
    """DCN-V2: field embeddings -> [cross network (x_{l+1} = x0 * (W x_l + b) + x_l) || MLP] -> logit."""

    def __init__(
        self,
        field_sizes: list[int],
        *,
        dim: int = 16,
        cross_layers: int = 2,
        hidden: tuple[int, ...] | list[int] = (128, 64),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        embeddings = [nn.Embedding(n, dim) for n in field_sizes]
        self.embeddings = nn.ModuleList(embeddings)
        width = dim * len(field_sizes)
        self.cross = nn.ModuleList(nn.Linear(width, width) for _ in range(cross_layers))
        layers: list[nn.Module] = []
        prev = width
        for h in hidden:
            layers += [nn.Linear(prev, int(h)), nn.ReLU(), nn.Dropout(dropout)]
            prev = int(h)
        self.deep = nn.Sequential(*layers)
        self.out = nn.Linear(width + prev, 1)
        for emb in embeddings:
            nn.init.normal_(emb.weight, std=0.01)

    def forward(self, fields: Tensor) -> Tensor:
        x0 = torch.cat([emb(fields[:, i]) for i, emb in enumerate(self.embeddings)], dim=1)
        x = x0
        for layer in self.cross:
            x = x0 * layer(x) + x
        return self.out(torch.cat([x, self.deep(x0)], dim=1)).squeeze(1)


def item_groups(ds: Dataset, labels: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Masks over interaction `rows`: all, longtail (item with < 10 train interactions), cold (none)."""
    degree = np.bincount(ds.items[labels == TRAIN], minlength=ds.n_items)[ds.items[rows]]
    return {"all": np.ones(len(rows), dtype=bool), "longtail": degree < LONGTAIL, "cold": degree == 0}


def field_table(
    ds: Dataset, features: str, sid: np.ndarray | None, sid_sizes: list[int]
) -> tuple[np.ndarray, list[int]]:
    """(n_interactions, n_fields) categorical inputs and each field's vocabulary size."""
    if features not in FEATURE_SETS:
        raise MotorecError(f"--features '{features}': choose one of {', '.join(FEATURE_SETS)}.")
    cols, sizes = [ds.users], [ds.n_users]
    if features in ("id", "both"):
        cols.append(ds.items)
        sizes.append(ds.n_items)
    if features in ("sid", "both"):
        if sid is None:
            raise MotorecError(f"--features {features} needs semantic IDs.")
        cols += [sid[ds.items, j] for j in range(sid.shape[1])]
        sizes += list(sid_sizes)
    return np.column_stack(cols).astype(np.int64), sizes
