"""A tiny synthetic cold split and a 3-epoch BPR-MF backbone run shared by the specialists' tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from motorec.data import load_dataset
from motorec.training import run_experiment


@pytest.fixture(scope="session")
def cold_data():
    return load_dataset("synthetic-cold")


@pytest.fixture(scope="session")
def backbone_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("backbone") / "bpr"
    run_experiment(
        "synthetic-cold", "bpr", out, overrides=["seeds=[1]", "train.epochs=3", "train.progress=false", "device=cpu"]
    )
    return out
