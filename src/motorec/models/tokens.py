"""The item token table for token-based item representations (MOTOR's `item_repr=motor`).

The tokenizer named in the config section `tokens` is fitted once on the items' content and cached
on disk under a hash of the features, the fitted rows and the parameters, so every seed (and a
later `evaluate`) reuses the same codes. Declared cold items are left out of the fit and only
encoded, as a brand-new item would be; their codes come from content alone.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from motorec.config import RunConfig, TokensConfig
from motorec.data.dataset import Dataset
from motorec.models.context import ModelContext
from motorec.models.item_repr import TOKEN_ITEM_REPRS
from motorec.tokenizers import Tokenizer, TokenSlot, build_tokenizer, load_tokenizer  # the package registers them all

_MEMO: dict[str, tuple[np.ndarray, list[TokenSlot]]] = {}


def needs_tokens(cfg: RunConfig | None) -> bool:
    """True when the configured item representation reads ModelContext.tokens."""
    return (cfg.item_repr if cfg is not None else "id") in TOKEN_ITEM_REPRS


def _cache_key(ds: Dataset, fit_rows: np.ndarray, spec: TokensConfig) -> str:
    h = hashlib.sha256()
    for name in sorted(ds.modalities):
        feat = ds.modalities[name]
        h.update(f"{name}{feat.shape}".encode())
        for start in range(0, feat.shape[0], 65536):  # chunked: memmaps are never read whole
            h.update(np.ascontiguousarray(feat[start : start + 65536], dtype=np.float32).tobytes())
    h.update(np.packbits(fit_rows).tobytes())
    h.update(json.dumps(spec.model_dump(include={"tokenizer", "params", "seed"}), sort_keys=True).encode())
    return h.hexdigest()[:24]


def fitted_tokenizer(ds: Dataset, spec: TokensConfig, cache_dir: Path | None, key: str | None = None) -> Tokenizer:
    """The `spec` tokenizer fitted on every item except the split's declared cold items."""
    fit_rows = ~ds.cold_mask()
    path = None
    if spec.cache and cache_dir is not None:
        path = Path(cache_dir) / "tokens" / f"{spec.tokenizer}_{key or _cache_key(ds, fit_rows, spec)}"
        if (path / "tokenizer.json").is_file() and (path / "tokenizer.safetensors").is_file():
            return load_tokenizer(path)
    tok = build_tokenizer(spec.tokenizer, **spec.params)
    tok.fit({m: np.asarray(f)[fit_rows] for m, f in ds.modalities.items()}, seed=spec.seed)
    if path is not None:
        tok.save(path)
    return tok


def item_tokens(ds: Dataset, spec: TokensConfig, cache_dir: Path | None) -> tuple[np.ndarray, list[TokenSlot]]:
    """(codes (n_items, S), what each column means), content code slots only.

    Collision-suffix slots are dropped: they number items that share a code tuple, i.e. they are
    ID-like and carry no content to share between items.
    """
    key = _cache_key(ds, ~ds.cold_mask(), spec)
    if key not in _MEMO:  # build_model runs once per seed: fit (or load) once per process
        tok = fitted_tokenizer(ds, spec, cache_dir, key)
        codes = tok.encode(ds.modalities)
        keep = [i for i, slot in enumerate(tok.slots) if slot.kind == "code"]
        _MEMO[key] = (np.ascontiguousarray(codes[:, keep]), [tok.slots[i] for i in keep])
    return _MEMO[key]


def attach_tokens(ctx: ModelContext) -> None:
    """Fill ctx.tokens / token_slots / token_sizes when the configured item representation needs them."""
    if ctx.config is not None and needs_tokens(ctx.config) and ctx.tokens is None:
        ctx.tokens, ctx.token_slots = item_tokens(ctx.dataset, ctx.config.tokens, ctx.cache_dir)
        ctx.token_sizes = [slot.codebook_size for slot in ctx.token_slots]
