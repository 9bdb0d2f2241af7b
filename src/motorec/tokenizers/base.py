"""One interface for every item tokenizer (RQ-VAE, PQ, MMQ).

A tokenizer maps each item's content features (one float matrix per modality, rows = items) to a
row of discrete codes. Downstream code only relies on this contract, so any tokenizer can feed
MoToRec's token channels, MOTOR's Token Cross Network, or the generative retriever.

The base also holds what every tokenizer needs the same way: typed parameters (`Config`, a
`TokenizerConfig` of the one config system), the device, per-item weights checked (or refused by
a tokenizer with no per-item loss), seeding that leaves the caller's random stream alone, and
persistence (safetensors + JSON, no pickle).
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from motorec.config import ConfigModel, Device, validate_params
from motorec.errors import MotorecError, did_you_mean
from motorec.io import atomic_write_text, temp_path_beside
from motorec.runtime import resolve_device

Features = Mapping[str, np.ndarray]
ROW_CHUNK = 65536  # feature rows pushed through a tokenizer at once (memmaps are never read whole)


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


class TokenizerConfig(ConfigModel):
    """Base of every tokenizer's parameters (`--set key=value`, the `ids:` block of the tasks)."""

    device: Device = "auto"


class Tokenizer(ABC):
    """fit on item features -> encode to codes (n_items x n_slots) -> decode, save, load."""

    name: str = ""
    #: The typed parameters; None keeps them as given (a user's own tokenizer).
    Config: ClassVar[type[TokenizerConfig] | None] = None
    #: False when `fit` has no per-item loss: weights are then refused, never silently ignored.
    weighted: ClassVar[bool] = True

    def __init__(self, **params: Any) -> None:
        self.device = torch.device("cpu")
        if self.Config is not None:
            self.config = validate_params(self.Config, params, f"tokenizer '{self.name}'")
            params = self.config.model_dump(mode="json")
            self.device = resolve_device(self.config.device)
        self.params = dict(params)

    @abstractmethod
    def fit(self, features: Features, weights: np.ndarray | None = None, seed: int = 0) -> Tokenizer:
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

    # ---------------------------------------------------------------- shared by the tokenizers
    def require_fitted(self) -> None:
        if not self.slots:
            raise MotorecError(f"tokenizer '{self.name}' is not fitted: call fit() or load a saved tokenizer first.")

    def item_weights(self, weights: np.ndarray | None, n: int) -> np.ndarray | None:
        """Per-item loss weights checked and scaled to mean 1 (the unweighted loss' learning-rate scale)."""
        if weights is None:
            return None
        if not self.weighted:
            raise MotorecError(
                f"tokenizer '{self.name}': fit takes no item weights (it has no per-item loss to weight)."
            )
        w = np.asarray(weights, dtype=np.float32).reshape(-1)
        if w.shape[0] != n:
            raise MotorecError(f"weights: got {w.shape[0]} values for {n} items.")
        if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise MotorecError("weights: must be finite, non-negative and not all zero.")
        return w / w.mean()

    @contextmanager
    def seeded(self, seed: int) -> Iterator[None]:
        """Seed torch inside a forked RNG state, so fitting never disturbs the caller's stream."""
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    def tensor(self, x: np.ndarray) -> torch.Tensor:
        """float32 copy on the tokenizer's device (features may be read-only memmaps, which torch cannot wrap)."""
        return torch.tensor(np.asarray(x, dtype=np.float32), device=self.device)

    def check_codes(self, codes: np.ndarray) -> np.ndarray:
        """`codes` as an int64 (n_items, n_slots) table, or an error naming the expected shape."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[1] != len(self.slots):
            raise MotorecError(f"decode: codes must be (n_items, {len(self.slots)}), got shape {codes.shape}.")
        return codes

    def report(self, codes: np.ndarray) -> dict[str, Any]:
        """The frame of every tokenizer's diagnostics; `modalities` is filled by the tokenizer."""
        return {"tokenizer": self.name, "n_items": int(codes.shape[0]), "modalities": {}}

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


def row_chunks(x: np.ndarray, rows: int = ROW_CHUNK) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, block) over `x` in blocks of `rows`."""
    for start in range(0, x.shape[0], rows):
        yield start, x[start : start + rows]


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
    except (ValueError, RecursionError) as exc:
        raise MotorecError(f"{meta_path}: not valid JSON ({str(exc)[:200]}).") from exc
    if (
        not isinstance(meta, dict)
        or not isinstance(meta.get("name"), str)
        or not isinstance(meta.get("params", {}), dict)
    ):
        raise MotorecError(f"{meta_path}: not a saved motorec tokenizer (fields 'name' and 'params' expected).")
    tensors_path = directory / "tokenizer.safetensors"
    # Rebuilding modules draws initial weights that the saved tensors replace: fork the global RNG so
    # that loading a cached tokenizer leaves it exactly as fitting one does (a warm cache must not
    # change a run's results).
    with torch.random.fork_rng(devices=[]):
        try:
            tok = build_tokenizer(meta["name"], **meta.get("params", {}))
        except MotorecError as exc:
            raise MotorecError(f"{meta_path}: {exc}") from None
        try:
            tok.load_state_tensors(load_file(str(tensors_path)), meta)
        except MotorecError:
            raise
        except FileNotFoundError as exc:
            raise MotorecError(f"{tensors_path}: missing beside tokenizer.json.") from exc
        except (SafetensorError, KeyError, TypeError, ValueError, IndexError, RuntimeError, OSError) as exc:
            raise MotorecError(
                f"{tensors_path}: does not hold this tokenizer's state, or is damaged "
                f"({type(exc).__name__}: {str(exc)[:200]})."
            ) from exc
    return tok
