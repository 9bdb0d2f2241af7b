"""BPR sampling: one process keeps its stream; ranks split every global batch into disjoint shares."""

from __future__ import annotations

import torch

from motorec.data import load_dataset
from motorec.distributed import DistContext
from motorec.training.sampling import BPRSampler


def test_ranks_take_disjoint_shares_of_every_global_batch_and_equal_step_counts():
    ds = load_dataset("synthetic")
    one = BPRSampler(ds, torch.device("cpu"), seed=3)
    ranks = [BPRSampler(ds, torch.device("cpu"), seed=3, dist=DistContext(r, 3)) for r in range(3)]
    batch = 333  # per rank; the last global batch of the epoch is ragged
    epochs = [list(s.epoch(batch)) for s in ranks]
    assert len({len(e) for e in epochs}) == 1 and len(epochs[0]) == ranks[0].n_batches(batch) == -(-len(one) // 999)
    keys = lambda u, i: (u * ds.n_items + i).tolist()
    seen = []
    for step in range(len(epochs[0])):
        parts = [keys(e[step][0], e[step][1]) for e in epochs]
        assert all(parts) and sum(map(len, parts)) <= 3 * batch
        seen += [k for p in parts for k in p]
    # together the ranks cover every train pair exactly once, in the single-process epoch order
    order = [k for u, i, _ in one.epoch(3 * batch) for k in keys(u, i)]
    assert seen == order
    negatives = [e[0][2] for e in epochs]
    assert not torch.equal(negatives[0][:50], negatives[1][:50])  # each rank its own negative stream


def test_shards_are_contiguous_and_cover():
    sizes = [DistContext(r, 4).shard(10) for r in range(4)]
    assert [(s.start, s.stop) for s in sizes] == [(0, 3), (3, 6), (6, 8), (8, 10)]
