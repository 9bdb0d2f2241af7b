"""The training loop every model shares: BPR batches, early stopping on valid recall@20,
checkpoints after each evaluation (resumable), test once at the best-valid state."""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from motorec.data.dataset import Dataset
from motorec.errors import MotorecError
from motorec.evaluation import DotScorer, EvalResult, Evaluator
from motorec.models.base import Recommender
from motorec.training.checkpoint import load_checkpoint, save_checkpoint
from motorec.training.sampling import BPRSampler

SELECT_GROUP, SELECT_METRIC = "all", "recall@20"


@dataclass
class FitResult:
    valid: EvalResult
    test: EvalResult
    best_epoch: int
    epochs_run: int
    train_seconds_per_epoch: float
    eval_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def score_fn(model: Recommender):
    """What the evaluator ranks: the model's embeddings when its scores are their dot product (the
    evaluator then scores item blocks itself, never users x all items), else full_sort_predict."""
    emb = model.embeddings()
    return DotScorer(*emb) if emb is not None else (lambda users: model.full_sort_predict(users))


@torch.no_grad()
def evaluate_model(model: Recommender, evaluator: Evaluator, split: str, export_topk: bool = False) -> EvalResult:
    model.eval()
    model.prepare_scoring()
    try:
        return evaluator.evaluate(score_fn(model), split, export_topk=export_topk)
    finally:
        model.finish_scoring()


def train_epoch(model: Recommender, sampler: BPRSampler, opt: torch.optim.Optimizer, batch_size: int) -> tuple[float, int]:
    """One pass over the train pairs: (summed batch loss, number of batches).

    The loss is accumulated on the device and read once, so a GPU epoch is not serialised by a
    host sync per batch.
    """
    total = torch.zeros((), device=model.ctx.device)
    n = 0
    for users, pos, neg in sampler.epoch(batch_size):
        losses = model.calculate_loss(users, pos, neg)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        opt.step()
        total += losses["loss"].detach()
        n += 1
    return float(total), n


def fit(
    model: Recommender,
    ds: Dataset,
    evaluator: Evaluator,
    train_cfg: dict[str, Any],
    seed: int,
    checkpoint: Path | None = None,
    resume: bool = False,
) -> FitResult:
    """Train with early stopping; the test split is evaluated once, at the best-valid state."""
    device = model.ctx.device
    if not model.trainable:
        valid = evaluate_model(model, evaluator, "valid")
        test = evaluate_model(model, evaluator, "test", export_topk=True)
        return FitResult(valid, test, 0, 0, 0.0, 0.0)
    sampler = BPRSampler(ds, device, seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"])
    start_epoch, best_score, best_epoch, bad_evals = 0, -math.inf, -1, 0
    best_state: dict[str, torch.Tensor] = copy.deepcopy(model.state_dict())
    history: list[dict[str, float]] = []
    train_time, eval_time, n_evals = 0.0, 0.0, 0
    if resume and checkpoint is not None and checkpoint.is_file():
        state = load_checkpoint(checkpoint, device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        best_state = state["best_state"]
        start_epoch, best_score, best_epoch = state["epoch"] + 1, state["best_score"], state["best_epoch"]
        bad_evals, history = state["bad_evals"], state["history"]
        sampler.generator.set_state(state["sampler_rng"])
        torch.set_rng_state(state["torch_rng"])
    epochs, patience = train_cfg["epochs"], train_cfg["patience"]
    epochs_done = start_epoch
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"),
                  TimeElapsedColumn(), disable=not train_cfg.get("progress", True), transient=True) as bar:
        task = bar.add_task(f"{model.name} seed {seed}", total=epochs, completed=start_epoch, status="")
        for epoch in range(start_epoch, epochs):
            if bad_evals >= patience:
                break
            epochs_done = epoch + 1
            model.train()
            model.on_epoch_start(epoch)
            t0 = time.perf_counter()
            total, n = train_epoch(model, sampler, opt, train_cfg["batch_size"])
            train_time += time.perf_counter() - t0
            if not math.isfinite(total):
                raise MotorecError(f"{model.name}: training loss became {total} at epoch {epoch}; lower train.lr or raise the regularisation.")
            if (epoch + 1) % train_cfg["eval_every"] and epoch + 1 < epochs:
                bar.update(task, advance=1)
                continue
            t0 = time.perf_counter()
            valid = evaluate_model(model, evaluator, "valid")
            eval_time += time.perf_counter() - t0
            n_evals += 1
            score = valid.get(SELECT_GROUP, SELECT_METRIC)
            history.append({"epoch": epoch, "loss": total / max(n, 1), "valid_recall@20": score})
            if score > best_score:
                best_score, best_epoch, bad_evals = score, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad_evals += 1
            bar.update(task, advance=1, status=f"loss {total / max(n, 1):.4f} valid R@20 {score:.4f} (best {best_score:.4f} @ {best_epoch})")
            if checkpoint is not None:
                save_checkpoint(checkpoint, {
                    "model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                    "best_state": best_state, "best_score": best_score, "best_epoch": best_epoch,
                    "bad_evals": bad_evals, "history": history, "sampler_rng": sampler.generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                })
    model.load_state_dict(best_state)
    valid = evaluate_model(model, evaluator, "valid")
    test = evaluate_model(model, evaluator, "test", export_topk=True)
    epochs_run = max(epochs_done - start_epoch, 1)
    return FitResult(valid, test, best_epoch, epochs_done, train_time / epochs_run, eval_time / max(n_evals, 1), history)
