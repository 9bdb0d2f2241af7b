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
from motorec.generative.ids import SemanticIDs, ids_from_tokenizer, semantic_ids, tokenizer_features
from motorec.generative.joint import generator_finetune
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
        joint = ids == "mmq-ft" and params.get("ft_objective") == "generator"
        sem = semantic_ids(ds, ids, params, seed, data.train_sequences, generator_follows=joint)
        info.update(tokenizer_seconds=time.perf_counter() - t0)
        torch.manual_seed(seed)
        model = TIGER(sem.codes, sem.vocab_sizes, max_len=int(m["max_len"]), **{k: m[k] for k in TIGER_KEYS}).to(device)
        if joint:
            model, sem, info["generator_finetune"] = _generator_finetune(model, sem, ds, data, cfg, seed)
        info.update(id_length=sem.codes.shape[1], vocab_sizes=sem.vocab_sizes, tokenizer_diagnostics=sem.diagnostics)
        if save_dir is not None:
            sem.tokenizer.save(save_dir / "tokenizer")
    model.to(device)
    result = fit(model, data, LoopConfig.from_dict(cfg["train"]), seed)
    info["parameters"] = sum(p.numel() for p in model.parameters())
    return {**info, **result}


def _generator_finetune(model: TIGER, sem: SemanticIDs, ds: Dataset, data: SequenceData, cfg: dict[str, Any],
                        seed: int) -> tuple[TIGER, SemanticIDs, dict[str, Any]]:
    """Warm-up TIGER on the stage-1 IDs, fine-tune generator and MMQ jointly, re-encode the IDs and
    carry TIGER over to them (generative.joint); the caller then trains it to early stopping."""
    train = cfg["train"]
    params = cfg["ids"]["mmq"]
    t0 = time.perf_counter()
    warm_cfg = LoopConfig.from_dict({**train, "epochs": int(train["ft_warmup_epochs"]), "patience": int(train["ft_warmup_epochs"]) + 1})
    warm = fit(model, data, warm_cfg, seed, test=False) if warm_cfg.epochs else {}
    tok = sem.tokenizer
    assert isinstance(tok, MMQTokenizer)
    features = tokenizer_features(ds, "mmq")
    steps = generator_finetune(model, tok, features, data, int(params["ft_steps"]), int(train["batch_size"]),
                               float(train["lr"]), seed)
    before, experts = sem.codes, tok.model.n_experts if tok.model else 0
    sem = ids_from_tokenizer(tok, features)
    moved = float((before[:, :experts] != sem.codes[:, :experts]).any(1).mean())
    return model.with_codes(sem.codes, sem.vocab_sizes), sem, {
        "seconds": time.perf_counter() - t0,
        "warmup_valid": warm.get("valid", {}).get("all"),
        "steps": steps,
        "items_with_new_codes": moved,
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
