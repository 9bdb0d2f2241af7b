"""Re-evaluate a finished run from its saved config and best-valid checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

from motorec.data import load_dataset
from motorec.errors import MotorecError
from motorec.evaluation import EvalResult
from motorec.training.checkpoint import load_checkpoint
from motorec.training.runner import build_model, cache_dir_of, make_evaluator, resolve_device
from motorec.training.trainer import evaluate_model


def read_results(run_dir: str | Path) -> dict:
    """The results.json of a finished `motorec train` run (config, seeds, metrics)."""
    results_path = Path(run_dir) / "results.json"
    if not results_path.is_file():
        raise MotorecError(f"{results_path}: not found; is {run_dir} a finished `motorec train` run?")
    return json.loads(results_path.read_text())


def load_trained(run_dir: str | Path, seed: int | None = None):
    """(dataset, config, model with best-valid weights) of a run directory."""
    run_dir = Path(run_dir)
    cfg = read_results(run_dir)["config"]
    seed = cfg["seeds"][0] if seed is None else seed
    ds = load_dataset(cfg["data"]["path"], split=cfg["data"]["split"],
                      drop_users_without_train=cfg["data"]["drop_users_without_train"])
    device = resolve_device(cfg["device"])
    model = build_model(ds, cfg, device, cache_dir_of(cfg))
    ckpt = run_dir / f"seed_{seed}" / "checkpoint.pt"
    if model.trainable:
        model.load_state_dict(load_checkpoint(ckpt, device)["best_state"])
    return ds, cfg, model


def evaluate_run(run_dir: str | Path, split: str = "test", seed: int | None = None) -> EvalResult:
    ds, cfg, model = load_trained(run_dir, seed)
    evaluator = make_evaluator(ds, cfg, model.ctx.device)
    return evaluate_model(model, evaluator, split, export_topk=True)
