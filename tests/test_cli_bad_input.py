"""The bad-input corpus: one-paragraph error naming the file and line/field, exit 2, no traceback,
nothing written to RUN_DIR."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from motorec.cli import main

CORPUS = Path(__file__).resolve().parent / "data" / "corpus"
FAST = ["--set", "seeds=[1]", "--set", "train.epochs=2", "--set", "train.progress=false", "--set", "train.threads=1"]


def dataset(tmp_path: Path, inter: str = "good.inter", features: np.ndarray | None = None) -> Path:
    """A folder `toy/` holding the corpus file as toy.inter (+ text_feat.npy)."""
    folder = tmp_path / "toy"
    folder.mkdir()
    shutil.copyfile(CORPUS / inter, folder / "toy.inter")
    if features is not None:
        np.save(folder / "text_feat.npy", features)
    return folder


def train(folder: Path, run: Path, *extra: str, model: str = "bpr") -> list[str]:
    return ["train", "--data", str(folder), "--model", model, "--out", str(run), *FAST, *extra]


def fails_cleanly(argv: list[str], capsys, run: Path, *needles: str) -> str:
    """Exit 2, one `error:` paragraph on stderr containing every needle, RUN_DIR untouched."""
    before = sorted(p.name for p in run.iterdir()) if run.exists() else None
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    assert "\n\n" not in err.strip(), "one paragraph"
    flat = " ".join(err.split())
    for needle in needles:
        assert needle in flat, f"{needle!r} not in {flat!r}"
    after = sorted(p.name for p in run.iterdir()) if run.exists() else None
    assert after == before, "nothing may be written to RUN_DIR"
    return flat


@pytest.mark.parametrize(
    ("inter", "needles"),
    [
        ("missing_column.inter", ("toy.inter, line 1", "missing column 'x_label'")),
        ("non_integer_id.inter", ("toy.inter, line 6", "'userID'", "u1")),
        ("fractional_id.inter", ("toy.inter, line 8", "'itemID'", "2.5")),
        ("negative_id.inter", ("toy.inter, line 11", "'itemID'", "-3")),
        ("bad_label.inter", ("toy.inter, line 14", "x_label", "found 3")),
        ("users_without_train.inter", ("toy.inter", "2 users", "data.drop_users_without_train=true")),
    ],
)
def test_bad_interaction_files(inter, needles, tmp_path, capsys):
    fails_cleanly(train(dataset(tmp_path, inter), tmp_path / "run"), capsys, tmp_path / "run", *needles)


def test_missing_inter_file(tmp_path, capsys):
    folder = tmp_path / "empty"
    folder.mkdir()
    fails_cleanly(train(folder, tmp_path / "run"), capsys, tmp_path / "run", str(folder))
    folder2 = dataset(tmp_path)
    fails_cleanly(train(folder2, tmp_path / "run", "--split", "nope.inter"), capsys, tmp_path / "run", "nope.inter", "not found")


def test_users_without_train_are_dropped_only_when_asked(tmp_path, capsys):
    folder = dataset(tmp_path, "users_without_train.inter")
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="dropped the 3 interactions of 2 users"):
        code = main(train(folder, run, "--set", "data.drop_users_without_train=true"))
    assert code == 0, capsys.readouterr().err
    assert (run / "results.json").is_file()


def test_feature_rows_must_match_items(tmp_path, capsys):
    folder = dataset(tmp_path, features=np.ones((5, 4), np.float32))  # the interactions name 8 items
    fails_cleanly(train(folder, tmp_path / "run"), capsys, tmp_path / "run", "text_feat.npy", "5 rows", "8 items")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features(bad, tmp_path, capsys):
    feat = np.ones((8, 4), np.float32)
    feat[5, 2] = bad
    folder = dataset(tmp_path, features=feat)
    fails_cleanly(train(folder, tmp_path / "run"), capsys, tmp_path / "run", "text_feat.npy", "row 5", "NaN or inf")


def test_unknown_model_suggests_nearest(tmp_path, capsys):
    fails_cleanly(train(dataset(tmp_path), tmp_path / "run", model="lightgnc"), capsys, tmp_path / "run",
                  "unknown model 'lightgnc'", "Did you mean 'lightgcn'?")


@pytest.mark.parametrize(
    ("override", "suggestion"),
    [("train.lrr=0.1", "train.lr"), ("model.n_layer=2", "model.n_layers"), ("epochz=3", "train.epochs")],
)
def test_unknown_config_key_suggests_nearest(override, suggestion, tmp_path, capsys):
    argv = train(dataset(tmp_path), tmp_path / "run", "--set", override, model="lightgcn")
    fails_cleanly(argv, capsys, tmp_path / "run", "unknown config key", f"Did you mean '{suggestion}'?")


def test_existing_run_dir_is_refused_unless_overwrite(tmp_path, capsys):
    folder = dataset(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("keep me")
    fails_cleanly(train(folder, run), capsys, run, str(run), "--overwrite")
    assert (run / "notes.txt").read_text() == "keep me"
    assert main(train(folder, run, "--overwrite")) == 0
    assert (run / "results.json").is_file() and not (run / "notes.txt").exists()


@pytest.mark.parametrize("override", ["train.epochs=0", "train.epochs=-1", "seeds=[]", "train.batch_size=0",
                                      "train.lr=nan", "eval.ks=[0]", "train.threads=abc", "train.eval_every=0"])
def test_out_of_range_config_values_stop_before_anything_is_written(tmp_path, capsys, override):
    out = tmp_path / "run"
    code = main(["train", "--data", "synthetic-cold", "--model", "bpr", "--out", str(out), "--set", override])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"'{override.split('=')[0]}" in err  # the message names the key
    assert not out.exists()  # no half-made run directory
