"""Helpers for the specialists' tests: build a specialist on a backbone run, draw a BPR batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from motorec.config import build_config
from motorec.models import ModelContext, model_class

SPECIALISTS = ["deepmusic", "dropoutnet", "heater", "clcrec", "gar", "aldi", "gorec", "cgrc"]


def build(name: str, ds, run: Path, **params):
    """A specialist on `ds` reading the backbone run (model params overridden by `params`)."""
    cfg = build_config(name, overrides=["device=cpu"])
    model_params = cfg.model.model_dump()
    if "backbone" in model_params:
        model_params["backbone"].update(run=str(run), seed=1)
    model_params.update(params)
    torch.manual_seed(0)
    ctx = ModelContext(dataset=ds, device=torch.device("cpu"), config=cfg)
    return model_class(name)(ctx, model_params)


def batch(ds, n: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n train pairs and one warm negative each (cold items never appear, as with the BPR sampler)."""
    train = ds.train_matrix.tocoo()
    idx = np.random.default_rng(0).choice(train.nnz, n, replace=False)
    warm = np.flatnonzero(ds.item_degree > 0)
    neg = np.random.default_rng(1).choice(warm, n)
    as_t = lambda a: torch.from_numpy(np.asarray(a, dtype=np.int64))
    return as_t(train.row[idx]), as_t(train.col[idx]), as_t(neg)
