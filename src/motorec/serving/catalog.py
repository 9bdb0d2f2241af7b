"""External ids and human-readable item metadata for a trained dataset, found beside its files.

Users of a service speak in their own ids (MovieLens movie_id, an ASIN), so the bundle carries the
`i_id_mapping.csv` / `u_id_mapping.csv` ids when the dataset folder has them, and titles and texts
from the raw item files (through the same presets that extract features) when they exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from motorec.data.dataset import Dataset
from motorec.errors import MotorecError
from motorec.features.presets import PRESETS, CatalogSpec
from motorec.features.template import field_text, render_texts


@dataclass
class Catalog:
    item_ids: list[str]
    user_ids: list[str]
    titles: list[str]
    texts: list[str]
    text_template: str | None = None
    provenance: dict[str, str] = field(default_factory=dict)


def _mapped_ids(path: Path, n: int, what: str) -> list[str] | None:
    """Raw ids in internal-id order from an MMRec mapping file (raw id <TAB> internal id)."""
    if not path.is_file():
        return None
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    internal = pd.to_numeric(table.iloc[:, 1], errors="coerce")
    if table.shape[1] < 2 or internal.isna().any() or sorted(internal.astype(int)) != list(range(n)):
        raise MotorecError(f"{path}: expected a {what} mapping (raw id, internal id) covering ids 0..{n - 1}.")
    ids = table.iloc[:, 0].to_numpy()[np.argsort(internal.astype(int).to_numpy())]
    if len(set(ids)) != n:
        raise MotorecError(f"{path}: raw {what} ids repeat; each internal id needs its own raw id.")
    return [str(i) for i in ids]


def _raw_spec(data_dir: Path) -> tuple[str, CatalogSpec] | None:
    """The feature preset whose raw layout is present in `data_dir/raw`, with its item table."""
    raw = data_dir / "raw"
    layouts = {"ml100k": raw / "items.csv", "scientific": next(iter(sorted(raw.glob("*.item.json"))), None)}
    for name, marker in layouts.items():
        if marker is not None and marker.is_file():
            return name, PRESETS[name](raw)
    return None


def load_catalog(ds: Dataset) -> Catalog:
    """Ids, titles and texts of every item and user of `ds` (internal ids when nothing better exists)."""
    data_dir = Path(ds.source["dir"]) if ds.source.get("dir") else None
    prov: dict[str, str] = {}
    item_ids = _mapped_ids(data_dir / "i_id_mapping.csv", ds.n_items, "item") if data_dir else None
    user_ids = _mapped_ids(data_dir / "u_id_mapping.csv", ds.n_users, "user") if data_dir else None
    prov["item_ids"] = "i_id_mapping.csv" if item_ids else "internal itemID"
    prov["user_ids"] = "u_id_mapping.csv" if user_ids else "internal userID"
    item_ids = item_ids or [str(i) for i in range(ds.n_items)]
    user_ids = user_ids or [str(u) for u in range(ds.n_users)]
    titles, texts, template = [""] * ds.n_items, [""] * ds.n_items, None
    found = _raw_spec(data_dir) if data_dir and data_dir.is_dir() else None
    if found is not None and len(found[1].table) == ds.n_items and found[1].text_template is not None:
        name, spec = found
        template = spec.text_template
        texts, _ = render_texts(spec.table, found[1].text_template, list(range(ds.n_items)), spec.source)
        if "title" in spec.table.columns:
            titles = [field_text(t) for t in spec.table["title"].tolist()]
        prov["metadata"] = f"{spec.source} (preset {name}, text template {template!r})"
    elif ds.item_table is not None and "title" in ds.item_table.columns:
        table = ds.item_table.reindex(range(ds.n_items))
        titles = [field_text(t) for t in table["title"].tolist()]
        texts = list(titles)
        prov["metadata"] = "dataset item table (titles only)"
    else:
        prov["metadata"] = "none found (items have no titles or texts)"
    return Catalog(item_ids, user_ids, titles, texts, template, prov)
