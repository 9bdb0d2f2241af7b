"""Training: the shared loop, BPR sampling, checkpoints and multi-seed experiments."""

from motorec.training.runner import run_experiment
from motorec.training.trainer import evaluate_model, fit

__all__ = ["evaluate_model", "fit", "run_experiment"]
