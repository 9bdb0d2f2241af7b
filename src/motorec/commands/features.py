"""`motorec features`: raw item content (text fields, images) -> feature matrices, resumable."""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from motorec.errors import MotorecError, did_you_mean

if TYPE_CHECKING:
    from motorec.features import CatalogSpec

PRESET_NAMES = ("ml100k", "scientific", "generic")
MODALITIES = ("text", "image")


def register(app: typer.Typer) -> None:
    app.command("features", help="Encode item text and images into text_feat.npy / image_feat.npy (offline).")(features)


def features(
    out: Path = typer.Option(..., "--out", help="Output folder: *_feat.npy, features.json, i_id_mapping.csv."),
    preset: str = typer.Option("generic", "--preset", help="ml100k | scientific | generic."),
    raw: Path | None = typer.Option(None, "--raw", help="Raw folder of the ml100k / scientific preset."),
    items: Path | None = typer.Option(None, "--items", help="Item table (generic): csv, tsv, json, jsonl, parquet."),
    id_column: str | None = typer.Option(None, "--id-column", help="Column holding item ids (generic)."),
    id_mapping: Path | None = typer.Option(None, "--id-mapping", help="raw id<TAB>itemID file: row i = itemID i."),
    text_template: str | None = typer.Option(None, "--text-template", help='Format string, e.g. "{title}. {desc}".'),
    image_dir: Path | None = typer.Option(None, "--image-dir", help="Folder the image pattern is relative to."),
    image_pattern: str | None = typer.Option(None, "--image-pattern", help='Image path per item, e.g. "{id}.jpg".'),
    modalities: str | None = typer.Option(None, "--modalities", help="Subset: text, image or text,image."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N items (to try a recipe)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Texts per encoder call."),
    image_batch_size: int = typer.Option(16, "--image-batch-size", min=1, help="Images per encoder call."),
    chunk_size: int = typer.Option(512, "--chunk-size", min=1, help="Rows per resumable chunk."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Reuse finished chunks of an interrupted run."),
    keep_chunks: bool = typer.Option(False, "--keep-chunks", help="Keep out/chunks/ after assembling."),
    reference: Path | None = typer.Option(
        None, "--reference", help="Folder with published *_feat.npy: report the row-wise cosine against them."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    nproc: int = typer.Option(1, "--nproc", help="Processes under torchrun, each encoding its share of the chunks."),
) -> None:
    from motorec.cli import relaunch_under_torchrun
    from motorec.distributed import init_distributed
    from motorec.features import compare_with_reference, extract_catalog_features
    from motorec.runtime import resolve_device

    if relaunch_under_torchrun(nproc):
        return
    ctx = init_distributed(resolve_device(device))  # a torchrun rank encodes its share of the chunks

    spec = _load_spec(preset, raw, items, id_column, id_mapping)
    spec.text_template = text_template or spec.text_template
    spec.image_dir = image_dir or spec.image_dir
    spec.image_pattern = image_pattern or spec.image_pattern
    chosen = _modalities(modalities, spec.text_template is not None, spec.image_pattern is not None)
    table = spec.table.iloc[:limit] if limit else spec.table

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = extract_catalog_features(
            table,
            out,
            text_template=spec.text_template if "text" in chosen else None,
            image_pattern=spec.image_pattern if "image" in chosen else None,
            image_dir=spec.image_dir if "image" in chosen else None,
            id_column=spec.id_column,
            chunk_size=chunk_size,
            batch_size=batch_size,
            image_batch_size=image_batch_size,
            device=device,
            resume=resume,
            keep_chunks=keep_chunks,
            progress=not quiet,
            source=spec.source,
            provenance=spec.provenance,
        )
    seconds = time.perf_counter() - start
    if not ctx.is_main:
        return
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    print(
        f"{len(table)} items in {seconds:.1f} s ({report.computed_chunks} chunks computed,"
        f" {report.reused_chunks} reused) -> {out}"
    )
    for modality, path in report.files.items():
        shape = report.metadata["modalities"][modality]["shape"]
        print(f"  {modality}: {path.name} {shape[0]}x{shape[1]}")
    if report.imputed_rows:
        print(f"  image: {len(report.imputed_rows)} rows imputed with the mean image feature (see features.json)")
    if reference is not None:
        for modality, path in report.files.items():
            cmp = compare_with_reference(path, reference / path.name, rows=len(table))
            below = len(cmp["rows_below_target"])
            print(
                f"  {modality} vs {reference / path.name}: min cosine {cmp['min_cosine']:.7f}"
                f" (row {cmp['worst_row']}), mean {cmp['mean_cosine']:.7f}, {below} rows below {cmp['target']}"
            )


def _load_spec(
    preset: str, raw: Path | None, items: Path | None, id_column: str | None, id_mapping: Path | None
) -> CatalogSpec:
    """The preset's CatalogSpec, after checking that the flags given fit the preset."""
    from motorec.features import PRESETS, generic

    if preset not in PRESET_NAMES:
        hint = did_you_mean(preset, PRESET_NAMES)
        raise MotorecError(f"unknown preset '{preset}'.{hint} Choose from {', '.join(PRESET_NAMES)}.")
    if preset == "generic":
        if items is None:
            raise MotorecError("--preset generic needs --items FILE (the item table).")
        if raw is not None:
            raise MotorecError("--raw is for --preset ml100k / scientific; the generic preset reads --items.")
        return generic(items, id_column, id_mapping)
    if raw is None:
        raise MotorecError(f"--preset {preset} needs --raw DIR (the dataset's raw folder).")
    if not raw.is_dir():
        raise MotorecError(f"raw folder not found: {raw}")
    if items is not None or id_column is not None:
        raise MotorecError("--items and --id-column are for --preset generic; presets know their files.")
    return PRESETS[preset](raw, id_mapping)


def _modalities(requested: str | None, has_text: bool, has_image: bool) -> list[str]:
    """The modalities to extract: the requested subset, or all the recipe defines."""
    available = [m for m, ok in zip(MODALITIES, (has_text, has_image)) if ok]
    if requested is None:
        if not available:
            raise MotorecError("nothing to extract: give --text-template and/or --image-pattern.")
        return available
    chosen = [m.strip() for m in requested.split(",") if m.strip()]
    for m in chosen:
        if m not in MODALITIES:
            raise MotorecError(f"unknown modality '{m}'.{did_you_mean(m, MODALITIES)} Choose text and/or image.")
        if m not in available:
            flag = "--text-template" if m == "text" else "--image-pattern"
            raise MotorecError(f"modality '{m}' was requested but the recipe has none: give {flag}.")
    return chosen
