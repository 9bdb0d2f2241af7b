"""The bad-input corpus: one-paragraph error naming the file and line/field, exit 2, no traceback,
nothing written to RUN_DIR."""

from __future__ import annotations

import hashlib
import os
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


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file under `root` with its size, mtime and hash, and every folder."""
    out: dict[str, tuple] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_dir():
            out[rel] = ("dir",)
        elif p.is_file():
            out[rel] = (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def fails_cleanly(argv: list[str], capsys, run: Path, *needles: str, root: Path | None = None) -> str:
    """Exit 2, one `error:` paragraph on stderr containing every needle, no traceback, and nothing
    under `root` (default: the folder holding RUN_DIR) created, changed or removed."""
    root = root or run.parent
    before = snapshot(root)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    assert "\n\n" not in err.strip(), "one paragraph"
    flat = " ".join(err.split())
    for needle in needles:
        assert needle in flat, f"{needle!r} not in {flat!r}"
    assert snapshot(root) == before, "a failed command must leave every file as it was"
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
    fails_cleanly(
        train(folder2, tmp_path / "run", "--split", "nope.inter"), capsys, tmp_path / "run", "nope.inter", "not found"
    )


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
    fails_cleanly(
        train(dataset(tmp_path), tmp_path / "run", model="lightgnc"),
        capsys,
        tmp_path / "run",
        "unknown model 'lightgnc'",
        "Did you mean 'lightgcn'?",
    )


@pytest.mark.parametrize(
    ("override", "suggestion"),
    [("train.lrr=0.1", "train.lr"), ("model.n_layer=2", "model.n_layers"), ("epochz=3", "train.epochs")],
)
def test_unknown_config_key_suggests_nearest(override, suggestion, tmp_path, capsys):
    argv = train(dataset(tmp_path), tmp_path / "run", "--set", override, model="lightgcn")
    fails_cleanly(argv, capsys, tmp_path / "run", "unknown config key", f"Did you mean '{suggestion}'?")


def test_existing_run_dir_is_refused_and_only_motorec_runs_are_replaced(tmp_path, capsys):
    folder = dataset(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("keep me")
    fails_cleanly(train(folder, run), capsys, run, str(run), "holds files motorec did not write")
    fails_cleanly(train(folder, run, "--overwrite"), capsys, run, str(run), "only replaces run folders it wrote")
    assert (run / "notes.txt").read_text() == "keep me"
    (run / "notes.txt").unlink()
    assert main(train(folder, run)) == 0
    fails_cleanly(train(folder, run), capsys, run, str(run), "--overwrite", "--resume")
    (run / "seed_1" / "note.txt").write_text("mine")
    assert main(train(folder, run, "--overwrite")) == 0
    assert (run / "results.json").is_file() and not (run / "seed_1" / "note.txt").exists()
    assert not [p for p in tmp_path.iterdir() if "replaced" in p.name]  # the old run moved aside is gone


@pytest.mark.parametrize(
    "override",
    [
        "train.epochs=0",
        "train.epochs=-1",
        "seeds=[]",
        "train.batch_size=0",
        "train.lr=nan",
        "eval.ks=[0]",
        "train.threads=abc",
        "train.eval_every=0",
    ],
)
def test_out_of_range_config_values_stop_before_anything_is_written(tmp_path, capsys, override):
    out = tmp_path / "run"
    code = main(["train", "--data", "synthetic-cold", "--model", "bpr", "--out", str(out), "--set", override])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"'{override.split('=')[0]}" in err  # the message names the key
    assert not out.exists()  # no half-made run directory
