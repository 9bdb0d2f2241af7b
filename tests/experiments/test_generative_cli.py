"""`motorec generative` and `motorec rank` end to end on a tiny MMRec folder, and their user errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from motorec.cli import main
from motorec.data import Dataset, random_split, write_mmrec

# a tiny MMQ tokenizer for every task that builds semantic IDs
TINY_MMQ = [
    "--set",
    "ids.mmq.epochs=1",
    "--set",
    "ids.mmq.codebook_size=4",
    "--set",
    "ids.mmq.hidden=[8]",
    "--set",
    "ids.mmq.latent_dim=4",
]
TINY_TIGER = [
    "--set",
    "seeds=[1]",
    "--set",
    "train.epochs=1",
    "--set",
    "train.threads=1",
    "--set",
    "model.d_model=16",
    "--set",
    "model.n_heads=2",
    "--set",
    "model.ff_dim=16",
    *TINY_MMQ,
    "--set",
    "ids.mmq.ft_steps=2",
    "--set",
    "ids.mmq.ft_batch_size=8",
]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    rng = np.random.default_rng(0)
    n_users, n_items, per_user = 30, 25, 8
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    ds = Dataset(
        name="tiny",
        n_users=n_users,
        n_items=n_items,
        users=users,
        items=items,
        ratings=rng.integers(1, 6, len(users)).astype(np.float32),
        timestamps=np.arange(len(users)),
    )
    folder = tmp_path_factory.mktemp("tiny")
    write_mmrec(random_split(ds), folder / "tiny.inter")
    np.save(folder / "text_feat.npy", rng.normal(size=(n_items, 6)).astype(np.float32))
    np.save(folder / "image_feat.npy", rng.normal(size=(n_items, 10)).astype(np.float32))
    return folder


@pytest.mark.parametrize("ids", ["mmq-ft", "sasrec"])
def test_generative_writes_results(tiny_folder, tmp_path, ids):
    out = tmp_path / ids
    args = ["exp", "generative", "--data", str(tiny_folder), "--ids", ids, "--out", str(out)]
    if ids == "sasrec":
        args += ["--set", "seeds=[1]", "--set", "train.epochs=1", "--set", "model.d_model=16"]
    else:
        args += TINY_TIGER
    assert main(args) == 0
    result = json.loads((out / "results.json").read_text())
    assert set(result["test"]) == {"all", "longtail", "cold"}
    assert 0.0 <= result["test"]["all"]["recall@10"] <= 1.0 and result["test"]["all"]["users"] == 30
    seed = json.loads((out / "seed_1" / "result.json").read_text())
    if ids == "mmq-ft":
        assert seed["id_length"] == len(seed["vocab_sizes"]) >= 6
        assert (out / "seed_1" / "tokenizer" / "tokenizer.json").is_file()


def test_generative_fine_tunes_mmq_against_the_generator(tiny_folder, tmp_path):
    out = tmp_path / "gen"
    args = [
        "exp",
        "generative",
        "--data",
        str(tiny_folder),
        "--ids",
        "mmq-ft",
        "--out",
        str(out),
        *TINY_TIGER,
        "--set",
        "ids.mmq.ft_objective=generator",
        "--set",
        "train.warmup_epochs=1",
    ]
    assert main(args) == 0
    seed = json.loads((out / "seed_1" / "result.json").read_text())
    joint = seed["warm_restart"]
    assert joint["joint"] and len(joint["steps"]) == 2 and joint["warmup_valid"]["users"] == 30
    assert 0.0 <= joint["items_with_new_codes"] <= 1.0
    assert seed["tokenizer_diagnostics"]["collision_rate_joint"] == 0.0
    assert (
        joint["stage1_diagnostics"]["collision_rate_joint"] == 0.0 and "mean_utilisation" in joint["stage1_diagnostics"]
    )


def test_generative_warm_restart_keeps_the_ids(tiny_folder, tmp_path):
    out = tmp_path / "restart"
    args = [
        "exp",
        "generative",
        "--data",
        str(tiny_folder),
        "--ids",
        "mmq",
        "--out",
        str(out),
        *TINY_TIGER,
        "--set",
        "train.warm_restart=true",
        "--set",
        "train.warmup_epochs=1",
        "--set",
        "train.restart_steps=3",
    ]
    assert main(args) == 0
    restart = json.loads((out / "seed_1" / "result.json").read_text())["warm_restart"]
    assert not restart["joint"] and len(restart["steps"]) == 3 and restart["items_with_new_codes"] == 0.0
    assert "stage1_diagnostics" not in restart  # the IDs did not change: the result's diagnostics are theirs


def test_rank_writes_auc_per_feature_set(tiny_folder, tmp_path):
    out = tmp_path / "rank"
    args = [
        "exp",
        "rank",
        "--data",
        str(tiny_folder),
        "--features",
        "id,sid",
        "--out",
        str(out),
        "--set",
        "seeds=[1]",
        "--set",
        "train.epochs=1",
        *TINY_MMQ,
    ]
    assert main(args) == 0
    result = json.loads((out / "results.json").read_text())
    for feats in ("id", "sid"):
        assert 0.0 <= result[feats]["test"]["all"]["auc"] <= 1.0


def test_user_errors_exit_2(tiny_folder, tmp_path, capsys):
    assert main(["exp", "generative", "--data", str(tiny_folder), "--ids", "rqvea", "--out", str(tmp_path / "x")]) == 2
    assert "choose sasrec or one of" in capsys.readouterr().err
    assert main(["exp", "rank", "--data", str(tiny_folder), "--features", "id,foo", "--out", str(tmp_path / "y")]) == 2
    assert (
        main(
            [
                "exp",
                "generative",
                "--data",
                str(tiny_folder),
                "--ids",
                "mmq",
                "--out",
                str(tmp_path / "z"),
                "--set",
                "ids.mmq.w_ortho=0",
            ]
        )
        == 2
    )
    assert "unknown config key" in capsys.readouterr().err
    assert (
        main(
            [
                "exp",
                "rank",
                "--data",
                str(tiny_folder),
                "--ids",
                "mmq-ft",
                "--out",
                str(tmp_path / "w"),
                "--set",
                "ids.mmq.ft_objective=generator",
            ]
        )
        == 2
    )
    assert "fine-tunes MMQ against the generator's loss" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()
