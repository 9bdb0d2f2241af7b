"""The model factory: a configured model on one device, fresh or with a finished run's weights.

It lives beside the models (not in training/) so that serving, the Python API and experiments
build models the same way without importing the training layer.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from motorec.checkpoint import load_checkpoint
from motorec.config import RunConfig, saved_run_config
from motorec.data import Dataset, load_dataset
from motorec.errors import MotorecError
from motorec.models.base import Recommender, model_class
from motorec.models.context import ModelContext
from motorec.models.tokens import attach_tokens
from motorec.runtime import resolve_device


def cache_dir_of(cfg: RunConfig) -> Path:
    """Where fitted tokenizers and k-NN graphs are cached (`data.cache_dir`, else ~/.cache/motorec)."""
    return Path(cfg.data.cache_dir) if cfg.data.cache_dir else Path.home() / ".cache" / "motorec"


def build_model(ds: Dataset, cfg: RunConfig, device: torch.device, cache_dir: Path | None) -> Recommender:
    """The model named by `cfg.model_name` with its parameters `cfg.model`, on `device`."""
    ctx = ModelContext(dataset=ds, device=device, config=cfg, cache_dir=cache_dir)
    attach_tokens(ctx)
    cls = model_class(cfg.model_name)
    return cls(ctx, cfg.model).to(device)


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """The results.json of a finished `motorec train` run (config, seeds, metrics)."""
    results_path = Path(run_dir) / "results.json"
    if not results_path.is_file():
        raise MotorecError(f"{results_path}: not found; is {run_dir} a finished `motorec train` run?")
    return json.loads(results_path.read_text())


def load_trained(run_dir: str | Path, seed: int | None = None,
                 dataset: Dataset | None = None) -> tuple[Dataset, RunConfig, Recommender]:
    """(dataset, config, model with best-valid weights) of a run directory.

    The dataset is reopened from the run's config unless given; either way it must be the split
    the run was trained on (same split hash).
    """
    run_dir = Path(run_dir)
    results = read_results(run_dir)
    model_class(results["config"].get("model_name", ""))  # an unknown model is named before validation
    cfg = saved_run_config(results["config"], str(run_dir / "results.json"))
    seed = cfg.seeds[0] if seed is None else seed
    if seed not in cfg.seeds:
        raise MotorecError(f"seed {seed}: run {run_dir} was trained with seeds {cfg.seeds}.")
    if dataset is None:
        if not cfg.data.path:
            raise MotorecError(f"{run_dir}: this run was trained on an in-memory dataset (config data.path is "
                               f"null); pass the same dataset to reload it.")
        dataset = load_dataset(cfg.data.path, split=cfg.data.split,
                               drop_users_without_train=cfg.data.drop_users_without_train)
    if dataset.split_sha256() != results["split_sha256"]:
        raise MotorecError(f"{run_dir}: the dataset given is not the split this run was trained on "
                           f"(split hash {dataset.split_sha256()[:12]} vs {results['split_sha256'][:12]}).")
    device = resolve_device(cfg.device)
    model = build_model(dataset, cfg, device, cache_dir_of(cfg))
    if model.trainable:
        model.load_state_dict(load_checkpoint(run_dir / f"seed_{seed}" / "checkpoint.pt", device)["best_state"])
    model.eval()
    return dataset, cfg, model
