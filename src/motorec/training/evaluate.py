"""Re-evaluate a finished run from its saved config and best-valid checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

from motorec.data import Dataset, load_dataset
from motorec.errors import MotorecError
from motorec.evaluation import EvalResult, Evaluator
from motorec.training.checkpoint import load_checkpoint
from motorec.training.runner import build_model, cache_dir_of, resolve_device
from motorec.training.trainer import evaluate_model


def read_results(run_dir: str | Path) -> dict:
    """The results.json of a finished `motorec train` run (config, seeds, metrics)."""
    results_path = Path(run_dir) / "results.json"
    if not results_path.is_file():
        raise MotorecError(f"{results_path}: not found; is {run_dir} a finished `motorec train` run?")
    return json.loads(results_path.read_text())


def load_trained(run_dir: str | Path, seed: int | None = None, dataset: Dataset | None = None):
    """(dataset, config, model with best-valid weights) of a run directory.

    The dataset is reopened from the run's config unless given; either way it must be the split
    the run was trained on (same split hash).
    """
    run_dir = Path(run_dir)
    results = read_results(run_dir)
    cfg = results["config"]
    seed = cfg["seeds"][0] if seed is None else seed
    if seed not in cfg["seeds"]:
        raise MotorecError(f"seed {seed}: run {run_dir} was trained with seeds {cfg['seeds']}.")
    if dataset is None:
        if not cfg["data"]["path"]:
            raise MotorecError(f"{run_dir}: this run was trained on an in-memory dataset (config data.path is "
                               f"null); pass the same dataset to reload it.")
        dataset = load_dataset(cfg["data"]["path"], split=cfg["data"]["split"],
                               drop_users_without_train=cfg["data"]["drop_users_without_train"])
    if dataset.split_sha256() != results["split_sha256"]:
        raise MotorecError(f"{run_dir}: the dataset given is not the split this run was trained on "
                           f"(split hash {dataset.split_sha256()[:12]} vs {results['split_sha256'][:12]}).")
    device = resolve_device(cfg["device"])
    model = build_model(dataset, cfg, device, cache_dir_of(cfg))
    ckpt = run_dir / f"seed_{seed}" / "checkpoint.pt"
    if model.trainable:
        model.load_state_dict(load_checkpoint(ckpt, device)["best_state"])
    model.eval()
    return dataset, cfg, model


def evaluate_loaded(ds: Dataset, cfg: dict, model, split: str = "test", export_topk: bool = True) -> EvalResult:
    """Evaluate a loaded run's model on valid or test with the run's evaluation settings."""
    if split not in ("valid", "test"):
        raise MotorecError(f"split '{split}': choose valid or test.")
    evaluator = Evaluator(ds, model.ctx.device, ks=tuple(cfg["eval"]["ks"]), batch_size=cfg["eval"]["batch_size"])
    return evaluate_model(model, evaluator, split, export_topk=export_topk)


def evaluate_run(run_dir: str | Path, split: str = "test", seed: int | None = None) -> EvalResult:
    return evaluate_loaded(*load_trained(run_dir, seed), split)
