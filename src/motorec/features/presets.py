"""Known raw layouts turned into an item table plus the recipe that produced the published features.

ml100k: MovieLens-100K `items.csv` + `posters/`; scientific: an LC-Rec/Amazon `*.item.json`;
generic: any item table the user points at. Each returns a CatalogSpec that
`extract_catalog_features` consumes; the CLI may override any recipe field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from motorec.errors import MotorecError
from motorec.features.tables import JSON_KEY_COLUMN, dedupe_ids, order_by_mapping, read_table, require_column

ML100K_GENRES = (
    "genre_unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "FilmNoir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "SciFi",
    "Thriller",
    "War",
    "Western",
)
ML100K_TEXT = "{title}. Genres: {genres}. {overview}"
SCIENTIFIC_TEXT = "{title}. Brand: {brand}. Categories: {categories}. {description}"
MAPPING_FILE = "i_id_mapping.csv"


@dataclass
class CatalogSpec:
    """An item table in output row order plus how to turn each row into text and an image path."""

    table: pd.DataFrame
    source: str
    id_column: str | None = None
    text_template: str | None = None
    image_dir: Path | None = None
    image_pattern: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


def _dedupe_and_order(
    table: pd.DataFrame, id_column: str, source: str, id_mapping: Path | None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """First row per id, then MMRec row order when a mapping is given; says what it did."""
    table, dropped = dedupe_ids(table, id_column, source)
    provenance: dict[str, Any] = {"duplicate_rows_dropped": dropped}
    if id_mapping is not None:
        table = order_by_mapping(table, id_column, id_mapping)
        provenance["row_order"] = f"itemID from {id_mapping}"
    else:
        provenance["row_order"] = f"order of {source}"
    return table, provenance


def ml100k(raw: Path, id_mapping: Path | None = None) -> CatalogSpec:
    """MovieLens-100K: genres are the flag columns set to 1, named as in items.csv's header.

    Row order comes from `id_mapping`, else `i_id_mapping.csv` beside or above `raw/`.
    """
    items = raw / "items.csv"
    table = read_table(items)
    for column in ("movie_id", "title", "overview", *ML100K_GENRES):
        require_column(table, column, str(items))
    if id_mapping is None:
        id_mapping = next((p for p in (raw / MAPPING_FILE, raw.parent / MAPPING_FILE) if p.is_file()), None)
    table, provenance = _dedupe_and_order(table, "movie_id", str(items), id_mapping)
    flags = table[list(ML100K_GENRES)].to_numpy() == 1
    table = table.assign(genres=[[g for g, on in zip(ML100K_GENRES, row) if on] for row in flags])
    return CatalogSpec(table, str(items), "movie_id", ML100K_TEXT, raw / "posters", "{movie_id}.jpg", provenance)


def scientific(raw: Path, id_mapping: Path | None = None) -> CatalogSpec:
    """An LC-Rec `*.item.json` ({item: {title, description, brand, categories}}), text only.

    LC-Rec keys are the itemIDs of its `.inter.json`, so without a mapping row i is key i.
    """
    found = sorted(raw.glob("*.item.json"))
    if len(found) != 1:
        what = "no *.item.json" if not found else f"several *.item.json ({', '.join(p.name for p in found)})"
        raise MotorecError(f"{raw}: expected one LC-Rec item file, found {what}; use --preset generic --items FILE.")
    table = read_table(found[0])
    for column in ("title", "description", "brand", "categories"):
        require_column(table, column, str(found[0]))
    if id_mapping is None:
        keys = pd.to_numeric(table[JSON_KEY_COLUMN], errors="coerce")
        if keys.isna().any():
            raise MotorecError(f"{found[0]}: item keys are not integers; give --id-mapping to fix the row order.")
        table = table.iloc[keys.argsort(kind="stable")].reset_index(drop=True)
    table, provenance = _dedupe_and_order(table, JSON_KEY_COLUMN, str(found[0]), id_mapping)
    if id_mapping is None:
        provenance["row_order"] = "integer value of the item key (LC-Rec itemID)"
    return CatalogSpec(table, str(found[0]), JSON_KEY_COLUMN, SCIENTIFIC_TEXT, provenance=provenance)


def generic(items: Path, id_column: str | None = None, id_mapping: Path | None = None) -> CatalogSpec:
    """Any item table; rows deduplicated by `id_column` and ordered by `id_mapping` when given."""
    table = read_table(items)
    if id_column is None:
        if id_mapping is not None:
            raise MotorecError("--id-mapping needs --id-column: the column whose values the mapping lists.")
        return CatalogSpec(table, str(items), provenance={"row_order": f"order of {items}"})
    table, provenance = _dedupe_and_order(table, id_column, str(items), id_mapping)
    return CatalogSpec(table, str(items), id_column, provenance=provenance)


PRESETS = {"ml100k": ml100k, "scientific": scientific}
