"""BPR triples: every train pair once per epoch, one uniform negative the user has not seen.

Negatives come from items with train interactions (as in MMRec's loader), so zero-shot cold
items are never pushed down as negatives. State lives in a torch.Generator, so a resumed run
draws the same batches.

Data-parallel (`dist` with several ranks): `batch_size` is per rank, a global batch is
batch_size x ranks pairs. Every rank draws the same epoch order from the shared generator and
takes its contiguous part of each global batch, so the ranks' positives are disjoint, cover the
epoch exactly once, and every rank takes the same number of steps (1/ranks of a single process's:
full-graph models propagate the whole graph once per step, so fewer steps is where the speed-up
comes from).
Negatives come from a per-rank generator seeded from the shared one at each epoch start, so a
checkpoint (the shared state) resumes on any number of ranks. One process draws everything from
the shared generator: exactly the single-process stream.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from motorec.data.dataset import Dataset
from motorec.distributed import SINGLE, DistContext


class BPRSampler:
    def __init__(self, ds: Dataset, device: torch.device, seed: int, dist: DistContext = SINGLE) -> None:
        train = ds.train_matrix.tocoo()
        self.n_items = ds.n_items
        self.device = device
        self.users = torch.from_numpy(train.row.astype(np.int64)).to(device)
        self.items = torch.from_numpy(train.col.astype(np.int64)).to(device)
        self.keys = torch.sort(self.users * self.n_items + self.items).values
        self.candidates = torch.from_numpy(np.flatnonzero(ds.item_degree > 0)).to(device)
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.dist = dist

    def __len__(self) -> int:
        return int(self.users.shape[0])

    def _seen(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        keys = users * self.n_items + items
        pos = torch.searchsorted(self.keys, keys).clamp(max=len(self.keys) - 1)
        return self.keys[pos] == keys

    def sample_negatives(self, users: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        gen = self.generator if generator is None else generator
        draw = lambda n: self.candidates[torch.randint(len(self.candidates), (n,), generator=gen).to(self.device)]
        neg = draw(len(users))
        for _ in range(20):
            bad = self._seen(users, neg)
            if not bad.any():
                break
            neg[bad] = draw(int(bad.sum()))
        return neg

    def _global_batches(self, batch_size: int) -> list[tuple[int, int]]:
        """[start, stop) of each global batch (batch_size per rank); a last batch too small to give
        every rank a pair joins the previous one."""
        size = batch_size * self.dist.world
        bounds = [(s, min(len(self), s + size)) for s in range(0, len(self), size)]
        if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < self.dist.world:
            bounds[-2:] = [(bounds[-2][0], bounds[-1][1])]
        return bounds

    def epoch(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self), generator=self.generator).to(self.device)
        negatives = self.generator
        if self.dist.enabled:
            seed = int(torch.randint(2**62, (1,), generator=self.generator))
            negatives = torch.Generator(device="cpu").manual_seed(seed + self.dist.rank)
        for start, stop in self._global_batches(batch_size):
            part = self.dist.shard(stop - start)
            idx = order[start + part.start : start + part.stop]
            users = self.users[idx]
            yield users, self.items[idx], self.sample_negatives(users, negatives)

    def n_batches(self, batch_size: int) -> int:
        return len(self._global_batches(batch_size))
