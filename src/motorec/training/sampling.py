"""BPR triples: every train pair once per epoch, one uniform negative the user has not seen.

Negatives come from items with train interactions (as in MMRec's loader), so zero-shot cold
items are never pushed down as negatives. State lives in a torch.Generator, so a resumed run
draws the same batches.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from motorec.data.dataset import Dataset


class BPRSampler:
    def __init__(self, ds: Dataset, device: torch.device, seed: int) -> None:
        train = ds.train_matrix.tocoo()
        self.n_items = ds.n_items
        self.device = device
        self.users = torch.from_numpy(train.row.astype(np.int64)).to(device)
        self.items = torch.from_numpy(train.col.astype(np.int64)).to(device)
        self.keys = torch.sort(self.users * self.n_items + self.items).values
        self.candidates = torch.from_numpy(np.flatnonzero(ds.item_degree > 0)).to(device)
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def _seen(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        keys = users * self.n_items + items
        pos = torch.searchsorted(self.keys, keys).clamp(max=len(self.keys) - 1)
        return self.keys[pos] == keys

    def sample_negatives(self, users: torch.Tensor) -> torch.Tensor:
        draw = lambda n: self.candidates[torch.randint(len(self.candidates), (n,), generator=self.generator).to(self.device)]
        neg = draw(len(users))
        for _ in range(20):
            bad = self._seen(users, neg)
            if not bad.any():
                break
            neg[bad] = draw(int(bad.sum()))
        return neg

    def epoch(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self), generator=self.generator).to(self.device)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            users = self.users[idx]
            yield users, self.items[idx], self.sample_negatives(users)

    def n_batches(self, batch_size: int) -> int:
        return (len(self) + batch_size - 1) // batch_size
