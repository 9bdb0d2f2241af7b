"""One experiment = one config on one dataset over several seeds, written to RUN_DIR.

RUN_DIR/results.json   config, split hash, seeds, mean valid/test metrics per group, test std
RUN_DIR/topk_test.tsv  test top-50 of the first seed (userID then 50 item ids)
RUN_DIR/seed_<s>/      checkpoint.pt, result.json, topk_test.tsv of each seed
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motorec.config import RunConfig, build_config, flatten
from motorec.data import SYNTHETIC_NAMES, Dataset, load_dataset
from motorec.distributed import SINGLE, DistContext, init_distributed
from motorec.errors import MotorecError
from motorec.evaluation import Evaluator, write_topk
from motorec.io import atomic_write_text, claim_output_dir, resolve_output_path
from motorec.models import model_class
from motorec.models.factory import build_model, cache_dir_of
from motorec.progress import MetricLog
from motorec.runtime import resolve_device, set_seed
from motorec.training.backbone import backbone_seconds, backbone_spec, resolve_backbone
from motorec.training.trainer import FitResult, fit

# Keys that change how a run executes, not what it computes: they may differ on --resume.
RUN_ONLY_KEYS = (
    "train.progress",
    "train.threads",
    "device",
    "data.cache_dir",
    "eval.batch_size",
    "data.path",
    "log.tensorboard",
)
EPOCHS_KEY = "config.train.epochs"


def data_ref(data: str | os.PathLike[str]) -> str:
    """An existing path made absolute (results stay readable from any working directory); names
    such as 'synthetic-cold' unchanged."""
    text = str(data)
    if text in SYNTHETIC_NAMES or not Path(text).exists():
        return text
    return str(Path(text).resolve())


def run_identity(
    model: str, cfg: RunConfig | dict[str, Any], split_sha256: str, data: str | Path | None = None
) -> dict[str, Any]:
    """What a run computes: `--resume` continues a run only when this matches what it recorded
    (`data`: the data path when the config does not hold it)."""
    cfg = cfg.to_dict() if isinstance(cfg, RunConfig) else cfg
    config = {k: v for k, v in flatten(cfg).items() if k not in RUN_ONLY_KEYS and k != "model_name"}
    digest = hashlib.sha256(
        json.dumps({k: v for k, v in config.items() if k != "train.epochs"}, sort_keys=True, default=str).encode()
    ).hexdigest()
    path = data if data is not None else (cfg.get("data") or {}).get("path")
    return {
        "model": model,
        "data": data_ref(path) if path else None,
        "split_sha256": split_sha256,
        "config_sha256": digest,
        "config": config,
    }


def legacy_run_identity(folder: Path) -> dict[str, Any] | None:
    """A run folder of a motorec that wrote no marker: its identity from results.json, {} for an
    unfinished one (seed folders only), None when the folder is not a run."""
    results = folder / "results.json"
    if results.is_file():
        try:
            res = json.loads(results.read_text())
            return run_identity(res["config"]["model_name"], res["config"], res["split_sha256"])
        except (ValueError, KeyError, TypeError):
            return None
    names = [p.name for p in folder.iterdir()]
    if names and all(n.startswith("seed_") or n == "topk_test.tsv" or n.endswith(".tmp") for n in names):
        return {}
    return None


def claim_run_dir(
    out: str | os.PathLike[str],
    overwrite: bool,
    resume: bool,
    identity: dict[str, Any],
    inputs: list[Any],
    allow_epochs_change: bool = False,
) -> AbstractContextManager[Path]:
    """The run folder, claimed through motorec.io (context manager yielding its path)."""
    allowed = ["config_sha256", *([EPOCHS_KEY] if allow_epochs_change else [])]
    return claim_output_dir(
        out,
        "run",
        overwrite=overwrite,
        resume=resume,
        identity=identity,
        allow_changes=allowed,
        change_flags={EPOCHS_KEY: "--allow-epochs-change"},
        inputs=inputs,
        legacy=legacy_run_identity,
    )


def require_valid_and_test(ds: Dataset) -> None:
    for label, name in ((1, "valid"), (2, "test")):
        if ds.labels is not None and not (ds.labels == label).any():
            raise MotorecError(
                f"{ds.source.get('inter', ds.name)}: no {name} interactions (x_label {label}); training "
                f"selects on valid and reports test, so the split needs both."
            )


def summarize(per_seed: list[dict[str, dict[str, float]]]) -> tuple[dict, dict]:
    """Mean and std over seeds, group by group."""
    mean: dict[str, dict[str, float]] = {}
    std: dict[str, dict[str, float]] = {}
    for group in per_seed[0]:
        mean[group], std[group] = {}, {}
        for metric in per_seed[0][group]:
            values = np.array([r[group][metric] for r in per_seed], dtype=np.float64)
            mean[group][metric] = float(values.mean())
            std[group][metric] = float(values.std())
    return mean, std


def load_run_inputs(
    data: str | os.PathLike[str] | Dataset,
    model: str,
    split: str | None,
    config_file: str | os.PathLike[str] | None,
    overrides: list[str] | None,
) -> tuple[Dataset, RunConfig]:
    """The dataset and the validated config of one run; `data` is a path or an already loaded Dataset.

    A Dataset opened by `motorec.data.load_dataset` remembers where it came from, so its run can be
    reloaded later (`evaluate`, `export`); one built in memory records `data.path: null`.
    """
    model_class(model)  # unknown model -> error before anything else
    cfg = build_config(model, config_file, overrides)
    if isinstance(data, Dataset):
        if split is not None:
            raise MotorecError("split: a loaded Dataset already carries its split; load it with that split instead.")
        ds = data
        origin = ds.source.get("load") or {}
        cfg.data.path, cfg.data.split = origin.get("path"), origin.get("split")
        cfg.data.drop_users_without_train = bool(origin.get("drop_users_without_train", False))
        require_valid_and_test(ds)
        return ds, cfg
    split = split or cfg.data.split
    ds = load_dataset(data, split=split, drop_users_without_train=cfg.data.drop_users_without_train)
    require_valid_and_test(ds)
    cfg.data.path = data_ref(data)
    cfg.data.split = (data_ref(split) if Path(str(split)).is_file() else str(split)) if split else None
    return ds, cfg


def run_experiment(
    data: str | os.PathLike[str] | Dataset,
    model: str,
    out: str | os.PathLike[str],
    split: str | None = None,
    config_file: str | os.PathLike[str] | None = None,
    overrides: list[str] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    allow_epochs_change: bool = False,
) -> dict[str, Any]:
    ds, cfg = load_run_inputs(data, model, split, config_file, overrides)
    # under torchrun every rank runs this: all train, rank 0 alone claims the folder and writes files
    dist = init_distributed(resolve_device(cfg.device), cfg.dist.timeout_s)
    device = dist.device
    if dist.world > 1 and backbone_spec(cfg) is not None:
        raise MotorecError(
            f"--model {model}: the cold-start specialists train in one process (their warm backbone "
            f"is prepared by one process); run it without --nproc / torchrun."
        )
    if cfg.train.threads:
        torch.set_num_threads(int(cfg.train.threads))
    cache_dir = cache_dir_of(cfg)
    # validates model params against the data before writing (a backbone model first gets its backbone)
    build_model(ds, resolve_backbone(cfg, cfg.seeds[0], ds), device, cache_dir)
    identity = run_identity(model, cfg, ds.split_sha256())
    inputs = [None if isinstance(data, Dataset) else data, split, config_file]
    if not dist.is_main:
        dist.barrier("run directory")  # rank 0 has claimed the folder
        return _run_seeds(
            ds, cfg, model, resolve_output_path(out), device, cache_dir, resume, identity["config_sha256"], dist
        )
    with claim_run_dir(out, overwrite, resume, identity, inputs, allow_epochs_change) as out:
        dist.barrier("run directory")
        return _run_seeds(ds, cfg, model, out, device, cache_dir, resume, identity["config_sha256"], dist)


def _run_seeds(
    ds: Dataset,
    cfg: RunConfig,
    model: str,
    out: Path,
    device: torch.device,
    cache_dir: Path | None,
    resume: bool,
    config_sha256: str,
    dist: DistContext = SINGLE,
) -> dict[str, Any]:
    evaluator = Evaluator.from_config(ds, device, cfg.eval, dist)
    per_seed_valid, per_seed_test, seed_info = [], [], []
    for seed in cfg.seeds:
        seed_dir = out / f"seed_{seed}"
        if dist.is_main:
            seed_dir.mkdir(exist_ok=True)
        done = seed_dir / "result.json"
        if resume and done.is_file():
            result = json.loads(done.read_text())
        else:
            seed_cfg = resolve_backbone(cfg, seed, ds)
            set_seed(seed)
            model_obj = build_model(ds, seed_cfg, device, cache_dir)
            t0 = time.perf_counter()
            metrics_log = MetricLog(
                Path(cfg.log.tensorboard) / f"{out.name}_seed_{seed}" if cfg.log.tensorboard and dist.is_main else None
            )
            try:
                fitted = fit(
                    model_obj, ds, evaluator, cfg.train, seed, seed_dir / "checkpoint.pt", resume, metrics_log, dist
                )
            finally:
                metrics_log.close()
            result = seed_result(fitted, seed, time.perf_counter() - t0)
            spec = backbone_spec(seed_cfg)
            if spec is not None:  # which backbone run this seed read (load_trained rebuilds the model from it)
                result["backbone"], result["backbone_seconds"] = spec.model_dump(mode="json"), backbone_seconds(spec)
            result["processes"] = dist.world
            if dist.is_main:
                write_topk(seed_dir / "topk_test.tsv", fitted.test.users, fitted.test.topk)
                atomic_write_text(done, json.dumps(result, indent=2))
        per_seed_valid.append(result["valid"])
        per_seed_test.append(result["test"])
        seed_info.append(
            {
                k: result[k]
                for k in (
                    "seed",
                    "best_epoch",
                    "epochs_run",
                    "train_seconds_per_epoch",
                    "eval_seconds",
                    "wall_seconds",
                    "processes",
                    "backbone",
                    "backbone_seconds",
                )
                if k in result
            }
        )
    valid_mean, _ = summarize(per_seed_valid)
    test_mean, test_std = summarize(per_seed_test)
    results = {
        "config": cfg.to_dict(),
        "dataset": ds.name,
        "split_sha256": ds.split_sha256(),
        "seeds": cfg.seeds,
        "config_sha256": config_sha256,
        "cwd": os.getcwd(),
        "runs": seed_info,
        "content_path": model_class(model).content_path,
        "valid": valid_mean,
        "test": test_mean,
        "test_std": test_std,
    }
    if dist.is_main:
        shutil.copyfile(out / f"seed_{cfg.seeds[0]}" / "topk_test.tsv", out / "topk_test.tsv")
        atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    dist.barrier("end of run")  # no rank exits (tearing down the group) while rank 0 still writes
    return results


def seed_result(fitted: FitResult, seed: int, wall: float) -> dict[str, Any]:
    return {
        "seed": seed,
        "best_epoch": fitted.best_epoch,
        "epochs_run": fitted.epochs_run,
        "train_seconds_per_epoch": fitted.train_seconds_per_epoch,
        "eval_seconds": fitted.eval_seconds,
        "wall_seconds": wall,
        "valid": fitted.valid.metrics,
        "test": fitted.test.metrics,
        "history": fitted.history,
    }
