"""Readers on the real layouts: MMRec folders, LC-Rec json, raw ratings CSV; memory-mapped features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from motorec.data import load_dataset, read_lcrec, read_raw_ratings
from motorec.data.graph import user_item_adjacency

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"real data not found at {DATA}")


@needs_data
def test_mmrec_cold_split_matches_readme():
    ds = load_dataset(DATA / "ml100k-mm", split="ml100k-mm-cold.inter")
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (943, 1663, 99815)
    assert len(ds.cold_items) == 333 and ds.item_degree[ds.cold_items].sum() == 0
    assert {m: f.shape for m, f in ds.modalities.items()} == {"image": (1663, 1280), "text": (1663, 384)}
    for feat in ds.modalities.values():
        assert isinstance(feat, np.memmap), "features must be memory-mapped, not copied"


@needs_data
def test_mmrec_graph_only_dataset():
    ds = load_dataset(DATA / "amazon-baby")
    assert (ds.n_users, ds.n_items) == (19445, 7050)
    assert np.bincount(ds.labels).tolist() == [119674, 20559, 20559]
    assert ds.modalities == {} and ds.cold_items is None
    adj = user_item_adjacency(ds.train_matrix)
    assert adj.shape == (ds.n_users + ds.n_items,) * 2
    assert abs(adj - adj.T).max() < 1e-6


@needs_data
def test_text_only_dataset_loads_and_warm_split_is_default():
    ds = load_dataset(DATA / "amazon-scientific")
    assert ds.name == "scientific" and ds.cold_items is None
    assert list(ds.modalities) == ["text"] and ds.modalities["text"].shape == (4344, 384)
    assert isinstance(ds.modalities["text"], np.memmap)


@needs_data
def test_lcrec_json_reader_and_loo(tmp_path):
    raw = DATA / "amazon-scientific" / "raw"
    ds = read_lcrec(raw)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (8317, 4344, 58492)
    assert ds.labels is None and {"title", "brand"} <= set(ds.item_table.columns)
    assert "text" in ds.modalities  # features of the parent folder are attached
    seqs = json.loads((raw / "Scientific.inter.json").read_text())
    assert ds.sequences()[3].tolist() == seqs["3"]
    split = load_dataset(raw)  # an LC-Rec folder gets chronological leave-one-out
    last = split.sequences()[3][-1]
    assert split.labels[(split.users == 3) & (split.items == last)].tolist() == [2]


@needs_data
def test_raw_ratings_csv_reader():
    raw = DATA / "ml100k-mm" / "raw"
    ds = read_raw_ratings(raw / "ratings.csv", raw / "items.csv", image_dir=raw / "posters")
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (943, 1663, 99815)
    assert ds.labels is None and ds.timestamps is not None
    table = ds.item_table
    assert len(table) == ds.n_items and table.index.tolist() == list(range(ds.n_items))
    first = table.iloc[0]
    assert first["movie_id"] == 1 and first["title"].startswith("Toy Story")
    assert first["image_path"].endswith("posters/1.jpg")
    assert table["movie_id"].is_unique  # repeated movie_ids keep only their first row
    mapping = pd.read_csv(DATA / "ml100k-mm" / "i_id_mapping.csv", sep="\t")
    assert table["movie_id"].tolist() == mapping.sort_values("itemID")["movie_id"].tolist()


def test_synthetic_text_only_modality(tmp_path):
    from motorec.data import make_synthetic, random_split, write_mmrec

    ds = random_split(make_synthetic(n_users=50, n_items=80, dims={"text": 16}, seed=1))
    folder = tmp_path / "toy"
    write_mmrec(ds, folder / "toy.inter")
    np.save(folder / "text_feat.npy", ds.modalities["text"])
    back = load_dataset(folder)
    assert list(back.modalities) == ["text"] and isinstance(back.modalities["text"], np.memmap)
    assert back.n_items == 80


# ---------------------------------------------------------------- property-based: never a traceback
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from motorec.data import Dataset, read_mmrec  # noqa: E402
from motorec.data.readers import open_npy  # noqa: E402
from motorec.errors import MotorecError  # noqa: E402

HEADER = "userID\titemID\trating\ttimestamp\tx_label"
CELLS = st.one_of(
    st.integers(-5, 40).map(str),
    st.sampled_from(
        [
            "",
            " ",
            "1.0",
            "2.5",
            "1e3",
            "-0",
            "nan",
            "inf",
            "0x1f",
            "٣",
            "9" * 25,
            str(2**31),
            str(2**63),
            "\x00",
            "a\tb",
            "1\r",
        ]
    ),
    st.text(max_size=6),
)
LINES = st.lists(st.lists(CELLS, min_size=0, max_size=7).map("\t".join), max_size=25)
INTER = st.one_of(
    st.binary(max_size=300),
    st.tuples(st.sampled_from([HEADER, HEADER.replace("x_label", "label"), "", "userID itemID x_label"]), LINES).map(
        lambda t: "\n".join([t[0], *t[1]]).encode("utf-8", "surrogatepass")
    ),
)


def _read_bytes(tmp_path_factory, name: str, data: bytes):
    folder = tmp_path_factory.mktemp("prop") / "toy"
    folder.mkdir()
    (folder / name).write_bytes(data)
    return folder


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=INTER)
def test_any_inter_bytes_give_a_dataset_or_a_motorec_error(tmp_path_factory, data):
    folder = _read_bytes(tmp_path_factory, "toy.inter", data)
    try:
        ds = read_mmrec(folder, drop_users_without_train=True)
    except MotorecError as exc:
        assert "toy.inter" in str(exc)
        return
    assert isinstance(ds, Dataset) and ds.n_users > 0 and ds.n_items > 0 and ds.n_interactions > 0


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.one_of(
        st.binary(max_size=200),
        st.binary(max_size=120).map(lambda b: b"\x93NUMPY\x01\x00" + b),
        st.integers(0, 200).map(lambda n: _npy_bytes()[:n]),
    )
)
def test_any_npy_bytes_give_an_array_or_a_motorec_error(tmp_path_factory, data):
    folder = _read_bytes(tmp_path_factory, "text_feat.npy", data)
    try:
        arr = open_npy(folder / "text_feat.npy")
    except MotorecError as exc:
        assert "text_feat.npy" in str(exc)
        return
    assert isinstance(arr, np.ndarray)


def _npy_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.arange(24, dtype=np.float32).reshape(4, 6))
    return buf.getvalue()
