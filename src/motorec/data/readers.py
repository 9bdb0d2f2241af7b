"""Readers for the layouts users bring: MMRec folders, LC-Rec json, raw ratings CSV + item table.

Every reader validates what it reads and raises MotorecError naming the file and line or field.
"""

from __future__ import annotations

import csv
import json
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from motorec.data.dataset import Dataset
from motorec.errors import MotorecError

INTER_COLUMNS = ("userID", "itemID", "rating", "timestamp", "x_label")
NPY_MAGIC = b"\x93NUMPY"
# Ids are row numbers: every model allocates a row per id up to the largest, and graph and index
# code stores ids as int32. So an id must be below 2^31 - 1, and the id space may not be much
# larger than the ids actually used (a sign of raw, un-remapped ids: MMRec ids are 0..n-1).
MAX_ID = 2**31 - 2
SPARSE_ID_FACTOR = 100  # id space allowed up to this many times the distinct ids used...
SMALL_ID_SPACE = 1 << 20  # ...or up to about a million rows, whichever is larger


def _integer_column(df: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """Column as int64; names the first offending line (1-based, header is line 1)."""
    values = pd.to_numeric(df[column], errors="coerce")
    missing = (df[column].isna() | (df[column].astype(str).str.strip() == "")).to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise MotorecError(
            f"{path}, line {row + 2}: column '{column}' is empty or missing (fewer fields than the "
            f"header: a truncated or mis-separated line?)."
        )
    bad = values.isna() | (values != np.floor(values.fillna(0)))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise MotorecError(
            f"{path}, line {row + 2}: column '{column}' must hold integers, found '{_clip(df[column].iloc[row])}'."
        )
    if (values < 0).any():
        row = int(np.flatnonzero((values < 0).to_numpy())[0])
        raise MotorecError(
            f"{path}, line {row + 2}: column '{column}' must be a non-negative id, found {_clip(df[column].iloc[row])}."
        )
    if (values > MAX_ID).any():
        row = int(np.flatnonzero((values > MAX_ID).to_numpy())[0])
        raise MotorecError(
            f"{path}, line {row + 2}: column '{column}' holds {_clip(df[column].iloc[row])}, above the "
            f"largest id motorec accepts ({MAX_ID}: ids index int32 arrays). Ids are row numbers "
            f"0..n-1; re-map raw ids first."
        )
    return values.to_numpy(dtype=np.int64)


def _clip(value: object, width: int = 40) -> str:
    """A value for an error message: control characters escaped, long text shortened."""
    text = str(value)
    text = text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= width else text[: width - 3] + "..."


def _first_non_utf8_line(path: Path) -> int:
    for lineno, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return lineno
    return 1


def id_space(ids: np.ndarray, what: str, path: Path, line_of: Callable[[int], int] | None = lambda row: row + 2) -> int:
    """max id + 1, refused when the ids are so sparse that the rows implied would waste memory
    (every model allocates one row per id up to the largest)."""
    if len(ids) == 0:
        return 0
    row = int(ids.argmax())
    top = int(ids[row])
    distinct = len(np.unique(ids))
    if top >= max(SMALL_ID_SPACE, SPARSE_ID_FACTOR * distinct):
        raise MotorecError(
            f"{path}{f', line {line_of(row)}' if line_of else ''}: {what} {top} implies {top + 1} rows (one per id up to the largest; "
            f"~{(top + 1) * 256 / 2**30:.1f} GiB for one 64-d float table) but only {distinct} distinct ids are used. "
            f"motorec accepts an id space of at most max({SMALL_ID_SPACE}, {SPARSE_ID_FACTOR} x the distinct ids); "
            f"re-map the ids to 0..n-1."
        )
    return top + 1


def open_npy(path: Path, mode: Literal["r+", "r", "w+", "c"] = "r") -> np.ndarray:
    """Memory-map a .npy file (numpy mmap `mode`); a file that is not one (empty, truncated,
    pickled objects) is a MotorecError saying which."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(NPY_MAGIC))
    except OSError as exc:
        raise MotorecError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    if head != NPY_MAGIC:
        what = "is empty (0 bytes)" if not head else "is not a .npy file (no .npy magic bytes at its start)"
        raise MotorecError(f"{path}: {what}; features must be saved with numpy.save as a float matrix.")
    try:
        return np.load(path, mmap_mode=mode, allow_pickle=False)
    except ValueError as exc:
        if any(t in str(exc) for t in ("allow_pickle", "Object arrays", "Python objects")):
            raise MotorecError(
                f"{path}: holds Python objects (dtype object), which motorec never unpickles; save a float matrix."
            ) from exc
        if "mmap length" in str(exc) or "cannot reshape" in str(exc):
            raise MotorecError(
                f"{path}: is truncated: its header promises more data than the file holds "
                f"({path.stat().st_size} bytes)."
            ) from exc
        raise MotorecError(f"{path}: not a readable .npy array ({exc}).") from exc
    except Exception as exc:  # numpy's header parser: EOFError, OSError, SyntaxError, TokenError, ...
        raise MotorecError(
            f"{path}: not a readable .npy array: the header is damaged or the file is cut "
            f"({type(exc).__name__}: {_clip(exc, 120)})."
        ) from exc


def feature_rows(path: Path) -> int:
    """Rows of a feature matrix file (checked to be a 2-d .npy array)."""
    feat = open_npy(path)
    if feat.ndim != 2:
        raise MotorecError(f"{path}: features must be a 2-d matrix (items x dims), found shape {feat.shape}.")
    return int(feat.shape[0])


ID_COLUMNS = ("userID", "itemID", "x_label")


def _read_typed(path: Path) -> pd.DataFrame | None:
    """Fast path: ids parsed straight to int64 by the C parser (no Python string per cell, which
    at 10^7 rows costs gigabytes). None when the file needs the validating path below."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a value that is no int64 sends the file to the validating path
            df = pd.read_csv(path, sep="\t", dtype=dict.fromkeys(ID_COLUMNS, np.int64), engine="c")
    except (ValueError, TypeError, OverflowError, pd.errors.ParserError, UnicodeDecodeError, csv.Error):
        return None
    if len(df) == 0 or not all(c in df.columns and df[c].dtype == np.int64 for c in ID_COLUMNS):
        return None
    if any(((df[c].to_numpy() < 0) | (df[c].to_numpy() > MAX_ID)).any() for c in ID_COLUMNS):
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
        except pd.errors.EmptyDataError as exc:
            raise MotorecError(
                f"{path}: the file is empty; expected a tab-separated header line "
                f"({', '.join(INTER_COLUMNS)}) and one line per interaction."
            ) from exc
        except UnicodeDecodeError as exc:
            raise MotorecError(f"{path}, line {_first_non_utf8_line(path)}: not UTF-8 text.") from exc
        except (pd.errors.ParserError, ValueError, csv.Error, OverflowError) as exc:
            fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
            if fields:
                want, line, saw = fields.groups()
                raise MotorecError(
                    f"{path}, line {line}: {saw} tab-separated fields, but the header has {want}."
                ) from exc
            raise MotorecError(f"{path}: not a readable tab-separated file ({_clip(str(exc).strip(), 200)}).") from exc
        for col in ("userID", "itemID", "x_label"):
            if col not in df.columns:
                raise MotorecError(
                    f"{path}, line 1: missing column '{col}'. The header must contain "
                    f"{', '.join(INTER_COLUMNS)} (tab-separated); found: {', '.join(df.columns) or 'nothing'}."
                )
        if len(df) == 0:
            raise MotorecError(f"{path}: no interactions: the file holds only its header line (line 1).")
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
    feat = open_npy(path, mode="c")
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
        raise MotorecError(f"{path}: row {bad[0]} (item {bad[0]}) contains NaN or inf; {len(bad)} rows are affected.")
    return feat


def _pick_inter(directory: Path, split: str | os.PathLike[str] | None) -> Path:
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
    split: str | os.PathLike[str] | None = None,
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
        rows = feature_rows(feat_paths[0]) if feat_paths else 0
        n_items = int(df["itemID"].max()) + 1
        if rows < n_items:
            n_items = id_space(df["itemID"].to_numpy(), "itemID", inter_path)
        n_items = max(n_items, rows)
    if len(df) and df["itemID"].max() >= n_items:
        row = int(df["itemID"].to_numpy().argmax())
        raise MotorecError(f"{inter_path}, line {row + 2}: itemID {df['itemID'][row]} is beyond the {n_items} items.")
    modalities = {p.name[: -len("_feat.npy")]: load_features(p, n_items) for p in feat_paths}
    cold_path = inter_path.with_name(inter_path.stem + ".cold_items.txt")
    cold = read_cold_items(cold_path, n_items) if cold_path.is_file() else None
    n_users = id_space(df["userID"].to_numpy(), "userID", inter_path)
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
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if not (line.isascii() and line.isdigit()) or int(line) >= n_items:
            raise MotorecError(f"{path}, line {lineno}: expected an item id below {n_items}, found '{_clip(line)}'.")
        ids.append(int(line))
    return np.array(sorted(set(ids)), dtype=np.int64)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MotorecError(f"{path}: not UTF-8 text (byte {exc.start}).") from exc
    except OSError as exc:
        raise MotorecError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc


def _read_json(path: Path) -> object:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise MotorecError(f"{path}, line {exc.lineno}: invalid JSON ({exc.msg}).") from exc
    except RecursionError as exc:
        raise MotorecError(f"{path}: JSON nested too deeply.") from exc


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
        if not keep.any():
            raise MotorecError(f"{path}: no user has train interactions (x_label 0), so nothing is left to train on.")
        warnings.warn(
            f"{path}: dropped the {int((~keep).sum())} interactions of {len(orphans)} users without train interactions.",
            stacklevel=2,
        )
        ds = ds.select_rows(keep)
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
    seqs = _read_json(inter_path)
    if not isinstance(seqs, dict) or not seqs:
        raise MotorecError(f"{inter_path}: expected a non-empty JSON object {{user id: [item ids in time order]}}.")
    users: list[int] = []
    items: list[int] = []
    times: list[int] = []
    for key, seq in seqs.items():
        if (
            not (key.isascii() and key.isdigit() and int(key) <= MAX_ID)
            or not isinstance(seq, list)
            or not all(type(i) is int and 0 <= i <= MAX_ID for i in seq)
        ):
            raise MotorecError(
                f"{inter_path}: user '{_clip(key)}' must map a non-negative integer id to a list of "
                f"item ids (ids at most {MAX_ID})."
            )
        users.extend([int(key)] * len(seq))
        items.extend(seq)
        times.extend(range(len(seq)))
    if not items:
        raise MotorecError(f"{inter_path}: no interactions (every user's list is empty).")
    n_items = id_space(np.asarray(items, dtype=np.int64), "item id", inter_path, line_of=None)
    n_users = id_space(np.asarray(users, dtype=np.int64), "user id", inter_path, line_of=None)
    item_table = None
    item_path = inter_path.with_name(inter_path.name.replace(".inter.json", ".item.json"))
    if item_path.is_file():
        meta = _read_json(item_path)
        if (
            not isinstance(meta, dict)
            or not all(k.isascii() and k.isdigit() and int(k) <= MAX_ID for k in meta)
            or not all(isinstance(v, dict) for v in meta.values())
        ):
            raise MotorecError(f"{item_path}: expected a JSON object {{item id: {{field: value}}}} with integer ids.")
        item_table = pd.DataFrame.from_dict(meta, orient="index")
        item_table.index = item_table.index.astype(np.int64)
        item_table = item_table.sort_index()
        if len(item_table):
            n_items = max(n_items, id_space(item_table.index.to_numpy(), "item id", item_path, None))
    parent = directory.parent if directory.name == "raw" else directory
    modalities = {p.name[: -len("_feat.npy")]: load_features(p, n_items) for p in sorted(parent.glob("*_feat.npy"))}
    return Dataset(
        name=inter_path.name[: -len(".inter.json")],
        n_users=n_users,
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
