"""The content profile validates the whole pipeline against the lead's measured figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from motorec.training import run_experiment

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real datasets not found at {DATA}")

# (folder, split, overrides) -> (cold@cold R@20, cold@full R@20) measured by the lead's team
CASES = [
    ("ml100k-mm", "ml100k-mm-cold.inter", [], 0.207, 0.076),
    ("ml100k-mm", "ml100k-mm-cold.inter", ["modalities=[text]"], 0.215, None),
    ("amazon-scientific", "scientific-cold.inter", [], 0.206, 0.115),
]


@pytest.mark.parametrize("folder,split,extra,cold_cold,cold_full", CASES)
def test_content_profile_reproduces_reference(tmp_path, folder, split, extra, cold_cold, cold_full):
    res = run_experiment(
        DATA / folder,
        "content_profile",
        tmp_path / "run",
        split,
        overrides=[
            "seeds=[2026]",
            "train.threads=1",
            "train.progress=false",
            f"data.cache_dir={tmp_path / 'cache'}",
            *extra,
        ],
    )
    test = res["test"]
    assert test["cold@cold"]["recall@20"] == pytest.approx(cold_cold, abs=0.0015)
    if cold_full is not None:
        assert test["cold@full"]["recall@20"] == pytest.approx(cold_full, abs=0.0015)
    assert json.loads((tmp_path / "run" / "results.json").read_text())["content_path"] is True
