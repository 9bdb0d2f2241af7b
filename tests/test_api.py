"""The Python API: train on an in-memory dataset, use the Run, save/reload it, compare."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import motorec
from motorec.api import settings_of
from motorec.errors import MotorecError


def test_import_motorec_does_not_import_torch():
    code = "import sys, motorec; assert 'torch' not in sys.modules; assert callable(motorec.train)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_keyword_settings_become_set_strings():
    assert settings_of([1, 2], {"train": {"epochs": 5, "lr": 0.01}, "model__n_layers": 2, "item_repr": "motor"}) == [
        "seeds=[1, 2]",
        "train.epochs=5",
        "train.lr=0.01",
        "model.n_layers=2",
        'item_repr="motor"',
    ]


def test_run_metrics_are_the_results_file(synthetic_runs):
    run = synthetic_runs["lightgcn"]
    assert run.metrics == json.loads((run.dir / "results.json").read_text())
    assert run.metrics["config"]["data"]["path"] == "synthetic-cold"  # the in-memory dataset remembered its origin
    assert run.metrics["seeds"] == [2026] and run.metrics["config"]["train"]["epochs"] == 3
    assert "cold@cold" in run.metrics["test"]


def test_recommend_and_score_agree_and_skip_seen_items(synthetic_runs):
    run = synthetic_runs["lightgcn"]
    top = run.recommend(3, k=10)
    scores = run.score([3, 4])
    assert scores.shape == (2, run.dataset.n_items)
    seen = run.dataset.train_matrix[3].indices
    assert not set(top) & set(seen)
    masked = scores[0].copy()
    masked[seen] = -np.inf
    assert top[0] == int(np.argmax(masked))
    with pytest.raises(MotorecError, match="unknown user"):
        run.score([run.dataset.n_users])


def test_save_and_load_run_give_the_same_model(synthetic_runs, tmp_path):
    run = synthetic_runs["lightgcn"]
    before = run.score([0])
    copy = motorec.load_run(run.dir).save(tmp_path / "kept")
    assert copy.dir == tmp_path / "kept" and (copy.dir / "seed_2026" / "checkpoint.pt").is_file()
    again = motorec.load_run(tmp_path / "kept")
    np.testing.assert_allclose(again.score([0]), before, rtol=1e-5)
    assert again.evaluate("test")["all"]["recall@20"] == pytest.approx(run.metrics["test"]["all"]["recall@20"])
    with pytest.raises(MotorecError, match="not empty"):
        motorec.load_run(run.dir).save(tmp_path / "kept")


def test_a_dataset_built_in_memory_needs_passing_back(tmp_path):
    ds = motorec.load_dataset("synthetic-cold")
    resplit = ds.with_split(ds.labels.copy(), ds.cold_items)  # a new split object: no file to reopen
    run = motorec.train(resplit, "bpr", seeds=[2026], out=tmp_path / "bpr", train={"epochs": 1, "progress": False})
    assert run.metrics["config"]["data"]["path"] is None
    assert len(run.recommend(0, 5)) == 5  # the Run keeps the dataset it was trained on
    with pytest.raises(MotorecError, match="in-memory dataset"):
        motorec.load_run(run.dir).recommend(0)
    assert len(motorec.load_run(run.dir, dataset=resplit).recommend(0, 5)) == 5
    other = motorec.load_dataset("synthetic")
    with pytest.raises(MotorecError, match="split hash"):
        motorec.load_run(run.dir, dataset=other).recommend(0)


def test_train_without_out_writes_a_temporary_run():
    ds = motorec.load_dataset("synthetic-cold")
    run = motorec.train(ds, "bpr", seeds=[2026], train={"epochs": 1, "progress": False})
    assert run.dir.name.startswith("motorec-bpr-") and (run.dir / "results.json").is_file()


def test_tokens_and_explain(synthetic_runs):
    run = synthetic_runs["motorec"]
    tokens = run.tokens(5)
    codes, slots = run.model.token_table()
    assert [t["code"] for t in tokens] == codes[5].tolist()
    assert {(t["modality"], t["level"]) for t in tokens} == {(s.modality, s.level) for s in slots}
    assert run.tokens("5") == tokens  # the dataset's own id (internal here: synthetic data has no mapping)
    first = tokens[0]
    spec = f"{first['modality']}:{first['level']}:{first['code']}"
    meaning = run.explain(token=spec, max_items=1000)
    col = next(i for i, s in enumerate(slots) if (s.modality, s.level) == (first["modality"], first["level"]))
    expected = {i for i in np.flatnonzero(codes[:, col] == first["code"]) if run.dataset.item_degree[i] > 0}
    assert {i["item"] for i in meaning["items"]} == expected and meaning["n_items"] == len(expected)
    with pytest.raises(MotorecError, match="exactly one"):
        run.explain()


def test_compare_returns_a_dataframe(tmp_path):
    frame = motorec.compare(
        ["synthetic-cold"],
        ["bpr", "content_profile"],
        seeds=[2026],
        out=tmp_path,
        train={"epochs": 1, "progress": False},
    )
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["model"]) == ["bpr", "content_profile"] and set(frame["status"]) == {"ok"}
    table = json.loads((tmp_path / "compare.json").read_text())
    assert frame["cold@cold_recall@20_mean"].tolist() == [r["test"]["cold@cold"]["recall@20"][0] for r in table]
