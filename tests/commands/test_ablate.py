"""`motorec ablate`: every variant is trained from one command and lands in one table."""

from __future__ import annotations

import json

import pytest

from motorec.cli import main
from motorec.commands.ablate import VARIANTS, ablation_markdown, run_ablation
from motorec.errors import MotorecError

TINY = [
    "seeds=[1]",
    "train.epochs=2",
    "train.threads=1",
    "train.progress=false",
    "model.embedding_dim=8",
    "model.tokenizer.codebook_size=16",
    "model.tokenizer.hidden=[16]",
    "model.tokenizer.epochs=2",
]


def test_variants_cover_the_issue():
    assert set(VARIANTS) == {
        "full",
        "no_sparsity",
        "no_rarity",
        "rarity_amplify",
        "continuous",
        "no_id_channel",
        "one_stage",
        "one_content_head",
    }
    assert VARIANTS["full"] == []


def test_ablate_cli_writes_one_table(tmp_path):
    out = tmp_path / "abl"
    args = [
        "exp",
        "ablate",
        "--out",
        str(out),
        "--variants",
        "full,no_id_channel",
        *(a for s in TINY for a in ("--set", s)),
    ]
    assert main(args) == 0
    report = json.loads((out / "ablation.json").read_text())
    assert list(report["variants"]) == ["full", "no_id_channel"]
    assert report["variants"]["no_id_channel"]["overrides"] == ["model.id_channel=false"]
    md = (out / "ablation.md").read_text()
    assert "| no_id_channel | model.id_channel=false |" in md and "test cold@full" in md
    assert md == ablation_markdown(report)
    assert (out / "full" / "results.json").is_file() and (out / "no_id_channel" / "topk_test.tsv").is_file()


def test_unknown_variant_is_a_user_error(tmp_path):
    with pytest.raises(MotorecError, match="unknown variant"):
        run_ablation("synthetic-cold", tmp_path, variants=["full", "no_graph"])
