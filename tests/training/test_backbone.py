"""A specialist's warm backbone: trained once per seed into a cache keyed by split, config and seed, or read
from a given run with paired seeds; `motorec train --model NAME` needs nothing else."""

from __future__ import annotations

import json

import pytest

from motorec.config import build_config
from motorec.data import load_dataset
from motorec.errors import MotorecError
from motorec.models.factory import load_trained
from motorec.training.backbone import backbone_digest, resolve_backbone
from motorec.training.runner import load_run_inputs, run_experiment

FAST = ["train.epochs=1", "train.threads=1", "train.progress=false", "device=cpu"]


def spec_cfg(tmp_path, *extra):
    return load_run_inputs(
        "synthetic-cold",
        "deepmusic",
        None,
        None,
        [
            *FAST,
            f"data.cache_dir={tmp_path / 'cache'}",
            "model.backbone.model=bpr",
            'model.backbone.set=["train.epochs=1"]',
            *extra,
        ],
    )


def test_trained_once_per_seed_then_reused(tmp_path, monkeypatch):
    ds, cfg = spec_cfg(tmp_path)
    calls = []
    from motorec.training import runner

    original = runner.run_experiment

    def counting(*args, **kwargs):
        calls.append(args[1])
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, "run_experiment", counting)
    first = resolve_backbone(cfg, 5, ds).model.backbone
    again = resolve_backbone(cfg, 5, ds).model.backbone
    other = resolve_backbone(cfg, 6, ds).model.backbone
    assert calls == ["bpr", "bpr"]  # seed 5 trained once and reused, seed 6 trained
    assert first == again and first.seed == 5 and other.seed == 6 and first.run != other.run
    assert json.loads(
        (tmp_path / "cache" / "backbones").joinpath(first.run.split("/")[-1], "results.json").read_text()
    )["seeds"] == [5]
    assert cfg.model.backbone.run is None  # the input config is left alone


def test_digest_ignores_how_a_run_executes_but_not_what_it_is():
    base = backbone_digest(build_config("bpr", None, FAST), "split")
    assert (
        backbone_digest(
            build_config("bpr", None, [*FAST, "device=cuda", "train.threads=8", "data.cache_dir=/elsewhere"]), "split"
        )
        == base
    )
    assert backbone_digest(build_config("bpr", None, [*FAST, "model.reg_weight=0.5"]), "split") != base
    assert backbone_digest(build_config("bpr", None, FAST), "other split") != base


def test_given_run_pairs_seeds_and_checks_them(tmp_path):
    run = tmp_path / "bpr"
    run_experiment("synthetic-cold", "bpr", run, overrides=[*FAST, "seeds=[1,2]"])
    ds, cfg = spec_cfg(tmp_path, f"model.backbone.run={run}")
    assert resolve_backbone(cfg, 2, ds).model.backbone.seed == 2  # paired
    assert resolve_backbone(cfg, 7, ds).model.backbone.seed == 1  # no seed 7: the run's first
    _, pinned = spec_cfg(tmp_path, f"model.backbone.run={run}", "model.backbone.seed=9")
    with pytest.raises(MotorecError, match="has seeds"):
        resolve_backbone(pinned, 1, ds)
    with pytest.raises(
        MotorecError, match="not the split this run was trained on"
    ):  # a backbone of another split is refused
        load_trained(run, 1, dataset=load_dataset("synthetic"))


def test_train_needs_no_backbone_argument_and_evaluate_rebuilds_each_seed(tmp_path):
    from motorec.cli import main
    from motorec.training.evaluate import evaluate_run

    out = tmp_path / "aldi"
    sets = [
        *FAST,
        "seeds=[3,4]",
        f"data.cache_dir={tmp_path / 'cache'}",
        "model.backbone.model=bpr",
        'model.backbone.set=["train.epochs=1"]',
    ]
    assert (
        main(
            [
                "train",
                "--data",
                "synthetic-cold",
                "--model",
                "aldi",
                "--out",
                str(out),
                *(a for s in sets for a in ("--set", s)),
            ]
        )
        == 0
    )
    for seed in (3, 4):
        result = json.loads((out / f"seed_{seed}" / "result.json").read_text())
        assert result["backbone"]["seed"] == seed and result["backbone_seconds"] > 0
        again = evaluate_run(out, "test", seed).metrics
        assert again["cold@cold"]["recall@20"] == pytest.approx(result["test"]["cold@cold"]["recall@20"])
