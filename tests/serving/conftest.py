"""Shared fixtures: one tiny trained run on synthetic cold-start data and its bundles (built once)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from motorec.serving.bundle import load_bundle
from motorec.serving.export import export_bundle
from motorec.training.runner import run_experiment

FAST = ["seeds=[7]", "train.epochs=2", "train.threads=1", "train.progress=false"]
TINY_RQVAE = {
    "codebook_size": 8,
    "levels": 2,
    "latent_dim": 8,
    "hidden": [16],
    "epochs": 2,
    "warmup_epochs": 1,
    "kmeans_iters": 3,
    "device": "cpu",
}


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run") / "bpr"
    run_experiment("synthetic-cold", "bpr", out, overrides=FAST)
    return out


@pytest.fixture(scope="session")
def bundle_dir(run_dir, tmp_path_factory) -> Path:
    """Ridge content map + tokens from a small RQ-VAE fitted at export."""
    out = tmp_path_factory.mktemp("bundle") / "b"
    export_bundle(run_dir, out, tokenizer="rqvae", tokenizer_params=TINY_RQVAE)
    return out


@pytest.fixture(scope="session")
def bundle(bundle_dir):
    return load_bundle(bundle_dir)
