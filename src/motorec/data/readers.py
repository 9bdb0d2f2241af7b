"""Readers for the layouts users bring: MMRec folders, LC-Rec json, raw ratings CSV + item table.

Every reader validates what it reads and raises MotorecError naming the file and line or field.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from motorec.data.dataset import Dataset
from motorec.errors import MotorecError

INTER_COLUMNS = ("userID", "itemID", "rating", "timestamp", "x_label")


def _integer_column(df: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """Column as int64; names the first offending line (1-based, header is line 1)."""
    values = pd.to_numeric(df[column], errors="coerce")
    bad = values.isna() | (values != np.floor(values.fillna(0)))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise MotorecError(
            f"{path}, line {row + 2}: column '{column}' must hold integers, found '{df[column].iloc[row]}'."
        )
    arr = values.to_numpy(dtype=np.int64)
    if (arr < 0).any():
        row = int(np.flatnonzero(arr < 0)[0])
        raise MotorecError(f"{path}, line {row + 2}: column '{column}' must be a non-negative id, found {arr[row]}.")
    return arr


ID_COLUMNS = ("userID", "itemID", "x_label")


def _read_typed(path: Path) -> pd.DataFrame | None:
    """Fast path: ids parsed straight to int64 by the C parser (no Python string per cell, which
    at 10^7 rows costs gigabytes). None when the file needs the validating path below."""
    try:
        df = pd.read_csv(path, sep="\t", dtype={c: np.int64 for c in ID_COLUMNS}, engine="c")
    except (ValueError, TypeError, OverflowError, pd.errors.ParserError, UnicodeDecodeError):
        return None
    if not all(c in df.columns and df[c].dtype == np.int64 for c in ID_COLUMNS):
        return None
    if any((df[c].to_numpy() < 0).any() for c in ID_COLUMNS):
        return None
    return df


def read_inter(path: str | Path) -> pd.DataFrame:
    """Read and validate an MMRec `.inter` file (tab-separated, header with userID/itemID/x_label)."""
    path = Path(path)
    if not path.is_file():
        raise MotorecError(f"{path}: interaction file not found.")
    df = _read_typed(path)
    if df is not None:
        out = pd.DataFrame({c: df[c].to_numpy() for c in ID_COLUMNS})
    else:  # read as text to name the offending line and column
        try:
            df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise MotorecError(f"{path}: not a readable tab-separated file ({exc}).") from exc
        for col in ID_COLUMNS:
            if col not in df.columns:
                raise MotorecError(
                    f"{path}, line 1: missing column '{col}'. The header must contain "
                    f"{', '.join(INTER_COLUMNS)} (tab-separated); found: {', '.join(df.columns) or 'nothing'}."
                )
        out = pd.DataFrame({c: _integer_column(df, c, path) for c in ID_COLUMNS})
    bad = ~out["x_label"].isin([0, 1, 2])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise MotorecError(
            f"{path}, line {row + 2}: x_label must be 0 (train), 1 (valid) or 2 (test), found {out['x_label'][row]}."
        )
    if "rating" in df.columns:
        out["rating"] = pd.to_numeric(df["rating"], errors="coerce").astype(np.float32)
    if "timestamp" in df.columns:
        out["timestamp"] = pd.to_numeric(df["timestamp"], errors="coerce").fillna(0).astype(np.int64)
    return out


def load_features(path: Path, n_items: int) -> np.ndarray:
    """Memory-map a `*_feat.npy` file and check its shape and values.

    Copy-on-write mapping: pages are read from disk on demand and stay file-backed, and the array
    is writable in form, so torch can wrap it without a copy (writes would stay private).
    """
    try:
        feat = np.load(path, mmap_mode="c", allow_pickle=False)
    except ValueError as exc:
        raise MotorecError(f"{path}: not a plain numeric .npy array ({exc}).") from exc
    if feat.ndim != 2:
        raise MotorecError(f"{path}: features must be a 2-d matrix (items x dims), found shape {feat.shape}.")
    if feat.shape[0] != n_items:
        raise MotorecError(
            f"{path}: has {feat.shape[0]} rows but the interactions name {n_items} items; "
            f"row i must be the feature of item i."
        )
    if not np.issubdtype(feat.dtype, np.floating):
        raise MotorecError(f"{path}: features must be floating point, found dtype {feat.dtype}.")
    bad_rows: list[np.ndarray] = []
    step = max(1, (64 << 20) // max(1, feat.shape[1] * feat.dtype.itemsize))  # row blocks: never a full-size temporary
    for start in range(0, feat.shape[0], step):
        finite = np.isfinite(feat[start : start + step]).all(axis=1)
        if not finite.all():
            bad_rows.append(start + np.flatnonzero(~finite))
    if bad_rows:
        bad = np.concatenate(bad_rows)
        raise MotorecError(
            f"{path}: row {bad[0]} (item {bad[0]}) contains NaN or inf; {len(bad)} rows are affected."
        )
    return feat


def _pick_inter(directory: Path, split: str | Path | None) -> Path:
    if split is not None:
        p = Path(split)
        if not p.is_absolute() and not p.exists():
            p = directory / p
        if not p.is_file():
            raise MotorecError(f"{split}: split file not found (looked in {directory} too).")
        return p
    named = directory / f"{directory.name}.inter"
    if named.is_file():
        return named
    candidates = sorted(directory.glob("*.inter"))
    warm = [p for p in candidates if not p.stem.endswith("-cold")]
    if len(warm) == 1:
        return warm[0]
    if not candidates:
        raise MotorecError(f"{directory}: no .inter file here (MMRec layout expects <name>.inter).")
    raise MotorecError(
        f"{directory}: several .inter files ({', '.join(p.name for p in candidates)}); choose one with --split."
    )


def read_mmrec(
    directory: str | Path,
    split: str | Path | None = None,
    n_items: int | None = None,
    drop_users_without_train: bool = False,
) -> Dataset:
    """MMRec layout: `<name>.inter` + `<modality>_feat.npy` (+ `<split>.cold_items.txt` for cold splits).

    `n_items` defaults to the feature row count when features exist (items may have no
    interactions at all), else to the largest item id + 1.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise MotorecError(f"{directory}: dataset folder not found.")
    inter_path = _pick_inter(directory, split)
    df = read_inter(inter_path)
    feat_paths = sorted(directory.glob("*_feat.npy"))
    if n_items is None:
        n_items = int(df["itemID"].max()) + 1 if len(df) else 0
        if feat_paths:
            rows = np.load(feat_paths[0], mmap_mode="r", allow_pickle=False).shape[0]
            if rows >= n_items:
                n_items = int(rows)
    if len(df) and df["itemID"].max() >= n_items:
        row = int(df["itemID"].to_numpy().argmax())
        raise MotorecError(f"{inter_path}, line {row + 2}: itemID {df['itemID'][row]} is beyond the {n_items} items.")
    modalities = {p.name[: -len("_feat.npy")]: load_features(p, n_items) for p in feat_paths}
    cold_path = inter_path.with_name(inter_path.stem + ".cold_items.txt")
    cold = read_cold_items(cold_path, n_items) if cold_path.is_file() else None
    n_users = int(df["userID"].max()) + 1 if len(df) else 0
    ds = Dataset(
        name=inter_path.stem,
        n_users=n_users,
        n_items=n_items,
        users=df["userID"].to_numpy(),
        items=df["itemID"].to_numpy(),
        labels=df["x_label"].to_numpy(),
        ratings=df["rating"].to_numpy() if "rating" in df else None,
        timestamps=df["timestamp"].to_numpy() if "timestamp" in df else None,
        modalities=modalities,
        cold_items=cold,
        source={"inter": str(inter_path), "dir": str(directory)},
    )
    return check_split(ds, inter_path, drop_users_without_train)


def read_cold_items(path: Path, n_items: int) -> np.ndarray:
    ids = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if not line.isdigit() or int(line) >= n_items:
            raise MotorecError(f"{path}, line {lineno}: expected an item id below {n_items}, found '{line}'.")
        ids.append(int(line))
    return np.array(sorted(set(ids)), dtype=np.int64)


def check_split(ds: Dataset, path: Path, drop_users_without_train: bool = False) -> Dataset:
    """Every user with valid/test interactions needs train interactions; cold items need none."""
    assert ds.labels is not None
    train_users = np.zeros(ds.n_users, dtype=bool)
    train_users[ds.users[ds.labels == 0]] = True
    seen = np.zeros(ds.n_users, dtype=bool)
    seen[ds.users] = True
    orphans = np.flatnonzero(seen & ~train_users)
    if len(orphans) and not drop_users_without_train:
        raise MotorecError(
            f"{path}: {len(orphans)} users have valid/test interactions but no train interactions "
            f"(first: userID {orphans[0]}). Fix the split, or pass --set data.drop_users_without_train=true "
            f"to drop their interactions with a warning."
        )
    if len(orphans):
        keep = train_users[ds.users]
        warnings.warn(f"{path}: dropped the {int((~keep).sum())} interactions of {len(orphans)} users without train interactions.")
        ds = replace(
            ds,
            users=ds.users[keep],
            items=ds.items[keep],
            labels=ds.labels[keep],
            ratings=None if ds.ratings is None else ds.ratings[keep],
            timestamps=None if ds.timestamps is None else ds.timestamps[keep],
        )
    if ds.cold_items is not None:
        leaked = np.intersect1d(ds.cold_items, ds.items[ds.labels == 0])
        if len(leaked):
            raise MotorecError(
                f"{path}: {len(leaked)} items listed as cold have train interactions (first: itemID {leaked[0]})."
            )
    return ds


def read_lcrec(directory: str | Path) -> Dataset:
    """LC-Rec layout: `<name>.inter.json` ({user: [items in time order]}) + `<name>.item.json`.

    Returns an unsplit dataset (timestamps = position in the user's sequence); item fields are
    kept in `item_table` so features can be extracted later. Features (`*_feat.npy`) in the parent
    folder of a `raw/` directory are attached when present.
    """
    directory = Path(directory)
    inter_files = sorted(directory.glob("*.inter.json"))
    if len(inter_files) != 1:
        raise MotorecError(f"{directory}: expected exactly one *.inter.json, found {len(inter_files)}.")
    inter_path = inter_files[0]
    try:
        seqs = json.loads(inter_path.read_text())
    except json.JSONDecodeError as exc:
        raise MotorecError(f"{inter_path}, line {exc.lineno}: invalid JSON ({exc.msg}).") from exc
    users, items, times = [], [], []
    for key, seq in seqs.items():
        if not str(key).isdigit() or not isinstance(seq, list) or not all(isinstance(i, int) and i >= 0 for i in seq):
            raise MotorecError(f"{inter_path}: user '{key}' must map a non-negative integer id to a list of item ids.")
        users.extend([int(key)] * len(seq))
        items.extend(seq)
        times.extend(range(len(seq)))
    n_items = max(items) + 1 if items else 0
    item_table = None
    item_path = inter_path.with_name(inter_path.name.replace(".inter.json", ".item.json"))
    if item_path.is_file():
        meta = json.loads(item_path.read_text())
        item_table = pd.DataFrame.from_dict(meta, orient="index")
        item_table.index = item_table.index.astype(int)
        item_table = item_table.sort_index()
        n_items = max(n_items, int(item_table.index.max()) + 1)
    parent = directory.parent if directory.name == "raw" else directory
    modalities = {p.name[: -len("_feat.npy")]: load_features(p, n_items) for p in sorted(parent.glob("*_feat.npy"))}
    return Dataset(
        name=inter_path.name[: -len(".inter.json")],
        n_users=max(users) + 1 if users else 0,
        n_items=n_items,
        users=np.array(users),
        items=np.array(items),
        timestamps=np.array(times, dtype=np.int64),
        modalities=modalities,
        item_table=item_table,
        source={"inter": str(inter_path), "dir": str(directory)},
    )


def read_raw_ratings(
    ratings_csv: str | Path,
    items_csv: str | Path | None = None,
    user_col: str = "user_id",
    item_col: str = "movie_id",
    time_col: str | None = "unix_timestamp",
    rating_col: str | None = "rating",
    image_dir: str | Path | None = None,
    image_pattern: str = "{id}.jpg",
) -> Dataset:
    """Raw ratings CSV + item table (+ image folder): ids are re-indexed to 0..n-1 in first-seen
    order of the item table (then ratings); raw fields and image paths are kept in `item_table`."""
    ratings_csv = Path(ratings_csv)
    if not ratings_csv.is_file():
        raise MotorecError(f"{ratings_csv}: ratings file not found.")
    r = pd.read_csv(ratings_csv)
    for col in [user_col, item_col] + [c for c in (time_col, rating_col) if c]:
        if col not in r.columns:
            raise MotorecError(f"{ratings_csv}, line 1: missing column '{col}' (found {', '.join(r.columns)}).")
    table = None
    if items_csv is not None:
        table = pd.read_csv(items_csv)
        if item_col not in table.columns:
            raise MotorecError(f"{items_csv}, line 1: missing column '{item_col}'.")
        table = table.drop_duplicates(subset=item_col, keep="first")
        table = table[table[item_col].isin(r[item_col])]
    raw_item_ids = pd.Index(table[item_col] if table is not None else pd.unique(r[item_col]))
    raw_item_ids = raw_item_ids.append(pd.Index(pd.unique(r[item_col])).difference(raw_item_ids))
    item_index = {v: i for i, v in enumerate(raw_item_ids)}
    raw_user_ids = pd.Index(pd.unique(r[user_col]))
    user_index = {v: i for i, v in enumerate(raw_user_ids)}
    if table is None:
        table = pd.DataFrame({item_col: raw_item_ids})
    table = table.set_index(table[item_col].map(item_index)).sort_index()
    if image_dir is not None:
        table["image_path"] = [str(Path(image_dir) / image_pattern.format(id=i)) for i in table[item_col]]
    return Dataset(
        name=ratings_csv.stem,
        n_users=len(raw_user_ids),
        n_items=len(raw_item_ids),
        users=r[user_col].map(user_index).to_numpy(),
        items=r[item_col].map(item_index).to_numpy(),
        ratings=r[rating_col].to_numpy(np.float32) if rating_col else None,
        timestamps=r[time_col].to_numpy(np.int64) if time_col else None,
        item_table=table,
        source={"inter": str(ratings_csv)},
    )
