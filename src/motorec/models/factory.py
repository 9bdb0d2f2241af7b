"""The model factory: a configured model on one device, fresh or with a finished run's weights.

It lives beside the models (not in training/) so that serving, the Python API and experiments
build models the same way without importing the training layer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from motorec.checkpoint import load_checkpoint
from motorec.config import RunConfig, saved_run_config
from motorec.data import SYNTHETIC_NAMES, Dataset, load_dataset
from motorec.errors import MotorecError
from motorec.io import read_marker
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


def read_results(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The results.json of a finished `motorec train` run (config, seeds, metrics), checked to be one."""
    results_path = Path(run_dir) / "results.json"
    if not results_path.is_file():
        raise MotorecError(f"{results_path}: not found; is {run_dir} a finished `motorec train` run?")
    try:
        res = json.loads(results_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MotorecError(
            f"{results_path}, line {exc.lineno}: not valid JSON ({exc.msg}); the file is truncated or "
            f"was edited. `motorec train ... --resume` on the run rewrites it."
        ) from exc
    except (UnicodeDecodeError, RecursionError) as exc:
        raise MotorecError(f"{results_path}: not a results file written by motorec ({type(exc).__name__}).") from exc
    ok = (
        isinstance(res, dict)
        and isinstance(res.get("config"), dict)
        and isinstance(res.get("split_sha256"), str)
        and isinstance(res["config"].get("seeds"), list)
        and res["config"]["seeds"]
        and isinstance(res["config"].get("data"), dict)
    )
    if not ok:
        raise MotorecError(
            f"{results_path}: field 'config' (with seeds and data) or 'split_sha256' is missing or "
            f"malformed; is this a results.json written by `motorec train`?"
        )
    return res


def recorded_path(text: str, res: dict[str, Any], results_path: Path, field: str) -> str:
    """A path recorded in results.json: absolute ones (and names like 'synthetic') as they are; a
    relative one (runs made before paths were stored absolute) from here, or from the folder the
    run was made in when that was recorded."""
    if text in SYNTHETIC_NAMES or Path(text).is_absolute() or Path(text).exists():
        return text
    base = res.get("cwd") or (read_marker(results_path.parent) or {}).get("cwd")
    if base and (Path(base) / text).exists():
        return str(Path(base) / text)
    raise MotorecError(
        f"{results_path}: {field} '{text}' is relative to the folder `motorec train` was run in, "
        f"which the run did not record; run this command from that folder, or write the absolute "
        f"path into {field} in results.json."
    )


def load_trained(
    run_dir: str | os.PathLike[str], seed: int | None = None, dataset: Dataset | None = None
) -> tuple[Dataset, RunConfig, Recommender]:
    """(dataset, config, model with best-valid weights) of a run directory.

    The dataset is reopened from the run's config unless given; either way it must be the split
    the run was trained on (same split hash). A seed that ran on its own warm backbone (cold-start
    specialists: paired seeds) is rebuilt on that backbone.
    """
    run_dir = Path(run_dir)
    results = read_results(run_dir)
    model_class(results["config"].get("model_name", ""))  # an unknown model is named before validation
    saved = results["config"]
    seed = saved["seeds"][0] if seed is None else seed
    seed_result = run_dir / f"seed_{seed}" / "result.json"
    backbone = json.loads(seed_result.read_text()).get("backbone") if seed_result.is_file() else None
    if backbone is not None:
        saved["model"]["backbone"] = backbone
    cfg = saved_run_config(saved, str(run_dir / "results.json"))
    if seed not in cfg.seeds:
        raise MotorecError(f"seed {seed}: run {run_dir} was trained with seeds {cfg.seeds}.")
    if dataset is None:
        if not cfg.data.path:
            raise MotorecError(
                f"{run_dir}: this run was trained on an in-memory dataset (config data.path is "
                f"null); pass the same dataset to reload it."
            )
        results_path = run_dir / "results.json"
        split = cfg.data.split
        if split and (Path(split).parent != Path(".") or Path(split).is_absolute()):  # a path, not a name
            split = recorded_path(split, results, results_path, "config.data.split")
        dataset = load_dataset(
            recorded_path(cfg.data.path, results, results_path, "config.data.path"),
            split=split,
            drop_users_without_train=cfg.data.drop_users_without_train,
        )
    if dataset.split_sha256() != results["split_sha256"]:
        raise MotorecError(
            f"{run_dir}: the dataset given is not the split this run was trained on "
            f"(split hash {dataset.split_sha256()[:12]} vs {results['split_sha256'][:12]})."
        )
    device = resolve_device(cfg.device)
    model = build_model(dataset, cfg, device, cache_dir_of(cfg))
    if model.trainable:
        ckpt = run_dir / f"seed_{seed}" / "checkpoint.pt"
        state = load_checkpoint(ckpt, device)
        try:
            model.load_state_dict(state["best_state"])
        except (KeyError, TypeError, RuntimeError) as exc:
            raise MotorecError(
                f"{ckpt}: does not hold this run's trained model ({type(exc).__name__}: {str(exc)[:200]})."
            ) from exc
    model.eval()
    return dataset, cfg, model
