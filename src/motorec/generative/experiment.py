"""One seed of each downstream task, from a config dict (see configs/models/{tiger,sasrec,dcn}.yaml).

`generative_seed`: semantic IDs (or item IDs for SASRec) -> next-item model -> valid-selected
test metrics. `ranking_seed`: chronological split -> semantic IDs -> DCN per feature set.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from motorec.data import TRAIN, Dataset
from motorec.errors import MotorecError
from motorec.generative.ids import SemanticIDs, generator_objective, ids_from_tokenizer, semantic_ids
from motorec.generative.joint import restart_steps
from motorec.generative.loop import LoopConfig, fit
from motorec.generative.ranking import RankConfig, chronological_split, field_table, fit_ranker
from motorec.generative.sasrec import SASRec
from motorec.generative.sequences import SequenceData, build_sequences, sequences_with_label
from motorec.generative.tiger import TIGER
from motorec.tokenizers.mmq import MMQTokenizer

TIGER_KEYS = ("d_model", "n_heads", "n_layers", "ff_dim", "dropout", "history_encoding", "causal", "level_loss")
SASREC_KEYS = ("d_model", "n_heads", "n_layers", "dropout")


def generative_seed(ds: Dataset, ids: str, cfg: dict[str, Any], seed: int, device: torch.device,
                    save_dir: Path | None = None) -> dict[str, Any]:
    """`ds` must carry a leave-one-out split. Returns valid/test metrics per group and diagnostics."""
    m = cfg["model"]
    data = build_sequences(ds, int(m["max_len"]))
    torch.manual_seed(seed)
    info: dict[str, Any] = {"seed": seed, "ids": ids}
    if ids == "sasrec":
        model: torch.nn.Module = SASRec(ds.n_items, max_len=int(m["max_len"]), **{k: m[k] for k in SASREC_KEYS})
    else:
        t0 = time.perf_counter()
        params = dict(cfg["ids"][ids.removesuffix("-ft")])
        joint = generator_objective(ids, params)
        sem = semantic_ids(ds, ids, params, seed, data.train_sequences, generator_follows=joint)
        info.update(tokenizer_seconds=time.perf_counter() - t0)
        torch.manual_seed(seed)
        model = TIGER(sem.codes, sem.vocab_sizes, max_len=int(m["max_len"]), **{k: m[k] for k in TIGER_KEYS}).to(device)
        if joint or cfg["train"].get("warm_restart"):
            model, sem, info["warm_restart"] = _warm_restart(model, sem, data, cfg, seed, joint)
        info.update(id_length=sem.codes.shape[1], vocab_sizes=sem.vocab_sizes, tokenizer_diagnostics=sem.diagnostics)
        if save_dir is not None:
            sem.tokenizer.save(save_dir / "tokenizer")
    model.to(device)
    result = fit(model, data, LoopConfig.from_dict(cfg["train"]), seed)
    info["parameters"] = sum(p.numel() for p in model.parameters())
    return {**info, **result}


def _warm_restart(model: TIGER, sem: SemanticIDs, data: SequenceData, cfg: dict[str, Any], seed: int,
                  joint: bool) -> tuple[TIGER, SemanticIDs, dict[str, Any]]:
    """Warm-up TIGER for `train.warmup_epochs`, train `restart_steps` more steps with a fresh
    optimiser — jointly with MMQ when `joint` (generator fine-tuning, `ids.mmq.ft_steps` steps),
    then re-encode the IDs and carry TIGER over to them (generative.joint); the caller then trains
    it to early stopping with another fresh optimiser."""
    train = cfg["train"]
    t0 = time.perf_counter()
    epochs = int(train["warmup_epochs"])
    warm = fit(model, data, LoopConfig.from_dict({**train, "epochs": epochs, "patience": epochs + 1}), seed, test=False) if epochs else {}
    steps = int(cfg["ids"]["mmq"]["ft_steps"] if joint else train["restart_steps"])
    tokenizer = sem.tokenizer if joint else None
    features = sem.features if joint else None
    if tokenizer is not None and not isinstance(tokenizer, MMQTokenizer):
        raise MotorecError("generator fine-tuning needs the mmq tokenizer.")
    log = restart_steps(model, data, steps, int(train["batch_size"]), float(train["lr"]), seed, tokenizer, features)
    before, stage1 = sem.codes, sem.diagnostics
    if tokenizer is not None and features is not None:
        sem = ids_from_tokenizer(tokenizer, features)
        if sem.codes.shape[1] != before.shape[1]:  # a suffix slot appeared or went: TIGER's levels cannot carry over
            raise MotorecError(f"generator fine-tuning changed the ID length ({before.shape[1]} -> {sem.codes.shape[1]}) "
                               f"with ids.mmq.collisions={tokenizer.config.collisions}; use collisions=suffix, which keeps it.")
    content = [i for i, slot in enumerate(sem.slots) if slot.kind == "code"]
    moved = float((before[:, content] != sem.codes[:, content]).any(1).mean())
    return model.with_codes(sem.codes, sem.vocab_sizes), sem, {
        "joint": joint,
        "seconds": time.perf_counter() - t0,
        "warmup_valid": warm.get("valid", {}).get("all"),
        "steps": log,
        "items_with_new_codes": moved,
        **({"stage1_diagnostics": stage1} if joint else {}),  # the result's own diagnostics are the re-encoded IDs'
    }


def ranking_seed(ds: Dataset, feature_sets: list[str], ids: str, cfg: dict[str, Any], seed: int,
                 device: torch.device) -> dict[str, Any]:
    """DCN on each feature set over one chronological split; semantic IDs fitted once per seed."""
    r = cfg["rank"]
    labels = chronological_split(ds, float(r["test_frac"]), float(r["valid_frac"]))
    out: dict[str, Any] = {"seed": seed, "ids": ids}
    sid, sizes = None, []
    if any(f != "id" for f in feature_sets):
        train_seqs = sequences_with_label(ds.with_split(labels), TRAIN)
        sem = semantic_ids(ds, ids, dict(cfg["ids"][ids.removesuffix("-ft")]), seed, train_seqs)
        cols = sem.content_columns()
        sid, sizes = sem.codes[:, cols], [sem.vocab_sizes[c] for c in cols]
        out["tokenizer_diagnostics"] = sem.diagnostics
    rank_cfg = RankConfig.from_dict({**cfg["model"], **cfg["train"]})
    for features in feature_sets:
        fields, field_sizes = field_table(ds, features, sid, sizes)
        out[features] = fit_ranker(ds, labels, fields, field_sizes, rank_cfg, seed, device)
    return out
