"""The scalable synthetic catalogue: seeded, sized as asked, content-driven, written as an MMRec folder."""

from __future__ import annotations

import numpy as np
import pytest

from motorec.cli import main
from motorec.data import load_dataset, synthetic_catalogue
from motorec.errors import MotorecError


def test_sizes_seed_and_no_repeated_pairs():
    a = synthetic_catalogue(5000, 400, 8000, dims={"text": 8}, seed=3)
    b = synthetic_catalogue(5000, 400, 8000, dims={"text": 8}, seed=3)
    c = synthetic_catalogue(5000, 400, 8000, dims={"text": 8}, seed=4)
    assert np.array_equal(a.items, b.items) and np.array_equal(a.modalities["text"], b.modalities["text"])
    assert not np.array_equal(a.items, c.items)
    assert a.modalities["text"].shape == (5000, 8) and a.modalities["text"].dtype == np.float32
    assert abs(a.n_interactions - 8000) < 400
    assert np.bincount(a.users, minlength=400).min() >= 5
    keys = a.users * a.n_items + a.items
    assert len(np.unique(keys)) == len(keys)


def test_content_predicts_interactions():
    """Items a user interacted with are closer in content to the user's other items than random items are."""
    ds = synthetic_catalogue(3000, 300, 6000, dims={"text": 32}, seed=1)
    x = ds.modalities["text"] - ds.modalities["text"].mean(0)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rng = np.random.default_rng(0)
    same, rand = [], []
    for u in range(300):
        items = ds.items[ds.users == u]
        same.append(float(x[items[0]] @ x[items[1:]].mean(0)))
        rand.append(float(x[rng.integers(3000)] @ x[items[1:]].mean(0)))
    assert np.mean(same) > np.mean(rand) + 0.1


def test_cli_writes_a_folder_every_command_reads(tmp_path):
    out = tmp_path / "cat"
    assert (
        main(
            [
                "data",
                "synthetic",
                "--out",
                str(out),
                "--items",
                "800",
                "--users",
                "100",
                "--interactions",
                "1500",
                "--text-dim",
                "8",
            ]
        )
        == 0
    )
    ds = load_dataset(out)
    assert ds.n_items == 800 and ds.modalities["text"].shape == (800, 8) and ds.is_split
    assert main(["data", "synthetic", "--out", str(out), "--items", "10", "--users", "2", "--interactions", "10"]) == 2


def test_spec_string_and_its_errors():
    ds = load_dataset("synthetic:items=400,users=60,interactions=600,text=4,cold")
    assert ds.is_cold_split and ds.modalities["text"].shape == (400, 4)
    for bad in ("synthetic:items=400,users=60", "synthetic:items=4x,users=6,interactions=60", "synthetic:colour=1"):
        with pytest.raises(MotorecError, match="synthetic:items=N"):
            load_dataset(bad)
    with pytest.raises(MotorecError, match="interactions >= 5 x users"):
        synthetic_catalogue(10, 10, 20)
