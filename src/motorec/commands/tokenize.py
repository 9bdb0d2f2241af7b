"""`motorec tokenize`: fit a tokenizer on item features, write the code table and diagnostics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import typer
import yaml
from rich.console import Console
from rich.table import Table

from motorec.errors import MotorecError
from motorec.io import atomic_open, atomic_write_text

console = Console()


def _parse_set(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs; values are YAML scalars or lists (3, 0.5, true, [512, 256], suffix)."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise MotorecError(f"--set '{pair}': expected key=value.")
        try:
            params[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise MotorecError(f"--set '{pair}': value is not valid YAML ({exc}).") from exc
    return params


def _features_only(folder: Path) -> dict[str, np.ndarray]:
    """A folder holding just `<modality>_feat.npy` files (no interactions)."""
    from motorec.data.readers import feature_rows, load_features

    paths = sorted(folder.glob("*_feat.npy"))
    rows = feature_rows(paths[0])
    return {p.name[: -len("_feat.npy")]: load_features(p, rows) for p in paths}


def load_item_features(data: str, split: str | None, exclude_cold: bool) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(features per modality, boolean mask of the rows to fit on)."""
    from motorec.data import load_dataset

    folder = Path(data)
    if (
        folder.is_dir()
        and split is None
        and not any(folder.glob("*.inter"))
        and not any(folder.glob("*.inter.json"))
        and any(folder.glob("*_feat.npy"))
    ):
        if exclude_cold:
            raise MotorecError(f"{folder}: --exclude-cold needs a cold split, but the folder has no interactions.")
        feats = _features_only(folder)
        return feats, np.ones(next(iter(feats.values())).shape[0], dtype=bool)
    ds = load_dataset(data, split=split)
    if not ds.modalities:
        raise MotorecError(f"{data}: no item features (<modality>_feat.npy) to tokenize.")
    if exclude_cold and not ds.is_cold_split:
        raise MotorecError(f"{data}: --exclude-cold needs a cold split (give --split <name>-cold.inter).")
    fit_rows = ~ds.cold_mask() if exclude_cold else np.ones(ds.n_items, dtype=bool)
    return dict(ds.modalities), fit_rows


def slot_names(slots: list) -> list[str]:
    """Column names of the code table: <modality>_l<level>, or <modality>_suffix."""
    return [f"{s.modality}_suffix" if s.kind == "suffix" else f"{s.modality}_l{s.level}" for s in slots]


def write_code_table(out: Path, codes: np.ndarray, names: list[str]) -> None:
    """codes.tsv (itemID + one column per slot, header) and codes.npy (int64), atomically."""
    with atomic_open(out / "codes.tsv") as f:
        f.write("\t".join(["itemID", *names]) + "\n")
        for item, row in enumerate(codes):
            f.write(f"{item}\t" + "\t".join(map(str, row.tolist())) + "\n")
    with atomic_open(out / "codes.npy", "wb") as f:
        np.save(f, np.ascontiguousarray(codes, dtype=np.int64), allow_pickle=False)


def diagnostics_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"{report['tokenizer']} tokens for {report['n_items']} items")
    for col in ("modality", "level", "K", "utilisation", "perplexity", "code sparsity"):
        table.add_column(col, justify="left" if col == "modality" else "right")
    for name, mod in report["modalities"].items():
        sparsity = mod.get("code_sparsity", [None] * len(mod["utilisation"]))
        for level, (util, ppl, sp) in enumerate(zip(mod["utilisation"], mod["perplexity"], sparsity)):
            table.add_row(
                name,
                str(level),
                str(mod["codebook_size"]),
                f"{util:.3f}",
                f"{ppl:.1f}",
                "" if sp is None else f"{sp:.3f}",
            )
    return table


def summary_table(report: dict[str, Any]) -> Table:
    table = Table(title="per modality")
    for col in ("modality", "collisions before", "collisions after", "recon MSE", "relative MSE"):
        table.add_column(col, justify="left" if col == "modality" else "right")
    for name, mod in report["modalities"].items():
        before = mod.get("collision_rate_raw", mod["collision_rate"])
        recon = mod["reconstruction"]
        table.add_row(
            name, f"{before:.4f}", f"{mod['collision_rate']:.4f}", f"{recon['mse']:.4g}", f"{recon['relative_mse']:.3f}"
        )
    table.add_row("all (joint)", "", f"{report['collision_rate_joint']:.4f}", "", "")
    return table


def tokenize(
    data: str = typer.Option(..., help="Dataset folder (MMRec / LC-Rec layout, or only <modality>_feat.npy files)."),
    tokenizer: str = typer.Option(..., help="Registered tokenizer name (rqvae, pq, mmq, ...)."),
    out: Path = typer.Option(..., help="Output folder: codes.tsv, codes.npy, tokenizer.*, diagnostics.json."),
    set_: list[str] = typer.Option(
        [], "--set", help="Tokenizer parameter key=value (repeatable), e.g. codebook_size=256."
    ),
    modality: list[str] = typer.Option(
        [], "--modality", "-m", help="Use only this modality (repeatable; default all)."
    ),
    split: str | None = typer.Option(None, help="Split file (.inter) inside the data folder."),
    exclude_cold: bool = typer.Option(False, help="Fit without the split's cold items; they are encoded as new items."),
    seed: int = typer.Option(0, help="Seed of the fit."),
    overwrite: bool = typer.Option(False, help="Replace an --out folder written by an earlier `motorec tokenize`."),
    as_json: bool = typer.Option(False, "--json", help="Print diagnostics as JSON instead of tables."),
    nproc: int = typer.Option(
        1, help="Processes under torchrun: the rqvae fit shards its items over them (docs/scale.md)."
    ),
) -> None:
    """Fit a tokenizer on item content, write every item's codes, the tokenizer and diagnostics."""
    from motorec.cli import relaunch_under_torchrun
    from motorec.distributed import init_distributed
    from motorec.io import claim_output_dir
    from motorec.runtime import resolve_device
    from motorec.tokenizers import build_tokenizer

    if relaunch_under_torchrun(nproc):
        return
    tok = build_tokenizer(tokenizer, **_parse_set(set_))  # bad names / params fail before any data is read
    ctx = init_distributed(resolve_device(tok.params.get("device", "auto")))
    if not ctx.is_main:  # the other torchrun ranks fit their share and write nothing
        _fit(tok, data, split, exclude_cold, modality, seed)
        return
    with claim_output_dir(out, "tokens", overwrite=overwrite, inputs=[data, split], legacy=_legacy_tokens) as out:
        _tokenize_into(out, tok, data, split, exclude_cold, modality, seed, as_json)


def _legacy_tokens(folder: Path) -> dict | None:
    """A `motorec tokenize` folder of a motorec that wrote no marker: it holds diagnostics.json."""
    return {} if (folder / "diagnostics.json").is_file() and (folder / "tokenizer.json").is_file() else None


def _fit(
    tok, data: str, split: str | None, exclude_cold: bool, modality: list[str], seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Fit `tok` on the items' features (data-parallel over torchrun ranks when the tokenizer
    supports it: rqvae); returns (features of every item, rows fitted on)."""
    features, fit_rows = load_item_features(data, split, exclude_cold)
    if modality:
        unknown = [m for m in modality if m not in features]
        if unknown:
            raise MotorecError(f"--modality {', '.join(unknown)}: not in {data} (has {', '.join(features)}).")
        features = {m: features[m] for m in modality}
    fit_features = features if fit_rows.all() else {m: np.asarray(f)[fit_rows] for m, f in features.items()}
    tok.fit(fit_features, seed=seed)
    return features, fit_rows


def _tokenize_into(
    out: Path, tok, data: str, split: str | None, exclude_cold: bool, modality: list[str], seed: int, as_json: bool
) -> None:
    features, fit_rows = _fit(tok, data, split, exclude_cold, modality, seed)
    codes = tok.encode(features)
    report = tok.diagnostics(features)
    report.update(
        {
            "data": str(data),
            "fit_items": int(fit_rows.sum()),
            "seed": seed,
            "params": tok.params,
            "slots": slot_names(tok.slots),
        }
    )
    tok.save(out)
    write_code_table(out, codes, slot_names(tok.slots))
    atomic_write_text(out / "diagnostics.json", json.dumps(report, indent=2))
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        console.print(diagnostics_table(report))
        console.print(summary_table(report))
        console.print(f"wrote {out}/codes.tsv, codes.npy, tokenizer.json, tokenizer.safetensors, diagnostics.json")


def register(app: typer.Typer) -> None:
    app.command()(tokenize)
