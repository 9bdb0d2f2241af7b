"""The shipped ml100k-mm and amazon-scientific features are reproduced from raw content."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from motorec.features import PRESETS, extract_catalog_features, row_cosines

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ML100K, SCIENTIFIC = DATA / "ml100k-mm", DATA / "amazon-scientific"
pytestmark = pytest.mark.skipif(
    not (ML100K / "raw" / "items.csv").is_file() or not (SCIENTIFIC / "raw").is_dir(),
    reason=f"shared datasets not found under {DATA} (they live outside the repository)",
)


def test_ml100k_table_follows_the_item_mapping():
    spec = PRESETS["ml100k"](ML100K / "raw")
    mapping = pd.read_csv(ML100K / "i_id_mapping.csv", sep="\t").sort_values("itemID")
    assert spec.table["movie_id"].tolist() == mapping["movie_id"].tolist()
    assert spec.provenance["duplicate_rows_dropped"] > 0


def test_ml100k_text_and_posters_match_shipped_features(tmp_path):
    spec = PRESETS["ml100k"](ML100K / "raw")
    common = {"id_column": spec.id_column, "batch_size": 32, "chunk_size": 32, "progress": False}
    text = extract_catalog_features(spec.table.iloc[:64], tmp_path / "t", text_template=spec.text_template, **common)
    image = extract_catalog_features(
        spec.table.iloc[:32], tmp_path / "i", image_pattern=spec.image_pattern, image_dir=spec.image_dir, **common
    )
    assert row_cosines(np.load(text.files["text"]), np.load(ML100K / "text_feat.npy")[:64]).min() >= 0.999
    assert row_cosines(np.load(image.files["image"]), np.load(ML100K / "image_feat.npy")[:32]).min() >= 0.999


def test_scientific_text_matches_shipped_features(tmp_path):
    spec = PRESETS["scientific"](SCIENTIFIC / "raw")
    assert len(spec.table) == 4344
    with pytest.warns(UserWarning, match="empty fields"):  # the shipped texts used "" for them too
        report = extract_catalog_features(
            spec.table.iloc[:32], tmp_path, text_template=spec.text_template, id_column=spec.id_column, progress=False
        )
    assert row_cosines(np.load(report.files["text"]), np.load(SCIENTIFIC / "text_feat.npy")[:32]).min() >= 0.999
