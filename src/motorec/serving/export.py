"""`motorec export RUN_DIR --out BUNDLE`: a trained run turned into a self-contained serving bundle.

How new items get vectors is decided here and recorded in the manifest:
- "model": the model implements `item_vector_from_content` (serving.protocol); its weights and the
  train-only graph and features ship in BUNDLE/model/ so the service rebuilds it without the data;
- "ridge": otherwise, a ridge map from concatenated features to the model's vectors of items with
  train interactions; lambda by valid recall@20 with the split's items without train interactions
  placed by the map (held-out R^2 on train items when there are none). Items without train
  interactions of a model with no content path get their vector from the same map.
New users are folded in from item vectors (linalg.fold_in); its strength is chosen on valid.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_model

from motorec.config import RunConfig
from motorec.data.dataset import VALID, Dataset
from motorec.errors import MotorecError
from motorec.evaluation import DotScorer, Evaluator
from motorec.models.base import Recommender
from motorec.models.factory import load_trained
from motorec.progress import progress
from motorec.serving.bundle import claim_bundle_dir, write_arrays, write_bundle
from motorec.serving.catalog import load_catalog
from motorec.serving.linalg import FOLD_IN_GRID, RIDGE_GRID, RidgePath, fold_in_many, select_ridge
from motorec.serving.protocol import ContentToTokens, ContentToVector
from motorec.tokenizers.base import Tokenizer, build_tokenizer, load_tokenizer

MODEL_DIR = "model"
TOKENIZER_DIR = "tokenizer"


def concat_features(features: dict[str, np.ndarray], order: list[str]) -> np.ndarray:
    return np.concatenate([np.asarray(features[m], dtype=np.float32) for m in order], axis=1)


ITEM_BLOCK = 65536  # items pushed through a model's content hooks at once
SELECTION_SCORE_CELLS = 1_000_000_000  # users x items scored per candidate when choosing ridge / fold-in strengths


@torch.no_grad()
def _per_item_block(hook, feats: dict[str, np.ndarray]) -> np.ndarray:
    """A content hook (features -> one row per item) applied in item blocks, so its activations
    never span the whole catalogue."""
    n = len(next(iter(feats.values())))
    parts = [
        hook(
            {
                m: torch.from_numpy(np.ascontiguousarray(f[s : s + ITEM_BLOCK], dtype=np.float32))
                for m, f in feats.items()
            }
        )
        .cpu()
        .numpy()
        for s in range(0, n, ITEM_BLOCK)
    ]
    return np.concatenate(parts)


def _model_vectors(model, feats: dict[str, np.ndarray]) -> np.ndarray:
    return _per_item_block(model.item_vector_from_content, feats).astype(np.float32)


def selection_users(ds: Dataset, seed: int = 0) -> np.ndarray | None:
    """Valid users that the export's strength selections are measured on: all of them while that
    costs at most SELECTION_SCORE_CELLS scores per candidate, else a seeded sample of that size
    (a million-item catalogue gives 1,000 users)."""
    users = np.flatnonzero(ds.matrix(VALID).getnnz(axis=1) > 0)
    budget = max(1, SELECTION_SCORE_CELLS // max(1, ds.n_items))
    if len(users) <= budget:
        return None
    return np.sort(np.random.default_rng(seed).choice(users, size=budget, replace=False))


def _fit_tokenizer(spec: str, features: dict[str, np.ndarray], params: dict[str, Any], seed: int) -> Tokenizer:
    """A saved tokenizer folder, or the name of a registered tokenizer fitted here on item content.

    Fitted here, "rqvae" defaults to raw codes (collisions=none): the service explains tokens, it
    does not need unique ids, and suffix resolution costs milliseconds per new item.
    """
    if Path(spec).is_dir():
        return load_tokenizer(spec)
    if spec == "rqvae":
        params = {"collisions": "none", **params}
    return build_tokenizer(spec, **params).fit(features, seed=seed)


def _ridge_by_valid(
    ds: Dataset, users: np.ndarray, items: np.ndarray, x: np.ndarray, cold: np.ndarray, path: RidgePath
) -> tuple[float, dict[str, float]]:
    """Ridge strength with the best valid recall@20 when the items without train interactions are
    placed by the map: what matters is whether they reach real top-Ks, which held-out R^2 misses
    (strong shrinkage pulls new items towards the mean and below the warm ones)."""
    evaluator = Evaluator(ds, torch.device("cpu"), ks=(20,))
    sample = selection_users(ds)
    user_t = torch.from_numpy(users)
    scores: dict[str, float] = {}
    with progress() as bar:
        task = bar.task("export: ridge strength on valid", total=len(RIDGE_GRID))
        for rel in RIDGE_GRID:
            placed = items.copy()
            placed[cold] = path.at(rel)(x[cold])
            scores[str(rel)] = evaluator.evaluate(
                DotScorer(user_t, torch.from_numpy(placed)), "valid", users=sample
            ).get("all", "recall@20")
            task.advance()
    best = max(scores, key=scores.__getitem__)
    return float(best), scores


def _choose_fold_in(
    ds: Dataset, users: np.ndarray, items: np.ndarray, target: float, device: torch.device
) -> tuple[float, dict[str, Any]]:
    """Fold-in strength with the best valid recall@20 when every user is rebuilt from train items."""
    prior = users.mean(0)
    unit = float((items**2).sum(1).mean())
    rows = np.split(ds.train_matrix.indices, ds.train_matrix.indptr[1:-1])
    evaluator = Evaluator(ds, device, ks=(20,))
    sample = selection_users(ds)
    valid_users = np.flatnonzero(ds.matrix(VALID).getnnz(axis=1) > 0) if sample is None else sample
    item_t = torch.from_numpy(items)
    scores: dict[str, float] = {}
    with progress() as bar:
        task = bar.task("export: fold-in strength on valid", total=len(FOLD_IN_GRID))
        for rel in FOLD_IN_GRID:
            folded = users.copy()  # only the evaluated users are folded in
            folded[valid_users] = fold_in_many([rows[u] for u in valid_users], items, prior, target, rel * unit)
            scores[str(rel)] = evaluator.evaluate(
                DotScorer(torch.from_numpy(folded), item_t), "valid", users=sample
            ).get("all", "recall@20")
            task.advance()
    model_recall = evaluator.evaluate(DotScorer(torch.from_numpy(users), item_t), "valid", users=sample).get()
    best = max(scores, key=scores.__getitem__)
    return float(best) * unit, {
        "valid_recall@20_by_relative_reg": scores,
        "relative_reg": float(best),
        "model_valid_recall@20": model_recall,
        "selection_users": len(valid_users),
    }


def export_bundle(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    seed: int | None = None,
    drop_cold_items: bool = False,
    tokenizer: str | None = None,
    tokenizer_params: dict[str, Any] | None = None,
    overwrite: bool = False,
    dataset: Dataset | None = None,
) -> dict[str, Any]:
    """Write BUNDLE from RUN_DIR (`dataset`: the run's split already in memory); returns the manifest."""
    ds, cfg, model = load_trained(run_dir, seed, dataset)
    model.eval()
    with torch.no_grad():
        model.prepare_scoring()
        emb = model.embeddings()
        model.finish_scoring()
    if emb is None:
        raise MotorecError(
            f"model '{model.name}' does not expose embeddings() (scores are not a user-item dot "
            f"product), so it cannot be served from a vector index."
        )
    users, items = (e.detach().float().cpu().numpy().copy() for e in emb)
    order = sorted(ds.modalities)
    feats = {m: np.asarray(ds.modalities[m], dtype=np.float32) for m in order}
    with claim_bundle_dir(out, overwrite, inputs=[run_dir, tokenizer]) as out:
        return _write_bundle(
            out, run_dir, ds, cfg, model, users, items, feats, drop_cold_items, tokenizer, tokenizer_params
        )


def _write_bundle(
    out: Path,
    run_dir: str | os.PathLike,
    ds: Dataset,
    cfg: RunConfig,
    model: Recommender,
    users: np.ndarray,
    items: np.ndarray,
    feats: dict[str, np.ndarray],
    drop_cold_items: bool,
    tokenizer: str | None,
    tokenizer_params: dict[str, Any] | None,
) -> dict[str, Any]:
    order = sorted(feats)
    extra_files: list[str] = []
    arrays: dict[str, np.ndarray] = {}
    warm = ds.item_degree > 0
    cold = ~warm
    item_method: dict[str, Any]
    if isinstance(model, ContentToVector) and order:
        from_content = _model_vectors(model, feats)
        cos = (from_content * items).sum(1) / (
            np.linalg.norm(from_content, axis=1) * np.linalg.norm(items, axis=1) + 1e-12
        )
        item_method = {
            "method": "model",
            "hook": "item_vector_from_content",
            "cosine_hook_vs_embeddings": {
                "warm_mean": float(cos[warm].mean()) if warm.any() else None,
                "cold_mean": float(cos[cold].mean()) if cold.any() else None,
            },
        }
        (out / MODEL_DIR).mkdir()
        save_model(model.cpu(), str(out / MODEL_DIR / "weights.safetensors"))
        write_arrays(
            out / MODEL_DIR / "features.safetensors",
            {
                **feats,
                "cold_items": np.asarray(ds.cold_items if ds.cold_items is not None else np.zeros(0), dtype=np.int64),
            },
        )
        extra_files += [f"{MODEL_DIR}/weights.safetensors", f"{MODEL_DIR}/features.safetensors"]
    elif order:
        x = concat_features(feats, order)
        warm_rows = np.flatnonzero(warm)
        rel, r2 = select_ridge(x, items, rows=warm_rows)
        item_method = {
            "method": "ridge",
            "heldout_r2_by_relative_lambda": {str(k): v for k, v in r2.items()},
            "fitted_on_items": int(warm.sum()),
            "feature_order": order,
        }
        path = RidgePath(x, items, warm_rows)
        if cold.any() and ds.is_split:
            rel, by_valid = _ridge_by_valid(ds, users, items, x, cold, path)
            item_method["valid_recall@20_by_relative_lambda"] = by_valid
        item_method["relative_lambda"] = rel
        item_method["selected_by"] = (
            "valid recall@20 (all)" if "valid_recall@20_by_relative_lambda" in item_method else "held-out R^2"
        )
        cmap = path.at(rel)
        from_content = cmap(x)
        arrays.update(
            {
                "content_map.mean": cmap.mean,
                "content_map.scale": cmap.scale,
                "content_map.weight": cmap.weight,
                "content_map.bias": cmap.bias,
            }
        )
    else:
        from_content = None
        item_method = {"method": "none", "reason": "the dataset has no content features: new items cannot be embedded"}
    if from_content is not None and not model.content_path:
        items[cold] = from_content[cold]
        item_method["items_without_train_interactions_from_content"] = int(cold.sum())
    tokens_meta = None
    if isinstance(model, ContentToTokens) and order:
        arrays["item_tokens"] = _per_item_block(model.item_tokens_from_content, feats).astype(np.int64)
        tokens_meta = {"source": "model", "slots": [dataclasses.asdict(s) for s in model.token_slots()]}
    elif tokenizer and order:
        tok = _fit_tokenizer(tokenizer, feats, tokenizer_params or {}, int(cfg.seeds[0]))
        arrays["item_tokens"] = np.asarray(tok.encode(feats), dtype=np.int64)
        tok.save(out / TOKENIZER_DIR)
        extra_files += [f"{TOKENIZER_DIR}/tokenizer.json", f"{TOKENIZER_DIR}/tokenizer.safetensors"]
        tokens_meta = {"source": "tokenizer", "name": tok.name, "slots": [dataclasses.asdict(s) for s in tok.slots]}
    train = ds.train_matrix
    train_rows = np.flatnonzero(ds.labels == 0)
    pos_scores = np.concatenate(
        [
            (users[ds.users[r]] * items[ds.items[r]]).sum(1)
            for r in np.array_split(train_rows, max(1, len(train_rows) // 1_000_000))
        ]
    )
    target = float(np.median(pos_scores))
    reg, fold_info = _choose_fold_in(ds, users, items, target, torch.device("cpu"))
    served = np.ones(ds.n_items, dtype=np.uint8)
    if drop_cold_items and ds.cold_items is not None:
        served[ds.cold_items] = 0
    arrays.update(
        {
            "user_vectors": users,
            "item_vectors": items,
            "served": served,
            "seen_indptr": train.indptr.astype(np.int64),
            "seen_indices": train.indices.astype(np.int64),
            "item_degree": ds.item_degree.astype(np.int64),
            **{f"feature_mean.{m}": f.mean(0) for m, f in feats.items()},
        }
    )
    manifest = {
        "source_run": str(Path(run_dir).resolve()),
        "model": {"name": model.name, "content_path": model.content_path, "config": cfg.to_dict()},
        "dataset": {
            "name": ds.name,
            "split": cfg.data.split,
            "split_sha256": ds.split_sha256(),
            "cold_items": None if ds.cold_items is None else len(ds.cold_items),
            "cold_items_served": bool(served[ds.cold_mask()].all()) if ds.cold_items is not None else None,
        },
        "n_users": ds.n_users,
        "n_items": ds.n_items,
        "dim": int(items.shape[1]),
        "modalities": {m: int(f.shape[1]) for m, f in feats.items()},
        "item_vectors": item_method,
        "tokens": tokens_meta,
        "fold_in": {"target": target, "reg": reg, "new_user_prior": "mean trained user vector", **fold_info},
    }
    catalog = load_catalog(ds)
    write_bundle(out, manifest, arrays, catalog, extra_files)
    return manifest
