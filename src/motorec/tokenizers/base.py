"""One interface for every item tokenizer (RQ-VAE, PQ, MMQ).

A tokenizer maps each item's content features (one float matrix per modality, rows = items) to a
row of discrete codes. Downstream code only relies on this contract, so any tokenizer can feed
MoToRec's token channels, MOTOR's Token Cross Network, or the generative retriever.
"""
from __future__ import annotations

import dataclasses
import json
import os
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from motorec.errors import MotorecError, did_you_mean
from motorec.io import atomic_write_text, temp_path_beside

Features = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class TokenSlot:
    """What one column of the code table means: the modality (or 'shared'), the level, the size.

    `kind` is "code" for a learned codebook index (carries content semantics) or "suffix" for a
    collision-disambiguating counter (unique ids only: embedding it as content is meaningless).
    """

    modality: str
    level: int
    codebook_size: int
    kind: str = "code"


class Tokenizer(ABC):
    """fit on item features -> encode to codes (n_items x n_slots) -> decode, save, load."""

    name: str = ""

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)

    @abstractmethod
    def fit(self, features: Features, weights: np.ndarray | None = None, seed: int = 0) -> "Tokenizer":
        """Learn codebooks. `weights` (n_items,) scales each item's loss (rarity amplification)."""

    @abstractmethod
    def encode(self, features: Features) -> np.ndarray:
        """Codes as int64 (n_items, len(self.slots)); works for items never seen in fit."""

    @abstractmethod
    def decode(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        """Reconstructed features per modality from codes."""

    @property
    @abstractmethod
    def slots(self) -> list[TokenSlot]:
        """Meaning of each code column, in order."""

    @abstractmethod
    def codebooks(self) -> dict[str, np.ndarray]:
        """Named codebook matrices (for inspection and for initialising token embeddings)."""

    @abstractmethod
    def diagnostics(self, features: Features) -> dict[str, Any]:
        """Utilisation, perplexity, collision rate, reconstruction MSE (per level and overall)."""

    @abstractmethod
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Everything learned, as tensors (saved with safetensors)."""

    @abstractmethod
    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        """Restore from `state_tensors()` and the JSON meta written beside them."""

    def meta(self) -> dict[str, Any]:
        """JSON-serialisable facts needed to rebuild the tokenizer before loading tensors."""
        return {"name": self.name, "params": self.params, "slots": [asdict(s) for s in self.slots]}

    def save(self, directory: str | os.PathLike) -> None:
        """Write tokenizer.safetensors + tokenizer.json atomically (no pickle)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_tensors().items()}
        tmp = temp_path_beside(out / "tokenizer.safetensors")
        save_file(tensors, str(tmp))
        os.replace(tmp, out / "tokenizer.safetensors")
        atomic_write_text(out / "tokenizer.json", json.dumps(self.meta(), indent=2))


def check_features(features: Features, expected: Mapping[str, int] | None = None) -> int:
    """Validate features before any work; returns n_items. Errors name the modality and first bad row.

    `expected` maps modality -> input width seen at fit time (encode must match it).
    """
    if not features:
        raise MotorecError("No item features given: a tokenizer needs at least one modality.")
    n_items: int | None = None
    first = ""
    for name, feat in features.items():
        if getattr(feat, "ndim", 0) != 2:
            raise MotorecError(f"modality '{name}': features must be (n_items, dim), found shape {np.shape(feat)}.")
        if not np.issubdtype(feat.dtype, np.floating):
            raise MotorecError(f"modality '{name}': features must be floating point, found dtype {feat.dtype}.")
        if n_items is None:
            n_items, first = feat.shape[0], name
        elif feat.shape[0] != n_items:
            raise MotorecError(
                f"modality '{name}' has {feat.shape[0]} rows but '{first}' has {n_items}; row i must be item i."
            )
        if expected is not None and name in expected and feat.shape[1] != expected[name]:
            raise MotorecError(
                f"modality '{name}': tokenizer was fitted on {expected[name]}-d features, got {feat.shape[1]}-d."
            )
        step = max(1, 2**22 // max(1, feat.shape[1]))  # chunked so a memmap is never read whole
        for start in range(0, feat.shape[0], step):
            finite = np.isfinite(feat[start : start + step]).all(axis=1)
            if not finite.all():
                row = start + int(np.flatnonzero(~finite)[0])
                raise MotorecError(f"modality '{name}': row {row} (item {row}) contains NaN or inf.")
    if expected is not None:
        missing = sorted(set(expected) - set(features))
        if missing:
            raise MotorecError(f"Features lack modalities the tokenizer was fitted on: {', '.join(missing)}.")
    return int(n_items or 0)


ConfigT = TypeVar("ConfigT")


def resolve_params(tokenizer: str, config_cls: type[ConfigT], params: Mapping[str, Any]) -> ConfigT:
    """Build a tokenizer's config dataclass from user params (CLI `--set`, saved JSON).

    Unknown keys are rejected with a suggestion; values are coerced to the default's type so
    `levels=3.0` or `opq="true"` from a CLI do not silently change behaviour.
    """
    fields = {f.name: f for f in dataclasses.fields(config_cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in params.items():
        if key not in fields:
            raise MotorecError(
                f"Unknown parameter '{key}' for tokenizer '{tokenizer}'. Known: {', '.join(sorted(fields))}."
                f"{did_you_mean(key, fields)}"
            )
        default = fields[key].default
        if default is dataclasses.MISSING:
            default = fields[key].default_factory()  # type: ignore[misc]
        values[key] = _coerce(tokenizer, key, value, default)
    return config_cls(**values)


def _coerce(tokenizer: str, key: str, value: Any, default: Any) -> Any:
    bad = MotorecError(f"Parameter '{key}' of tokenizer '{tokenizer}': cannot use {value!r} (default {default!r}).")
    if value is None or default is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, (bool, int)) and value in (0, 1):
            return bool(value)
        raise bad
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise bad
        try:
            as_float = float(value)
        except ValueError:
            raise bad from None
        if not as_float.is_integer():
            raise bad
        return int(as_float)
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad from None
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise bad
        return list(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad
        return value
    return value


TOKENIZERS: dict[str, Callable[..., Tokenizer]] = {}


def register_tokenizer(name: str) -> Callable[[type[Tokenizer]], type[Tokenizer]]:
    """Class decorator adding a tokenizer to the registry under `name`."""

    def wrap(cls: type[Tokenizer]) -> type[Tokenizer]:
        cls.name = name
        TOKENIZERS[name] = cls
        return cls

    return wrap


def build_tokenizer(name: str, **params: Any) -> Tokenizer:
    if name not in TOKENIZERS:
        raise MotorecError(
            f"Unknown tokenizer '{name}'. Known: {', '.join(sorted(TOKENIZERS))}.{did_you_mean(name, TOKENIZERS)}"
        )
    return TOKENIZERS[name](**params)


def load_tokenizer(directory: str | os.PathLike) -> Tokenizer:
    """Rebuild a saved tokenizer from tokenizer.json + tokenizer.safetensors."""
    directory = Path(directory)
    meta_path = directory / "tokenizer.json"
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError as exc:
        raise MotorecError(f"{meta_path}: no saved tokenizer here (tokenizer.json missing).") from exc
    except json.JSONDecodeError as exc:
        raise MotorecError(f"{meta_path}: not valid JSON ({exc}).") from exc
    # Rebuilding modules draws initial weights that the saved tensors replace: fork the global RNG so
    # that loading a cached tokenizer leaves it exactly as fitting one does (a warm cache must not
    # change a run's results).
    with torch.random.fork_rng(devices=[]):
        tok = build_tokenizer(meta["name"], **meta.get("params", {}))
        tok.load_state_tensors(load_file(str(directory / "tokenizer.safetensors")), meta)
    return tok
