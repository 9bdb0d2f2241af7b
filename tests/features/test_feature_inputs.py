"""Bad input is a MotorecError naming the file, field or item; templates render as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from motorec.errors import MotorecError
from motorec.features import encode_images, encode_texts, extract_catalog_features, read_table, render_texts
from motorec.features.presets import generic


def test_template_joins_lists_and_blanks_missing_values():
    table = pd.DataFrame({"title": ["A", "B"], "tags": [["x", "y"], []], "desc": ["long", np.nan]})
    texts, empty = render_texts(table, "{title}. Tags: {tags}. {desc}", ids=[0, 1])
    assert texts == ["A. Tags: x, y. long", "B. Tags: . "]
    assert empty == {"tags": 1, "desc": 1}


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("{titel}", "'titel' is not a column.*Did you mean 'title'"),
        ("{0}", "plain field name"),
        ("{title", "not a valid"),
    ],
)
def test_bad_template(template, match, tmp_path):
    table = pd.DataFrame({"title": ["A"]})
    with pytest.raises(MotorecError, match=match):
        extract_catalog_features(table, tmp_path, text_template=template, progress=False)


def test_empty_text_names_the_item(tmp_path):
    table = pd.DataFrame({"sku": ["a", "b"], "title": ["ok", " "]})
    with pytest.raises(MotorecError, match=r"item 'b' \(row 1\) has empty text: fields title"):
        extract_catalog_features(table, tmp_path, text_template="{title}", id_column="sku", progress=False)
    with pytest.raises(MotorecError, match="text 1 is empty"):
        encode_texts(["fine", ""])


def test_table_and_option_errors(tmp_path):
    with pytest.raises(MotorecError, match=r"item table not found: .*nope.csv"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(MotorecError, match="unknown item table format"):
        read_table(tmp_path / "t.xlsx")
    (tmp_path / "t.json").write_text("[1, 2]")
    with pytest.raises(MotorecError, match=r"t.json: expected a list of item records"):
        read_table(tmp_path / "t.json")
    (tmp_path / "t.csv").write_text("sku,title\na,x\na,y\n")
    with pytest.raises(MotorecError, match=r"column 'id' not found in .*t.csv.*Columns: sku, title"):
        generic(tmp_path / "t.csv", id_column="id")
    assert generic(tmp_path / "t.csv", id_column="sku").table["title"].tolist() == ["x"]  # first row kept

    table = pd.DataFrame({"sku": ["a", "a"], "title": ["x", "y"]})
    with pytest.raises(MotorecError, match="id 'a' appears more than once"):
        extract_catalog_features(table, tmp_path, text_template="{title}", id_column="sku", progress=False)
    with pytest.raises(MotorecError, match="nothing to extract"):
        extract_catalog_features(table, tmp_path, progress=False)
    with pytest.raises(MotorecError, match=r"image folder not found: .*posters"):
        extract_catalog_features(table, tmp_path, image_pattern="{sku}.jpg", image_dir=tmp_path / "posters")


def test_unreadable_image_input_names_it(tmp_path):
    with pytest.raises(MotorecError, match=r"image not found: .*missing.jpg"):
        encode_images([tmp_path / "missing.jpg"])
    with pytest.raises(MotorecError, match="cannot be read"):
        encode_images([b"\x89PNG garbage"])
