"""Splitters: reproducible from a seed, cold items get no train rows, MMRec round trip."""

from __future__ import annotations

import numpy as np
import pytest

from motorec.data import (
    TEST,
    TRAIN,
    VALID,
    cold_split,
    load_dataset,
    loo_split,
    make_synthetic,
    random_split,
    read_mmrec,
    write_mmrec,
)


@pytest.fixture(scope="module")
def raw():
    return make_synthetic(n_users=120, n_items=200, seed=7)


def test_random_split_is_reproducible_and_per_user(raw):
    a, b, c = random_split(raw, seed=1), random_split(raw, seed=1), random_split(raw, seed=2)
    assert np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.labels, c.labels)
    share = np.bincount(a.labels, minlength=3) / len(a.labels)
    assert share == pytest.approx([0.8, 0.1, 0.1], abs=0.02)
    assert (a.user_degree[np.unique(a.users)] >= 1).all()  # every user keeps a train interaction


def test_loo_split_holds_out_the_last_two_in_time(raw):
    ds = loo_split(raw)
    for u in range(0, raw.n_users, 17):
        rows = np.flatnonzero(ds.users == u)
        by_time = rows[np.argsort(ds.timestamps[rows], kind="stable")]
        assert ds.labels[by_time[-1]] == TEST and ds.labels[by_time[-2]] == VALID
        assert (ds.labels[by_time[:-2]] == TRAIN).all()


def test_cold_split_items_never_train(raw):
    ds = cold_split(raw, cold_fraction=0.25, seed=5)
    again = cold_split(raw, cold_fraction=0.25, seed=5)
    assert np.array_equal(ds.cold_items, again.cold_items) and np.array_equal(ds.labels, again.labels)
    assert len(ds.cold_items) == round(0.25 * len(np.unique(raw.items)))
    assert ds.item_degree[ds.cold_items].sum() == 0
    cold_rows = np.isin(ds.items, ds.cold_items)
    assert set(np.unique(ds.labels[cold_rows])) == {VALID, TEST}
    assert (ds.user_degree[np.unique(ds.users)] > 0).all()


@pytest.mark.parametrize("splitter", [random_split, cold_split, loo_split])
def test_write_mmrec_round_trip(raw, splitter, tmp_path):
    ds = splitter(raw)
    path = write_mmrec(ds, tmp_path / "synth" / "synth.inter")
    back = read_mmrec(path.parent, split=path.name, n_items=raw.n_items)
    assert np.array_equal(back.users, ds.users) and np.array_equal(back.items, ds.items)
    assert np.array_equal(back.labels, ds.labels)
    assert back.split_sha256() == ds.split_sha256()
    if ds.cold_items is not None:
        assert np.array_equal(back.cold_items, ds.cold_items)
    else:
        assert back.cold_items is None


def test_cli_split_writes_a_loadable_cold_split(tmp_path):
    from motorec.cli import main

    folder = tmp_path / "synth"
    write_mmrec(random_split(make_synthetic(n_users=80, n_items=120, seed=3)), folder / "synth.inter")
    out = folder / "synth-cold.inter"
    assert main(["data", "split", str(folder), "--kind", "cold", "--out", str(out), "--seed", "9"]) == 0
    ds = load_dataset(folder, split=out.name)
    assert ds.is_cold_split and ds.item_degree[ds.cold_items].sum() == 0


def test_cold_split_that_drops_users_forgets_where_the_unsplit_data_came_from(raw):
    # a user whose only items all turn cold has no train row and is dropped; the result is a new
    # split, so it must not claim it can be reloaded from the unsplit data's path
    from dataclasses import replace

    loaded = replace(raw, source={**raw.source, "load": "somewhere/raw"})
    heavy = cold_split(loaded, cold_fraction=0.9, seed=1)
    assert len(np.unique(heavy.users)) < len(np.unique(raw.users))  # users were dropped
    assert "load" not in heavy.source
