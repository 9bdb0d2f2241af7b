"""Item tables from the files users bring (CSV/TSV, JSON, JSONL, Parquet), deduplicated and ordered.

Row i of every feature matrix is row i of the table these functions return, so ordering by an
MMRec `i_id_mapping.csv` (raw id -> itemID) is what makes features line up with interactions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from motorec.errors import MotorecError, did_you_mean

JSON_KEY_COLUMN = "item_id"


def _read_json(path: Path) -> pd.DataFrame:
    """A list of records, or {id: record} (LC-Rec/Amazon layout) with the key in column 'item_id'."""
    with path.open(encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, dict) and all(isinstance(v, dict) for v in data.values()):
        table = pd.DataFrame.from_dict(data, orient="index")
        return table.rename_axis(JSON_KEY_COLUMN).reset_index()
    if isinstance(data, list) and all(isinstance(v, dict) for v in data):
        return pd.DataFrame.from_records(data)
    raise MotorecError(f"{path}: expected a list of item records or an object {{item_id: record}}.")


def read_table(path: str | Path) -> pd.DataFrame:
    """The item table in `path`, format chosen by suffix; unreadable files are user errors."""
    path = Path(path)
    if not path.is_file():
        raise MotorecError(f"item table not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".tsv", ".tab"):
            return pd.read_csv(path, sep="\t")
        if suffix == ".json":
            return _read_json(path)
        if suffix == ".jsonl":
            return pd.read_json(path, lines=True)
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except MotorecError:
        raise
    except (ValueError, OSError, ImportError, pd.errors.ParserError) as exc:
        raise MotorecError(f"{path} cannot be read as a {suffix[1:]} item table: {exc}") from exc
    raise MotorecError(f"{path}: unknown item table format '{suffix}' (use .csv, .tsv, .json, .jsonl or .parquet).")


def require_column(table: pd.DataFrame, column: str, source: str) -> None:
    """Raise naming `column`, the closest existing one and `source` when it is absent."""
    if column not in table.columns:
        columns = list(map(str, table.columns))
        raise MotorecError(
            f"column '{column}' not found in {source}.{did_you_mean(column, columns)} Columns: {', '.join(columns)}."
        )


def dedupe_ids(table: pd.DataFrame, id_column: str, source: str) -> tuple[pd.DataFrame, int]:
    """Keep the first row of each id (ml100k's items.csv repeats some); returns rows dropped."""
    require_column(table, id_column, source)
    if table[id_column].isna().any():
        row = int(np.flatnonzero(table[id_column].isna().to_numpy())[0])
        raise MotorecError(f"{source}: row {row} has no value in id column '{id_column}'.")
    kept = table.drop_duplicates(id_column, keep="first").reset_index(drop=True)
    return kept, len(table) - len(kept)


def order_by_mapping(table: pd.DataFrame, id_column: str, mapping_path: str | Path) -> pd.DataFrame:
    """Rows reordered so row i is itemID i of a tab-separated `raw_id<TAB>itemID` mapping file.

    Ids are matched as text, so 1 and "1" agree; items absent from the mapping are dropped.
    """
    mapping_path = Path(mapping_path)
    if not mapping_path.is_file():
        raise MotorecError(f"id mapping not found: {mapping_path}")
    mapping = pd.read_csv(mapping_path, sep="\t", dtype=str)
    if mapping.shape[1] < 2:
        raise MotorecError(f"{mapping_path}: expected two tab-separated columns (raw id, itemID) with a header.")
    raw_ids, item_ids = mapping.iloc[:, 0], pd.to_numeric(mapping.iloc[:, 1], errors="coerce")
    if item_ids.isna().any() or sorted(item_ids.astype(int)) != list(range(len(mapping))):
        column = mapping.columns[1]
        raise MotorecError(f"{mapping_path}: column '{column}' must hold each of 0..{len(mapping) - 1} once.")
    position = pd.Series(np.arange(len(table)), index=table[id_column].astype(str).to_numpy())
    absent = ~raw_ids.isin(position.index)
    if absent.any():
        raise MotorecError(
            f"{mapping_path}: {int(absent.sum())} ids are not in the item table's '{id_column}' column,"
            f" e.g. '{raw_ids[absent].iloc[0]}'."
        )
    rows = position.loc[raw_ids.to_numpy()].to_numpy()[np.argsort(item_ids.astype(int).to_numpy())]
    return table.iloc[rows].reset_index(drop=True)
