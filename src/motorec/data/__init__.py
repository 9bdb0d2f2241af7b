"""Data layer: one Dataset type, readers, splitters, synthetic data and the shared graphs."""

from __future__ import annotations

import os
from pathlib import Path

from motorec.data.dataset import TEST, TRAIN, VALID, Dataset
from motorec.data.readers import read_inter, read_lcrec, read_mmrec, read_raw_ratings
from motorec.data.splits import cold_split, loo_split, random_split, write_mmrec
from motorec.data.synthetic import make_synthetic, parse_synthetic_spec, synthetic_catalogue
from motorec.errors import MotorecError

SYNTHETIC = "synthetic"
SYNTHETIC_NAMES = (SYNTHETIC, f"{SYNTHETIC}-cold")


def load_dataset(
    path: str | os.PathLike[str], split: str | os.PathLike[str] | None = None, drop_users_without_train: bool = False
) -> Dataset:
    """Open a dataset by path (MMRec folder, or LC-Rec folder with *.inter.json), 'synthetic[-cold]'
    (the built-in small data) or 'synthetic:items=N,users=N,interactions=N[,text=D][,seed=S][,cold]'
    (a generated catalogue of any size, held in memory; `motorec data synthetic` writes one to disk).

    An LC-Rec folder or synthetic data comes unsplit and gets chronological leave-one-out or a
    seeded split here; MMRec folders carry their split in the `.inter` file.
    """
    ds = _open(path, split, drop_users_without_train)
    # Remembered so a run trained on this in-memory Dataset can be reloaded from its results.json.
    ds.source["load"] = {
        "path": str(path),
        "split": None if split is None else str(split),
        "drop_users_without_train": drop_users_without_train,
    }
    return ds


def _open(
    path: str | os.PathLike[str], split: str | os.PathLike[str] | None, drop_users_without_train: bool
) -> Dataset:
    text = str(path)
    if text in SYNTHETIC_NAMES:
        ds = make_synthetic()
        return cold_split(ds) if text.endswith("-cold") else random_split(ds)
    if text.startswith(f"{SYNTHETIC}:"):
        spec = parse_synthetic_spec(text)
        ds = synthetic_catalogue(
            spec["items"],
            spec["users"],
            spec["interactions"],
            dims={"text": spec.get("text", 384)},
            seed=spec.get("seed", 2026),
        )
        return cold_split(ds) if spec["cold"] else random_split(ds)
    p = Path(path)
    if not p.exists():
        raise MotorecError(f"{p}: dataset not found (give an MMRec folder, an LC-Rec folder, or 'synthetic').")
    if p.is_file() and p.suffix == ".inter":
        return read_mmrec(p.parent, split=p, drop_users_without_train=drop_users_without_train)
    if list(p.glob("*.inter")) or split is not None:
        return read_mmrec(p, split=split, drop_users_without_train=drop_users_without_train)
    if list(p.glob("*.inter.json")):
        return loo_split(read_lcrec(p))
    raise MotorecError(f"{p}: neither an MMRec folder (<name>.inter) nor an LC-Rec folder (*.inter.json).")


def write_synthetic(
    out: str | Path,
    n_items: int,
    n_users: int,
    n_interactions: int,
    text_dim: int = 384,
    seed: int = 2026,
    cold: bool = False,
) -> Path:
    """A generated catalogue as an MMRec folder: OUT/<OUT name>.inter (split per user 80/10/10, or a
    zero-shot cold split) and OUT/text_feat.npy, written straight to disk (features never whole in memory)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise MotorecError(f"{out}: folder exists and is not empty; choose a new folder for the generated dataset.")
    out.mkdir(parents=True, exist_ok=True)
    ds = synthetic_catalogue(n_items, n_users, n_interactions, dims={"text": text_dim}, seed=seed, feature_dir=out)
    return write_mmrec(cold_split(ds, seed=seed) if cold else random_split(ds, seed=seed), out / f"{out.name}.inter")


__all__ = [
    "TEST",
    "TRAIN",
    "VALID",
    "Dataset",
    "cold_split",
    "load_dataset",
    "loo_split",
    "make_synthetic",
    "random_split",
    "read_inter",
    "read_lcrec",
    "read_mmrec",
    "read_raw_ratings",
    "synthetic_catalogue",
    "write_mmrec",
    "write_synthetic",
]
