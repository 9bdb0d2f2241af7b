"""The warm/cold trade-off: per-group standardisation, offsets that move slots between warm and
cold items, and blending a warm expert with a cold expert."""

from __future__ import annotations

import pytest
import torch

from motorec.data import cold_split, make_synthetic, random_split
from motorec.data.dataset import TEST, VALID
from motorec.evaluation import Evaluator
from motorec.evaluation.tradeoff import (
    WARM_ONLY_OFFSET,
    best_valid_offset,
    blend,
    offset_curve,
    standardize_groups,
    warm_floor_offset,
)


@pytest.fixture(scope="module")
def ds():
    return cold_split(make_synthetic(n_users=120, n_items=200, dims={"text": 8}, seed=3), 0.2, seed=3)


def oracle(ds, label=TEST):
    """Scores that put each user's GT items of one split label first."""
    gt = torch.from_numpy(ds.matrix(label).toarray()).float()
    return lambda users: (
        gt[users] + 0.01 * torch.rand(len(users), ds.n_items, generator=torch.Generator().manual_seed(0))
    )


def test_standardize_groups_gives_each_group_zero_mean_unit_std():
    scores = torch.randn(5, 30) * 7 + 3
    cold = torch.zeros(30, dtype=torch.bool)
    cold[:10] = True
    z = standardize_groups(scores, cold)
    for mask in (cold, ~cold):
        assert torch.allclose(z[:, mask].mean(1), torch.zeros(5), atol=1e-5)
        assert torch.allclose(z[:, mask].std(1), torch.ones(5), atol=1e-5)


def test_offsets_move_top_k_slots_between_warm_and_cold_items(ds):
    evaluator = Evaluator(ds, "cpu", ks=(20,))
    curve = offset_curve(evaluator, oracle(ds), [-100.0, 100.0], splits=("test",))
    warm_only, cold_only = curve
    assert warm_only.cold_share == 0.0 and warm_only.recall["cold@full"] == 0.0
    assert warm_only.recall["warm"] > 0.9  # the oracle finds warm GT once cold items are out of the way
    assert cold_only.cold_share == 1.0 and cold_only.recall["warm"] == 0.0
    assert cold_only.recall["cold@full"] == pytest.approx(cold_only.recall["cold@cold"])


def test_blend_takes_warm_items_from_one_source_and_cold_items_from_the_other(ds):
    evaluator = Evaluator(ds, "cpu", ks=(20,))
    noise = lambda users: torch.rand(len(users), ds.n_items, generator=torch.Generator().manual_seed(1))
    good_warm = offset_curve(evaluator, blend(oracle(ds), noise, evaluator.cold), [-100.0], ("test",))[0]
    good_cold = offset_curve(evaluator, blend(noise, oracle(ds), evaluator.cold), [-100.0], ("test",))[0]
    assert good_warm.recall["warm"] > 0.9 and good_cold.recall["cold@cold"] > 0.9
    # the noisy source ranks its group no better than chance (20 of 40 cold items, 20 of 160 warm ones)
    assert good_warm.recall["cold@cold"] < 0.7 and good_cold.recall["warm"] < 0.3


def test_best_valid_offset_reads_valid_only(ds):
    evaluator = Evaluator(ds, "cpu", ks=(20,))
    curve = offset_curve(evaluator, oracle(ds, VALID), [-100.0, 0.0, 100.0])
    valid_best = max((p for p in curve if p.split == "valid"), key=lambda p: p.recall["all"]).offset
    assert best_valid_offset(curve) == valid_best


def test_warm_split_is_refused():
    warm = random_split(make_synthetic(n_users=50, n_items=60, dims={"text": 4}, seed=1), seed=1)
    with pytest.raises(ValueError, match="cold split"):
        offset_curve(Evaluator(warm, "cpu", ks=(20,)), lambda u: torch.zeros(len(u), warm.n_items), [0.0])


def test_a_warm_floor_keeps_offsets_that_take_too_many_warm_slots_out(ds):
    evaluator = Evaluator(ds, "cpu", ks=(20,))
    # cold items ranked perfectly, warm ones with noise: moving cold items up raises `all` and costs warm
    gt = torch.from_numpy(ds.matrix(VALID).toarray()).float()
    noise = torch.rand(ds.n_users, ds.n_items, generator=torch.Generator().manual_seed(0))
    scores = blend(lambda users: gt[users] + 2.0 * noise[users], oracle(ds, VALID), evaluator.cold)
    curve = offset_curve(evaluator, scores, [WARM_ONLY_OFFSET, -2.0, -1.0, 0.0, 1.0, 2.0], ("valid",))
    warm_only = curve[0].recall["warm"]
    unconstrained = best_valid_offset(curve[1:])
    chosen = warm_floor_offset(curve, 0.99)
    assert chosen is not None and chosen != unconstrained  # the floor binds here
    kept = next(p for p in curve if p.offset == chosen)
    assert kept.recall["warm"] >= 0.99 * warm_only
    better = [p for p in curve[1:] if p.recall["all"] > kept.recall["all"]]
    assert better and all(p.recall["warm"] < 0.99 * warm_only for p in better)
    # no offset but the warm-only one keeps all of it; and the curve must hold the warm-only point
    assert warm_floor_offset([curve[0], curve[-1]], 1.0) is None
    with pytest.raises(ValueError, match="warm-only point"):
        warm_floor_offset(curve[1:], 0.9)
