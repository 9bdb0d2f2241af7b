"""The fast Evaluator must agree with the pure-Python reference to 1e-6 on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from reference import reference_evaluate

from motorec.data import TEST, TRAIN, VALID, load_dataset
from motorec.data.dataset import Dataset
from motorec.evaluation import Evaluator

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "ml100k-mm").is_dir(), reason=f"real data not found at {DATA}")


def subsample_users(ds: Dataset, n_users: int, seed: int = 0) -> Dataset:
    """Keep every interaction of a random subset of users (ids unchanged) so the oracle stays fast."""
    keep_users = np.random.default_rng(seed).choice(ds.n_users, size=min(n_users, ds.n_users), replace=False)
    keep = np.isin(ds.users, keep_users)
    return Dataset(
        name=ds.name,
        n_users=ds.n_users,
        n_items=ds.n_items,
        users=ds.users[keep],
        items=ds.items[keep],
        labels=ds.labels[keep],
        modalities=ds.modalities,
        cold_items=ds.cold_items,
    )


def tied_scores(n_users: int, n_items: int, seed: int) -> np.ndarray:
    """Random float32 scores with many exact ties (10 levels) so tie-breaking by item id matters."""
    rng = np.random.default_rng(seed)
    scores = (rng.integers(-5, 5, size=(n_users, n_items)) / 3).astype(np.float32)
    scores[:, ::7] = -0.0  # -0.0 must tie with +0.0, not rank below it
    scores[:, 1::7] = 0.0
    return scores


def per_user_sets(ds: Dataset, label: int) -> list[set[int]]:
    out: list[set[int]] = [set() for _ in range(ds.n_users)]
    mask = ds.labels == label
    for u, i in zip(ds.users[mask].tolist(), ds.items[mask].tolist()):
        out[u].add(i)
    return out


def compare(ds: Dataset, split: str, seed: int) -> None:
    scores = tied_scores(ds.n_users, ds.n_items, seed)
    table = torch.from_numpy(scores)
    evaluator = Evaluator(ds, "cpu", batch_size=97)  # several batches, last one ragged
    got = evaluator.evaluate(lambda users: table[users], split).metrics
    want = reference_evaluate(
        scores.astype(np.float64).tolist(),
        per_user_sets(ds, TRAIN),
        per_user_sets(ds, VALID if split == "valid" else TEST),
        None if ds.cold_items is None else set(ds.cold_items.tolist()),
        ds.item_degree.tolist(),
    )
    assert set(got) == set(want)
    for group, metrics in want.items():
        extra = set(got[group]) - set(metrics)
        assert extra <= {"cold_test_share"}, extra
        for name, value in metrics.items():
            assert got[group][name] == pytest.approx(value, abs=1e-6), (group, name)


@needs_data
@pytest.mark.parametrize("split", ["valid", "test"])
def test_agrees_on_ml100k_cold(split):
    ds = subsample_users(load_dataset(DATA / "ml100k-mm", split="ml100k-mm-cold.inter"), 300)
    assert ds.is_cold_split
    compare(ds, split, seed=1)


@needs_data
@pytest.mark.parametrize("split", ["valid", "test"])
def test_agrees_on_ml100k_warm(split):
    ds = subsample_users(load_dataset(DATA / "ml100k-mm", split="ml100k-mm.inter"), 300)
    compare(ds, split, seed=2)


@needs_data
def test_agrees_on_text_only_cold_catalogue():
    """amazon-scientific: sparse users (few GT items), larger catalogue, text only."""
    ds = subsample_users(load_dataset(DATA / "amazon-scientific", split="scientific-cold.inter"), 250)
    compare(ds, "test", seed=3)


def synthetic_split(cold: bool):
    from motorec.data import cold_split, make_synthetic, random_split

    ds = make_synthetic(n_users=120, n_items=230, seed=5)
    return cold_split(ds, seed=5) if cold else random_split(ds, seed=5)


@pytest.mark.parametrize("cold", [False, True])
@pytest.mark.parametrize("split", ["valid", "test"])
def test_item_blocks_and_budgeted_batches_agree_with_reference(cold, split):
    """A DotScorer ranked in narrow item blocks (tiny memory budget) gives the reference metrics:
    integer vectors make many exact ties that straddle block edges."""
    from motorec.evaluation import DotScorer

    ds = synthetic_split(cold)
    rng = np.random.default_rng(7)
    users = torch.from_numpy(rng.integers(-2, 3, size=(ds.n_users, 3)).astype(np.float32))
    items = torch.from_numpy(rng.integers(-2, 3, size=(ds.n_items, 3)).astype(np.float32))
    scores = (users @ items.T).numpy()
    want = reference_evaluate(
        scores.astype(np.float64).tolist(),
        per_user_sets(ds, TRAIN),
        per_user_sets(ds, VALID if split == "valid" else TEST),
        None if ds.cold_items is None else set(ds.cold_items.tolist()),
        ds.item_degree.tolist(),
    )
    # 13 users x 61 items per block: several user batches and ragged item blocks
    evaluator = Evaluator(ds, "cpu", batch_size=13, memory_mb=13 * 61 * 16 / 2**20)
    result = evaluator.evaluate(DotScorer(users, items), split, export_topk=True)
    for group, metrics in want.items():
        for name, value in metrics.items():
            assert result.metrics[group][name] == pytest.approx(value, abs=1e-6), (group, name)
    plain = Evaluator(ds, "cpu").evaluate(lambda u: users[u] @ items.T, split, export_topk=True)
    assert np.array_equal(plain.topk, result.topk)


def test_memory_budget_sets_the_batch():
    from motorec.evaluation.protocol import MAX_ITEM_BLOCK, batch_plan

    assert batch_plan(1_000_000, 1024, None, blockwise=False) == (67, 1_000_000)
    users, width = batch_plan(1_000_000, 1024, None, blockwise=True)
    assert width == MAX_ITEM_BLOCK and users * width * 16 <= 1024 * 2**20
    assert batch_plan(1682, 1024, 97, blockwise=True) == (97, 1682)


def test_reference_oracle_catches_a_wrong_tie_break():
    """The oracle is not a tautology: reversing the tie-break changes its answer."""
    scores = [[1.0, 1.0, 1.0, 0.0]]
    first = reference_evaluate(scores, [set()], [{0}], None, [20, 20, 20, 20])
    last = reference_evaluate(scores, [set()], [{2}], None, [20, 20, 20, 20])
    assert first["all"]["ndcg@10"] == 1.0
    assert last["all"]["ndcg@10"] == pytest.approx(0.5)
