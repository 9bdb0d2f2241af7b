"""The training loop every model shares: BPR batches, early stopping on valid recall@20,
checkpoints after each evaluation (resumable), test once at the best-valid state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from motorec.checkpoint import load_checkpoint, save_checkpoint
from motorec.config import TrainConfig
from motorec.data.dataset import Dataset
from motorec.distributed import SINGLE, DistContext, data_parallel
from motorec.evaluation import DotScorer, EvalResult, Evaluator
from motorec.models.base import Recommender
from motorec.progress import MetricLog, progress
from motorec.training import loop
from motorec.training.loop import LoopState, Schedule
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


def train_epoch(
    model: Recommender,
    sampler: BPRSampler,
    opt: torch.optim.Optimizer,
    batch_size: int,
    step: Callable[..., dict[str, torch.Tensor]] | None = None,
) -> tuple[float, int]:
    """One pass over the train pairs: (summed batch loss, number of batches).

    The loss is accumulated on the device and read once, so a GPU epoch is not serialised by a
    host sync per batch. `step` (default: model.calculate_loss) computes a batch's losses.
    """
    step = step or model.calculate_loss
    total = torch.zeros((), device=model.ctx.device)
    n = 0
    for users, pos, neg in sampler.epoch(batch_size):
        losses = step(users, pos, neg)
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
    train_cfg: TrainConfig,
    seed: int,
    checkpoint: Path | None = None,
    resume: bool = False,
    metrics_log: MetricLog | None = None,
    dist: DistContext = SINGLE,
) -> FitResult:
    """Train with early stopping; the test split is evaluated once, at the best-valid state.

    A model trains in the stages it declares (`training_stages`, one by default): each runs the
    shared early-stopping loop (`train.epochs`, `train.patience`) with a fresh optimiser over the
    parameters left trainable by `begin_stage`, selected on its own validation group, and the next
    starts from its best-valid weights. Epochs are numbered across stages; `best_epoch` is the last
    stage's; with several stages each history row names its stage and the group its
    `valid_recall@20` was read on (`select`). `metrics_log` receives the mean train loss and that
    score at every evaluation. Under torchrun (`dist`), every rank runs this same loop data-parallel:
    `train.batch_size` pairs per rank and step (global batch = batch_size x ranks, so an epoch takes
    1/ranks of the steps), gradients averaged by DDP, the epoch loss averaged over ranks, evaluation
    sharded by users (`evaluator` built with the same context), checkpoints written by rank 0.
    """
    if not model.trainable:
        valid = evaluate_model(model, evaluator, "valid")
        test = evaluate_model(model, evaluator, "test", export_topk=True)
        return FitResult(valid, test, 0, 0, 0.0, 0.0)
    sampler = BPRSampler(ds, model.ctx.device, seed, dist)
    stages = model.training_stages()
    saved = load_checkpoint(checkpoint, model.ctx.device) if resume and checkpoint and checkpoint.is_file() else None
    first = int(saved.get("stage", 0)) if saved else 0
    done: list[dict] = list(saved.get("done_stages", [])) if saved else []  # finished stages: epochs, history
    run = _StageRun(model, evaluator, sampler, train_cfg, seed, checkpoint, metrics_log, dist)
    train_seconds = eval_seconds = 0.0
    epochs_trained = evaluations = 0
    for index, stage in enumerate(stages):
        model.begin_stage(stage.name)
        if index < first:
            continue
        step = data_parallel(model, model.calculate_loss, dist)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
        state = None
        if saved is not None and index == first:
            model.load_state_dict(saved["model"])
            opt.load_state_dict(saved["optimizer"])
            state = LoopState.from_checkpoint(saved)
            sampler.generator.set_state(saved["sampler_rng"])
            torch.set_rng_state(saved["torch_rng"])
        group = stage.select if stage.select in evaluator.groups else SELECT_GROUP
        offset = sum(d["epochs"] for d in done)
        result = run.fit(stage.name, group, offset, opt, step, state, done, multi_stage=len(stages) > 1)
        named = {"stage": stage.name, "select": group} if len(stages) > 1 else {}  # one stage: rows as always
        rows = [h | {"epoch": offset + h["epoch"], **named} for h in result.state.history]
        done.append(
            {"epochs": result.state.next_epoch, "best_epoch": offset + result.state.best_epoch, "history": rows}
        )
        train_seconds += result.train_seconds
        eval_seconds += result.eval_seconds
        epochs_trained += result.epochs_run
        evaluations += result.evaluations
    with dist.guard("evaluation"):
        valid = evaluate_model(model, evaluator, "valid")
        test = evaluate_model(model, evaluator, "test", export_topk=True)
    history = [h for d in done for h in d["history"]]
    return FitResult(
        valid,
        test,
        done[-1]["best_epoch"],
        sum(d["epochs"] for d in done),
        train_seconds / max(epochs_trained, 1),
        eval_seconds / max(evaluations, 1),
        history,
    )


@dataclass
class _StageRun:
    """What every stage of one `fit` shares."""

    model: Recommender
    evaluator: Evaluator
    sampler: BPRSampler
    train_cfg: TrainConfig
    seed: int
    checkpoint: Path | None
    metrics_log: MetricLog | None
    dist: DistContext

    def fit(
        self,
        name: str,
        group: str,
        offset: int,
        opt: torch.optim.Optimizer,
        step: Callable[..., dict[str, torch.Tensor]],
        state: LoopState | None,
        done: list[dict],
        multi_stage: bool,
    ) -> loop.LoopResult:
        """One stage: the early-stopping loop, selected on valid recall@20 of `group`; epochs of
        earlier stages (`offset`) and their records (`done`) go into hooks, logs and checkpoints."""
        model, dist, cfg = self.model, self.dist, self.train_cfg
        stage_index = len(done)

        def train_one(epoch: int) -> float:
            model.on_epoch_start(offset + epoch)
            total, n = train_epoch(model, self.sampler, opt, cfg.batch_size, step)
            summed = dist.all_reduce_sum(
                torch.tensor([total, n], dtype=torch.float64, device=dist.device), "epoch loss"
            )
            return float(summed[0] / max(float(summed[1]), 1.0))

        def save(state: LoopState) -> None:
            if self.checkpoint is not None and dist.is_main:  # one writer; atomic: a reader never sees half a file
                save_checkpoint(
                    self.checkpoint,
                    {
                        "model": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        **state.as_checkpoint(),
                        "stage": stage_index,
                        "done_stages": done,
                        "sampler_rng": self.sampler.generator.get_state(),
                        "torch_rng": torch.get_rng_state(),
                    },
                )

        schedule = Schedule(cfg.epochs, cfg.patience, cfg.eval_every, f"valid_{SELECT_METRIC}")
        label = f"{model.name} seed {self.seed}" + (f" {name}" if multi_stage else "")
        with progress(enabled=cfg.progress and dist.is_main) as bar:
            task = bar.task(label, total=schedule.epochs, completed=state.next_epoch if state else 0)

            def show(epoch: int, loss: float, score: float | None, st: LoopState) -> None:
                if score is None:
                    task.advance()
                    return
                task.advance(
                    status=f"loss {loss:.4f} valid R@20 {score:.4f} (best {st.best_score:.4f} @ {st.best_epoch})"
                )
                if self.metrics_log is not None:
                    self.metrics_log.scalars(offset + epoch, {"train/loss": loss, f"valid/{SELECT_METRIC}": score})

            with dist.guard("training"):
                return loop.run(
                    model,
                    schedule,
                    train_one,
                    lambda: evaluate_model(model, self.evaluator, "valid").get(group, SELECT_METRIC),
                    state,
                    on_evaluated=save,
                    on_epoch=show,
                    name=model.name,
                )
