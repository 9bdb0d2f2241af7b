"""The shared loop: early stopping, best-valid selection, --resume, multi-seed results, exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import motorec.training.trainer as trainer
from motorec.checkpoint import load_checkpoint
from motorec.cli import main
from motorec.data import load_dataset

BASE = ["--set", "train.progress=false", "--set", "train.threads=1", "--set", "model.embedding_dim=16"]


def train(run: Path, *sets: str, model: str = "bpr", data: str = "synthetic-cold", extra: tuple[str, ...] = ()) -> int:
    argv = ["train", "--data", data, "--model", model, "--out", str(run), *BASE, *extra]
    for s in sets:
        argv += ["--set", s]
    return main(argv)


def test_early_stopping_and_best_valid_state(tmp_path):
    run = tmp_path / "run"
    assert train(run, "seeds=[3]", "train.epochs=300", "train.patience=3", "train.lr=0.05") == 0
    seed = json.loads((run / "seed_3" / "result.json").read_text())
    history = seed["history"]
    best = max(history, key=lambda h: h["valid_recall@20"])
    assert seed["epochs_run"] < 300, "patience 3 must stop long before the epoch budget"
    assert seed["best_epoch"] == best["epoch"]
    assert seed["epochs_run"] == seed["best_epoch"] + 3 + 1  # three worse evaluations, then stop
    # the reported valid figure is the best one: the model was restored to its best state
    assert seed["valid"]["all"]["recall@20"] == pytest.approx(best["valid_recall@20"], abs=1e-9)
    ckpt = load_checkpoint(run / "seed_3" / "checkpoint.pt")
    assert ckpt["best_epoch"] == seed["best_epoch"]
    assert ckpt["epoch"] == seed["epochs_run"] - 1  # the checkpoint is the latest state, not the best
    assert not torch.equal(ckpt["model"]["user_emb"], ckpt["best_state"]["user_emb"])


def test_resume_continues_from_the_checkpoint(tmp_path, monkeypatch):
    sets = ("seeds=[5]", "train.epochs=8", "train.patience=100", "train.lr=0.01")
    full = tmp_path / "full"
    assert train(full, *sets, model="lightgcn") == 0
    saves = []
    real_save = trainer.save_checkpoint

    def save_then_die(path, state):
        real_save(path, state)
        saves.append(state["epoch"])
        if len(saves) == 3:
            raise KeyboardInterrupt  # killed right after the epoch-2 checkpoint

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_die)
    part = tmp_path / "part"
    assert train(part, *sets, model="lightgcn") == 130  # Ctrl-C: "interrupted", exit 130
    assert not (part / "results.json").exists()
    monkeypatch.setattr(trainer, "save_checkpoint", real_save)
    assert train(part, *sets, model="lightgcn") == 2  # a non-empty RUN_DIR needs --resume or --overwrite
    assert train(part, *sets, model="lightgcn", extra=("--resume",)) == 0
    a = json.loads((full / "seed_5" / "result.json").read_text())
    b = json.loads((part / "seed_5" / "result.json").read_text())
    assert b["epochs_run"] == 8 and [h["epoch"] for h in b["history"]] == list(range(8))
    for ha, hb in zip(a["history"], b["history"]):  # the resumed run continues the same trajectory
        assert hb == pytest.approx(ha, rel=1e-5)
    assert b["test"] == a["test"]


MOTOREC_SMALL = (
    "model.content_dim=16",
    "model.content_hidden=32",
    "model.tokenizer.codebook_size=16",
    "model.tokenizer.hidden=[32]",
    "model.tokenizer.latent_dim=8",
    "model.tokenizer.epochs=3",
)


def test_resume_inside_a_later_stage_continues_that_stage(tmp_path, monkeypatch):
    """MoToRec trains in two stages; a run killed in its second stage resumes there, not from the start."""
    sets = ("seeds=[5]", "train.epochs=3", "train.patience=100", "train.lr=0.01", *MOTOREC_SMALL)
    extra = ("--set", f"data.cache_dir={tmp_path / 'cache'}")
    full = tmp_path / "full"
    assert train(full, *sets, model="motorec", extra=extra) == 0
    saves = []
    real_save = trainer.save_checkpoint

    def save_then_die(path, state):
        real_save(path, state)
        saves.append(state["stage"])
        if saves.count(1) == 1:
            raise KeyboardInterrupt  # killed right after the first checkpoint of the ID stage

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_die)
    part = tmp_path / "part"
    assert train(part, *sets, model="motorec", extra=extra) == 130
    monkeypatch.setattr(trainer, "save_checkpoint", real_save)
    assert train(part, *sets, model="motorec", extra=(*extra, "--resume")) == 0
    a = json.loads((full / "seed_5" / "result.json").read_text())
    b = json.loads((part / "seed_5" / "result.json").read_text())
    assert [h["stage"] for h in b["history"]] == ["content"] * 3 + ["id"] * 3
    assert b["epochs_run"] == 6 and [h["epoch"] for h in b["history"]] == list(range(6))
    for ha, hb in zip(a["history"], b["history"]):  # the resumed run continues the same trajectory
        assert (hb["stage"], hb["select"]) == (ha["stage"], ha["select"])
        assert (hb["loss"], hb["valid_recall@20"]) == pytest.approx((ha["loss"], ha["valid_recall@20"]), rel=1e-5)
    assert b["test"]["all"]["recall@20"] == pytest.approx(a["test"]["all"]["recall@20"], rel=1e-6)


def test_multi_seed_results_schema_and_topk(tmp_path, capsys):
    run = tmp_path / "run"
    assert train(run, "seeds=[1,2]", "train.epochs=4") == 0
    results = json.loads((run / "results.json").read_text())
    assert {"config", "split_sha256", "seeds", "valid", "test", "test_std"} <= set(results)
    assert results["seeds"] == [1, 2]
    assert set(results["test"]) == {"all", "warm", "cold@full", "cold@cold"}
    for section in ("valid", "test", "test_std"):
        for metrics in results[section].values():
            for name in metrics:
                assert re.fullmatch(r"[a-z_]+(@\d+)?", name), name
            assert {"recall@20", "ndcg@20", "precision@20", "map@20", "hit@20", "recall@50"} <= set(metrics)
    per_seed = [json.loads((run / f"seed_{s}" / "result.json").read_text()) for s in (1, 2)]
    values = np.array([r["test"]["all"]["recall@20"] for r in per_seed])
    assert values[0] != values[1]
    assert results["test"]["all"]["recall@20"] == pytest.approx(values.mean())
    assert results["test_std"]["all"]["recall@20"] == pytest.approx(values.std())
    ds = load_dataset("synthetic-cold")
    assert results["split_sha256"] == ds.split_sha256()
    assert results["config"]["seeds"] == [1, 2] and results["config"]["model_name"] == "bpr"

    # topk_test.tsv: userID then 50 distinct unseen item ids; the first seed's metrics recompute from it
    rows = [line.split("\t") for line in (run / "topk_test.tsv").read_text().splitlines()]
    test_users = np.unique(ds.users[ds.labels == 2])
    assert [int(r[0]) for r in rows] == test_users.tolist()
    train_m, test_m = ds.train_matrix, ds.matrix(2)
    recalls = []
    for row in rows:
        u, items = int(row[0]), [int(x) for x in row[1:]]
        assert len(items) == 50 and len(set(items)) == 50
        assert not set(items) & set(train_m[u].indices.tolist())
        gt = set(test_m[u].indices.tolist())
        recalls.append(len(gt & set(items[:20])) / len(gt))
    assert np.mean(recalls) == pytest.approx(per_seed[0]["test"]["all"]["recall@20"], abs=1e-6)

    # `evaluate` re-scores the best checkpoint of the first seed identically and exports the same lists
    export = tmp_path / "again.tsv"
    capsys.readouterr()
    assert main(["evaluate", str(run), "--export", str(export)]) == 0
    assert export.read_text() == (run / "topk_test.tsv").read_text()
    assert f"{per_seed[0]['test']['all']['recall@20']:.4f}" in capsys.readouterr().out
