"""Re-evaluate a finished run from its saved config and best-valid checkpoint."""
from __future__ import annotations

from pathlib import Path

from motorec.evaluation import EvalResult, Evaluator
from motorec.models.factory import load_trained
from motorec.training.trainer import evaluate_model


def evaluate_run(run_dir: str | Path, split: str = "test", seed: int | None = None) -> EvalResult:
    ds, cfg, model = load_trained(run_dir, seed)
    evaluator = Evaluator.from_config(ds, model.ctx.device, cfg["eval"])
    return evaluate_model(model, evaluator, split, export_topk=True)
