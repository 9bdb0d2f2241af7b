"""The one early-stopping loop every trainer runs (BPR recommenders, sequence generators, rankers).

A trainer supplies what differs — one training epoch and one validation score — and this loop owns
what must not: the epoch/evaluation schedule, patience, keeping the best-validation weights, the
history, the non-finite-loss guard and the resumable state that checkpoints save. Selection is on
validation only; the caller evaluates test once, after `run` restored the best weights.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from motorec.errors import MotorecError


@dataclass
class LoopState:
    """Everything the loop needs to continue where it stopped (saved in checkpoints)."""

    next_epoch: int = 0
    best_score: float = -math.inf
    best_epoch: int = -1
    bad_evals: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_weights: dict[str, torch.Tensor] | None = None

    def as_checkpoint(self) -> dict[str, Any]:
        return {
            "epoch": self.next_epoch - 1,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "bad_evals": self.bad_evals,
            "history": self.history,
            "best_state": self.best_weights,
        }

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any]) -> LoopState:
        return cls(
            next_epoch=state["epoch"] + 1,
            best_score=state["best_score"],
            best_epoch=state["best_epoch"],
            bad_evals=state["bad_evals"],
            history=state["history"],
            best_weights=state["best_state"],
        )


@dataclass
class LoopResult:
    state: LoopState
    epochs_run: int  # epochs trained by this call (a resumed run counts only its own)
    train_seconds: float
    eval_seconds: float
    evaluations: int


@dataclass
class Schedule:
    epochs: int
    patience: int  # evaluations without a better validation score before stopping
    eval_every: int = 1
    metric: str = "valid_recall@20"  # the history key the validation score is stored under


def run(
    model: nn.Module,
    schedule: Schedule,
    train_epoch: Callable[[int], float],
    validate: Callable[[], float],
    state: LoopState | None = None,
    on_evaluated: Callable[[LoopState], None] | None = None,
    on_epoch: Callable[[int, float, float | None, LoopState], None] | None = None,
    name: str = "model",
) -> LoopResult:
    """Train until `schedule.epochs` or patience runs out, then load the best-validation weights.

    `train_epoch(epoch)` trains one epoch and returns its mean loss; `validate()` returns the
    selection score (higher is better); `on_evaluated(state)` runs after each evaluation (write a
    checkpoint there); `on_epoch(epoch, loss, score or None, state)` after every epoch (progress).
    """
    state = state or LoopState()
    if state.best_weights is None:
        state.best_weights = copy.deepcopy(model.state_dict())
    start = state.next_epoch
    train_time = eval_time = 0.0
    evaluations = 0
    for epoch in range(start, schedule.epochs):
        if state.bad_evals >= schedule.patience:
            break
        state.next_epoch = epoch + 1
        model.train()
        t0 = time.perf_counter()
        loss = train_epoch(epoch)
        train_time += time.perf_counter() - t0
        if not math.isfinite(loss):
            raise MotorecError(
                f"{name}: training loss became {loss} at epoch {epoch}; lower train.lr or raise the regularisation."
            )
        if (epoch + 1) % schedule.eval_every and epoch + 1 < schedule.epochs:
            if on_epoch is not None:
                on_epoch(epoch, loss, None, state)
            continue
        t0 = time.perf_counter()
        score = validate()
        eval_time += time.perf_counter() - t0
        evaluations += 1
        state.history.append({"epoch": epoch, "loss": loss, schedule.metric: score})
        if score > state.best_score:
            state.best_score, state.best_epoch, state.bad_evals = score, epoch, 0
            state.best_weights = copy.deepcopy(model.state_dict())
        else:
            state.bad_evals += 1
        if on_evaluated is not None:
            on_evaluated(state)
        if on_epoch is not None:
            on_epoch(epoch, loss, score, state)
    model.load_state_dict(state.best_weights)
    return LoopResult(state, max(state.next_epoch - start, 1), train_time, eval_time, evaluations)
