"""One experiment = one config on one dataset over several seeds, written to RUN_DIR.

RUN_DIR/results.json   config, split hash, seeds, mean valid/test metrics per group, test std
RUN_DIR/topk_test.tsv  test top-50 of the first seed (userID then 50 item ids)
RUN_DIR/seed_<s>/      checkpoint.pt, result.json, topk_test.tsv of each seed
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motorec.config import RunConfig, build_config
from motorec.data import Dataset, load_dataset
from motorec.distributed import init_distributed
from motorec.errors import MotorecError
from motorec.evaluation import Evaluator, write_topk
from motorec.io import atomic_write_text
from motorec.models import model_class
from motorec.models.factory import build_model, cache_dir_of
from motorec.progress import MetricLog
from motorec.runtime import resolve_device, set_seed
from motorec.training.trainer import FitResult, fit


def prepare_run_dir(out: Path, overwrite: bool, resume: bool) -> None:
    """Refuse to clobber a previous run unless asked; called only after inputs validated."""
    if out.exists() and any(out.iterdir()) and not (overwrite or resume):
        raise MotorecError(f"{out}: run directory exists and is not empty; pass --overwrite to replace it or --resume to continue it.")
    if out.exists() and overwrite and not resume:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


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


def load_run_inputs(data: str | Path | Dataset, model: str, split: str | None, config_file: str | Path | None,
                    overrides: list[str] | None) -> tuple[Dataset, RunConfig]:
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
        return ds, cfg
    split = split or cfg.data.split
    ds = load_dataset(data, split=split, drop_users_without_train=cfg.data.drop_users_without_train)
    cfg.data.path = str(data)
    cfg.data.split = str(split) if split else None
    return ds, cfg


def run_experiment(
    data: str | Path | Dataset,
    model: str,
    out: str | Path,
    split: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | None = None,
    overwrite: bool = False,
    resume: bool = False,
) -> dict[str, Any]:
    out = Path(out)
    ds, cfg = load_run_inputs(data, model, split, config_file, overrides)
    # under torchrun every rank runs this whole function: all train, rank 0 alone writes files
    dist = init_distributed(resolve_device(cfg["device"]), cfg["dist"]["timeout_s"])
    device = dist.device
    if cfg["train"]["threads"]:
        torch.set_num_threads(int(cfg["train"]["threads"]))
    cache_dir = cache_dir_of(cfg)
    build_model(ds, cfg, device, cache_dir)  # validates model params against the data before writing
    if dist.is_main:
        prepare_run_dir(out, overwrite, resume)
    dist.barrier("run directory")
    evaluator = Evaluator.from_config(ds, device, cfg["eval"], dist)
    per_seed_valid, per_seed_test, seed_info = [], [], []
    for seed in cfg["seeds"]:
        seed_dir = out / f"seed_{seed}"
        if dist.is_main:
            seed_dir.mkdir(exist_ok=True)
        done = seed_dir / "result.json"
        if resume and done.is_file():
            result = json.loads(done.read_text())
        else:
            set_seed(seed)
            model_obj = build_model(ds, cfg, device, cache_dir)
            t0 = time.perf_counter()
            metrics_log = MetricLog(Path(cfg["log"]["tensorboard"]) / f"{out.name}_seed_{seed}"
                                    if cfg["log"]["tensorboard"] and dist.is_main else None)
            try:
                fitted = fit(model_obj, ds, evaluator, cfg["train"], seed, seed_dir / "checkpoint.pt", resume,
                             metrics_log, dist)
            finally:
                metrics_log.close()
            result = seed_result(fitted, seed, time.perf_counter() - t0)
            result["processes"] = dist.world
            if dist.is_main:
                write_topk(seed_dir / "topk_test.tsv", fitted.test.users, fitted.test.topk)
                atomic_write_text(done, json.dumps(result, indent=2))
        per_seed_valid.append(result["valid"])
        per_seed_test.append(result["test"])
        seed_info.append({k: result[k] for k in ("seed", "best_epoch", "epochs_run", "train_seconds_per_epoch", "eval_seconds",
                                                 "wall_seconds") + (("processes",) if "processes" in result else ())})
    valid_mean, _ = summarize(per_seed_valid)
    test_mean, test_std = summarize(per_seed_test)
    results = {
        "config": cfg.to_dict(),
        "dataset": ds.name,
        "split_sha256": ds.split_sha256(),
        "seeds": cfg["seeds"],
        "runs": seed_info,
        "content_path": model_class(model).content_path,
        "valid": valid_mean,
        "test": test_mean,
        "test_std": test_std,
    }
    if dist.is_main:
        shutil.copyfile(out / f"seed_{cfg['seeds'][0]}" / "topk_test.tsv", out / "topk_test.tsv")
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
