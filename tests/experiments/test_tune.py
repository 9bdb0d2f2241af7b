"""tune chooses on validation only; compare writes one table with n/a rows and per-epoch time."""

from __future__ import annotations

import json

import pytest
import yaml

from motorec.errors import MotorecError
from motorec.experiments import compare as compare_mod
from motorec.experiments import tune as tune_mod
from motorec.experiments.compare import DatasetSpec, compare
from motorec.experiments.tune import grid_points, parse_grid, tune

FAST = ["seeds=[1]", "train.epochs=2", "train.threads=1", "train.progress=false"]


def test_parse_grid_from_flags_and_file(tmp_path):
    f = tmp_path / "grid.yaml"
    f.write_text("train.lr: [0.001, 0.01]\nn_layers: 2\n")
    grid = parse_grid(["reg_weight=1e-4,0.01", "dropout=0.8"], f)
    assert grid == {"train.lr": [0.001, 0.01], "n_layers": [2], "reg_weight": [1e-4, 0.01], "dropout": [0.8]}
    assert len(grid_points(grid)) == 4
    assert parse_grid(["modalities=[text,image],[text]"]) == {"modalities": [["text", "image"], ["text"]]}
    with pytest.raises(MotorecError, match="expected key=v1"):
        parse_grid(["reg_weight"])
    with pytest.raises(MotorecError, match="no grid"):
        parse_grid([])


def fake_results(valid: float, test: float) -> dict:
    groups = lambda v: {"all": {"recall@20": v, "ndcg@20": v / 2}}
    return {
        "valid": groups(valid),
        "test": groups(test),
        "test_std": groups(0.0),
        "runs": [{"train_seconds_per_epoch": 1.0, "epochs_run": 3, "best_epoch": 1}],
        "seeds": [1],
    }


def test_tune_selects_on_valid_never_on_test(tmp_path, monkeypatch):
    # the point with the best test has the worst valid: it must not be chosen
    table = {0.0001: (0.30, 0.10), 0.01: (0.20, 0.50)}
    seen = []

    def fake_run(data, model, out, split, config_file, overrides, overwrite, resume):
        reg = next(yaml.safe_load(o.split("=", 1)[1]) for o in overrides if o.startswith("reg_weight="))
        seen.append(out)
        return fake_results(*table[reg])

    monkeypatch.setattr(tune_mod, "run_experiment", fake_run)
    summary = tune("synthetic-cold", "bpr", tmp_path, {"reg_weight": [0.0001, 0.01]}, overrides=FAST)
    assert summary["best"]["point"] == {"reg_weight": 0.0001}
    assert summary["best"]["test"]["all"]["recall@20"] == 0.10
    assert all("test" not in t for t in summary["trials"])  # test only for the chosen point
    assert len(set(seen)) == 2
    assert yaml.safe_load((tmp_path / "best.yaml").read_text()) == {"model": {"reg_weight": 0.0001}}
    assert "(chosen)" in (tmp_path / "tune.md").read_text()


def test_tune_real_runs_resume(tmp_path):
    summary = tune("synthetic-cold", "bpr", tmp_path, {"reg_weight": [0.0001, 0.01]}, overrides=FAST)
    assert json.loads((tmp_path / "tune.json").read_text())["best"]["trial"] == summary["best"]["trial"]
    again = tune("synthetic-cold", "bpr", tmp_path, {"reg_weight": [0.0001, 0.01]}, overrides=FAST)
    assert again["trials"] == summary["trials"]  # finished trials are reused, not retrained


def test_dataset_spec():
    spec = DatasetSpec.parse("../shared/data/ml100k-mm:ml100k-mm-cold.inter")
    assert (spec.label, spec.split) == ("ml100k-mm-cold", "ml100k-mm-cold.inter")
    assert DatasetSpec.parse("synthetic-cold") == DatasetSpec("synthetic-cold", "synthetic-cold", None)


def test_compare_writes_one_table_with_na_rows(tmp_path, monkeypatch):
    real = compare_mod.run_experiment

    def run(data, model, out, split, config, overrides, resume):
        if model == "vbpr":
            raise MotorecError("model 'vbpr' needs at least 1 content modalities")
        return real(data, model, out, split, config, overrides, resume=resume)

    monkeypatch.setattr(compare_mod, "run_experiment", run)
    rows = compare(["content_profile", "bpr", "vbpr"], ["synthetic-cold"], tmp_path, FAST)
    assert [r["status"] for r in rows] == ["ok", "ok", "n/a"]
    md = (tmp_path / "compare.md").read_text()
    assert "cold@cold R@20" in md and "needs at least 1 content" in md
    csv_lines = (tmp_path / "compare.csv").read_text().splitlines()
    assert len(csv_lines) == 4 and "cold@cold_recall@20_mean" in csv_lines[0]
    bpr = json.loads((tmp_path / "compare.json").read_text())[1]
    assert bpr["content_path"] is False and bpr["train_s_per_epoch"] > 0
    assert set(bpr["test"]) == {"all", "warm", "cold@full", "cold@cold"}
    # a second invocation adds its rows to the same table and replaces re-run cells
    compare(["content_profile"], ["synthetic"], tmp_path, FAST)
    table = json.loads((tmp_path / "compare.json").read_text())
    assert [(r["dataset"], r["model"]) for r in table] == [
        ("synthetic-cold", "content_profile"),
        ("synthetic-cold", "bpr"),
        ("synthetic-cold", "vbpr"),
        ("synthetic", "content_profile"),
    ]


def test_cli_tune_and_compare(tmp_path):
    from motorec.cli import main

    assert (
        main(
            [
                "exp",
                "tune",
                "--data",
                "synthetic-cold",
                "--model",
                "content_profile",
                "--out",
                str(tmp_path / "t"),
                "--grid",
                "modalities=[text],[image]",
                *(a for o in FAST for a in ("--set", o)),
            ]
        )
        == 0
    )
    assert (tmp_path / "t" / "best.yaml").is_file()
    assert (
        main(
            [
                "exp",
                "compare",
                "--models",
                "content_profile",
                "--datasets",
                "synthetic",
                "--out",
                str(tmp_path / "c"),
                *(a for o in FAST for a in ("--set", o)),
            ]
        )
        == 0
    )
    assert "longtail R@20" in (tmp_path / "c" / "compare.md").read_text()
    assert (
        main(
            [
                "exp",
                "compare",
                "--models",
                "content_profile,bpr",
                "--datasets",
                "synthetic",
                "--out",
                str(tmp_path / "c"),
                "--no-train",
            ]
        )
        == 0
    )
    md = (tmp_path / "c" / "compare.md").read_text()
    assert "| content_profile | yes |" in md and "no finished run" in md  # bpr was never trained there
    assert main(["exp", "compare", "--models", "nosuch", "--datasets", "synthetic", "--out", str(tmp_path / "c")]) == 2
