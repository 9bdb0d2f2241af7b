"""`motorec data stats` prints the figures the issue asks for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from motorec.cli import main

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.mark.skipif(not DATA.is_dir(), reason=f"real data not found at {DATA}")
def test_data_stats_json_on_cold_split(capsys):
    assert main(["data", "stats", str(DATA / "ml100k-mm"), "--split", "ml100k-mm-cold.inter", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["users"] == 943 and stats["items"] == 1663 and stats["interactions"] == 99815
    assert stats["density"] == pytest.approx(99815 / (943 * 1663))
    assert stats["cold_items"] == 333 and stats["items_without_train_interactions"] >= 333
    assert stats["modalities"] == {"image": [1280], "text": [384]}
    assert set(stats["item_train_degree_percentiles"]) >= {"p50", "p90", "p99"}


def test_data_stats_table_on_synthetic(capsys):
    assert main(["data", "stats", "synthetic-cold"]) == 0
    out = capsys.readouterr().out
    for word in ("users", "items", "interactions", "density", "cold_items", "modalities", "text=[48]"):
        assert word in out
