"""Catalogue-level extraction: item table in, `text_feat.npy` / `image_feat.npy` + `features.json` out.

Work is chunked and resumable (see chunks.py); final files are written atomically. Items whose
image is missing or unreadable get the mean feature of the found images, as MMRec does, and are
listed in `features.json` so downstream users can tell imputed rows apart.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from motorec.distributed import SINGLE, DistContext, current
from motorec.errors import MotorecError
from motorec.features.chunks import Chunk, ChunkStore, plan_chunks
from motorec.features.image import IMAGE_DIM, IMAGE_MODEL, IMAGE_PREPROCESS, encode_images, open_image
from motorec.features.tables import require_column
from motorec.features.template import field_text, render_texts, template_fields
from motorec.features.text import TEXT_MODEL, encode_texts
from motorec.io import atomic_open, atomic_write_text, resolve_output_path
from motorec.progress import progress as progress_bar
from motorec.runtime import resolve_device

FEATURE_FILES = {"text": "text_feat.npy", "image": "image_feat.npy"}
METADATA_FILE = "features.json"
MAPPING_FILE = "i_id_mapping.csv"
MISSING_IMAGE_POLICY = "mean feature of the found images (as MMRec)"


@dataclass
class FeatureReport:
    """What a run wrote, and how much it could reuse from an earlier interrupted run."""

    out_dir: Path
    files: dict[str, Path]
    metadata: dict[str, Any]
    computed_chunks: int = 0
    reused_chunks: int = 0
    imputed_rows: list[int] = field(default_factory=list)


def image_paths(
    table: pd.DataFrame, pattern: str, image_dir: Path | None, source: str = "the item table"
) -> list[str | None]:
    """Each row's image path from `pattern` (format string over fields); None when a field is empty."""
    fields = template_fields(pattern)
    for name in fields:
        require_column(table, name, f"{source} (image pattern {pattern!r})")
    columns = {f: [field_text(v) for v in table[f].tolist()] for f in fields}
    paths: list[str | None] = []
    for i in range(len(table)):
        values = {f: columns[f][i] for f in fields}
        name = pattern.format(**values) if all(v.strip() for v in values.values()) else ""
        paths.append(str(image_dir / name if image_dir else Path(name)) if name.strip() else None)
    return paths


def _image_inputs(paths: list[str | None]) -> list[Any]:
    """Path plus size and mtime, so a changed or newly added image invalidates its chunk."""
    out: list[Any] = []
    for path in paths:
        try:
            st = os.stat(path) if path else None
        except OSError:
            st = None
        out.append([path, st.st_size, st.st_mtime_ns] if st else [path, None, None])
    return out


def _batches(start: int, stop: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(start, stop, size):
        yield lo, min(lo + size, stop)


Advance = Callable[[int], None]


def _text_chunk(
    chunk: Chunk, texts: list[str], batch_size: int, device: str, advance: Advance
) -> tuple[np.ndarray, dict]:
    """Encode one chunk batch by batch, so the progress bar moves within the chunk."""
    parts = []
    for lo, hi in _batches(chunk.start, chunk.stop, batch_size):
        parts.append(encode_texts(texts[lo:hi], batch_size=batch_size, device=device))
        advance(hi - lo)
    return np.concatenate(parts), {"missing": {}}


def _image_chunk(
    chunk: Chunk, paths: list[str | None], batch_size: int, device: str, advance: Advance
) -> tuple[np.ndarray, dict]:
    """Unreadable images leave NaN rows (imputed at assembly) and a reason in the chunk's info."""
    feats = np.full((chunk.stop - chunk.start, IMAGE_DIM), np.nan, dtype=np.float32)
    missing: dict[str, str] = {}
    for lo, hi in _batches(chunk.start, chunk.stop, batch_size):
        found, images = [], []
        for row in range(lo, hi):
            path = paths[row]
            if path is None:
                missing[str(row)] = "no image path (empty field)"
                continue
            try:
                images.append(open_image(path))
                found.append(row - chunk.start)
            except MotorecError as exc:
                missing[str(row)] = str(exc)
        if images:
            feats[found] = encode_images(images, batch_size=batch_size, device=device)
        advance(hi - lo)
    return feats, {"missing": missing}


def _jsonable(value: Hashable) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass
class _Job:
    """One modality's planned work: its chunks, per-row inputs and how to compute a chunk."""

    modality: str
    chunks: list[Chunk]
    inputs: list[Any]
    compute: Callable[..., tuple[np.ndarray, dict]]
    batch_size: int


def extract_catalog_features(
    table: pd.DataFrame,
    out_dir: str | Path,
    *,
    text_template: str | None = None,
    image_pattern: str | None = None,
    image_dir: str | Path | None = None,
    id_column: str | None = None,
    chunk_size: int = 512,
    batch_size: int = 64,
    image_batch_size: int = 16,
    device: str | None = None,
    resume: bool = True,
    keep_chunks: bool = False,
    progress: bool = True,
    source: str = "the item table",
    provenance: dict[str, Any] | None = None,
) -> FeatureReport:
    """Encode every row of `table` (row i -> feature row i) and write the feature files to `out_dir`.

    `text_template` is a format string over the row's fields (lists joined with ", ");
    `image_pattern` formats each row's image path, relative to `image_dir`. Images go in smaller
    batches because on CPU large ones mostly add page-fault time (16 vs 64: half the system time).
    Chunks go to `out_dir/chunks/`; with `resume`, chunks there for identical inputs are reused.
    `provenance` (how the table was read and ordered) is copied into features.json.
    """
    if text_template is None and image_pattern is None:
        raise MotorecError("nothing to extract: give a text template, an image pattern, or both.")
    if len(table) == 0:
        raise MotorecError(f"{source} has no items.")
    if min(chunk_size, batch_size, image_batch_size) < 1:
        sizes = f"{chunk_size}, {batch_size}, {image_batch_size}"
        raise MotorecError(f"chunk and batch sizes must be positive, got {sizes}.")
    ids = _item_ids(table, id_column, source)
    image_root = Path(image_dir) if image_dir is not None else None
    if image_root is not None and not image_root.is_dir():
        raise MotorecError(f"image folder not found: {image_root}")
    device = str(resolve_device(device))
    out_dir = resolve_output_path(out_dir)
    _check_replaceable(
        out_dir,
        [FEATURE_FILES[m] for m, given in (("text", text_template), ("image", image_pattern)) if given is not None]
        + ([MAPPING_FILE] if id_column is not None else []),
    )
    store = ChunkStore(out_dir / "chunks")
    if not resume:
        store.clear()

    metadata: dict[str, Any] = {
        "items": len(table),
        "source": source,
        "id_column": id_column,
        **(provenance or {}),
        "modalities": {},
    }
    jobs = []
    if text_template is not None:
        texts, empty = render_texts(table, text_template, ids, source)
        if empty:
            warnings.warn(f"{source}: some items have empty fields (used as ''): {empty}", stacklevel=2)
        jobs.append(_Job("text", plan_chunks("text", texts, chunk_size, TEXT_MODEL), texts, _text_chunk, batch_size))
        metadata["modalities"]["text"] = {
            "model": TEXT_MODEL,
            "template": text_template,
            "l2_normalised": True,
            "empty_fields": empty,
        }
    if image_pattern is not None:
        paths = image_paths(table, image_pattern, image_root, source)
        chunks = plan_chunks("image", _image_inputs(paths), chunk_size, f"{IMAGE_MODEL}; {IMAGE_PREPROCESS}")
        jobs.append(_Job("image", chunks, paths, _image_chunk, image_batch_size))
        metadata["modalities"]["image"] = {
            "model": IMAGE_MODEL,
            "preprocess": IMAGE_PREPROCESS,
            "l2_normalised": False,
            "image_dir": str(image_root) if image_root else None,
            "image_pattern": image_pattern,
            "missing_policy": MISSING_IMAGE_POLICY,
        }

    report = FeatureReport(out_dir=out_dir, files={}, metadata=metadata)
    ctx = current()
    _compute_missing_chunks(jobs, store, device, progress and ctx.is_main, len(table), report, ctx)
    if not ctx.is_main:  # rank 0 assembles the chunks every rank wrote
        return report
    for job in jobs:
        report.files[job.modality] = _assemble(job, store, ids, out_dir, source, report)
    if id_column is not None:
        mapping = pd.DataFrame({id_column: ids, "itemID": np.arange(len(ids))})
        atomic_write_text(out_dir / MAPPING_FILE, mapping.to_csv(sep="\t", index=False))
    atomic_write_text(out_dir / METADATA_FILE, json.dumps(metadata, indent=2, default=str) + "\n")
    if not keep_chunks:
        store.clear()
    return report


def _check_replaceable(out_dir: Path, names: list[str]) -> None:
    """Existing feature files are replaced only when motorec wrote them (its features.json is
    there): a dataset's own features and id mapping are never overwritten."""
    meta = out_dir / METADATA_FILE
    try:
        ours = isinstance(json.loads(meta.read_text()).get("modalities"), dict)
    except (OSError, ValueError, AttributeError):
        ours = False
    foreign = [n for n in [*names, METADATA_FILE] if (out_dir / n).exists() and not ours]
    if foreign:
        raise MotorecError(
            f"--out {out_dir}: already holds {', '.join(foreign)}, not written by `motorec features` "
            f"(no motorec {METADATA_FILE} beside them); motorec will not replace them. Choose another "
            f"--out."
        )


def _item_ids(table: pd.DataFrame, id_column: str | None, source: str) -> list[Any]:
    """The unique item ids (row positions without an id column), JSON-ready."""
    if id_column is None:
        return list(range(len(table)))
    require_column(table, id_column, source)
    duplicated = table[id_column].duplicated()
    if duplicated.any():
        first = table[id_column][duplicated].iloc[0]
        raise MotorecError(f"{source}: id {first!r} appears more than once in column '{id_column}'.")
    return [_jsonable(v) for v in table[id_column].tolist()]


def _compute_missing_chunks(
    jobs: list[_Job],
    store: ChunkStore,
    device: str,
    progress: bool,
    n_items: int,
    report: FeatureReport,
    ctx: DistContext = SINGLE,
) -> None:
    """Encode every chunk not already in the store, one progress bar per modality.

    Under torchrun the chunks are dealt out in rounds, one per rank per round, with a barrier
    after each round: the store (a shared folder) gathers them, every wait is one chunk long (far
    inside the timeout), and a rank that dies stops the others at the next round.
    """
    with progress_bar(enabled=progress) as bar:
        for job in jobs:
            task = bar.task(f"{job.modality} features", total=n_items)
            for first in range(0, len(job.chunks), ctx.world):
                round_ = job.chunks[first : first + ctx.world]
                if ctx.rank < len(round_):
                    chunk = round_[ctx.rank]
                    if store.has(chunk):
                        report.reused_chunks += 1
                    else:
                        feats, info = job.compute(chunk, job.inputs, job.batch_size, device, lambda n: None)
                        store.save(chunk, feats, info)
                        report.computed_chunks += 1
                ctx.barrier("feature chunks")
                task.advance(sum(c.stop - c.start for c in round_))


def _assemble(job: _Job, store: ChunkStore, ids: list[Any], out_dir: Path, source: str, report: FeatureReport) -> Path:
    """Concatenate the chunks, impute missing rows, write `<modality>_feat.npy` atomically."""
    parts, missing = [], {}
    for chunk in job.chunks:
        feats, info = store.load(chunk)
        parts.append(feats)
        missing.update({int(row): reason for row, reason in info["missing"].items()})
    matrix = np.concatenate(parts)
    meta = report.metadata["modalities"][job.modality]
    if missing:
        rows = sorted(missing)
        _impute_mean(matrix, rows, source)
        meta["imputed_rows"] = rows
        meta["imputed"] = [{"row": r, "id": ids[r], "path": job.inputs[r], "reason": missing[r]} for r in rows]
        report.imputed_rows = rows
        warnings.warn(
            f"{len(rows)} of {len(matrix)} images missing or unreadable (e.g. {missing[rows[0]]}); "
            f"those rows get the {MISSING_IMAGE_POLICY}, listed in {out_dir / METADATA_FILE}.",
            stacklevel=3,
        )
    path = out_dir / FEATURE_FILES[job.modality]
    with atomic_open(path, "wb") as f:
        np.save(f, matrix, allow_pickle=False)
    meta.update({"file": path.name, "shape": list(matrix.shape)})
    return path


def _impute_mean(matrix: np.ndarray, rows: list[int], source: str) -> None:
    """Fill `rows` in place with the mean of all other rows."""
    found = np.ones(len(matrix), dtype=bool)
    found[rows] = False
    if not found.any():
        raise MotorecError(f"{source}: no image could be read, so none can be imputed; check the image paths.")
    matrix[rows] = matrix[found].mean(axis=0, dtype=np.float64).astype(matrix.dtype)
