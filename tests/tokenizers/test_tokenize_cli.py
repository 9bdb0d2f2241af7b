"""`motorec tokenize`: outputs, overwrite protection, errors naming the file and row."""

from __future__ import annotations

import json

import numpy as np
from tok_helpers import cli_settings, clustered

from motorec.cli import main
from motorec.tokenizers import load_tokenizer

FAST = cli_settings(warmup_epochs=1, epochs=1)


def feature_folder(tmp_path, text: np.ndarray):
    folder = tmp_path / "items"
    folder.mkdir()
    np.save(folder / "text_feat.npy", text)
    np.save(folder / "image_feat.npy", clustered(len(text), 12, 3, seed=1))
    return folder


def test_tokenize_writes_code_table_tokenizer_and_diagnostics(tmp_path, capsys):
    folder = feature_folder(tmp_path, clustered(60, 10, 4, seed=0))
    out = tmp_path / "tokens"
    assert main(["tokenize", "--data", str(folder), "--tokenizer", "rqvae", "--out", str(out), *FAST]) == 0
    assert "utilisation" in capsys.readouterr().out
    lines = (out / "codes.tsv").read_text().splitlines()
    assert lines[0].split("\t") == [
        "itemID",
        "image_l0",
        "image_l1",
        "image_suffix",
        "text_l0",
        "text_l1",
        "text_suffix",
    ]
    assert len(lines) == 61 and lines[5].split("\t")[0] == "4"
    codes = np.load(out / "codes.npy")
    assert codes.shape == (60, 6)
    assert [int(v) for v in lines[1].split("\t")[1:]] == codes[0].tolist()
    report = json.loads((out / "diagnostics.json").read_text())
    assert report["modalities"]["text"]["collision_rate"] == 0.0
    tok = load_tokenizer(out)
    assert np.array_equal(
        tok.encode({"text": np.load(folder / "text_feat.npy"), "image": np.load(folder / "image_feat.npy")}), codes
    )
    # a non-empty --out is refused without --overwrite, accepted with it
    assert main(["tokenize", "--data", str(folder), "--tokenizer", "pq", "--out", str(out), "-m", "text"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (
        main(
            [
                "tokenize",
                "--data",
                str(folder),
                "--tokenizer",
                "pq",
                "--out",
                str(out),
                "-m",
                "text",
                "--set",
                "codebook_size=8",
                "--overwrite",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["tokenizer"] == "pq"
    assert np.load(out / "codes.npy").shape == (60, 4)


def test_tokenize_errors_name_file_row_and_parameter(tmp_path, capsys):
    text = clustered(30, 10, 3, seed=0)
    text[7, 2] = np.inf
    folder = feature_folder(tmp_path, text)
    out = tmp_path / "tokens"
    assert main(["tokenize", "--data", str(folder), "--tokenizer", "pq", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "text_feat.npy" in err and "row 7" in err and not out.exists()
    assert main(["tokenize", "--data", str(folder), "--tokenizer", "rqvea", "--out", str(out)]) == 2
    assert "Did you mean 'rqvae'" in capsys.readouterr().err
    assert main(["tokenize", "--data", str(folder), "--tokenizer", "pq", "--out", str(out), "--set", "subspace=2"]) == 2
    assert "Did you mean 'subspaces'" in capsys.readouterr().err
    np.save(folder / "text_feat.npy", clustered(30, 10, 3, seed=0))
    assert main(["tokenize", "--data", str(folder), "--tokenizer", "pq", "--out", str(out), "-m", "audio"]) == 2
    assert "--modality audio" in " ".join(capsys.readouterr().err.split())
