"""The serving bundle: everything the service needs from a trained run, as safetensors + JSON.

BUNDLE/manifest.json         format and library versions, model and dataset facts, how new items
                             and users are embedded, checksums of every other file
BUNDLE/arrays.safetensors    user/item vectors, train interactions (CSR), item degree, feature
                             means, item tokens, the ridge content map when one is used
BUNDLE/items.json            external item/user ids, item titles and texts
BUNDLE/tokenizer/            the tokenizer (when tokens come from a separate tokenizer)
BUNDLE/model/                model weights + train-only graph and features (when the model embeds
                             new items itself through `item_vector_from_content`)

No pickle anywhere; loading checks the format version, checksums, shapes and finiteness.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

import motorec
from motorec.errors import MotorecError
from motorec.io import atomic_write_text, claim_output_dir, temp_path_beside
from motorec.serving.catalog import Catalog
from motorec.serving.linalg import ContentMap

FORMAT = "motorec-bundle"
FORMAT_VERSION = 1
ARRAYS = "arrays.safetensors"
ITEMS = "items.json"
MANIFEST = "manifest.json"


def library_versions() -> dict[str, str]:
    import faiss
    import safetensors
    import torch

    return {
        "motorec": motorec.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "faiss": faiss.__version__,
        "safetensors": safetensors.__version__,
    }


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = temp_path_beside(path)
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp))
    os.replace(tmp, path)


@dataclass
class Bundle:
    """A loaded bundle. Item rows follow the model's item ids; `served` marks rows in the index."""

    path: Path
    manifest: dict[str, Any]
    user_vectors: np.ndarray
    item_vectors: np.ndarray
    served: np.ndarray
    seen_indptr: np.ndarray
    seen_indices: np.ndarray
    item_degree: np.ndarray
    feature_mean: dict[str, np.ndarray]
    catalog: Catalog
    item_tokens: np.ndarray | None = None
    content_map: ContentMap | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.item_vectors.shape[1])

    @property
    def modalities(self) -> dict[str, int]:
        return dict(self.manifest["modalities"])

    @property
    def fingerprint(self) -> str:
        """Identifies this exact bundle (the write-ahead log refuses to replay onto another)."""
        return self.manifest["files"][ARRAYS]


def write_bundle(
    out: Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray], catalog: Catalog, extra_files: list[str]
) -> None:
    """Write arrays and items, then the manifest with checksums last (its presence means complete)."""
    write_arrays(out / ARRAYS, arrays)
    items = {
        "item_ids": catalog.item_ids,
        "user_ids": catalog.user_ids,
        "titles": catalog.titles,
        "texts": catalog.texts,
        "text_template": catalog.text_template,
        "provenance": catalog.provenance,
    }
    atomic_write_text(out / ITEMS, json.dumps(items))
    files = [ARRAYS, ITEMS, *extra_files]
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": library_versions(),
        **manifest,
        "files": {name: sha256_file(out / name) for name in files},
    }
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2))


STATE_DIR = "state"  # the service's write-ahead log lives here by default


def _legacy_bundle(folder: Path) -> dict[str, Any] | None:
    """A bundle written before bundles carried motorec's output marker: recognised by its manifest."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return {} if isinstance(manifest, dict) and manifest.get("format") == FORMAT else None


def claim_bundle_dir(out: str | os.PathLike, overwrite: bool, inputs: list[Any]) -> AbstractContextManager[Path]:
    """The bundle folder, claimed through motorec.io; never replaces one whose service state (a
    write-ahead log of acknowledged items) is inside it."""
    return claim_output_dir(
        out, "bundle", overwrite=overwrite, inputs=inputs, legacy=_legacy_bundle, protected=[STATE_DIR]
    )


def _fail(path: Path, msg: str) -> MotorecError:
    return MotorecError(f"bundle {path}: {msg}")


def read_manifest(path: Path) -> dict[str, Any]:
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise _fail(path, f"{MANIFEST} not found; is this a folder written by `motorec export`?")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:
        raise _fail(path, f"{MANIFEST} is not valid JSON ({str(exc)[:200]}).") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _fail(path, f"{MANIFEST} is not a motorec bundle manifest.")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise _fail(
            path,
            f"bundle format version {version} but this motorec ({motorec.__version__}) reads "
            f"version {FORMAT_VERSION}; re-export the run with this motorec.",
        )
    files = manifest.get("files")
    if (
        not isinstance(files, dict)
        or ARRAYS not in files
        or ITEMS not in files
        or any(Path(n).is_absolute() or ".." in Path(n).parts for n in files)
    ):
        raise _fail(path, f"{MANIFEST}: 'files' must list {ARRAYS}, {ITEMS} and other files inside the bundle.")
    for name, digest in files.items():
        file = path / name
        if not file.is_file():
            raise _fail(path, f"{name} is missing.")
        if sha256_file(file) != digest:
            raise _fail(path, f"{name} does not match its checksum in {MANIFEST} (modified or truncated).")
    return manifest


def _expect(path: Path, name: str, arr: np.ndarray, shape: tuple[int | None, ...], kind: str) -> np.ndarray:
    ok_shape = arr.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, arr.shape))
    if not ok_shape:
        raise _fail(
            path, f"array '{name}' has shape {arr.shape}, expected {tuple('*' if s is None else s for s in shape)}."
        )
    if np.dtype(arr.dtype).kind != kind:
        raise _fail(path, f"array '{name}' has dtype {arr.dtype}, expected kind '{kind}'.")
    if kind == "f" and not np.isfinite(arr).all():
        raise _fail(path, f"array '{name}' contains NaN or inf.")
    return arr


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Read and validate a bundle; every inconsistency is a MotorecError naming the file."""
    path = Path(path)
    if not path.is_dir():
        raise MotorecError(f"bundle folder not found: {path}")
    m = read_manifest(path)
    try:
        return _load_checked(path, m)
    except MotorecError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OSError, SafetensorError) as exc:
        raise _fail(
            path, f"{MANIFEST} or its files are malformed ({type(exc).__name__}: {str(exc)[:200]}); re-export the run."
        ) from exc


def _load_checked(path: Path, m: dict[str, Any]) -> Bundle:
    arrays = load_file(str(path / ARRAYS))
    items = json.loads((path / ITEMS).read_text(encoding="utf-8"))
    n_users, n_items, dim = m["n_users"], m["n_items"], m["dim"]

    def get(name: str, shape: tuple[int | None, ...], kind: str) -> np.ndarray:
        if name not in arrays:
            raise _fail(path, f"array '{name}' is missing from {ARRAYS}.")
        return _expect(path, name, arrays[name], shape, kind)

    indptr = get("seen_indptr", (n_users + 1,), "i")
    indices = get("seen_indices", (None,), "i")
    if (
        indptr[0] != 0
        or indptr[-1] != len(indices)
        or (np.diff(indptr) < 0).any()
        or (len(indices) and (indices.min() < 0 or indices.max() >= n_items))
    ):
        raise _fail(path, "train interactions (seen_indptr/seen_indices) are not a valid CSR matrix.")
    feature_mean = {mod: get(f"feature_mean.{mod}", (d,), "f") for mod, d in m["modalities"].items()}
    content_map = None
    if m["item_vectors"]["method"] == "ridge":
        p = sum(m["modalities"].values())
        content_map = ContentMap(
            get("content_map.mean", (p,), "f"),
            get("content_map.scale", (p,), "f"),
            get("content_map.weight", (p, dim), "f"),
            get("content_map.bias", (dim,), "f"),
        )
    tokens = None
    if m.get("tokens"):
        tokens = get("item_tokens", (n_items, len(m["tokens"]["slots"])), "i")
    for key, n in (("item_ids", n_items), ("titles", n_items), ("texts", n_items), ("user_ids", n_users)):
        if len(items.get(key, [])) != n:
            raise _fail(path, f"{ITEMS}: '{key}' has {len(items.get(key, []))} entries, expected {n}.")
    for key in ("item_ids", "user_ids"):
        if len(set(items[key])) != len(items[key]):
            raise _fail(path, f"{ITEMS}: '{key}' repeat.")
    catalog = Catalog(
        items["item_ids"],
        items["user_ids"],
        items["titles"],
        items["texts"],
        items.get("text_template"),
        items.get("provenance", {}),
    )
    return Bundle(
        path=path,
        manifest=m,
        user_vectors=get("user_vectors", (n_users, dim), "f"),
        item_vectors=get("item_vectors", (n_items, dim), "f"),
        served=get("served", (n_items,), "u").astype(bool),
        seen_indptr=indptr,
        seen_indices=indices,
        item_degree=get("item_degree", (n_items,), "i"),
        feature_mean=feature_mean,
        catalog=catalog,
        item_tokens=tokens,
        content_map=content_map,
    )
