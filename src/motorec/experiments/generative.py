"""The tasks over semantic IDs, seed by seed: next-item generation and rating prediction.

`run_generative`: semantic IDs (or item IDs for SASRec) -> next-item model -> valid-selected test
metrics (`motorec exp generative`). `run_rank`: chronological split -> semantic IDs -> DCN per
feature set (`motorec exp rank`). Each writes OUT/seed_<s>/result.json per seed (kept by
--resume) and OUT/results.json (config, seeds, mean and std per group).

The warm restart of TIGER (`train.warm_restart`, any IDs) and MMQ's fine-tuning against the
generator's own loss (`ids.mmq.ft_objective: generator`, which always restarts) share one schedule:

1. warm-up: TIGER trains on the stage-1 IDs for `train.warmup_epochs`, so its gradient means something;
2. `training.joint.restart_steps`: more steps with a fresh optimiser — jointly with the tokenizer
   for generator fine-tuning (`ids.mmq.ft_steps` steps), else TIGER alone (`train.restart_steps`);
3. the corpus is re-encoded (collisions resolved again) and TIGER carries its weights over to the
   new IDs (`TIGER.with_codes`), then trains to early stopping as usual, with a fresh optimiser.

The restart without the tokenizer is the control that tells the tokenizer's adaptation from the
restart itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from motorec.data import TRAIN, Dataset, load_dataset, loo_split
from motorec.errors import MotorecError
from motorec.experiments.tasks import GenerativeTask, RankTask, SASRecTask, Task, load_task
from motorec.generative.ids import (
    ID_KINDS,
    SemanticIDs,
    generator_objective,
    ids_from_tokenizer,
    require_task_objective,
    semantic_ids,
)
from motorec.generative.ranking import DCN, FEATURE_SETS, chronological_split, field_table
from motorec.generative.sasrec import SASRec
from motorec.generative.sequences import SequenceData, build_sequences, sequences_with_label
from motorec.generative.tiger import TIGER
from motorec.io import atomic_write_text
from motorec.runtime import resolve_device, set_seed
from motorec.tokenizers.mmq import MMQTokenizer
from motorec.training.joint import restart_steps
from motorec.training.ranking import fit_ranker
from motorec.training.runner import claim_run_dir, run_identity, summarize
from motorec.training.sequence import fit

GENERATORS = ("sasrec", *ID_KINDS)


def generative_seed(
    ds: Dataset,
    ids: str,
    task: GenerativeTask | SASRecTask,
    seed: int,
    device: torch.device,
    save_dir: Path | None = None,
) -> dict[str, Any]:
    """`ds` must carry a leave-one-out split. Returns valid/test metrics per group and diagnostics."""
    data = build_sequences(ds, task.model.max_len)
    torch.manual_seed(seed)
    info: dict[str, Any] = {"seed": seed, "ids": ids}
    model: SASRec | TIGER
    if isinstance(task, SASRecTask):
        model = SASRec(ds.n_items, **task.model.model_dump())
    else:
        t0 = time.perf_counter()
        config = task.ids.of(ids)
        joint = generator_objective(ids, config)
        sem = semantic_ids(ds, ids, config, seed, data.train_sequences, generator_follows=joint)
        info.update(tokenizer_seconds=time.perf_counter() - t0)
        torch.manual_seed(seed)
        model = TIGER(sem.codes, sem.vocab_sizes, **task.model.model_dump()).to(device)
        if joint or task.train.warm_restart:
            model, sem, info["warm_restart"] = warm_restart(model, sem, data, task, seed, joint)
        info.update(id_length=sem.codes.shape[1], vocab_sizes=sem.vocab_sizes, tokenizer_diagnostics=sem.diagnostics)
        if save_dir is not None:
            sem.tokenizer.save(save_dir / "tokenizer")
    model.to(device)
    result = fit(model, data, task.train, seed)
    info["parameters"] = sum(p.numel() for p in model.parameters())
    return {**info, **result}


def warm_restart(
    model: TIGER, sem: SemanticIDs, data: SequenceData, task: GenerativeTask, seed: int, joint: bool
) -> tuple[TIGER, SemanticIDs, dict[str, Any]]:
    """Steps 1-3 of the schedule above; the caller then trains the returned TIGER to early stopping."""
    train = task.train
    t0 = time.perf_counter()
    epochs = train.warmup_epochs
    warm: dict[str, Any] = {}
    if epochs:  # no early stopping in the warm-up: patience outlasts it
        warm = fit(model, data, train.model_copy(update={"epochs": epochs, "patience": epochs + 1}), seed, test=False)
    steps = task.ids.mmq.ft_steps if joint else train.restart_steps
    tokenizer = sem.tokenizer if joint else None
    features = sem.features if joint else None
    if tokenizer is not None and not isinstance(tokenizer, MMQTokenizer):
        raise MotorecError("generator fine-tuning needs the mmq tokenizer.")
    log = restart_steps(model, data, steps, train.batch_size, train.lr, seed, tokenizer, features)
    before, stage1 = sem.codes, sem.diagnostics
    if tokenizer is not None and features is not None:
        sem = ids_from_tokenizer(tokenizer, features)
        if sem.codes.shape[1] != before.shape[1]:  # a suffix slot appeared or went: TIGER's levels cannot carry over
            raise MotorecError(
                f"generator fine-tuning changed the ID length ({before.shape[1]} -> {sem.codes.shape[1]}) "
                f"with ids.mmq.collisions={tokenizer.config.collisions}; use collisions=suffix, which keeps it."
            )
    content = [i for i, slot in enumerate(sem.slots) if slot.kind == "code"]
    moved = float((before[:, content] != sem.codes[:, content]).any(1).mean())
    return (
        model.with_codes(sem.codes, sem.vocab_sizes),
        sem,
        {
            "joint": joint,
            "seconds": time.perf_counter() - t0,
            "warmup_valid": warm.get("valid", {}).get("all"),
            "steps": log,
            "items_with_new_codes": moved,
            **({"stage1_diagnostics": stage1} if joint else {}),  # the result's own diagnostics are the re-encoded IDs'
        },
    )


def ranking_seed(
    ds: Dataset, feature_sets: list[str], ids: str, task: RankTask, seed: int, device: torch.device
) -> dict[str, Any]:
    """DCN on each feature set over one chronological split; semantic IDs fitted once per seed."""
    labels = chronological_split(ds, task.split.test_frac, task.split.valid_frac)
    out: dict[str, Any] = {"seed": seed, "ids": ids}
    sid, sizes = None, []
    if any(f != "id" for f in feature_sets):
        train_seqs = sequences_with_label(ds.with_split(labels), TRAIN)
        sem = semantic_ids(ds, ids, task.ids.of(ids), seed, train_seqs)
        cols = sem.content_columns()
        sid, sizes = sem.codes[:, cols], [sem.vocab_sizes[c] for c in cols]
        out["tokenizer_diagnostics"] = sem.diagnostics
    for features in feature_sets:
        fields, field_sizes = field_table(ds, features, sid, sizes)
        torch.manual_seed(seed)
        model = DCN(field_sizes, **task.model.model_dump()).to(device)
        out[features] = fit_ranker(model, ds, labels, fields, task.train, seed)
    return out


# ------------------------------------------------------------------------------------------ runs
def _setup(task: Task, threads: int) -> torch.device:
    if threads:
        torch.set_num_threads(threads)
    return resolve_device(task.device)


def run_seeds(
    out: Path, seeds: list[int], resume: bool, run_one: Callable[[int, Path], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run every seed (skipping finished ones with `resume`); each seed's JSON is kept."""
    results = []
    for seed in seeds:
        seed_dir = out / f"seed_{seed}"
        done = seed_dir / "result.json"
        if resume and done.is_file():
            results.append(json.loads(done.read_text()))
            continue
        seed_dir.mkdir(parents=True, exist_ok=True)
        set_seed(seed)
        t0 = time.perf_counter()
        result = run_one(seed, seed_dir)
        result["wall_seconds"] = time.perf_counter() - t0
        atomic_write_text(done, json.dumps(result, indent=2, default=float))
        results.append(result)
    return results


def run_generative(
    data: str,
    ids: str,
    out: Path,
    config: Path | None = None,
    overrides: list[str] | None = None,
    overwrite: bool = False,
    resume: bool = False,
) -> dict[str, Any]:
    """Every configured seed of the generative task; returns (and writes) OUT/results.json's summary."""
    if ids not in GENERATORS:
        raise MotorecError(f"--ids '{ids}': choose sasrec or one of {', '.join(ID_KINDS)}.")
    task: GenerativeTask | SASRecTask = (
        load_task(SASRecTask, config, overrides) if ids == "sasrec" else load_task(GenerativeTask, config, overrides)
    )
    device = _setup(task, task.train.threads)
    ds = loo_split(load_dataset(data))
    identity = run_identity(f"generative {ids}", task.model_dump(mode="json"), ds.split_sha256(), data)
    with claim_run_dir(out, overwrite, resume, identity, [data, config]) as out:
        runs = run_seeds(out, task.seeds, resume, lambda seed, d: generative_seed(ds, ids, task, seed, device, d))
    test, test_std = summarize([r["test"] for r in runs])
    valid, _ = summarize([r["valid"] for r in runs])
    summary = {
        "ids": ids,
        "dataset": ds.name,
        "split_sha256": ds.split_sha256(),
        "config": task.model_dump(mode="json"),
        "seeds": [r["seed"] for r in runs],
        "valid": valid,
        "test": test,
        "test_std": test_std,
        "runs": [
            {k: r.get(k) for k in ("seed", "best_epoch", "epochs_run", "train_seconds", "wall_seconds", "id_length")}
            for r in runs
        ],
    }
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2, default=float))
    return summary


def parse_feature_sets(features: str) -> list[str]:
    sets = [f.strip() for f in features.split(",") if f.strip()]
    if not sets or any(f not in FEATURE_SETS for f in sets):
        raise MotorecError(f"--features '{features}': use a comma-separated subset of {', '.join(FEATURE_SETS)}.")
    return sets


def run_rank(
    data: str,
    feature_sets: list[str],
    ids: str,
    out: Path,
    config: Path | None = None,
    overrides: list[str] | None = None,
    overwrite: bool = False,
    resume: bool = False,
) -> dict[str, Any]:
    """Every configured seed of the ranking task; returns (and writes) OUT/results.json's summary."""
    if ids not in ID_KINDS:
        raise MotorecError(f"--ids '{ids}': choose one of {', '.join(ID_KINDS)}.")
    task = load_task(RankTask, config, overrides)
    require_task_objective(ids, task.ids.of(ids))
    device = _setup(task, task.train.threads)
    ds = load_dataset(data)
    identity = run_identity(
        f"rank {ids} {','.join(feature_sets)}", task.model_dump(mode="json"), ds.split_sha256(), data
    )
    with claim_run_dir(out, overwrite, resume, identity, [data, config]) as out:
        runs = run_seeds(
            out, task.seeds, resume, lambda seed, d: ranking_seed(ds, feature_sets, ids, task, seed, device)
        )
    summary: dict[str, Any] = {
        "ids": ids,
        "dataset": ds.name,
        "config": task.model_dump(mode="json"),
        "seeds": [r["seed"] for r in runs],
    }
    for f in feature_sets:
        groups = [{g: dict(r[f][g]) for g in ("all", "longtail", "cold")} for r in runs]
        mean, std = summarize(groups)
        summary[f] = {"test": mean, "test_std": std}
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2, default=float))
    return summary
