"""`motorec features` end to end through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from motorec.cli import main

ML100K = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ml100k-mm"


def test_generic_table_with_text_and_images(tmp_path, capsys):
    (tmp_path / "img").mkdir()
    Image.new("RGB", (30, 45), (90, 10, 10)).save(tmp_path / "img" / "p1.jpg")
    (tmp_path / "items.csv").write_text("pid,title,body\np1,Red lamp,A lamp.\np2,Blue cup,\n")
    code = main(
        [
            "features",
            "--items",
            str(tmp_path / "items.csv"),
            "--id-column",
            "pid",
            "--out",
            str(tmp_path / "out"),
            "--text-template",
            "{title}. {body}",
            "--image-dir",
            str(tmp_path / "img"),
            "--image-pattern",
            "{pid}.jpg",
            "--quiet",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "text: text_feat.npy 2x384" in captured.out and "image: image_feat.npy 2x1280" in captured.out
    assert "1 rows imputed" in captured.out and "warning: 1 of 2 images" in captured.err
    meta = json.loads((tmp_path / "out" / "features.json").read_text())
    assert meta["modalities"]["image"]["imputed"][0]["id"] == "p2"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "ml100", "--raw", "x"], "unknown preset 'ml100'. Did you mean 'ml100k'?"),
        (["--preset", "generic"], "--preset generic needs --items"),
        (["--preset", "ml100k"], "--preset ml100k needs --raw"),
        (["--preset", "ml100k", "--raw", "no/such/dir"], "raw folder not found: no/such/dir"),
        (["--items", "no/such.csv"], "item table not found: no/such.csv"),
    ],
)
def test_user_errors_exit_2_with_a_message(args, message, tmp_path, capsys):
    assert main(["features", "--out", str(tmp_path), *args]) == 2
    assert message in " ".join(capsys.readouterr().err.split())


@pytest.mark.skipif(not (ML100K / "raw").is_dir(), reason=f"shared dataset not found: {ML100K}")
def test_ml100k_preset_reports_agreement_with_reference(tmp_path, capsys):
    code = main(
        [
            "features",
            "--preset",
            "ml100k",
            "--raw",
            str(ML100K / "raw"),
            "--out",
            str(tmp_path),
            "--limit",
            "8",
            "--reference",
            str(ML100K),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and out.count("0 rows below 0.999") == 2
