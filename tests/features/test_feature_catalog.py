"""Catalogue extraction: resumable chunks, atomic outputs, the missing-image policy."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from motorec.errors import MotorecError
from motorec.features import catalog, encode_images, extract_catalog_features


def fake_text_encoder(calls: list[int], fail_on_call: int | None = None):
    """Deterministic stand-in for encode_texts that counts calls and can die mid-run like Ctrl-C."""

    def encode(texts, batch_size=64, device=None):
        calls.append(len(texts))
        if fail_on_call is not None and len(calls) == fail_on_call:
            raise KeyboardInterrupt
        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(8) for t in texts]
        return np.asarray(rows, dtype=np.float32)

    return encode


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame({"sku": [f"s{i}" for i in range(10)], "name": [f"item {i}" for i in range(10)]})


def run(table, out, **kw):
    kw = {"text_template": "{name}", "id_column": "sku", "chunk_size": 3, "batch_size": 3, "progress": False, **kw}
    return extract_catalog_features(table, out, **kw)


def test_interrupted_run_resumes_without_recomputing_chunks(table, tmp_path, monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(catalog, "encode_texts", fake_text_encoder(calls, fail_on_call=3))
    with pytest.raises(KeyboardInterrupt):
        run(table, tmp_path / "out")
    assert not (tmp_path / "out" / "text_feat.npy").exists()  # nothing assembled from a partial run
    assert len(list((tmp_path / "out" / "chunks").glob("*.npy"))) == 2

    calls.clear()
    monkeypatch.setattr(catalog, "encode_texts", fake_text_encoder(calls))
    report = run(table, tmp_path / "out")
    assert (report.reused_chunks, report.computed_chunks) == (2, 2)
    assert calls == [3, 1]  # only chunks 3 (rows 6-8) and 4 (row 9) were encoded
    assert not (tmp_path / "out" / "chunks").exists()

    run(table, tmp_path / "fresh")
    resumed, fresh = np.load(tmp_path / "out" / "text_feat.npy"), np.load(tmp_path / "fresh" / "text_feat.npy")
    np.testing.assert_array_equal(resumed, fresh)
    mapping = pd.read_csv(tmp_path / "out" / "i_id_mapping.csv", sep="\t")
    assert mapping["sku"].tolist() == table["sku"].tolist() and mapping["itemID"].tolist() == list(range(10))


def test_changed_input_recomputes_only_its_chunk(table, tmp_path, monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(catalog, "encode_texts", fake_text_encoder(calls))
    run(table, tmp_path, keep_chunks=True)
    calls.clear()
    table.loc[4, "name"] = "renamed"
    report = run(table, tmp_path, keep_chunks=True)
    assert (report.reused_chunks, report.computed_chunks, calls) == (3, 1, [3])
    calls.clear()
    assert run(table, tmp_path, resume=False).computed_chunks == 4


def write_image(path, color, size=(40, 60)) -> None:
    Image.new("RGB", size, color).save(path)


def test_missing_and_corrupt_images_get_the_mean_feature_and_are_recorded(tmp_path):
    images = tmp_path / "img"
    images.mkdir()
    write_image(images / "a.jpg", (200, 30, 30))
    (images / "c.jpg").write_bytes(b"definitely not a jpeg")
    write_image(images / "d.png", (20, 30, 220), size=(92, 138))
    table = pd.DataFrame({"id": [10, 11, 12, 13], "file": ["a.jpg", "b.jpg", "c.jpg", "d.png"]})

    with pytest.warns(UserWarning, match="2 of 4 images missing or unreadable"):
        report = extract_catalog_features(
            table, tmp_path / "out", image_pattern="{file}", image_dir=images, id_column="id", progress=False
        )
    feats = np.load(report.files["image"])
    assert feats.shape == (4, 1280) and feats.dtype == np.float32
    found = encode_images([images / "a.jpg", images / "d.png"])  # the single-item API agrees with the catalogue
    np.testing.assert_allclose(feats[[0, 3]], found, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(feats[1], found.mean(axis=0), rtol=1e-5)
    np.testing.assert_array_equal(feats[1], feats[2])

    meta = json.loads((tmp_path / "out" / "features.json").read_text())["modalities"]["image"]
    assert meta["imputed_rows"] == [1, 2] and report.imputed_rows == [1, 2]
    assert [r["id"] for r in meta["imputed"]] == [11, 12]
    assert "not found" in meta["imputed"][0]["reason"] and "b.jpg" in meta["imputed"][0]["path"]
    assert "cannot be read" in meta["imputed"][1]["reason"]
    assert meta["missing_policy"].startswith("mean feature of the found images")


def test_no_readable_image_at_all_is_an_error(tmp_path):
    table = pd.DataFrame({"file": ["x.jpg", "y.jpg"]})
    with pytest.raises(MotorecError, match="no image could be read"):
        extract_catalog_features(table, tmp_path, image_pattern="{file}", image_dir=tmp_path, progress=False)
