"""Re-evaluate a finished run from its saved config and best-valid checkpoint."""

from __future__ import annotations

from pathlib import Path

from motorec.config import RunConfig
from motorec.data import Dataset
from motorec.errors import MotorecError
from motorec.evaluation import EvalResult, Evaluator
from motorec.models.base import Recommender
from motorec.models.factory import load_trained
from motorec.training.trainer import evaluate_model


def evaluate_loaded(
    ds: Dataset, cfg: RunConfig, model: Recommender, split: str = "test", export_topk: bool = True
) -> EvalResult:
    """Evaluate a loaded run's model on valid or test with the run's evaluation settings."""
    if split not in ("valid", "test"):
        raise MotorecError(f"split '{split}': choose valid or test.")
    evaluator = Evaluator.from_config(ds, model.ctx.device, cfg.eval)
    return evaluate_model(model, evaluator, split, export_topk=export_topk)


def evaluate_run(run_dir: str | Path, split: str = "test", seed: int | None = None) -> EvalResult:
    return evaluate_loaded(*load_trained(run_dir, seed), split)
